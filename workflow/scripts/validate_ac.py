"""Snakemake adapter of rule validate_ac: pandapower AC power flow of every step of a solution."""

import logging

from feederflex.acpf import ac_check
from feederflex.io import read_dataset, write_dataset
from feederflex.logs import configure


def main(network: str, solution: str, output: str, log_file: str | None = None) -> None:
    configure(log_file)
    sol = read_dataset(solution)
    ac = ac_check(read_dataset(network), sol)
    logging.getLogger(__name__).info(
        "status %s, largest |v_lindistflow - v_ac| %.4f pu, AC violations %d bus-steps",
        ac.attrs["solver_status"],
        ac.attrs["max_abs_v_error_pu"],
        ac.attrs["ac_violation_bus_steps"],
    )
    write_dataset(ac, output, {"scenario": sol.attrs.get("scenario", ""), "params": sol.attrs.get("params", "{}")})


if __name__ == "__main__":
    main(snakemake.input.network, snakemake.input.solution, snakemake.output.ac, snakemake.log[0])
