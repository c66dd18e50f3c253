"""Snakemake adapter of rule plot_subareas: the subarea curves of one scenario."""

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(solution: str, subareas: list[dict], scenario: str, output: str, log_file: str | None = None) -> None:
    configure(log_file)
    plots.save(plots.subareas(read_dataset(solution), list(subareas), title=scenario), output)


if __name__ == "__main__":
    main(
        snakemake.input.solution,
        snakemake.params.subareas,
        snakemake.wildcards.scenario,
        snakemake.output.figure,
        snakemake.log[0],
    )
