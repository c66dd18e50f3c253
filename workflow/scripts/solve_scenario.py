"""Snakemake adapter of rule solve_scenario: prepared inputs + scenario settings -> solution NetCDF."""

from feederflex.io import read_dataset, read_profiles, write_dataset
from feederflex.logs import configure
from feederflex.schedule import solve_scenario


def main(
    network: str,
    profiles: str | list[str],
    fleet: str | None,
    settings: dict,
    scenario: str,
    output: str,
    python_log: str | None = None,
    solver_log: str | None = None,
    travel: str | None = None,
) -> None:
    configure(python_log)
    solution = solve_scenario(
        read_dataset(network),
        read_profiles(profiles),
        settings,
        fleet=read_dataset(fleet) if fleet else None,
        travel=read_dataset(travel) if travel else None,
        solver_log=solver_log,
    )
    write_dataset(solution, output, {"scenario": scenario, "params": settings})


if __name__ == "__main__":
    main(
        snakemake.input.network,
        snakemake.input.profiles,
        snakemake.input.get("fleet"),
        snakemake.params.settings,
        snakemake.wildcards.scenario,
        snakemake.output.solution,
        snakemake.log.python,
        snakemake.log.solver,
        snakemake.input.get("travel"),
    )
