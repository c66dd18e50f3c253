"""Snakemake adapter of rule summarize_monte_carlo: KPI rows of every batch -> side-by-side statistics."""

import pandas as pd

from feederflex.io import write_dataset
from feederflex.kpis import monte_carlo_tables
from feederflex.logs import configure


def main(batches: list[str], table: str, realisations: str, dataset: str, log_file: str | None = None) -> None:
    configure(log_file)
    rows, summary, ds = monte_carlo_tables([pd.read_csv(path) for path in batches])
    rows.to_csv(realisations, index=False)
    summary.to_csv(table)
    write_dataset(ds, dataset)


if __name__ == "__main__":
    main(
        snakemake.input.batches,
        snakemake.output.table,
        snakemake.output.realisations,
        snakemake.output.dataset,
        snakemake.log[0],
    )
