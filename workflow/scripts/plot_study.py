"""Snakemake adapter of rule plot_study: study-wide figures from summary.nc and kpis.csv."""

import pandas as pd

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(summary: str, kpis: str, settings: dict, outputs: dict, log_file: str | None = None) -> None:
    configure(log_file)
    ds = read_dataset(summary)
    table = pd.read_csv(kpis, index_col="scenario")
    plots.save(plots.voltage_envelope(ds), outputs["envelope"])
    plots.save(plots.bus_voltage(ds, settings["bus"], settings["scenarios"] or None), outputs["bus_voltage"])
    plots.save(plots.import_profiles(ds), outputs["imports"])
    plots.save(plots.kpi_comparison(table, settings["kpis"]), outputs["kpis"])


if __name__ == "__main__":
    main(
        snakemake.input.summary,
        snakemake.input.kpis,
        snakemake.params.plots,
        dict(snakemake.output.items()),
        snakemake.log[0],
    )
