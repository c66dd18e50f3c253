"""Snakemake adapter of rule plot_scenario: voltage heatmap of one scenario (model and AC)."""

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(solution: str, ac: str, scenario: str, output: str, log_file: str | None = None) -> None:
    configure(log_file)
    plots.save(plots.voltage_heatmap(read_dataset(solution), read_dataset(ac), scenario), output)


if __name__ == "__main__":
    main(
        snakemake.input.solution,
        snakemake.input.ac,
        snakemake.wildcards.scenario,
        snakemake.output.heatmap,
        snakemake.log[0],
    )
