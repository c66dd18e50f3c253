"""Operating a day: the day-ahead plan on the actual day (:func:`feederflex.forecast.actual_day`), then
re-solved as the operation mode says.

- :func:`run_day`: one model is built on the forecast and solved (the day-ahead plan); the plan is
  applied to the actual day (storage, MESS and EV decisions kept, PV and the grid react); then the
  day is operated in one of three modes:

  * ``rolling`` (003's real-time strategy): step by step, the current step's data are replaced by
    actuals, the model is re-solved from the previous solution over the rest of the day (shrinking
    horizon) or over a fixed look-ahead window (later steps keep the plan, so the window hands over
    the plan's storage energy and MESS positions at its end), and the current step's decisions are
    fixed, which carries storage energy and MESS positions, trucks on the road included, forward;
  * ``on_violation`` (000): the plan is applied and re-solved only at a step whose AC power flow
    (pandapower), operated as planned on the actual day, leaves the voltage band;
  * ``day_ahead``: the plan as it is on the actual day.

  Re-solves change only row bounds (the changed steps' data) and column bounds (fixed or released
  decisions) in the plan's HiGHS session (:class:`feederflex.solve.Session`). Each re-solve keeps
  its own status per step; a day's status is the weakest of its solves.
- :func:`feederflex.montecarlo.monte_carlo` operates many realisations of the day.

Coordinated EV charging keeps its forecast windows (the fleet is not re-sampled within a day);
the EV error applies to uncontrolled charging.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyomo.environ as pyo
import xarray as xr
from pyomo.common.collections import ComponentMap

from feederflex.checks import check_operation
from feederflex.forecast import SOURCES
from feederflex.model import ScenarioData, build_model
from feederflex.settings import Settings, as_settings
from feederflex.solve import SCHEDULED, Session, SolveResult, SolveStatus, outcome, snapshot, weakest

log = logging.getLogger(__name__)


def _step_variables(m: pyo.ConcreteModel, step: int) -> Iterator[pyo.Var]:
    """The decisions of one step: every variable of the PV, storage, MESS and EV blocks whose last
    index is that step, the MESS trips that leave in it and the per-vehicle EV starts at it."""
    for name in ("pv", "fess", "mess", "ev"):
        blk = getattr(m, name, None)
        if blk is None or not hasattr(blk, "T"):
            continue
        for var in blk.component_objects(pyo.Var, descend_into=False):
            if not var.is_indexed():
                continue
            subsets = list(var.index_set().subsets())
            if subsets and subsets[-1] is blk.T:
                for index, data in var.items():
                    if (index[-1] if isinstance(index, tuple) else index) == step:
                        yield data
    if hasattr(m, "mess") and hasattr(m.mess, "arc_list"):
        for (_unit, a), data in m.mess.depart.items():
            if m.mess.arc_list[a].depart == step:
                yield data
    if hasattr(m, "ev") and hasattr(m.ev, "choice"):  # per-vehicle EV starts (003: T_start decided at t)
        for (_, start), data in m.ev.choice.items():
            if start == step:
                yield data


def _decisions(m: pyo.ConcreteModel, n_steps: int) -> list[pyo.Var]:
    return [v for t in range(n_steps) for v in _step_variables(m, t)]


def _set_data(m: pyo.ConcreteModel, data: ScenarioData, load_p: np.ndarray, steps) -> None:
    """Loads (with fixed EV charging) and PV availability of ``steps`` from ``data``."""
    avail = data.pv_availability
    load_q = data.profiles.load_q_mvar.values
    for t in steps:
        for col, bus in enumerate(data.buses):
            m.net.load_p_mw[bus, t] = float(load_p[t, col])
            m.net.load_q_mvar[bus, t] = float(load_q[t, col])
        for k, unit in enumerate(data.settings.pv):
            m.pv.avail_mw[unit.name, t] = float(unit.p_mw) * float(avail[t, k])


def _rows_by_step(m: pyo.ConcreteModel) -> dict[int, list]:
    """The constraints whose bounds depend on a step's loads or PV availability, by step."""
    from pyomo.core.expr.visitor import identify_mutable_parameters

    data_params = {id(p) for name in ("load_p_mw", "load_q_mvar") for p in getattr(m.net, name).values()}
    data_params |= {id(p) for p in m.pv.avail_mw.values()}
    by_step: dict[int, list] = {}
    for con in m.component_data_objects(pyo.Constraint, active=True):
        for param in identify_mutable_parameters(con.expr):
            if id(param) in data_params:
                index = param.index()
                by_step.setdefault(index[-1] if isinstance(index, tuple) else index, []).append(con)
                break
    return by_step


