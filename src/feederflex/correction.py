"""AC-secure schedules: re-solve with AC losses booked and the voltage band moved by the AC error.

:func:`ac_correct` closes the gap between LinDistFlow and the pandapower AC power flow of a
schedule; :func:`no_worse_than_parked` runs the parked MESS baseline through the same correction
so that "never worse than parked" holds for the corrected schedule that is written.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model import ScenarioData
from feederflex.routing import Parked
from feederflex.settings import Settings
from feederflex.solution import solution_dataset
from feederflex.solve import Session, SolveResult, put_state, state

log = logging.getLogger(__name__)


def set_ac_state(m: pyo.ConcreteModel, data: ScenarioData, state: xr.Dataset) -> None:
    """Start from another solve's booked AC losses and voltage band (same feeder and steps)."""
    net = m.net
    for t in data.steps:
        for col, bus in enumerate(data.buses):
            net.loss_p_mw[bus, t] = float(state.loss_load_p_mw.values[t, col])
            net.loss_q_mvar[bus, t] = float(state.loss_load_q_mvar.values[t, col])
            if bus != data.root:
                net.v_min_pu[bus, t] = float(state.v_min_band_pu.values[t, col])
                net.v_max_pu[bus, t] = float(state.v_max_band_pu.values[t, col])


@dataclass
class Corrected:
    """An AC-corrected schedule: its dataset, the result of the solve that produced it, and the stage
    whose decisions its model kept fixed (None when it is the scenario's own model)."""

    ds: xr.Dataset
    result: SolveResult
    fixed_from: str | None


def ac_parameters(m: pyo.ConcreteModel) -> list:
    net = m.net
    return [p for name in ("loss_p_mw", "loss_q_mvar", "v_min_pu", "v_max_pu") for p in getattr(net, name).values()]


def ac_correct(
    m: pyo.ConcreteModel,
    data: ScenarioData,
    result: SolveResult,
    ds: xr.Dataset,
    settings: Settings,
    session: Session,
    label: str = "AC correction",
) -> Corrected:
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
    from feederflex.acpf import ac_check, ac_network

    cfg = settings.ac_correction
    net = ac_network(data.feeder, float(settings.grid.substation_v_pu))  # built once, reused by every check
    tolerance = float(cfg.tolerance_pu)
    first_stage = result.stages[-1].name if result.stages else "scenario"
    kept = _hold_decisions(m, bool(cfg.keep_integers))  # what the re-solves keep from the first solve
    history: list[dict[str, Any]] = []
    status = "not_converged"
    fixed_from = None  # the written schedule is the first solve's until a re-solve replaces it
    for iteration in range(int(cfg.max_iterations) + 1):
        ds.attrs["ac_tolerance_pu"] = tolerance
        ac = ac_check(data.feeder, ds, tolerance, net)
        row = _iteration_record(iteration, result, ds, ac)
        history.append(row)
        log.info(
            "%s %d: %d unexpected AC violations, %d diverged steps, largest voltage error %.4f pu",
            label,
            iteration,
            row["ac_unexpected_violation_bus_steps"],
            row["ac_nonconverged_steps"],
            row["max_abs_v_error_pu"],
        )
        if row["ac_nonconverged_steps"]:
            status = "ac_diverged"
            break
        if row["ac_unexpected_violation_bus_steps"] == 0 and row["import_ok"]:
            status = "converged"
            break
        if iteration == int(cfg.max_iterations):
            break
        _book_ac(m, data, ds, ac, settings)
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
    return Corrected(ds, result, fixed_from)


def _hold_decisions(m: pyo.ConcreteModel, keep_integers: bool) -> list[str]:
    """Fix what the re-solves keep from the first solve: its integers (``keep_integers``) and a
    pooled EV plan, which was checked car by car (vehicles modelled one by one stay free)."""
    kept = []
    if keep_integers:
        fixed = [
            var
            for var in m.component_data_objects(pyo.Var)
            if var.is_integer() and not var.fixed and var.value is not None
        ]
        for var in fixed:
            var.fix(round(var.value))
        if fixed:
            kept.append("integers")
    pools = [var for name in ("pool_ch_mw", "pool_dis_mw") for var in getattr(m.ev, name, {}).values()]
    for var in pools:
        var.fix(var.value)
    if pools:
        kept.append("pooled EV plan")
    return kept


