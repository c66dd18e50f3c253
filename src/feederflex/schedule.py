"""Schedule one scenario: prepared datasets + settings -> solved (or diagnosed) solution dataset.

This is the library call behind the ``solve_scenario`` rule; it knows Pyomo, the workflow does not.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model import ScenarioData, build_model
from feederflex.model.objectives import CATALOGUE, term_values
from feederflex.solve import SolveResult, SolveStatus, solve

log = logging.getLogger(__name__)

SOLUTION_UNITS = {
    "v_pu": "pu",
    "p_branch_mw": "MW",
    "q_branch_mvar": "Mvar",
    "p_grid_mw": "MW (import positive)",
    "load_p_mw": "MW",
    "load_q_mvar": "Mvar",
    "ev_p_mw": "MW",
    "pv_avail_mw": "MW",
    "pv_p_mw": "MW",
    "fess_p_ch_mw": "MW",
    "fess_p_dis_mw": "MW",
    "fess_e_mwh": "MWh (end of step)",
    "v_under_pu": "pu",
    "v_over_pu": "pu",
    "price_usd_per_mwh": "$/MWh",
}


class InputError(ValueError):
    """Prepared inputs that do not fit the scenario (checked before the model is built)."""


def check_inputs(data: ScenarioData) -> None:
    """Raise :class:`InputError` naming the key and value if the scenario cannot be built."""
    buses = set(data.buses)
    for kind in ("pv", "fess"):
        for k, unit in enumerate(data.settings[kind]):
            if unit["bus"] not in buses:
                raise InputError(f"{kind}[{k}] ({unit['name']}).bus = {unit['bus']} is not a bus of the feeder")
    if data.ev_p_mw.shape != (data.profiles.sizes["time"], data.feeder.sizes["bus"]):
        raise InputError(
            f"EV load has shape {data.ev_p_mw.shape}, expected (time, bus) = "
            f"({data.profiles.sizes['time']}, {data.feeder.sizes['bus']}): fleet and day steps differ"
        )


def _values(var, index_sets) -> np.ndarray:
    shape = [len(s) for s in index_sets]
    out = np.empty(shape)
    for pos in np.ndindex(*shape):
        key = tuple(s[p] for s, p in zip(index_sets, pos, strict=True))
        out[pos] = pyo.value(var[key if len(key) > 1 else key[0]])
    return out


def solution_dataset(m: pyo.ConcreteModel | None, data: ScenarioData, result: SolveResult) -> xr.Dataset:
    """Assemble the solution contract; every decision variable is NaN when there is no solution."""
    fd, pr = data.feeder, data.profiles
    steps = list(data.steps)
    buses, branches = data.buses, [int(b) for b in fd.branch.values]
    pv_units = [u["name"] for u in data.settings["pv"]]
    fess_units = [u["name"] for u in data.settings["fess"]]
    nt = len(steps)
    solved = result.status.has_solution and m is not None

    def take(block: str, var: str, *sets) -> np.ndarray:
        """Values of ``m.<block>.<var>`` over ``sets`` (last set = time first), NaN without a solution."""
        if not solved:
            return np.full([len(s) for s in sets[::-1]], np.nan)
        return _values(getattr(getattr(m, block), var), sets).T

    non_root = [b for b in buses if b != data.root]
    idx = [buses.index(b) for b in non_root]
    s_under = np.zeros((nt, len(buses)))
    s_over = np.zeros((nt, len(buses)))
    s_under[:, idx] = take("net", "s_under", non_root, steps)
    s_over[:, idx] = take("net", "s_over", non_root, steps)
    p_grid = take("net", "p_import", steps) - take("net", "p_export", steps)
    pv_cap = np.array([u["p_mw"] for u in data.settings["pv"]], float)
    ds = xr.Dataset(
        {
            "v_pu": (("time", "bus"), np.sqrt(take("net", "w", buses, steps))),
            "v_under_pu": (("time", "bus"), s_under),
            "v_over_pu": (("time", "bus"), s_over),
            "p_branch_mw": (("time", "branch"), take("net", "p_mw", branches, steps)),
            "q_branch_mvar": (("time", "branch"), take("net", "q_mvar", branches, steps)),
            "p_grid_mw": ("time", p_grid),
            "load_p_mw": (("time", "bus"), pr.load_p_mw.values),
            "load_q_mvar": (("time", "bus"), pr.load_q_mvar.values),
            "ev_p_mw": (("time", "bus"), data.ev_p_mw),
            "pv_avail_mw": (("time", "pv"), pr.pv_avail_pu.values[:, None] * pv_cap[None, :]),
            "pv_p_mw": (("time", "pv"), take("pv", "p_mw", pv_units, steps)),
            "fess_p_ch_mw": (("time", "fess"), take("fess", "p_ch_mw", fess_units, steps)),
            "fess_p_dis_mw": (("time", "fess"), take("fess", "p_dis_mw", fess_units, steps)),
            "fess_e_mwh": (("time", "fess"), take("fess", "e_mwh", fess_units, steps)),
            "price_usd_per_mwh": ("time", pr.price_usd_per_mwh.values),
        },
        coords={
            "time": pr.time.values,
            "bus": buses,
            "branch": branches,
            "pv": pv_units,
            "fess": fess_units,
            "pv_bus": ("pv", np.array([u["bus"] for u in data.settings["pv"]], dtype=int)),
            "fess_bus": ("fess", np.array([u["bus"] for u in data.settings["fess"]], dtype=int)),
            "branch_from_bus": ("branch", fd.from_bus.values),
            "branch_to_bus": ("branch", fd.to_bus.values),
        },
    )
    for name, unit in SOLUTION_UNITS.items():
        ds[name].attrs["units"] = unit
    fess_init = [u["soc_init"] * u["e_mwh"] for u in data.settings["fess"]]
    ds["fess_e_init_mwh"] = ("fess", np.array(fess_init, float))
    ds["fess_e_init_mwh"].attrs["units"] = "MWh (before the first step)"
    terms = term_values(m) if solved else {name: math.nan for name in CATALOGUE}
    attrs = {
        "step_hours": data.step_hours,
        "root_bus": data.root,
        "substation_v_pu": float(data.settings["grid"]["substation_v_pu"]),
        "v_min_pu": float(data.settings["grid"]["v_min_pu"]),
        "v_max_pu": float(data.settings["grid"]["v_max_pu"]),
        "units": json.dumps(SOLUTION_UNITS),
        "objective_terms": json.dumps({n: {"unit": t.unit, "sense": t.sense, "description": t.description} for n, t in CATALOGUE.items()}),
    }
    attrs.update({f"objective_{name}": value for name, value in terms.items()})
    attrs.update({f"solver_{key}": value for key, value in result.attrs().items()})
    ds.attrs.update(attrs)
    return ds


def solve_scenario(
    feeder: xr.Dataset,
    profiles: xr.Dataset,
    settings: dict,
    fleet: xr.Dataset | None = None,
    solver_log: str | Path | None = None,
) -> xr.Dataset:
    """Build and solve one scenario; return its solution dataset (status in ``attrs``).

    Parameters
    ----------
    feeder, profiles
        Prepared Feeder and day datasets.
    settings
        The scenario's effective settings (validated).
    fleet
        The scenario's EV fleet (``ev_p_mw(time, bus)``, charged uncontrolled) or None.
    solver_log
        File for HiGHS's own log.
    """
    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    data = ScenarioData(feeder, profiles, settings, ev)
    check_inputs(data)
    started = time.perf_counter()
    m = build_model(data)
    build_seconds = time.perf_counter() - started
    log.info("built model in %.2f s", build_seconds)
    result = solve(m, settings["solver"], solver_log)
    log.info("HiGHS: %s (%s), objective %.6g, gap %.3g, %.2f s", result.status.value, result.termination,
             result.objective, result.mip_gap, result.solve_seconds)
    ds = solution_dataset(m, data, result)
    ds.attrs["build_seconds"] = build_seconds
    ds.attrs["ev_fleet"] = settings["ev_fleet"] or "none"
    if fleet is not None:
        ds.attrs["seed"] = int(fleet.attrs["seed"])
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT, SolveStatus.ERROR):
        log.warning("scenario has no solution: %s; %s", result.status.value, "; ".join(result.diagnostics))
    return ds
