"""Snakemake adapter of rule solve_front_point: one epsilon-constraint point of a front."""

from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.multiobjective import scenario_solver, solve_front_point


def main(
    inputs: dict,
    settings: dict,
    front: dict,
    fraction: str,
    penalties: list[str],
    lexicographic: bool,
    name: str,
    output: str,
    python_log: str | None = None,
    solver_log: str | None = None,
) -> None:
    configure(python_log)
    payoff = read_dataset(inputs["payoff"])
    solve = scenario_solver(
        inputs["network"], inputs["profiles"], inputs.get("fleet"), inputs.get("travel"), solver_log
    )
    solution, first = solve_front_point(solve, settings, front, payoff, float(fraction), penalties, lexicographic)
    write_dataset(
        solution,
        output,
        {"front": name, "fraction": float(fraction), "scenario": front["scenario"], "params": first.to_dict()},
    )


if __name__ == "__main__":
    main(
        dict(snakemake.input),
        snakemake.params.settings,
        snakemake.params.front,
        snakemake.wildcards.fraction,
        snakemake.params.penalties,
        snakemake.params.lexicographic,
        snakemake.wildcards.front,
        snakemake.output.solution,
        snakemake.log.python,
        snakemake.log.solver,
    )
