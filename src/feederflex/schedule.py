"""Schedule one scenario: prepared datasets + settings -> solved (or diagnosed) solution dataset.

This is the library call behind the ``solve_scenario`` rule; it knows Pyomo, the workflow does not.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import xarray as xr
from pyomo.common.collections import ComponentMap

from feederflex.model import ScenarioData, build_model
from feederflex.model.dr import forecast_mw as dr_forecast_mw
from feederflex.model.dr import q_ratio as dr_q_ratio
from feederflex.model.mess import allow_moves, departure_stride, forbid_moves, keep_routes
from feederflex.model.objectives import CATALOGUE, pwl_errors, term_values
from feederflex.model.risk import exact_risk
from feederflex.solve import Session, SolveResult, SolveStatus, Stage, outcome, relative_gap, restore, snapshot

log = logging.getLogger(__name__)

SOLUTION_UNITS = {
    "v_pu": "pu",
    "p_branch_mw": "MW",
    "q_branch_mvar": "Mvar",
    "p_grid_mw": "MW (import positive)",
    "load_p_mw": "MW",
    "load_q_mvar": "Mvar",
    "ev_p_mw": "MW (net EV load: charging - V2G discharging)",
    "ev_p_dis_mw": "MW (V2G injection)",
    "ev_uncontrolled_p_mw": "MW (the fleet charging on arrival, for comparison)",
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
    "pv_q_mvar": "Mvar (injected)",
    "fess_q_mvar": "Mvar (injected)",
    "dr_p_curtail_mw": "MW (load curtailed)",
    "dr_p_down_mw": "MW (load moved out of the step)",
    "dr_p_up_mw": "MW (load moved into the step)",
    "dr_p_mw": "MW (change of the bus load by DR: up - curtailed - down)",
    "dr_q_mvar": "Mvar (change of the bus reactive load by DR, at the load's power factor)",
    "dr_forecast_mw": "MW (forecast deliverable response)",
    "pv_epns_mw": "MW (expected power not served under the forecast error, exact)",
    "pv_epc_mw": "MW (expected curtailment under the forecast error, exact)",
    "dr_epns_mw": "MW (expected response not delivered, exact)",
    "dr_epc_mw": "MW (expected response beyond the schedule, exact)",
}


class InputError(ValueError):
    """Prepared inputs that do not fit the scenario (checked before the model is built)."""


def check_inputs(data: ScenarioData) -> None:
    """Raise :class:`InputError` naming the key and value if the scenario cannot be built."""
    buses = set(data.buses)
    for kind in ("pv", "fess", "dr"):
        for k, unit in enumerate(data.settings[kind]):
            if unit["bus"] not in buses:
                raise InputError(f"{kind}[{k}] ({unit['name']}).bus = {unit['bus']} is not a bus of the feeder")
    for kind, units in (
        ("pv", data.settings["pv"]),
        ("fess", data.settings["fess"]),
        ("mess.units", data.settings["mess"]["units"]),
    ):
        for k, unit in enumerate(units):
            if not 0.0 < float(unit["power_factor"]) <= 1.0:
                raise InputError(
                    f"{kind}[{k}] ({unit['name']}).power_factor = {unit['power_factor']} is outside (0, 1]"
                )
    load = data.feeder.p_load_mw
    for k, unit in enumerate(data.settings["dr"]):
        if float(load.sel(bus=unit["bus"])) <= 0:
            raise InputError(
                f"dr[{k}] ({unit['name']}).bus = {unit['bus']} has no load in the feeder "
                f"({data.feeder.attrs.get('source', 'feeder')}): demand response needs load to curtail or shift"
            )
    units = data.settings["mess"]["units"]
    if units:
        if data.travel is None:
            raise InputError("mess.units are given but no travel dataset (transport.stations) was passed")
        stations = [int(b) for b in data.travel.station.values]
        for k, unit in enumerate(units):
            if unit["initial_station"] not in stations:
                raise InputError(
                    f"mess.units[{k}] ({unit['name']}).initial_station = {unit['initial_station']} is "
                    f"not a station {stations}"
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
    ev_net, ev_dis = data.ev_p_mw.copy(), np.zeros_like(data.ev_p_mw)
    if data.ev_controlled and not solved:  # no schedule (and perhaps no model): NaN charging
        ev_net[:] = np.nan
        ev_dis[:] = np.nan
    elif data.ev_controlled:
        ev_buses = list(m.ev.B)
        cols = [buses.index(b) for b in ev_buses]
        ev_net[:] = 0.0
        ev_net[:, cols] = take("ev", "p_ch_mw", ev_buses, steps) - take("ev", "p_dis_mw", ev_buses, steps)
        ev_dis[:, cols] = take("ev", "p_dis_mw", ev_buses, steps)
        for v in getattr(m.ev, "I", []):
            bus_col = buses.index(int(data.fleet.ev_bus.values[v]))
            dis = take("ev", "p_vehicle_dis_mw", [v], steps)[:, 0]
            ev_net[:, bus_col] += take("ev", "p_vehicle_mw", [v], steps)[:, 0] - dis
            ev_dis[:, bus_col] += dis
    pv_cap = np.array([u["p_mw"] for u in data.settings["pv"]], float)
    dr_units = [u["name"] for u in data.settings["dr"]]
    pv_p = take("pv", "p_mw", pv_units, steps)
    pv_avail = pr.pv_avail_pu.values[:, None] * pv_cap[None, :]
    dr_cut = take("dr", "p_curtail_mw", dr_units, steps)
    dr_down = take("dr", "p_down_mw", dr_units, steps)
    dr_up = take("dr", "p_up_mw", dr_units, steps)
    dr_net = dr_up - dr_cut - dr_down
    dr_mu = dr_forecast_mw(data)
    pv_epns, pv_epc = exact_risk(pv_p, pv_avail, [u["forecast_error"] for u in data.settings["pv"]])
    dr_epns, dr_epc = exact_risk(dr_cut + dr_down, dr_mu, [u["forecast_error"] for u in data.settings["dr"]])
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
            "ev_p_mw": (("time", "bus"), ev_net),
            "ev_p_dis_mw": (("time", "bus"), ev_dis),
            "ev_uncontrolled_p_mw": (("time", "bus"), data.ev_p_mw),
            "pv_avail_mw": (("time", "pv"), pv_avail),
            "pv_p_mw": (("time", "pv"), pv_p),
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
            "pv_q_mvar": (("time", "pv"), take("pv", "q_mvar", pv_units, steps)),
            "fess_q_mvar": (("time", "fess"), take("fess", "q_mvar", fess_units, steps)),
            "dr_p_curtail_mw": (("time", "dr"), dr_cut),
            "dr_p_down_mw": (("time", "dr"), dr_down),
            "dr_p_up_mw": (("time", "dr"), dr_up),
            "dr_p_mw": (("time", "dr"), dr_net),
            "dr_q_mvar": (("time", "dr"), dr_net * dr_q_ratio(data)),
            "dr_forecast_mw": (("time", "dr"), dr_mu),
            "pv_epns_mw": (("time", "pv"), pv_epns),
            "pv_epc_mw": (("time", "pv"), pv_epc),
            "dr_epns_mw": (("time", "dr"), dr_epns),
            "dr_epc_mw": (("time", "dr"), dr_epc),
        },
        coords={
            "time": pr.time.values,
            "bus": buses,
            "branch": branches,
            "pv": pv_units,
            "fess": fess_units,
            "mess": mess_units,
            "dr": dr_units,
            "dr_bus": ("dr", np.array([u["bus"] for u in data.settings["dr"]], dtype=int)),
            "pv_bus": ("pv", np.array([u["bus"] for u in data.settings["pv"]], dtype=int)),
            "fess_bus": ("fess", np.array([u["bus"] for u in data.settings["fess"]], dtype=int)),
            "branch_from_bus": ("branch", fd.from_bus.values),
            "branch_to_bus": ("branch", fd.to_bus.values),
        },
    )
    for name, unit in SOLUTION_UNITS.items():
        ds[name].attrs["units"] = unit
    fess_init = [u["soc_init"] * u["e_mwh"] for u in data.settings["fess"]]
    if m is not None:
        ds["loss_load_p_mw"] = (("time", "bus"), _values(m.net.loss_p_mw, [buses, steps]).T)
        ds["loss_load_q_mvar"] = (("time", "bus"), _values(m.net.loss_q_mvar, [buses, steps]).T)
        ds["loss_load_p_mw"].attrs["units"] = "MW (AC losses booked as load at sending buses; 0 without AC correction)"
        ds["loss_load_q_mvar"].attrs["units"] = "Mvar (AC losses booked as load at sending buses)"
        band = {"v_min_band_pu": m.net.v_min_pu, "v_max_band_pu": m.net.v_max_pu}
        for name, param in band.items():  # the band the model held (moved by the AC correction)
            values = np.full((nt, len(buses)), np.nan)
            values[:, idx] = _values(param, [non_root, steps]).T
            ds[name] = (("time", "bus"), values)
            ds[name].attrs["units"] = "pu (voltage band of the last solve; NaN at the substation)"
    ds["fess_e_init_mwh"] = ("fess", np.array(fess_init, float))
    ds["fess_e_init_mwh"].attrs["units"] = "MWh (before the first step)"
    mess_init = [u["soc_init"] * u["e_mwh"] for u in data.settings["mess"]["units"]]
    ds["mess_e_init_mwh"] = ("mess", np.array(mess_init, float))
    ds["mess_e_init_mwh"].attrs["units"] = "MWh (before the first step)"
    ds["mess_initial_station"] = (
        "mess",
        np.array([u["initial_station"] for u in data.settings["mess"]["units"]], dtype=int),
    )
    terms = term_values(m, data) if solved else {name: math.nan for name in CATALOGUE}
    attrs = {
        "step_hours": data.step_hours,
        "root_bus": data.root,
        "substation_v_pu": float(data.settings["grid"]["substation_v_pu"]),
        "v_min_pu": float(data.settings["grid"]["v_min_pu"]),
        "v_max_pu": float(data.settings["grid"]["v_max_pu"]),
        # every scenario's AC check counts violations with this one tolerance, corrected or not
        "ac_tolerance_pu": float(data.settings["ac_correction"]["tolerance_pu"]),
        "units": json.dumps(SOLUTION_UNITS),
        "objective_terms": json.dumps(
            {n: {"unit": t.unit, "sense": t.sense, "description": t.description} for n, t in CATALOGUE.items()}
        ),
    }
    attrs.update({f"objective_{name}": value for name, value in terms.items()})
    if solved:  # squared terms the solver saw as tangents: how far that was from the exact square
        attrs.update({f"objective_{name}_pwl_error": value for name, value in pwl_errors(m, data).items()})
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
    ac_state: xr.Dataset | None = None,
) -> xr.Dataset:
    """Build and solve one scenario; return its solution dataset (status in ``attrs``).

    Parameters
    ----------
    feeder, profiles
        Prepared Feeder and day datasets.
    settings
        The scenario's effective settings (validated).
    fleet
        The scenario's EV fleet or None; it charges as ``ev_control.mode`` says.
    solver_log
        File for HiGHS's own log.
    travel
        MESS stations and travel times, needed when the scenario has mobile storage.
    ac_state
        A solution of the same scenario whose booked AC losses and voltage band the model starts
        from (a lexicographic second stage starts where the first one's AC correction ended).

    With mobile storage and ``routing: optimised``, the units are first solved parked at their
    initial stations (moves forbidden: the "fixed" baseline); that schedule starts the routing
    search (see :func:`_solve_routing`). The written schedule is never worse than the parked one:
    with the AC correction on, the parked schedule goes through the same correction and the better
    corrected schedule is written (``mess_routing_outcome`` says which).

    Every HiGHS run is a stage in ``solver_stages``; status, gap and seconds follow
    :func:`feederflex.solve.outcome`.
    """
    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    data = ScenarioData(feeder, profiles, settings, ev, travel, fleet)
    check_inputs(data)
    if solver_log is not None:  # HiGHS appends: start each job's log afresh
        Path(solver_log).parent.mkdir(parents=True, exist_ok=True)
        Path(solver_log).write_text("")
    control = settings["ev_control"]
    individual = np.zeros(fleet.sizes["ev"] if fleet is not None else 0, dtype=bool)
    rounds = int(control["repair_iterations"])
    stages: list[Stage] = []
    build_seconds = 0.0
    for attempt in range(rounds + 1):
        ds, m, data, session, result, parked = _solve_once(
            feeder,
            profiles,
            settings,
            fleet,
            ev,
            travel,
            individual,
            solver_log,
            ac_state,
            f"EV repair {attempt}: " if attempt else "",
        )
        stages += session.stages
        build_seconds += float(ds.attrs["build_seconds"])
        if not (data.ev_controlled and control["mode"] == "aggregate" and result.status.has_solution):
            break
        _add_vehicle_schedules(ds, m, data, result, individual)
        short = ds.ev_unmet_kwh.values > 0
        if not short.any() or attempt == rounds:
            break
        # the envelope could not deliver these: model their pools (same bus, same leaving step)
        # one by one; in the last round, every vehicle of the buses concerned (exact there)
        key = _pool_keys(fleet, float(profiles.attrs["step_hours"]), profiles.sizes["time"])
        scope = fleet.ev_bus.values if attempt == rounds - 1 else key
        individual |= np.isin(scope, np.unique(scope[short]))
        log.info(
            "disaggregation left %d vehicles short (%.4f MWh): %d vehicles now modelled one by one, re-solving",
            int(short.sum()),
            float(ds.ev_unmet_kwh.values[short].sum()) / 1000,
            int(individual.sum()),
        )
    earlier = stages[: len(stages) - len(session.stages)]
    fixed_from = None
    if settings["ac_correction"]["enabled"] and result.status.has_solution:
        start = len(session.stages)
        ac_start = [p.value for p in _ac_parameters(m)]
        corrected = _ac_correct(m, data, result, ds, settings, session)
        if parked is not None and parked.result.status.has_solution:
            corrected = _no_worse_than_parked(m, data, corrected, parked, settings, session, ac_start)
        ds, result, fixed_from = corrected.ds, corrected.result, corrected.fixed_from
        log.info("AC correction: %d HiGHS stages", len(session.stages) - start)
    else:
        ds.attrs["ac_correction_status"] = "disabled" if result.status.has_solution else "no schedule"
        if parked is not None:
            ds.attrs["mess_routing_outcome"] = "routed" if result.status.has_solution else "no schedule"
    result = outcome(result, earlier + session.stages, fixed_from)
    ds.attrs.update({f"solver_{key}": value for key, value in result.attrs().items()})
    ds.attrs["build_seconds"] = build_seconds
    if data.ev_controlled:
        _add_vehicle_schedules(ds, m, data, result, individual)
    if parked is not None:
        ds.attrs.update(
            {
                f"mess_fixed_{key}": value
                for key, value in parked.result.attrs().items()
                if key in ("status", "objective", "solve_seconds", "mip_gap")
            }
        )
    ds.attrs["ev_individual_vehicles"] = int(individual.sum())
    ds.attrs["ev_repair_iterations"] = attempt
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT, SolveStatus.ERROR):
        log.warning("scenario has no solution: %s; %s", result.status.value, "; ".join(result.diagnostics))
    return ds


def _pool_keys(fleet: xr.Dataset, step_hours: float, n_steps: int) -> np.ndarray:
    """An id per vehicle of its envelope pool: its bus and the step it leaves in."""
    from feederflex.fleet import charging_windows

    _, departure = charging_windows(fleet)
    leave = np.rint(departure / step_hours).astype(int) % n_steps
    return fleet.ev_bus.values.astype(int) * (n_steps + 1) + leave


@dataclass
class _Parked:
    """The MESS units' parked baseline: its result and the variable values of its schedule."""

    result: SolveResult
    values: ComponentMap


def _solve_once(
    feeder, profiles, settings, fleet, ev, travel, individual: np.ndarray, solver_log, ac_state=None, prefix: str = ""
):
    """Build and solve; in aggregate mode the vehicles in ``individual`` are modelled one by one."""
    data = ScenarioData(feeder, profiles, settings, ev, travel, fleet, individual)
    started = time.perf_counter()
    m = build_model(data)
    if ac_state is not None and "v_min_band_pu" in ac_state:
        _set_ac_state(m, data, ac_state)
    build_seconds = time.perf_counter() - started
    log.info("built model in %.2f s", build_seconds)
    session = Session(m, settings["solver"], solver_log)
    parked: _Parked | None = None
    if data.settings["mess"]["units"] and data.settings["mess"]["routing"] == "optimised":
        result, parked = _solve_routing(m, settings, session, prefix)
    else:
        result = session.solve(f"{prefix}scenario")
    log.info(
        "HiGHS: %s (%s), objective %.6g, gap %.3g, %.2f s",
        result.status.value,
        result.termination,
        result.objective,
        result.mip_gap,
        result.solve_seconds,
    )
    ds = solution_dataset(m, data, result)
    ds.attrs["build_seconds"] = build_seconds
    ds.attrs["ev_fleet"] = settings["ev_fleet"] or "none"
    if fleet is not None:
        ds.attrs["seed"] = int(fleet.attrs["seed"])
    return ds, m, data, session, result, parked


def _set_ac_state(m: pyo.ConcreteModel, data: ScenarioData, state: xr.Dataset) -> None:
    """Start from another solve's booked AC losses and voltage band (same feeder and steps)."""
    net = m.net
    for t in data.steps:
        for col, bus in enumerate(data.buses):
            net.loss_p_mw[bus, t] = float(state.loss_load_p_mw.values[t, col])
            net.loss_q_mvar[bus, t] = float(state.loss_load_q_mvar.values[t, col])
            if bus != data.root:
                net.v_min_pu[bus, t] = float(state.v_min_band_pu.values[t, col])
                net.v_max_pu[bus, t] = float(state.v_max_band_pu.values[t, col])


def _solve_routing(
    m: pyo.ConcreteModel, settings: dict, session: Session, prefix: str = ""
) -> tuple[SolveResult, _Parked]:
    """Route the mobile units: fixed baseline, unit-by-unit neighbourhood search, full model.

    1. Solve with every unit parked at its initial station (the "fixed" baseline).
    2. Large-neighbourhood search: free one unit's trips at a time, the others keeping their
       current routes, and re-solve from the incumbent (``mess.search.unit_time_s`` each), for up
       to ``mess.search.rounds`` rounds or until a round improves nothing. Trips in the search
       leave only every ``mess.search.departure_every_minutes`` (hourly routing of a quarter-hour
       model: a quarter of the trip variables).
    3. Solve the full routing model from the best schedule within ``solver.time_limit_s``: this
       may improve it further and gives the proven bound and gap that are reported.

    The result is never worse than the baseline: every solve starts from the incumbent (HiGHS
    setSolution) and a solve that ends worse is discarded. Returns the result and the baseline.
    """
    solver = settings["solver"]
    search = settings["mess"]["search"]
    forbid_moves(m)
    baseline = session.solve(f"{prefix}MESS parked baseline")
    parked = _Parked(baseline, _values_of(m))
    log.info("fixed MESS baseline: %s, objective %.6g", baseline.status.value, baseline.objective)
    if not baseline.status.has_solution:
        allow_moves(m)
        return session.solve(f"{prefix}MESS routing"), parked
    best = baseline.objective
    incumbent = snapshot(m)
    units = list(m.mess.U)
    every = departure_stride(search["departure_every_minutes"], m.mess.step_minutes)
    for round_no in range(int(search["rounds"])):
        improved = False
        for unit in units:
            allow_moves(m, unit, every)
            trial = session.solve(
                f"{prefix}MESS search {round_no + 1} {unit}", start=incumbent, time_limit_s=float(search["unit_time_s"])
            )
            if trial.status.has_solution and trial.objective < best - 1e-6 * max(1.0, abs(best)):
                best, incumbent, improved = trial.objective, snapshot(m), True
            else:
                restore(incumbent)
            keep_routes(m, unit)
            log.info(
                "search round %d, %s: %s %.6g (best %.6g)",
                round_no + 1,
                unit,
                trial.status.value,
                trial.objective,
                best,
            )
        if not improved:
            break
    allow_moves(m)
    result = session.solve(f"{prefix}MESS routing", start=incumbent)
    if not result.status.has_solution or result.objective > best + 1e-6 * max(1.0, abs(best)):
        restore(incumbent)
        result.diagnostics.append(
            f"the full routing model ended {result.status.value} without beating the search's "
            "schedule, which is reported"
        )
        # the search's schedule is a solution of the full routing model: that model's bound holds for it
        result.objective = best
        result.mip_gap = relative_gap(best, result.bound)
        result.status = SolveStatus.OPTIMAL if result.mip_gap <= float(solver["mip_gap"]) else SolveStatus.FEASIBLE
        if not math.isfinite(result.mip_gap):
            result.gap_note = "the full routing model gave no bound"
    return result, parked


def _add_vehicle_schedules(
    ds: xr.Dataset, m: pyo.ConcreteModel, data: ScenarioData, result: SolveResult, individual: np.ndarray
) -> None:
    """Per-vehicle delivery of a coordinated schedule: energy delivered and unmet by departure.

    Per-vehicle mode: as chosen. Aggregate mode: vehicles modelled one by one keep their own
    schedule; the others share their bus's envelope schedule (``disaggregate``)."""
    from feederflex.fleet import UNMET_TOLERANCE_KWH, disaggregate
    from feederflex.model.ev import vehicle_schedule

    fleet = data.fleet
    n_steps = len(data.steps)
    n_ev = fleet.sizes["ev"]
    steps = list(data.steps)
    delivered = np.full(n_ev, np.nan)
    unmet = np.full(n_ev, np.nan)
    per_vehicle = np.zeros((n_steps, n_ev))
    if result.status.has_solution and m.ev.mode == "per_vehicle":
        per_vehicle = vehicle_schedule(m.ev, n_ev, n_steps) * 1000  # kW
        delivered = per_vehicle.sum(axis=0) * data.step_hours
        gap = fleet.energy_kwh.values - delivered
        unmet = np.where(gap > UNMET_TOLERANCE_KWH, gap, 0.0)
    elif result.status.has_solution:
        control = data.settings["ev_control"]
        eta = float(control["v2g_efficiency"])
        into_cars = np.zeros_like(ds.ev_p_mw.values)
        for bus in m.ev.B:
            into_cars[:, data.buses.index(bus)] = [
                pyo.value(m.ev.p_ch_mw[bus, t]) - pyo.value(m.ev.p_dis_mw[bus, t]) / eta for t in steps
            ]
        pooled = np.flatnonzero(~individual)
        shares = disaggregate(
            fleet.isel(ev=pooled),
            into_cars,
            data.buses,
            int(round(data.step_hours * 60)),
            control["v2g_soc_min"] if control["v2g"] else None,
        )
        per_vehicle[:, pooled] = shares.ev_vehicle_p_kw.values
        delivered[pooled] = shares.ev_delivered_kwh.values
        unmet[pooled] = shares.ev_unmet_kwh.values
        for v in m.ev.I:
            per_vehicle[:, v] = [
                (pyo.value(m.ev.p_vehicle_mw[v, t]) - pyo.value(m.ev.p_vehicle_dis_mw[v, t]) / eta) * 1000
                for t in steps
            ]
            delivered[v] = per_vehicle[:, v].sum() * data.step_hours
            gap = float(fleet.energy_kwh.values[v]) - delivered[v]
            unmet[v] = gap if gap > UNMET_TOLERANCE_KWH else 0.0
    ds["ev_delivered_kwh"] = ("ev", delivered)
    ds["ev_unmet_kwh"] = ("ev", unmet)
    ds["ev_bus"] = ("ev", fleet.ev_bus.values)
    ds["ev_energy_need_kwh"] = ("ev", fleet.energy_kwh.values)
    ds["ev_individual"] = ("ev", individual.astype(int))
    if n_ev <= 5000:  # per-vehicle profiles of large fleets stay out of the file
        ds["ev_vehicle_p_kw"] = (("time", "ev"), per_vehicle)
    ds.attrs["ev_unmet_mwh"] = float(np.sum(unmet)) / 1000


@dataclass
class _Corrected:
    """An AC-corrected schedule: its dataset, the result of the solve that produced it, and the stage
    whose decisions its model kept fixed (None when it is the scenario's own model)."""

    ds: xr.Dataset
    result: SolveResult
    fixed_from: str | None


def _ac_parameters(m: pyo.ConcreteModel) -> list:
    net = m.net
    return [p for name in ("loss_p_mw", "loss_q_mvar", "v_min_pu", "v_max_pu") for p in getattr(net, name).values()]


def _ac_correct(
    m: pyo.ConcreteModel,
    data: ScenarioData,
    result: SolveResult,
    ds: xr.Dataset,
    settings: dict,
    session: Session,
    label: str = "AC correction",
) -> _Corrected:
    """Close the gap between LinDistFlow and AC physics by re-solving (issue: AC-secure schedules).

    Each iteration runs the AC power flow of the current schedule, books every branch's AC losses
    as a load at its sending bus, and moves the voltage band of every bus and step by the
    observed LinDistFlow-minus-AC error (raised where LinDistFlow is optimistic); then re-solves.
    Integer decisions (storage modes, MESS trips) are kept from the first solve when
    ``keep_integers`` is set, so re-solves are linear programs; a pooled EV plan is kept as
    it was shared out car by car. Stops when the AC schedule has no
    violation beyond ``tolerance_pu`` that the model's slacks do not admit and the model's
    substation import is within 1 % of the AC import, or after ``max_iterations`` re-solves
    (status ``not_converged``, with the remaining violations). A step whose power flow diverges
    stops the loop: the status is ``ac_diverged`` (never ``converged``).
    """
    from feederflex.acpf import ac_check

    cfg = settings["ac_correction"]
    tolerance = float(cfg["tolerance_pu"])
    net = m.net
    steps = list(data.steps)
    buses = data.buses
    fd = data.feeder
    parent = fd.from_bus.values.astype(int)
    v_min, v_max = float(settings["grid"]["v_min_pu"]), float(settings["grid"]["v_max_pu"])
    first_stage = result.stages[-1].name if result.stages else "scenario"
    kept: list[str] = []  # what the re-solves keep fixed from the first solve
    if cfg["keep_integers"]:
        fixed = [
            var
            for var in m.component_data_objects(pyo.Var)
            if var.is_integer() and not var.fixed and var.value is not None
        ]
        for var in fixed:
            var.fix(round(var.value))
        if fixed:
            kept.append("integers")
    # the pooled EV plan was checked car by car: keep it (vehicles modelled one by one stay free)
    pools = (
        [var for name in ("pool_ch_mw", "pool_dis_mw") for var in getattr(m.ev, name, {}).values()]
        if any(hasattr(m.ev, n) for n in ("pool_ch_mw", "pool_dis_mw"))
        else []
    )
    for var in pools:
        var.fix(var.value)
    if pools:
        kept.append("pooled EV plan")
    history = []
    status = "not_converged"
    fixed_from = None  # the written schedule is the first solve's until a re-solve replaces it
    for iteration in range(int(cfg["max_iterations"]) + 1):
        ds.attrs["ac_tolerance_pu"] = tolerance
        ac = ac_check(data.feeder, ds, tolerance)
        p_ac = ac.p_grid_ac_mw.values
        import_gap = np.abs(ds.p_grid_mw.values - p_ac)
        diverged = int(ac.attrs["ac_nonconverged_steps"])
        import_ok = bool((import_gap <= 0.01 * np.abs(p_ac) + 1e-3).all()) and not diverged
        unexpected = int(ac.attrs["ac_unexpected_violation_bus_steps"])
        history.append(
            {
                "iteration": iteration,
                "objective": float(result.objective),
                "ac_violation_bus_steps": int(ac.attrs["ac_violation_bus_steps"]),
                "ac_unexpected_violation_bus_steps": unexpected,
                "ac_nonconverged_steps": diverged,
                "max_abs_v_error_pu": float(ac.attrs["max_abs_v_error_pu"]),
                "ac_loss_mwh": float(ac.attrs["loss_mwh"]),
                "max_import_gap_mw": float(np.nanmax(import_gap)) if np.isfinite(import_gap).any() else math.nan,
            }
        )
        log.info(
            "%s %d: %d unexpected AC violations, %d diverged steps, largest voltage error %.4f pu",
            label,
            iteration,
            unexpected,
            diverged,
            ac.attrs["max_abs_v_error_pu"],
        )
        if diverged:
            status = "ac_diverged"
            break
        if unexpected == 0 and import_ok:
            status = "converged"
            break
        if iteration == int(cfg["max_iterations"]):
            break
        loss_p = np.zeros((len(steps), len(buses)))
        loss_q = np.zeros_like(loss_p)
        for k, bus in enumerate(parent):
            loss_p[:, buses.index(int(bus))] += ac.loss_branch_mw.values[:, k]
            loss_q[:, buses.index(int(bus))] += ac.loss_branch_mvar.values[:, k]
        # the error of the current model (which already books the previous losses) against AC
        error = ds.v_pu.values - ac.v_ac_pu.values
        for t in steps:
            for b in net.BV:
                col = buses.index(b)
                net.loss_p_mw[b, t] = float(loss_p[t, col])
                net.loss_q_mvar[b, t] = float(loss_q[t, col])
                if np.isfinite(error[t, col]):
                    net.v_min_pu[b, t] = v_min + max(0.0, float(error[t, col]))
                    net.v_max_pu[b, t] = v_max + min(0.0, float(error[t, col]))
            root = data.root
            net.loss_p_mw[root, t] = float(loss_p[t, buses.index(root)])
            net.loss_q_mvar[root, t] = float(loss_q[t, buses.index(root)])
        trial = session.solve(f"{label} {iteration + 1}")
        if not trial.status.has_solution:
            history.append({"iteration": iteration + 1, "status": trial.status.value})
            status = f"re-solve {trial.status.value}"
            break
        result = trial
        fixed_from = f"{first_stage} ({' and '.join(kept)})" if kept else None
        ds = solution_dataset(m, data, result).assign_attrs(
            {k: v for k, v in ds.attrs.items() if not k.startswith(("solver_", "objective_"))}
        )
    ds.attrs["ac_correction_status"] = status
    ds.attrs["ac_correction_iterations"] = len(history) - 1
    ds.attrs["ac_iterations"] = json.dumps(history)
    ds.attrs["ac_tolerance_pu"] = tolerance
    if status != "converged":
        last = history[-1]
        result.diagnostics.append(
            f"AC correction {status} after {len(history) - 1} re-solves: "
            f"{last.get('ac_unexpected_violation_bus_steps', '?')} AC violations the model does not admit remain"
            + (
                f", {last['ac_nonconverged_steps']} steps whose AC power flow diverged"
                if last.get("ac_nonconverged_steps")
                else ""
            )
        )
    return _Corrected(ds, result, fixed_from)


def _values_of(m: pyo.ConcreteModel) -> ComponentMap:
    return ComponentMap((var, (var.value, var.fixed)) for var in m.component_data_objects(pyo.Var))


def _put_values(values: ComponentMap) -> None:
    """Every variable back to a value and fixed state of :func:`_values_of`."""
    for var, (value, fixed) in values.items():
        var.set_value(value, skip_validation=True)
        if fixed:
            var.fix()
        else:
            var.unfix()


def _no_worse_than_parked(
    m: pyo.ConcreteModel,
    data: ScenarioData,
    routed: _Corrected,
    parked: _Parked,
    settings: dict,
    session: Session,
    ac_start: list,
) -> _Corrected:
    """The parked baseline through the same AC correction; the better corrected schedule is kept.

    The routing search guarantees "never worse than parked" for the uncorrected model only; the
    correction books other losses for other routes, so it is checked again for what is written.
    ``ac_start``: the AC parameters (:func:`_ac_parameters`) as they were for the first solve."""
    routed_values = _values_of(m)
    routed_ac = [p.value for p in _ac_parameters(m)]
    _put_values(parked.values)
    for param, value in zip(_ac_parameters(m), ac_start, strict=True):
        param.set_value(value)
    ds = solution_dataset(m, data, parked.result).assign_attrs(
        {k: v for k, v in routed.ds.attrs.items() if not k.startswith(("solver_", "objective_", "ac_"))}
    )
    still = _ac_correct(m, data, parked.result, ds, settings, session, label="AC correction of the parked baseline")
    routed_ok = routed.result.status.has_solution
    parked_better = still.result.status.has_solution and (
        not routed_ok
        or still.result.objective < routed.result.objective - 1e-6 * max(1.0, abs(routed.result.objective))
    )
    if parked_better:
        still.ds.attrs["mess_routing_outcome"] = (
            f"parked: after the AC correction the routed schedule ({routed.result.objective:.6g}) was worse than "
            f"the parked one ({still.result.objective:.6g})"
        )
        return _Corrected(still.ds, still.result, still.fixed_from or "MESS parked baseline (moves forbidden)")
    _put_values(routed_values)
    for param, value in zip(_ac_parameters(m), routed_ac, strict=True):
        param.set_value(value)
    routed.ds.attrs["mess_routing_outcome"] = "routed"
    routed.ds.attrs["mess_parked_corrected_objective"] = float(still.result.objective)
    return routed