@dataclass
class _Day:
    """What the step loops work on: the model, its HiGHS session and both days' data."""

    m: pyo.ConcreteModel
    session: Session
    rows: dict[int, list]  # each step's data-dependent constraints
    forecast: ScenarioData
    actual: ScenarioData
    load_forecast: np.ndarray
    load_actual: np.ndarray
    by_step: list[list]  # each step's decisions
    pv_ids: set[int]
    plan: SolveResult
    fixed_from: str | None  # the plan's decisions the re-solves keep (keep_integers), if any

    def use(self, which: str, steps: Iterable[int]) -> None:
        """Loads and PV availability of ``steps`` from the actual day or the forecast."""
        steps = list(steps)
        data, load = (self.actual, self.load_actual) if which == "actual" else (self.forecast, self.load_forecast)
        _set_data(self.m, data, load, steps)
        self.session.update_rows(con for t in steps for con in self.rows.get(t, []))

    def controls(self, steps: Iterable[int]) -> list:
        """Storage, MESS and EV decisions of ``steps`` (PV and the grid react to the day)."""
        return [v for t in steps for v in self.by_step[t] if id(v) not in self.pv_ids]

    def run(self, stage: str) -> SolveResult:
        """Re-solve HiGHS as the edits left it (no re-derivation from Pyomo, no tangent rounds)."""
        return self.session.solve(stage, sync=False, refine=False)

    def dataset(self, results: list[SolveResult], fixed_from: str | None) -> xr.Dataset:
        """The loaded schedule as a solution dataset on the actual day, made by ``results`` (the
        solves of the day): status the weakest of them, seconds summed over their stages."""
        from feederflex.solution import solution_dataset

        last = results[-1]
        statuses = [r.status for r in results]
        gaps = [r.mip_gap for r in results]
        summary = replace(
            last,
            status=weakest(statuses),
            objective=float(pyo.value(self.m.objective)),
            bound=math.nan,
            mip_gap=max(gaps) if all(math.isfinite(g) for g in gaps) else math.nan,
            termination=f"{len(results)} solves, weakest {weakest(statuses).value}",
            integers=self.plan.integers,
            diagnostics=[d for r in results for d in r.diagnostics],
        )
        result = outcome(summary, [stage for r in results for stage in r.stages], fixed_from)
        return solution_dataset(self.m, self.actual, result)


def _receding(day: _Day, lookahead: int | None) -> tuple[dict, xr.Dataset | None]:
    """003's real-time strategy: at every step the step's actual data, forecasts for the rest,
    re-solve, fix the step. With a look-ahead of L steps only t..t+L-1 are re-optimised: the
    decisions after the window keep the day-ahead plan (so the window must hand over the plan's
    storage energy and MESS positions at its end: a terminal condition that keeps every later
    step feasible). A re-solve that stops at its time limit with a solution is used (feasible);
    one without a solution stops the day."""
    n = len(day.by_step)
    stats = _empty_stats(n)
    results = []
    if lookahead is not None:
        day.session.fix([v for t in range(lookahead, n) for v in day.by_step[t]], "model")
    for k in range(n):
        day.use("actual", [k])
        if lookahead is not None and 1 <= k and k + lookahead - 1 < n:
            day.session.release(day.by_step[k + lookahead - 1])
        res = day.run(f"rolling step {k}")
        _record(stats, k, res)
        if not res.status.has_solution:
            log.warning("rolling step %d: %s; the day stops here", k, res.status.value)
            return stats, None
        results.append(res)
        day.session.fix(day.by_step[k], "solution")
    return stats, day.dataset(results, day.fixed_from)


