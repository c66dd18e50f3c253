"""Snakemake adapter of rule hosting_table: every case's result -> hosting.csv and the figure."""

import pandas as pd

from feederflex import plots
from feederflex.hosting import hosting_table
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(cases: list[str], files: list[str], table: str, figure: str, log_file: str | None = None) -> None:
    configure(log_file)
    results = {name: read_dataset(path) for name, path in zip(cases, files, strict=True)}
    pd.DataFrame(hosting_table(results)).set_index("case").to_csv(table)
    plots.save(plots.hosting(results), figure)


if __name__ == "__main__":
    main(
        snakemake.params.cases,
        snakemake.input.results,
        snakemake.output.table,
        snakemake.output.figure,
        snakemake.log[0],
    )
