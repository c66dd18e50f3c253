"""Snakemake adapter of rule bills_table: solutions of the scenarios with subareas -> bills.csv."""

from feederflex.io import read_dataset
from feederflex.logs import configure
from feederflex.regional import bills_table


def main(scenarios: list[str], files: list[str], settings: dict, baselines: dict, table: str, log_file=None) -> None:
    configure(log_file)
    solutions = {name: read_dataset(path) for name, path in zip(scenarios, files, strict=True)}
    bills_table(solutions, settings, baselines).to_csv(table, index=False, float_format="%.10g")


if __name__ == "__main__":
    main(
        snakemake.params.scenarios,
        snakemake.input.solutions,
        snakemake.params.settings,
        snakemake.params.baselines,
        snakemake.output.table,
        snakemake.log[0],
    )
