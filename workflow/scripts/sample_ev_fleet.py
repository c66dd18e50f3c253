"""Snakemake adapter of rule sample_ev_fleet: Monte Carlo EV fleet and its uncontrolled load."""

from feederflex.fleet import sample_fleet
from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure


def main(
    network: str, spec: dict, name: str, hours: float, step_minutes: int, output: str, log_file: str | None = None
) -> None:
    configure(log_file)
    fleet = sample_fleet(spec, read_dataset(network), hours, step_minutes, name)
    write_dataset(fleet, output, {"params": spec, "seed": int(spec["seed"])})


if __name__ == "__main__":
    main(
        snakemake.input.network,
        snakemake.params.fleet,
        snakemake.wildcards.fleet,
        snakemake.params.hours,
        snakemake.params.step_minutes,
        snakemake.output.fleet,
        snakemake.log[0],
    )
