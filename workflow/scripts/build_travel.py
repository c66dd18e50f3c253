"""Snakemake adapter of rule build_travel: MESS station distances and travel times per departure step."""

from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.travel import build_travel


def main(
    network: str, transport: dict, hours: float, step_minutes: int, output: str, log_file: str | None = None
) -> None:
    configure(log_file)
    buses = [int(b) for b in read_dataset(network).bus.values]
    travel = build_travel(transport, buses, hours, step_minutes)
    write_dataset(travel, output, {"params": transport})


if __name__ == "__main__":
    main(
        snakemake.input.network,
        snakemake.params.transport,
        snakemake.params.hours,
        snakemake.params.step_minutes,
        snakemake.output.travel,
        snakemake.log[0],
    )