def _iteration_record(iteration: int, result: SolveResult, ds: xr.Dataset, ac: xr.Dataset) -> dict[str, Any]:
    """One row of ``ac_iterations``: the schedule's objective and how its AC check came out;
    ``import_ok``: the model's substation import within 1 % (+ 1 kW) of the AC import."""
    p_ac = ac.p_grid_ac_mw.values
    import_gap = np.abs(ds.p_grid_mw.values - p_ac)
    diverged = int(ac.attrs["ac_nonconverged_steps"])
    return {
        "iteration": iteration,
        "objective": float(result.objective),
        "ac_violation_bus_steps": int(ac.attrs["ac_violation_bus_steps"]),
        "ac_unexpected_violation_bus_steps": int(ac.attrs["ac_unexpected_violation_bus_steps"]),
        "ac_nonconverged_steps": diverged,
        "max_abs_v_error_pu": float(ac.attrs["max_abs_v_error_pu"]),
        "ac_loss_mwh": float(ac.attrs["loss_mwh"]),
        "max_import_gap_mw": float(np.nanmax(import_gap)) if np.isfinite(import_gap).any() else math.nan,
        "import_ok": bool((import_gap <= 0.01 * np.abs(p_ac) + 1e-3).all()) and not diverged,
    }


def _book_ac(m: pyo.ConcreteModel, data: ScenarioData, ds: xr.Dataset, ac: xr.Dataset, settings: Settings) -> None:
    """Book every branch's AC losses as load at its sending bus and move each bus's voltage band
    by the current model's LinDistFlow-minus-AC error (raised where LinDistFlow is optimistic)."""
    net, steps, buses = m.net, list(data.steps), data.buses
    v_min, v_max = float(settings.grid.v_min_pu), float(settings.grid.v_max_pu)
    loss_p = np.zeros((len(steps), len(buses)))
    loss_q = np.zeros_like(loss_p)
    for k, bus in enumerate(data.feeder.from_bus.values.astype(int)):
        loss_p[:, buses.index(int(bus))] += ac.loss_branch_mw.values[:, k]
        loss_q[:, buses.index(int(bus))] += ac.loss_branch_mvar.values[:, k]
    # the error of the current model (which already books the previous losses) against AC
    error = ds.v_pu.values - ac.v_ac_pu.values
    root = data.root
    for t in steps:
        for b in net.BV:
            col = buses.index(b)
            net.loss_p_mw[b, t] = float(loss_p[t, col])
            net.loss_q_mvar[b, t] = float(loss_q[t, col])
            if np.isfinite(error[t, col]):
                net.v_min_pu[b, t] = v_min + max(0.0, float(error[t, col]))
                net.v_max_pu[b, t] = v_max + min(0.0, float(error[t, col]))
        net.loss_p_mw[root, t] = float(loss_p[t, buses.index(root)])
        net.loss_q_mvar[root, t] = float(loss_q[t, buses.index(root)])


def no_worse_than_parked(
    m: pyo.ConcreteModel,
    data: ScenarioData,
    routed: Corrected,
    parked: Parked,
    settings: Settings,
    session: Session,
    ac_start: list,
) -> Corrected:
    """The parked baseline through the same AC correction; the better corrected schedule is kept.

    The routing search guarantees "never worse than parked" for the uncorrected model only; the
    correction books other losses for other routes, so it is checked again for what is written.
    ``ac_start``: the AC parameters (:func:`ac_parameters`) as they were for the first solve."""
    routed_values = state(m)
    routed_ac = [p.value for p in ac_parameters(m)]
    put_state(parked.values)
    for param, value in zip(ac_parameters(m), ac_start, strict=True):
        param.set_value(value)
    ds = solution_dataset(m, data, parked.result).assign_attrs(
        {k: v for k, v in routed.ds.attrs.items() if not k.startswith(("solver_", "objective_", "ac_"))}
    )
    still = ac_correct(m, data, parked.result, ds, settings, session, label="AC correction of the parked baseline")
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
        return Corrected(still.ds, still.result, still.fixed_from or "MESS parked baseline (moves forbidden)")
    put_state(routed_values)
    for param, value in zip(ac_parameters(m), routed_ac, strict=True):
        param.set_value(value)
    routed.ds.attrs["mess_routing_outcome"] = "routed"
    routed.ds.attrs["mess_parked_corrected_objective"] = float(still.result.objective)
    return routed
