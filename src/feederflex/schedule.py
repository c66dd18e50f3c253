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
from pyomo.common.collections import ComponentMap
import xarray as xr

from feederflex.model import ScenarioData, build_model
from feederflex.model.mess import allow_moves, forbid_moves
from feederflex.model.objectives import CATALOGUE, term_values
from feederflex.solve import SolveResult, SolveStatus, highs, relative_gap, solve

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
    "mess_p_ch_mw": "MW",
    "mess_p_dis_mw": "MW",
    "mess_q_mvar": "Mvar (injected)",
    "mess_e_mwh": "MWh (end of step)",
    "mess_station": "bus number, -1 while travelling or installing",
    "mess_moves": "trips in the day",
    "mess_km": "km driven in the day",
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
    units = data.settings["mess"]["units"]
    if units:
        if data.travel is None:
            raise InputError("mess.units are given but no travel dataset (transport.stations) was passed")
        stations = [int(b) for b in data.travel.station.values]
        for k, unit in enumerate(units):
            if unit["initial_station"] not in stations:
                raise InputError(
                    f"mess.units[{k}] ({unit['name']}).initial_station = {unit['initial_station']} is not a station {stations}"
                )
        if data.travel.sizes["time"] != data.profiles.sizes["time"]:
            raise InputError("travel times and profiles have different numbers of steps")
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
    mess_units = [u["name"] for u in data.settings["mess"]["units"]]
    stations = list(m.mess.S) if m is not None else []
    mess_ch = np.full((nt, len(mess_units)), np.nan)
    mess_dis, mess_q, mess_e = mess_ch.copy(), mess_ch.copy(), mess_ch.copy()
    mess_station = np.full((nt, len(mess_units)), -1, dtype=int)
    moves = np.zeros(len(mess_units))
    km = np.zeros(len(mess_units))
    if solved and mess_units:
        parked = _values(m.mess.parked, [mess_units, stations, steps])  # unit, station, time
        mess_ch = _values(m.mess.p_ch_mw, [mess_units, stations, steps]).sum(axis=1).T
        mess_dis = _values(m.mess.p_dis_mw, [mess_units, stations, steps]).sum(axis=1).T
        mess_q = _values(m.mess.q_mvar, [mess_units, stations, steps]).sum(axis=1).T
        mess_e = _values(m.mess.e_mwh, [mess_units, steps]).T
        at = parked > 0.5
        mess_station = np.where(at.any(axis=1), np.array(stations)[at.argmax(axis=1)], -1).T
        for k, unit in enumerate(mess_units):
            for a, arc in enumerate(m.mess.arc_list):
                if pyo.value(m.mess.depart[unit, a]) > 0.5:
                    moves[k] += 1
                    km[k] += arc.km
    elif mess_units:
        moves[:] = np.nan
        km[:] = np.nan
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
            "mess_p_ch_mw": (("time", "mess"), mess_ch),
            "mess_p_dis_mw": (("time", "mess"), mess_dis),
            "mess_q_mvar": (("time", "mess"), mess_q),
            "mess_e_mwh": (("time", "mess"), mess_e),
            "mess_station": (("time", "mess"), mess_station),
            "mess_moves": ("mess", moves),
            "mess_km": ("mess", km),
        },
        coords={
            "time": pr.time.values,
            "bus": buses,
            "branch": branches,
            "pv": pv_units,
            "fess": fess_units,
            "mess": mess_units,
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
    mess_init = [u["soc_init"] * u["e_mwh"] for u in data.settings["mess"]["units"]]
    ds["mess_e_init_mwh"] = ("mess", np.array(mess_init, float))
    ds["mess_e_init_mwh"].attrs["units"] = "MWh (before the first step)"
    ds["mess_initial_station"] = ("mess", np.array([u["initial_station"] for u in data.settings["mess"]["units"]], dtype=int))
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
    travel: xr.Dataset | None = None,
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
    travel
        MESS stations and travel times, needed when the scenario has mobile storage.

    With mobile storage and ``routing: optimised``, the units are first solved parked at their
    initial stations (moves forbidden: the "fixed" baseline); that schedule is HiGHS's starting
    solution for the routing model, and is reported instead if routing finds nothing better.
    """
    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    data = ScenarioData(feeder, profiles, settings, ev, travel)
    check_inputs(data)
    if solver_log is not None:  # HiGHS appends: start each job's log afresh
        Path(solver_log).parent.mkdir(parents=True, exist_ok=True)
        Path(solver_log).write_text("")
    started = time.perf_counter()
    m = build_model(data)
    build_seconds = time.perf_counter() - started
    log.info("built model in %.2f s", build_seconds)
    baseline: SolveResult | None = None
    if data.settings["mess"]["units"] and data.settings["mess"]["routing"] == "optimised":
        result, baseline = _solve_routing(m, settings["solver"], solver_log)
    else:
        result = solve(m, settings["solver"], solver_log)
    log.info("HiGHS: %s (%s), objective %.6g, gap %.3g, %.2f s", result.status.value, result.termination,
             result.objective, result.mip_gap, result.solve_seconds)
    ds = solution_dataset(m, data, result)
    ds.attrs["build_seconds"] = build_seconds
    ds.attrs["ev_fleet"] = settings["ev_fleet"] or "none"
    if fleet is not None:
        ds.attrs["seed"] = int(fleet.attrs["seed"])
    if baseline is not None:
        ds.attrs.update({f"mess_fixed_{key}": value for key, value in baseline.attrs().items()
                         if key in ("status", "objective", "solve_seconds", "mip_gap")})
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT, SolveStatus.ERROR):
        log.warning("scenario has no solution: %s; %s", result.status.value, "; ".join(result.diagnostics))
    return ds


def _solve_routing(m: pyo.ConcreteModel, solver: dict, solver_log) -> tuple[SolveResult, SolveResult]:
    """Solve the fixed-parking baseline, then the routing model started from it (never worse)."""
    opt = highs()
    forbid_moves(m)
    baseline = solve(m, solver, solver_log, opt=opt)
    log.info("fixed MESS baseline: %s, objective %.6g", baseline.status.value, baseline.objective)
    allow_moves(m)
    if not baseline.status.has_solution:
        return solve(m, solver, solver_log, opt=opt), baseline
    start = ComponentMap((var, var.value) for var in m.component_data_objects(pyo.Var))
    result = solve(m, solver, solver_log, opt=opt, start=start)
    worse = not result.status.has_solution or result.objective > baseline.objective + 1e-6 * max(1.0, abs(baseline.objective))
    if worse:
        for var, value in start.items():
            var.set_value(value, skip_validation=True)
        result.diagnostics.append(
            f"routing search ended {result.status.value} without beating the fixed baseline; the fixed schedule is reported"
        )
        result.objective = baseline.objective
        result.mip_gap = relative_gap(baseline.objective, result.bound)
        result.status = SolveStatus.FEASIBLE
    return result, baseline
