"""Snakemake adapter of rule gather_front: front points -> one front dataset (NetCDF and CSV)."""

import logging

from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.multiobjective import front_dataset


def main(
    fractions: list[str],
    points: list[str],
    payoff: str,
    front: dict,
    name: str,
    table: str,
    csv: str,
    log_file: str | None = None,
) -> None:
    configure(log_file)
    solutions = {f: read_dataset(path) for f, path in zip(fractions, points, strict=True)}
    ds = front_dataset(solutions, dict(zip(fractions, points, strict=True)), front, read_dataset(payoff))
    if bool(ds.dominated.any()):
        logging.getLogger(__name__).warning(
            "front %s: points %s are dominated", name, list(ds.point.values[ds.dominated.values])
        )
    write_dataset(ds, table, {"front": name})
    frame = ds.value.to_pandas()
    for column in ("fraction", "epsilon", "status", "mip_gap", "dominated", "solution_file"):
        frame[column] = ds[column].values
    frame.to_csv(csv)


if __name__ == "__main__":
    main(
        snakemake.params.fractions,
        snakemake.input.points,
        snakemake.input.payoff,
        snakemake.params.front,
        snakemake.wildcards.front,
        snakemake.output.table,
        snakemake.output.csv,
        snakemake.log[0],
    )
