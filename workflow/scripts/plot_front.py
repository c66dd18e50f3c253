"""Snakemake adapter of rule plot_front: front dataset -> trade-off figure."""

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(front: str, figure: str, log_file: str | None = None) -> None:
    configure(log_file)
    plots.save(plots.front(read_dataset(front)), figure)


if __name__ == "__main__":
    main(snakemake.input.front, snakemake.output.figure, snakemake.log[0])
