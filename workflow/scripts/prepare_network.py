"""Snakemake adapter of rule prepare_network: pandapower feeder -> Feeder NetCDF."""

import logging

from feederflex.feeders import build_feeder
from feederflex.io import write_dataset
from feederflex.logs import configure


def main(source: str, output: str, log_file: str | None = None) -> None:
    configure(log_file)
    feeder = build_feeder(source)
    logging.getLogger(__name__).info(
        "feeder %s: %d buses, %d branches", source, feeder.sizes["bus"], feeder.sizes["branch"]
    )
    write_dataset(feeder, output, {"params": {"source": source}})


if __name__ == "__main__":
    main(snakemake.params.source, snakemake.output.network, snakemake.log[0])
