"""Schedule one scenario: prepared datasets + settings -> solved (or diagnosed) solution dataset.

The library call behind the ``solve_scenario`` rule, as a pipeline of named steps:

1. :func:`feederflex.checks.check_inputs`: the prepared inputs fit the scenario;
2. :func:`_solve_with_ev_repair`: build and solve (with mobile storage, route it:
   :mod:`feederflex.routing`), re-solving with the vehicles that an aggregate EV envelope could
   not deliver modelled one by one;
3. :func:`_correct`: the AC correction (:mod:`feederflex.correction`), never worse than parked;
4. :func:`_record`: the solve's outcome, timings and the per-vehicle schedule on the dataset.

With ``operation.mode: rules`` the EVs follow 004's rules instead (:func:`operate_by_rules`).

It knows Pyomo, the workflow does not.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.checks import check_inputs
from feederflex.correction import ac_correct, ac_parameters, no_worse_than_parked, set_ac_state
from feederflex.model import ScenarioData, build_model
from feederflex.model.ev import pool_keys
from feederflex.routing import Parked, solve_routing
from feederflex.settings import Settings, as_settings
from feederflex.solution import add_vehicle_schedules, solution_dataset
from feederflex.solve import Session, SolveResult, SolveStatus, Stage, outcome

log = logging.getLogger(__name__)


def solve_scenario(
    feeder: xr.Dataset,
    profiles: xr.Dataset,
    settings: Settings | Mapping[str, Any],
    *,
    fleet: xr.Dataset | None = None,
    travel: xr.Dataset | None = None,
    solver_log: str | Path | None = None,
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
    travel
        MESS stations and travel times, needed when the scenario has mobile storage.
    solver_log
        File for HiGHS's own log (started afresh).
    ac_state
        A solution of the same scenario whose booked AC losses and voltage band the model starts
        from (a lexicographic second stage starts where the first one's AC correction ended).

    With mobile storage and ``routing: optimised``, the units are first solved parked at their
    initial stations (moves forbidden: the "fixed" baseline); that schedule starts the routing
    search (:func:`feederflex.routing.solve_routing`). The written schedule is never worse than
    the parked one: with the AC correction on, the parked schedule goes through the same
    correction and the better corrected schedule is written (``mess_routing_outcome`` says which).

    Every HiGHS run is a stage in ``solver_stages``; status, gap and seconds follow
    :func:`feederflex.solve.outcome`.
    """
    settings = as_settings(settings)
    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    check_inputs(ScenarioData(feeder, profiles, settings, ev, travel, fleet))
    if solver_log is not None:  # HiGHS appends: start each job's log afresh
        Path(solver_log).parent.mkdir(parents=True, exist_ok=True)
        Path(solver_log).write_text("")
    if settings.operation.mode == "rules":
        return operate_by_rules(feeder, profiles, settings, fleet, solver_log)
    solved = _solve_with_ev_repair(feeder, profiles, settings, fleet, ev, travel, solver_log, ac_state)
    fixed_from = _correct(solved)
    return _record(solved, fixed_from)


@dataclass
class _Solved:
    """One scenario's last build and solve, and what the EV repair rounds before it cost."""

    ds: xr.Dataset
    m: pyo.ConcreteModel
    data: ScenarioData
    session: Session
    result: SolveResult
    parked: Parked | None  # the parked MESS baseline, when the units were routed
    earlier: list[Stage]  # the stages of earlier EV repair rounds
    build_seconds: float  # every round's model build
    individual: np.ndarray  # the vehicles modelled one by one
    repairs: int  # EV repair rounds after the first solve


def _solve_with_ev_repair(
    feeder: xr.Dataset,
    profiles: xr.Dataset,
    settings: Settings,
    fleet: xr.Dataset | None,
    ev: np.ndarray | None,
    travel: xr.Dataset | None,
    solver_log: str | Path | None,
    ac_state: xr.Dataset | None,
) -> _Solved:
    """Build and solve; in aggregate EV mode, re-solve while the envelope leaves vehicles short.

    The vehicles the envelope could not deliver have their pools (same bus, same leaving step)
    modelled one by one in the next round; in the last round, every vehicle of the buses
    concerned (exact there). ``ev_control.repair_iterations`` rounds at most.
    """
    control = settings.ev_control
    individual = np.zeros(fleet.sizes["ev"] if fleet is not None else 0, dtype=bool)
    rounds = int(control.repair_iterations)
    stages: list[Stage] = []
    build_seconds = 0.0
    for attempt in range(rounds + 1):
        data = ScenarioData(feeder, profiles, settings, ev, travel, fleet, individual)
        ds, m, session, result, parked = _solve_once(
            data, solver_log, ac_state, f"EV repair {attempt}: " if attempt else ""
        )
        stages += session.stages
        build_seconds += float(ds.attrs["build_seconds"])
        if fleet is None or not (data.ev_controlled and control.mode == "aggregate" and result.status.has_solution):
            break
        add_vehicle_schedules(ds, m, data, result, individual)
        short = ds.ev_unmet_kwh.values > 0
        if not short.any() or attempt == rounds:
            break
        key = pool_keys(fleet, data.step_hours, len(data.steps))
        scope = fleet.ev_bus.values if attempt == rounds - 1 else key
        individual = individual | np.isin(scope, np.unique(scope[short]))
        log.info(
            "disaggregation left %d vehicles short (%.4f MWh): %d vehicles now modelled one by one, re-solving",
            int(short.sum()),
            float(ds.ev_unmet_kwh.values[short].sum()) / 1000,
            int(individual.sum()),
        )
    earlier = stages[: len(stages) - len(session.stages)]
    return _Solved(ds, m, data, session, result, parked, earlier, build_seconds, individual, attempt)


