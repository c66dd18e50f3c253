"""Snakemake adapter of rule payoff_table: single-objective solutions -> payoff table (NetCDF and CSV)."""

from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.multiobjective import payoff_csv, payoff_table


def main(
    objectives: list[str], rows: list[str], scenario: str, table: str, csv: str, log_file: str | None = None
) -> None:
    configure(log_file)
    payoff = payoff_table({name: read_dataset(path) for name, path in zip(objectives, rows, strict=True)})
    write_dataset(payoff, table, {"scenario": scenario, "rows": rows})
    payoff_csv(payoff).to_csv(csv)


if __name__ == "__main__":
    main(
        snakemake.params.objectives,
        snakemake.input.rows,
        snakemake.wildcards.scenario,
        snakemake.output.table,
        snakemake.output.csv,
        snakemake.log[0],
    )
