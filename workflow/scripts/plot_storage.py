"""Snakemake adapter of rule plot_storage: storage power and energy of one scenario."""

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(solution: str, output: str, log_file: str | None = None) -> None:
    configure(log_file)
    plots.save(plots.storage(read_dataset(solution)), output)


if __name__ == "__main__":
    main(snakemake.input.solution, snakemake.output.storage, snakemake.log[0])