def _solve_once(
    data: ScenarioData, solver_log: str | Path | None, ac_state: xr.Dataset | None, prefix: str
) -> tuple[xr.Dataset, pyo.ConcreteModel, Session, SolveResult, Parked | None]:
    """Build the model of ``data`` and solve it (routing the mobile units when they are optimised)."""
    settings = data.settings
    started = time.perf_counter()
    m = build_model(data)
    if ac_state is not None and "v_min_band_pu" in ac_state:
        set_ac_state(m, data, ac_state)
    build_seconds = time.perf_counter() - started
    log.info("built model in %.2f s", build_seconds)
    session = Session(m, settings.solver, solver_log)
    parked: Parked | None = None
    if settings.mess.units and settings.mess.routing == "optimised":
        result, parked = solve_routing(m, settings, session, prefix)
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
    ds.attrs["ev_fleet"] = settings.ev_fleet or "none"
    if data.fleet is not None:
        ds.attrs["seed"] = int(data.fleet.attrs["seed"])
    return ds, m, session, result, parked


def _correct(solved: _Solved) -> str | None:
    """The AC correction of the solved schedule, in place; returns the stage whose decisions the
    written schedule's model kept fixed (None when it is the scenario's own model)."""
    s = solved
    if not (s.data.settings.ac_correction.enabled and s.result.status.has_solution):
        s.ds.attrs["ac_correction_status"] = "disabled" if s.result.status.has_solution else "no schedule"
        if s.parked is not None:
            s.ds.attrs["mess_routing_outcome"] = "routed" if s.result.status.has_solution else "no schedule"
        return None
    start = len(s.session.stages)
    ac_start = [p.value for p in ac_parameters(s.m)]
    corrected = ac_correct(s.m, s.data, s.result, s.ds, s.data.settings, s.session)
    if s.parked is not None and s.parked.result.status.has_solution:
        corrected = no_worse_than_parked(s.m, s.data, corrected, s.parked, s.data.settings, s.session, ac_start)
    s.ds, s.result = corrected.ds, corrected.result
    log.info("AC correction: %d HiGHS stages", len(s.session.stages) - start)
    return corrected.fixed_from


def _record(s: _Solved, fixed_from: str | None) -> xr.Dataset:
    """The outcome of every stage, the build time, the per-vehicle schedule and the MESS
    baseline on the written dataset."""
    result = outcome(s.result, s.earlier + s.session.stages, fixed_from)
    ds = s.ds
    ds.attrs.update({f"solver_{key}": value for key, value in result.attrs().items()})
    ds.attrs["build_seconds"] = s.build_seconds
    if s.data.ev_controlled:
        add_vehicle_schedules(ds, s.m, s.data, result, s.individual)
    if s.parked is not None:
        ds.attrs.update(
            {
                f"mess_fixed_{key}": value
                for key, value in s.parked.result.attrs().items()
                if key in ("status", "objective", "solve_seconds", "mip_gap")
            }
        )
    ds.attrs["ev_individual_vehicles"] = int(s.individual.sum())
    ds.attrs["ev_repair_iterations"] = s.repairs
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT, SolveStatus.ERROR):
        log.warning("scenario has no solution: %s; %s", result.status.value, "; ".join(result.diagnostics))
    return ds