def _record(stats: dict, k: int, res: SolveResult) -> None:
    stats["seconds"][k] = res.solve_seconds
    stats["objective"][k] = res.objective
    stats["status"][k] = res.status.value
    stats["resolved"][k] = 1


def _on_violation(
    day: _Day,
    feeder: xr.Dataset,
    plan_on_actual: xr.Dataset,
    plan_values: ComponentMap,
    tolerance_pu: float,
    on_actual: SolveResult,
) -> tuple[dict, xr.Dataset | None]:
    """000's rule: apply the plan and re-solve only when the AC power flow of the next step,
    operated as planned on the actual day, leaves the voltage band (by more than ``tolerance_pu``)
    or diverges. A re-solve takes the actual data up to that step and forecasts after it; its plan
    is then applied in the same way from the next step on."""
    from feederflex.acpf import ac_network

    n = len(day.by_step)
    stats = _empty_stats(n)
    stats["status"][:] = "plan"
    net = ac_network(feeder, float(plan_on_actual.attrs["substation_v_pu"]))
    for var, value in plan_values.items():  # the schedule the plan gives on the actual day
        if not var.fixed and value is not None:
            var.set_value(value, skip_validation=True)
    evaluation, applied, results = plan_on_actual, 0, [on_actual]
    while True:
        k = _first_violation(feeder, net, evaluation, applied, tolerance_pu)
        if k is None:
            return stats, evaluation
        day.session.fix([v for t in range(applied, k) for v in day.by_step[t]], "model")  # happened
        day.use("actual", range(applied, k + 1))
        day.use("forecast", range(k + 1, n))
        day.session.release(day.controls(range(k, n)))
        res = day.run(f"on violation: re-solve at step {k}")
        _record(stats, k, res)
        log.info("step %d leaves the band in AC: re-solved (%s)", k, res.status.value)
        if not res.status.has_solution:
            return stats, None
        day.session.fix(day.by_step[k], "solution")
        applied = k + 1
        # the new plan on the actual day from the next step on
        day.use("actual", range(applied, n))
        day.session.fix(day.controls(range(applied, n)), "solution")
        again = day.run(f"on violation: new plan on the actual day from step {applied}")
        if not again.status.has_solution:
            stats["status"][min(applied, n - 1)] = f"plan on actual: {again.status.value}"
            return stats, None
        results += [res, again]
        evaluation = day.dataset(results, day.fixed_from or "day-ahead plan (controls)")


def _first_violation(feeder: xr.Dataset, net, schedule: xr.Dataset, start: int, tolerance_pu: float) -> int | None:
    """The first step from ``start`` whose AC voltages leave the band by more than ``tolerance_pu``,
    or whose power flow diverges (a step that cannot be verified is treated as violated)."""
    from feederflex.acpf import ac_check

    for step in range(start, schedule.sizes["time"]):
        ac = ac_check(feeder, schedule.isel(time=[step]), tolerance_pu, net)
        if ac.attrs["ac_violation_bus_steps"] > 0 or ac.attrs["ac_nonconverged_steps"] > 0:
            return step
    return None


def _empty_stats(n: int) -> dict:
    return {
        "seconds": np.full(n, np.nan),
        "objective": np.full(n, np.nan),
        "status": np.array(["not reached"] * n, dtype=object),
        "resolved": np.zeros(n, dtype=int),
    }


