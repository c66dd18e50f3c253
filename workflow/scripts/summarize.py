"""Snakemake adapter of rule summarize: all scenarios -> summary.nc and kpis.csv."""

import logging

from feederflex.io import read_dataset, write_dataset
from feederflex.kpis import summarize
from feederflex.logs import configure


def main(
    scenarios: list[str], solutions: list[str], acs: list[str], summary: str, kpis: str, log_file: str | None = None
) -> None:
    configure(log_file)
    sols = {name: read_dataset(path) for name, path in zip(scenarios, solutions, strict=True)}
    ac = {name: read_dataset(path) for name, path in zip(scenarios, acs, strict=True)}
    dataset, table = summarize(sols, ac)
    unsolved = table.index[~table.status.isin(["optimal"])].tolist()
    if unsolved:
        logging.getLogger(__name__).warning("scenarios without a proven optimum: %s", unsolved)
    write_dataset(dataset, summary, {"scenarios": scenarios})
    table.to_csv(kpis)


if __name__ == "__main__":
    main(
        snakemake.params.scenarios,
        snakemake.input.solutions,
        snakemake.input.ac,
        snakemake.output.summary,
        snakemake.output.kpis,
        snakemake.log[0],
    )
