"""Snakemake adapter of rule solve_rolling: a batch of actual days of one scenario -> schedules and KPI rows."""

from pathlib import Path

import pandas as pd

from feederflex.io import read_dataset, read_profiles, write_dataset
from feederflex.logs import configure
from feederflex.montecarlo import monte_carlo


def main(
    network: str,
    profiles: str | list[str],
    fleet: str | None,
    travel: str | None,
    settings: dict,
    uncertainty: dict,
    realisations: list[int],
    scenario: str,
    schedules: str,
    kpis: str,
    python_log: str | None = None,
    solver_log: str | None = None,
) -> None:
    configure(python_log)
    if solver_log is not None:  # HiGHS appends: start each job's log afresh
        Path(solver_log).parent.mkdir(parents=True, exist_ok=True)
        Path(solver_log).write_text("")
    Path(schedules).mkdir(parents=True, exist_ok=True)
    rows = []
    days = monte_carlo(
        read_dataset(network),
        read_profiles(profiles),
        settings,
        uncertainty,
        realisations,
        fleet=read_dataset(fleet) if fleet else None,
        travel=read_dataset(travel) if travel else None,
        solver_log=solver_log,
    )
    for day in days:
        provenance = {
            "scenario": scenario,
            "params": settings,
            "uncertainty": uncertainty,
            "realisation": day.realisation,
        }
        stem = Path(schedules) / f"r{day.realisation:04d}"
        write_dataset(day.realised, f"{stem}.nc", provenance)
        write_dataset(day.realised_ac, f"{stem}.ac.nc", provenance)
        write_dataset(day.plan, f"{stem}.plan.nc", provenance)
        write_dataset(day.plan_ac, f"{stem}.plan.ac.nc", provenance)
        rows += [{"scenario": scenario, **row} for row in day.kpis]
    pd.DataFrame(rows).to_csv(kpis, index=False)


if __name__ == "__main__":
    main(
        snakemake.input.network,
        snakemake.input.profiles,
        snakemake.input.get("fleet"),
        snakemake.input.get("travel"),
        snakemake.params.settings,
        snakemake.params.uncertainty,
        snakemake.params.realisations,
        snakemake.wildcards.scenario,
        snakemake.output.schedules,
        snakemake.output.kpis,
        snakemake.log.python,
        snakemake.log.solver,
    )