@dataclass
class DayAheadPlan:
    """A scenario's day-ahead model solved on the forecast, reusable for many actual days: each
    :func:`run_day` puts the model back to this plan before it operates another day."""

    m: pyo.ConcreteModel
    forecast: ScenarioData
    result: SolveResult
    build_seconds: float
    planned: ComponentMap
    fixed_at_build: set[int]
    terms: dict
    session: Session  # the HiGHS session that solved the plan; every operated day re-solves in it
    rows: dict[int, list]

    def reset(self) -> None:
        """Forecast data, the plan's values and only the variables fixed when it was built fixed,
        in Pyomo and in HiGHS (bounds and integrality of every other column restored)."""
        self.session.restore_columns(self.fixed_at_build)
        for var, value in self.planned.items():
            var.set_value(value, skip_validation=True)
        fc = self.forecast
        _set_data(self.m, fc, fc.profiles.load_p_mw.values + fc.fixed_ev_p_mw, fc.steps)
        self.session.update_rows(con for t in fc.steps for con in self.rows.get(t, []))


def plan_day(
    feeder: xr.Dataset,
    forecast: xr.Dataset,
    settings: Settings | Mapping[str, Any],
    *,
    fleet: xr.Dataset | None = None,
    travel: xr.Dataset | None = None,
    solver_log: str | None = None,
) -> DayAheadPlan:
    """Build the scenario's model on the forecast and solve it: the day-ahead plan."""
    from feederflex.checks import check_inputs
    from feederflex.model.objectives import term_values

    settings = as_settings(settings)
    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    fc = ScenarioData(feeder, forecast, settings, ev, travel, fleet)
    check_inputs(fc)
    started = time.perf_counter()
    m = build_model(fc)
    build_seconds = time.perf_counter() - started
    fixed = {id(v) for v in m.component_data_objects(pyo.Var) if v.fixed}
    session = Session(m, settings.solver, solver_log)
    result = session.solve("day-ahead plan")
    terms = term_values(m, fc) if result.status.has_solution else {}
    return DayAheadPlan(m, fc, result, build_seconds, snapshot(m), fixed, terms, session, _rows_by_step(m))


