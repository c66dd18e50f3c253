"""Snakemake adapter of rule build_profiles: one day's load, PV and price profiles."""

from feederflex.feeders import load_pandapower
from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.profiles import build_profiles


def main(
    network: str, day: dict, name: str, hours: float, step_minutes: int, output: str, log_file: str | None = None
) -> None:
    configure(log_file)
    feeder = read_dataset(network)
    net = load_pandapower(feeder.attrs["source"]) if day["source"] == "net" else None  # its yearly profiles
    profiles = build_profiles(feeder, day, hours, step_minutes, name, net)
    write_dataset(profiles, output, {"params": {"day": day, "hours": hours, "step_minutes": step_minutes}})


if __name__ == "__main__":
    main(
        snakemake.input.network,
        snakemake.params.day,
        snakemake.wildcards.day,
        snakemake.params.hours,
        snakemake.params.step_minutes,
        snakemake.output.profiles,
        snakemake.log[0],
    )
