"""Snakemake adapter of rule hosting_case: a scenario's prepared inputs + one case -> hosting/{case}.nc."""

from feederflex.hosting import Case, hosting_capacity
from feederflex.io import read_dataset, read_profiles, write_dataset
from feederflex.logs import configure


def main(inputs, settings: dict, case: dict, search: dict, output: str, python_log: str | None = None) -> None:
    configure(python_log)
    spec = Case(
        case["name"],
        case["scenario"],
        tuple(case["buses"]),
        tuple(case["shares"]),
        case["edges"],
        tuple(case["clears"]),
    )
    result = hosting_capacity(
        read_dataset(inputs.network),
        read_profiles(inputs.profiles),
        settings,
        spec,
        fleet=read_dataset(inputs.fleet) if "fleet" in inputs.keys() else None,
        travel=read_dataset(inputs.travel) if "travel" in inputs.keys() else None,
        **search,
    )
    write_dataset(result, output, {"case": case, "search": search, "params": settings})


if __name__ == "__main__":
    main(
        snakemake.input,
        snakemake.params.settings,
        snakemake.params.case,
        snakemake.params.search,
        snakemake.output.result,
        snakemake.log.python,
    )