def run_day(
    feeder: xr.Dataset,
    forecast: xr.Dataset,
    actual: xr.Dataset,
    settings: Settings | Mapping[str, Any],
    *,
    fleet: xr.Dataset | None = None,
    travel: xr.Dataset | None = None,
    solver_log: str | None = None,
    keep_integers: bool = True,
    mode: str = "rolling",
    lookahead_steps: int | None = None,
    plan: DayAheadPlan | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """The day-ahead plan operated on the actual day: ``(realised, plan_on_actual)``.

    Parameters
    ----------
    mode
        ``rolling``: re-solve at every step (003); ``on_violation``: apply the plan and re-solve
        only at steps whose AC voltages leave the band or whose power flow diverges (000;
        tolerance ``ac_correction.tolerance_pu``); ``day_ahead``: the plan as it is.
    lookahead_steps
        ``rolling`` only: re-optimise ``lookahead_steps`` steps from the current one, later steps
        keep the plan; None = the rest of the day (shrinking horizon).
    keep_integers
        Re-solves keep the plan's storage modes, MESS trips and EV start steps (LPs).
    plan
        The scenario's :func:`plan_day` (same forecast and settings) to reuse; None = plan here.

    Both datasets have the solution contract on the actual day's profiles. ``plan_on_actual``
    keeps the plan's storage, MESS and EV decisions with PV and the grid reacting (``feasible``:
    its decisions come from the plan's model); ``realised`` adds per-step
    ``rolling_solve_seconds``, ``rolling_objective``, ``rolling_status`` (each re-solve's own
    status) and ``rolling_resolved`` (1 where a re-solve happened); its ``solver_status`` is the
    weakest of its solves, and ``feasible`` at best when the re-solves keep the plan's integers.
    Attributes of both: the day-ahead and plan-on-actual objective terms (``day_ahead_objective_*``,
    ``plan_on_actual_objective_*``).
    """
    from feederflex.solution import solution_dataset

    settings = as_settings(settings)
    check_operation(mode, lookahead_steps, forecast.sizes["time"])
    if plan is None:
        plan = plan_day(feeder, forecast, settings, fleet=fleet, travel=travel, solver_log=solver_log)
    else:
        plan.reset()
    m, fc, build_seconds, session = plan.m, plan.forecast, plan.build_seconds, plan.session
    first_stage = len(session.stages)
    ev_actual = None if fleet is None else fc.ev_p_mw * actual.ev_factor.values[:, None]
    act = ScenarioData(feeder, actual, settings, ev_actual, travel, fleet)
    load_fc = fc.profiles.load_p_mw.values + fc.fixed_ev_p_mw
    load_act = act.profiles.load_p_mw.values + act.fixed_ev_p_mw
    steps = list(fc.steps)
    day_ahead, plan_result = plan, plan.result
    attrs = _day_attrs(plan_result, build_seconds, actual, settings, fleet, mode, lookahead_steps, keep_integers)
    if not plan_result.status.has_solution:
        plan_ds = solution_dataset(None, act, plan_result)
        return _finish(solution_dataset(None, act, plan_result), plan_ds, _empty_stats(len(steps)), actual, attrs, mode)
    attrs.update({f"day_ahead_objective_{k}": v for k, v in day_ahead.terms.items()})
    planned = day_ahead.planned
    by_step = [list(_step_variables(m, t)) for t in steps]
    pv_ids = {id(v) for v in m.pv.p_mw.values()}
    kept = "day-ahead plan (integers)" if keep_integers and plan_result.integers else None
    day = _Day(m, session, day_ahead.rows, fc, act, load_fc, load_act, by_step, pv_ids, plan_result, kept)
    controls = day.controls(steps)
    on_actual, plan_ds, on_actual_values = _plan_on_actual(day, controls, attrs)
    # the real-time day starts from the plan again: controls free, forecast data
    session.release(controls)
    day.use("forecast", steps)
    for var, value in planned.items():
        if not var.fixed:
            var.set_value(value, skip_validation=True)
    if keep_integers:
        session.relax_integers()
    if mode == "on_violation" and on_actual.status.has_solution:
        tolerance = float(settings.ac_correction.tolerance_pu)
        stats, realised = _on_violation(day, feeder, plan_ds, on_actual_values, tolerance, on_actual)
    elif mode == "day_ahead":  # the plan as it is, on the actual day
        stats, realised = _empty_stats(len(steps)), plan_ds.copy()
        stats["status"][:] = "plan"
    else:
        stats, realised = _receding(day, lookahead_steps)
    if realised is None:
        realised = _stopped(stats, session.stages[first_stage:], act)
    return _finish(realised, plan_ds, stats, actual, attrs, mode)


def _day_attrs(
    plan: SolveResult,
    build_seconds: float,
    actual: xr.Dataset,
    settings: Settings,
    fleet: xr.Dataset | None,
    mode: str,
    lookahead_steps: int | None,
    keep_integers: bool,
) -> dict[str, Any]:
    """What both datasets of a day record: the day-ahead plan's outcome, the operation and the
    realisation (seed and error levels)."""
    attrs: dict[str, Any] = {
        "build_seconds": build_seconds,
        "day_ahead_status": plan.status.value,
        "day_ahead_objective": plan.objective,
        "day_ahead_solve_seconds": plan.solve_seconds,
        "day_ahead_mip_gap": plan.mip_gap,
        "ac_correction_status": f"disabled ({mode})",
        "operation_mode": mode,
        "lookahead_steps": "rest of day" if lookahead_steps is None else int(lookahead_steps),
        "rolling_keep_integers": int(keep_integers),
        "realisation": int(actual.attrs.get("realisation", 0)),
        "forecast_seed": int(actual.attrs.get("seed", 0)),
        "ev_fleet": settings.ev_fleet or "none",
    }
    if fleet is not None:
        attrs["seed"] = int(fleet.attrs["seed"])
    for source in SOURCES:
        if f"error_{source}" in actual:
            attrs[f"relative_sd_{source}"] = float(actual.attrs[f"relative_sd_{source}"])
    return attrs


def _plan_on_actual(day: _Day, controls: list, attrs: dict[str, Any]) -> tuple[SolveResult, xr.Dataset, ComponentMap]:
    """The day-ahead plan on the actual day: its storage, MESS and EV decisions (``controls``)
    fixed, PV and the grid react. Returns the solve, its dataset and the variable values."""
    from feederflex.model.objectives import term_values
    from feederflex.solution import solution_dataset

    day.session.fix(controls, "model")
    day.use("actual", range(len(day.by_step)))
    on_actual = day.run("plan on the actual day")
    if on_actual.status.has_solution:
        plan_ds = day.dataset([on_actual], "day-ahead plan (controls)" if controls else None)
        attrs.update({f"plan_on_actual_objective_{k}": v for k, v in term_values(day.m, day.actual).items()})
    else:
        plan_ds = solution_dataset(None, day.actual, on_actual)
    attrs["plan_on_actual_status"] = plan_ds.attrs["solver_status"]
    attrs["plan_on_actual_objective"] = on_actual.objective
    return on_actual, plan_ds, snapshot(day.m)


def _stopped(stats: dict, stages: list, act: ScenarioData) -> xr.Dataset:
    """The dataset of a day that stopped: the weakest re-solve says why (a failed plan on the
    actual day, if none did); every stage of the day is on record."""
    from feederflex.solution import solution_dataset

    labels = {status.value for status in SolveStatus}
    failed = weakest(SolveStatus(s) for s in stats["status"] if s in labels)
    result = outcome(
        SolveResult(
            failed if not failed.has_solution else SolveStatus.ERROR,
            "rolling stopped",
            diagnostics=[f"rolling steps: {list(stats['status'])}"],
        ),
        stages,
    )
    return solution_dataset(None, act, result)


def _finish(
    realised: xr.Dataset, plan_ds: xr.Dataset, stats: dict, actual: xr.Dataset, attrs: dict, mode: str
) -> tuple[xr.Dataset, xr.Dataset]:
    """Per-step statistics, the realisation's errors and the shared attributes on both datasets."""
    realised["rolling_solve_seconds"] = ("time", stats["seconds"])
    realised["rolling_objective"] = ("time", stats["objective"])
    realised["rolling_status"] = ("time", stats["status"])
    realised["rolling_resolved"] = ("time", stats["resolved"])
    realised["rolling_solve_seconds"].attrs["units"] = "s (HiGHS, each step's re-solve; NaN where none)"
    realised["rolling_objective"].attrs["units"] = "$ (objective of each step's re-solve: realised past + planned rest)"
    realised["rolling_status"].attrs["units"] = (
        "each step's re-solve status (plan: no re-solve; not reached: the day stopped before)"
    )
    realised["rolling_resolved"].attrs["units"] = "1 where the step was re-solved"
    for source in SOURCES:
        if f"error_{source}" in actual:
            realised[f"error_{source}"] = ("time", actual[f"error_{source}"].values)
            realised[f"error_{source}"].attrs["units"] = "actual / forecast - 1"
    completed = realised.attrs["solver_status"] in SCHEDULED
    plan_ds.attrs.update(attrs, operation="plan_on_actual")
    realised.attrs.update(
        attrs,
        operation=mode,
        rolling_status="completed" if completed else "stopped",
        rolling_seconds=float(np.nansum(stats["seconds"])),
        rolling_resolves=int(stats["resolved"].sum()),
    )
    if attrs["day_ahead_status"] not in ("optimal", "feasible"):
        realised.attrs["rolling_status"] = "no day-ahead plan"
    return realised, plan_ds


def solve_rolling(
    feeder: xr.Dataset, forecast: xr.Dataset, actual: xr.Dataset, settings: Settings | Mapping[str, Any], **options: Any
) -> xr.Dataset:
    """The realised schedule of :func:`run_day` with the same keyword ``options`` (the
    receding-horizon day by default)."""
    return run_day(feeder, forecast, actual, settings, **options)[0]
