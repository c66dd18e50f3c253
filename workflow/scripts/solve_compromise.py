"""Snakemake adapter of rule solve_compromise: a fuzzy min-max or weighted-sum compromise."""


from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure
from feederflex.multiobjective import fuzzy_settings, memberships, scenario_solver, weighted_settings


def main(inputs: dict, settings: dict, compromise: dict, penalties: list[str], name: str, output: str,
         python_log: str | None = None, solver_log: str | None = None) -> None:
    configure(python_log)
    payoff = read_dataset(inputs["payoff"]) if "payoff" in inputs else None
    solve = scenario_solver(inputs["network"], inputs["profiles"], inputs.get("fleet"), inputs.get("travel"), solver_log)
    if compromise["method"] == "fuzzy":
        reference = read_dataset(inputs["reference"]) if "reference" in inputs else None
        chosen = fuzzy_settings(settings, compromise, payoff, penalties, reference)
    else:
        chosen = weighted_settings(settings, compromise, payoff, penalties)
    solution = solve(chosen)
    fuzzy = chosen["objective"]["fuzzy"]
    if fuzzy:
        mu = memberships(solution, fuzzy)
        solution.attrs.update({f"membership_{k}": v for k, v in mu.items()})
        solution.attrs["membership_max"] = max(mu.values())
    write_dataset(solution, output, {"compromise": name, "method": compromise["method"], "scenario": compromise["scenario"],
                                     "params": chosen})


if __name__ == "__main__":
    main(
        dict(snakemake.input),  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.params.compromise,  # noqa: F821
        snakemake.params.penalties,  # noqa: F821
        snakemake.wildcards.compromise,  # noqa: F821
        snakemake.output.solution,  # noqa: F821
        snakemake.log.python,  # noqa: F821
        snakemake.log.solver,  # noqa: F821
    )