def operate_by_rules(
    feeder: xr.Dataset,
    profiles: xr.Dataset,
    settings: Settings,
    fleet: xr.Dataset | None,
    solver_log: str | Path | None,
) -> xr.Dataset:
    """004's rule-based strategy (:mod:`feederflex.rules`) with the ordinary solution contract.

    The rules decide every vehicle's power; the network model then solves with that EV load
    fixed, which leaves it only the PV that nothing can absorb to curtail (no export past the
    no-backfeed buses), and gives flows and LinDistFlow voltages. The AC correction is not run:
    it would re-optimise what the rules decided (the AC check of ``validate_ac`` still runs).
    ``solver_status`` is ``rules``: a simulated schedule with no claim of optimality; its
    objective is the network model's plus the weighted EV discharge payment, with no bound and no gap.
    """
    from feederflex import rules

    started = time.perf_counter()
    data = ScenarioData(feeder, profiles, dataclasses.replace(settings, ev_fleet=None), None, None, None)
    rules.check_rules(settings, fleet, data.buses, data.step_hours)
    n_steps = data.profiles.sizes["time"]
    pv = rules.pv_by_bus(settings, data.pv_availability, data.buses)
    day = rules.simulate(feeder, profiles, settings, fleet, pv) if fleet is not None else None
    eta = float(settings.ev_control.v2g_efficiency)
    ev_net, ev_dis = np.zeros((n_steps, len(data.buses))), np.zeros((n_steps, len(data.buses)))
    if day is not None and fleet is not None:
        for k, bus in enumerate(fleet.ev_bus.values.astype(int)):
            col = data.buses.index(bus)
            ev_net[:, col] += day.ch_mw[:, k] - day.dis_mw[:, k]
            ev_dis[:, col] += day.dis_mw[:, k]
    rule_seconds = time.perf_counter() - started
    data = ScenarioData(feeder, profiles, dataclasses.replace(settings, ev_fleet=None), ev_net, None, None)
    ds, _, session, result, _ = _solve_once(data, solver_log, None, "rules: ")
    final = outcome(result, session.stages, None)
    ds.attrs.update({f"solver_{key}": value for key, value in final.attrs().items()})
    ds.attrs.update(
        {
            "solver_status": SolveStatus.RULES.value,
            "solver_status_note": "004's rule-based strategy simulated (feederflex.rules), not an optimum; the "
            f"network model with the rules' EV load fixed ended {final.status.value}",
            "ac_correction_status": "disabled (rules: the AC check validates, nothing re-optimises)",
            "ev_fleet": settings.ev_fleet or "none",
            "build_seconds": float(ds.attrs["build_seconds"]) + rule_seconds,
            "rules_seconds": rule_seconds,
        }
    )
    if not final.status.has_solution:
        ds.attrs["solver_status"] = final.status.value
    ds["ev_p_dis_mw"] = ds.ev_p_dis_mw.copy(data=ev_dis)
    payment = float(settings.regional.ev_discharge_price_per_mwh) * float(ev_dis.sum()) * data.step_hours
    ds.attrs["objective_ev_discharge_payment"] = payment
    if final.status.has_solution:  # the rules' objective: the network model's plus the payment it cannot see
        weight = float(settings.objective.weights.get("ev_discharge_payment", 0.0))
        ds.attrs["solver_objective"] = float(ds.attrs["solver_objective"]) + weight * payment
        ds.attrs["solver_bound"] = math.nan  # a simulation proves no bound
        ds.attrs["solver_mip_gap"] = math.nan
    if day is not None and fleet is not None:
        _add_rule_vehicles(ds, fleet, day, eta, data.step_hours)
    return ds


def _add_rule_vehicles(ds: xr.Dataset, fleet: xr.Dataset, day, eta: float, step_hours: float) -> None:
    """The rules' per-stay schedule and energies on the solution, as the itinerary mode writes them."""
    from feederflex.fleet import UNMET_TOLERANCE_KWH, departure_need_kwh, with_stays
    from feederflex.model.extract import variable

    fleet = with_stays(fleet)
    leave = departure_need_kwh(fleet)
    into_car = (day.ch_mw - day.dis_mw / eta) * 1000
    short = leave - day.departure_mwh * 1000
    ds.update(
        {
            "ev_uncontrolled_p_mw": ds.ev_uncontrolled_p_mw.copy(data=fleet.ev_p_mw.transpose("time", "bus").values),
            "ev_vehicle_p_kw": variable(("time", "ev"), into_car, "kW (into the car; V2G negative)"),
            "ev_delivered_kwh": variable("ev", into_car.sum(axis=0) * step_hours, "kWh (net, at the stay)"),
            "ev_unmet_kwh": variable(
                "ev", np.where(short > UNMET_TOLERANCE_KWH, short, 0.0), "kWh (short at departure)"
            ),
            "ev_arrival_kwh": variable("ev", day.arrival_mwh * 1000, "kWh"),
            "ev_departure_kwh": variable("ev", day.departure_mwh * 1000, "kWh (in the car when it leaves the stay)"),
            "ev_bus": variable("ev", fleet.ev_bus.values, "bus number"),
            "ev_vehicle": variable("ev", fleet.ev_vehicle.values, "the vehicle whose stay this is"),
            "ev_energy_need_kwh": variable("ev", fleet.energy_kwh.values, "kWh"),
        }
    )
    ds.attrs["ev_unmet_mwh"] = float(ds.ev_unmet_kwh.sum()) / 1000
    ds.attrs["rules_periodic_passes"] = int(day.passes)
    ds.attrs["rules_periodic_residual_mwh"] = float(day.periodic_residual_mwh)
