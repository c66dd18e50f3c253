"""Snakemake adapter of rule solve_compromise: a fuzzy min-max or weighted-sum compromise."""

from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.multiobjective import scenario_solver, solve_compromise


def main(
    inputs: dict,
    settings: dict,
    compromise: dict,
    penalties: list[str],
    name: str,
    output: str,
    python_log: str | None = None,
    solver_log: str | None = None,
) -> None:
    configure(python_log)
    payoff = read_dataset(inputs["payoff"]) if "payoff" in inputs else None
    solve = scenario_solver(
        inputs["network"], inputs["profiles"], inputs.get("fleet"), inputs.get("travel"), solver_log
    )
    reference = read_dataset(inputs["reference"]) if "reference" in inputs else None
    solution, chosen = solve_compromise(solve, settings, compromise, payoff, penalties, reference)
    write_dataset(
        solution,
        output,
        {
            "compromise": name,
            "method": compromise["method"],
            "scenario": compromise["scenario"],
            "params": chosen.to_dict(),
        },
    )


if __name__ == "__main__":
    main(
        dict(snakemake.input),
        snakemake.params.settings,
        snakemake.params.compromise,
        snakemake.params.penalties,
        snakemake.wildcards.compromise,
        snakemake.output.solution,
        snakemake.log.python,
        snakemake.log.solver,
    )
