"""Snakemake adapter of rule plot_fleet: a sampled fleet against its configured distributions."""

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(fleet: str, spec: dict, output: str, log_file: str | None = None) -> None:
    configure(log_file)
    plots.save(plots.fleet_histograms(read_dataset(fleet), spec), output)


if __name__ == "__main__":
    main(snakemake.input.fleet, snakemake.params.fleet, snakemake.output.histograms, snakemake.log[0])
