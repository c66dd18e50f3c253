"""Snakemake adapter of rule solve_payoff_row: one objective optimised alone (then, lexicographically, the rest)."""

from feederflex.io import write_dataset
from feederflex.logs import configure
from feederflex.multiobjective import scenario_solver, solve_payoff_row


def main(
    inputs: dict,
    settings: dict,
    objective: str,
    penalties: list[str],
    lexicographic: bool,
    scenario: str,
    output: str,
    python_log: str | None = None,
    solver_log: str | None = None,
) -> None:
    configure(python_log)
    solve = scenario_solver(
        inputs["network"], inputs["profiles"], inputs.get("fleet"), inputs.get("travel"), solver_log
    )
    solution, first = solve_payoff_row(solve, settings, objective, penalties, lexicographic)
    write_dataset(solution, output, {"scenario": scenario, "payoff_objective": objective, "params": first.to_dict()})


if __name__ == "__main__":
    main(
        dict(snakemake.input),
        snakemake.params.settings,
        snakemake.wildcards.objective,
        snakemake.params.penalties,
        snakemake.params.lexicographic,
        snakemake.wildcards.scenario,
        snakemake.output.solution,
        snakemake.log.python,
        snakemake.log.solver,
    )
