"""Day-ahead vs real-time: forecast errors, the day-ahead plan on the actual day, receding horizon.

- :func:`actual_day`: the day that happens: the forecast profiles times (1 + e) with Gaussian
  relative errors per source (PV availability, load, uncontrolled EV charging), AR(1)-correlated
  in time (002 models PV and demand forecast errors as Gaussian; 20-30 % for PV, 10 % for load).
- :func:`solve_rolling`: one model is built on the forecast and solved (the day-ahead plan); the
  plan is applied to the actual day (storage, MESS and EV decisions kept, PV and the grid react);
  then, step by step (003's real-time strategy), the current step's data are replaced by actuals,
  the model is re-solved from the previous solution over the rest of the day (shrinking horizon)
  and the current step's decisions are fixed, which carries storage energy and MESS positions,
  trucks on the road included, to the next step. Re-solves change only mutable parameters and
  fixed variables of the one persistent HiGHS model.

Coordinated EV charging keeps its forecast windows (the fleet is not re-sampled within a day);
the EV error applies to uncontrolled charging.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model import ScenarioData, build_model
from feederflex.solve import SolveResult, SolveStatus, highs, snapshot, solve

log = logging.getLogger(__name__)

SOURCES = ("pv", "load", "ev")


class RollingError(ValueError):
    """Forecast-error or operation settings that cannot be used."""


def errors(n_steps: int, sd: float, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """Relative errors e_t = rho e_{t-1} + sqrt(1 - rho^2) sd xi_t (stationary sd ``sd``)."""
    if sd < 0:
        raise RollingError(f"relative_sd = {sd}: a standard deviation cannot be negative")
    if not 0 <= correlation < 1:
        raise RollingError(f"correlation = {correlation}: expected 0 <= correlation < 1")
    xi = rng.standard_normal(n_steps)
    out = np.empty(n_steps)
    out[0] = sd * xi[0]
    for t in range(1, n_steps):
        out[t] = correlation * out[t - 1] + np.sqrt(1 - correlation**2) * sd * xi[t]
    return out


def actual_day(forecast: xr.Dataset, spec: dict, realisation: int) -> xr.Dataset:
    """The actual day of ``realisation``: forecast x (1 + e), factors clipped at 0, PV at 1 pu.

    ``spec`` holds ``seed``, ``relative_sd`` (pv, load, ev) and ``correlation``; the errors of a
    realisation depend only on (seed, realisation), so adding realisations keeps the old ones."""
    n = forecast.sizes["time"]
    rng = np.random.default_rng([int(spec["seed"]), int(realisation)])
    factor = {s: np.clip(1 + errors(n, float(spec["relative_sd"][s]), float(spec["correlation"]), rng), 0, None)
              for s in SOURCES}
    out = forecast.copy(deep=True)
    out["load_p_mw"] = forecast.load_p_mw * xr.DataArray(factor["load"], dims="time")
    out["load_q_mvar"] = forecast.load_q_mvar * xr.DataArray(factor["load"], dims="time")
    out["pv_avail_pu"] = (forecast.pv_avail_pu * xr.DataArray(factor["pv"], dims="time")).clip(0, 1)
    out["ev_factor"] = ("time", factor["ev"])
    out["ev_factor"].attrs["units"] = "actual / forecast uncontrolled EV charging"
    for source in SOURCES:
        out[f"error_{source}"] = ("time", factor[source] - 1)
    out.attrs.update({"realisation": int(realisation), "seed": int(spec["seed"]), "correlation": float(spec["correlation"]),
                      **{f"relative_sd_{s}": float(spec["relative_sd"][s]) for s in SOURCES}})
    return out


def _step_variables(m: pyo.ConcreteModel, step: int) -> Iterator[pyo.Var]:
    """The decisions of one step: every variable of the PV, storage, MESS and EV blocks whose last
    index is that step, and the MESS trips that leave in it."""
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
        for (unit, a), data in m.mess.depart.items():
            if m.mess.arc_list[a].depart == step:
                yield data


def _decisions(m: pyo.ConcreteModel, n_steps: int) -> list[pyo.Var]:
    return [v for t in range(n_steps) for v in _step_variables(m, t)]


def _set_data(m: pyo.ConcreteModel, data: ScenarioData, load_p: np.ndarray, steps) -> None:
    """Loads (with fixed EV charging) and PV availability of ``steps`` from ``data``."""
    avail = data.profiles.pv_avail_pu.values
    load_q = data.profiles.load_q_mvar.values
    for t in steps:
        for col, bus in enumerate(data.buses):
            m.net.load_p_mw[bus, t] = float(load_p[t, col])
            m.net.load_q_mvar[bus, t] = float(load_q[t, col])
        for unit in data.settings["pv"]:
            m.pv.avail_mw[unit["name"], t] = float(unit["p_mw"]) * float(avail[t])


class _DirectHighs:
    """Re-solves on the HiGHS model Pyomo handed over once: only the row bounds of the changed
    step's balance and PV rows and the bounds of fixed columns change (Pyomo's own update would
    re-evaluate every expression with a mutable parameter, 95 % of the time measured)."""

    def __init__(self, m: pyo.ConcreteModel, opt, solver: dict) -> None:
        from pyomo.core.expr.visitor import identify_mutable_parameters

        self.m, self.h = m, opt._solver_model
        self.cols = opt._pyomo_var_to_solver_var_map
        self.rows = opt._pyomo_con_to_solver_con_map
        self.vars = {id(v): v for v in m.component_data_objects(pyo.Var)}
        data_params = {id(p) for name in ("load_p_mw", "load_q_mvar") for p in getattr(m.net, name).values()}
        data_params |= {id(p) for p in m.pv.avail_mw.values()}
        self.by_step: dict[int, list] = {}
        for con in m.component_data_objects(pyo.Constraint, active=True):
            if con not in self.rows:
                continue
            for param in identify_mutable_parameters(con.expr):
                if id(param) in data_params:
                    index = param.index()
                    self.by_step.setdefault(index[-1] if isinstance(index, tuple) else index, []).append(con)
                    break
        self.h.setOptionValue("time_limit", float(solver["time_limit_s"]))
        self.h.setOptionValue("log_to_console", False)

    def fix_integers(self) -> None:
        """Integer columns fixed at their values and made continuous: re-solves are LPs."""
        import highspy

        for var in self.m.component_data_objects(pyo.Var):
            if var.is_integer() and id(var) in self.cols:
                value = float(round(var.value))
                var.fix(value)
                col = self.cols[id(var)]
                self.h.changeColBounds(col, value, value)
                self.h.changeColIntegrality(col, highspy.HighsVarType.kContinuous)

    def update_rows(self, step: int) -> None:
        from pyomo.repn import generate_standard_repn

        for con in self.by_step.get(step, []):
            constant = generate_standard_repn(con.body, compute_values=True, quadratic=False).constant
            lower = -math.inf if con.lower is None else pyo.value(con.lower) - constant
            upper = math.inf if con.upper is None else pyo.value(con.upper) - constant
            self.h.changeRowBounds(self.rows[con], lower, upper)

    def fix(self, variables: list) -> None:
        values = self.h.getSolution().col_value
        for var in variables:
            col = self.cols.get(id(var))
            if col is None:
                continue
            value = float(values[col])
            if var.is_integer():
                value = float(round(value))
            var.fix(value, skip_validation=True)
            self.h.changeColBounds(col, value, value)

    def run(self) -> tuple[bool, float, float, str]:
        started = time.perf_counter()
        self.h.run()
        seconds = time.perf_counter() - started
        label = self.h.modelStatusToString(self.h.getModelStatus()).lower()
        ok = label == "optimal"
        objective = float(self.h.getInfo().objective_function_value) if ok else math.nan
        return ok, seconds, objective, label

    def load(self) -> None:
        """The last solution into the Pyomo variables."""
        values = self.h.getSolution().col_value
        for vid, col in self.cols.items():
            var = self.vars.get(vid)
            if var is not None and not var.fixed:
                var.set_value(float(values[col]), skip_validation=True)


def solve_rolling(feeder: xr.Dataset, forecast: xr.Dataset, actual: xr.Dataset, settings: dict,
                  fleet: xr.Dataset | None = None, travel: xr.Dataset | None = None,
                  solver_log: str | None = None, keep_integers: bool = True) -> xr.Dataset:
    """Day-ahead plan, the plan on the actual day, and the receding-horizon day (module docstring).

    With ``keep_integers`` the re-solves keep the day-ahead plan's integer decisions (storage
    charge/discharge modes, MESS trips), so each is a linear program; without, each is a MILP.

    Returns the realised (rolling) schedule as a solution dataset on the actual day's profiles,
    with per-step solve statistics (``rolling_*(time)``) and the day-ahead and plan-on-actual
    objective terms in attributes (``day_ahead_objective_*``, ``plan_on_actual_objective_*``)."""
    from feederflex.schedule import check_inputs, solution_dataset

    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    fc = ScenarioData(feeder, forecast, settings, ev, travel, fleet)
    check_inputs(fc)
    ev_actual = None if ev is None else ev * actual.ev_factor.values[:, None]
    act = ScenarioData(feeder, actual, settings, ev_actual, travel, fleet)
    load_fc = fc.profiles.load_p_mw.values + fc.fixed_ev_p_mw
    load_act = act.profiles.load_p_mw.values + act.fixed_ev_p_mw
    steps = list(fc.steps)
    solver = settings["solver"]
    started = time.perf_counter()
    m = build_model(fc)
    build_seconds = time.perf_counter() - started
    opt = highs()
    plan = solve(m, solver, solver_log, opt=opt)
    attrs: dict = {"build_seconds": build_seconds, "day_ahead_status": plan.status.value,
                   "day_ahead_objective": plan.objective, "day_ahead_solve_seconds": plan.solve_seconds}
    if not plan.status.has_solution:
        ds = solution_dataset(None, act, plan)
        ds.attrs.update(attrs, rolling_status="no day-ahead plan")
        return ds
    from feederflex.model.objectives import term_values

    attrs.update({f"day_ahead_objective_{k}": v for k, v in term_values(m, fc).items()})
    planned = snapshot(m)
    decisions = _decisions(m, len(steps))
    # the day-ahead plan on the actual day: its storage, MESS and EV decisions, PV and grid react
    pv_vars = set(id(v) for v in m.pv.p_mw.values())
    for var in decisions:
        if id(var) not in pv_vars:
            var.fix()
    _set_data(m, act, load_act, steps)
    on_actual = solve(m, solver, solver_log, opt=opt)
    attrs["plan_on_actual_status"] = on_actual.status.value
    attrs["plan_on_actual_objective"] = on_actual.objective
    if on_actual.status.has_solution:
        attrs.update({f"plan_on_actual_objective_{k}": v for k, v in term_values(m, act).items()})
    for var in decisions:
        var.unfix()
    _set_data(m, fc, load_fc, steps)
    # receding horizon: actual data for the current step, forecast for the rest, past fixed
    for var, value in planned.items():
        var.set_value(value, skip_validation=True)
    opt.update()  # HiGHS still holds the plan-on-actual bounds: hand over the reset model once
    direct = _DirectHighs(m, opt, solver)
    if keep_integers:
        direct.fix_integers()
    seconds, objective, status = np.full(len(steps), np.nan), np.full(len(steps), np.nan), []
    for k in steps:
        _set_data(m, act, load_act, [k])
        direct.update_rows(k)
        ok, seconds[k], objective[k], label = direct.run()
        status.append(label)
        if not ok:
            log.warning("rolling step %d: %s; the day stops here", k, label)
            break
        direct.fix([v for v in _step_variables(m, k)])
    status += ["not reached"] * (len(steps) - len(status))
    realised = all(s == "optimal" for s in status)
    if realised:
        direct.load()
        result = SolveResult(SolveStatus.OPTIMAL, "optimal", objective=float(pyo.value(m.objective)), bound=math.nan,
                             mip_gap=0.0, solve_seconds=float(np.nansum(seconds)), rows=plan.rows, columns=plan.columns,
                             integers=plan.integers, nonzeros=plan.nonzeros, solver_version=plan.solver_version)
    else:
        result = SolveResult(SolveStatus.INFEASIBLE, "rolling stopped", diagnostics=[f"rolling steps: {status}"])
    ds = solution_dataset(m if realised else None, act, result)
    ds["rolling_solve_seconds"] = ("time", seconds)
    ds["rolling_objective"] = ("time", objective)
    ds["rolling_status"] = ("time", np.array(status, dtype=object))
    ds["rolling_solve_seconds"].attrs["units"] = "s (HiGHS, each step's re-solve)"
    ds["rolling_objective"].attrs["units"] = "$ (objective of each step's re-solve: realised past + planned rest)"
    attrs.update({"rolling_status": "completed" if realised else "stopped", "rolling_seconds": float(np.nansum(seconds)),
                  "ac_correction_status": "disabled (rolling)", "rolling_keep_integers": int(keep_integers), "realisation": int(actual.attrs.get("realisation", 0)),
                  "forecast_seed": int(actual.attrs.get("seed", 0)), "ev_fleet": settings["ev_fleet"] or "none"})
    ds.attrs.update(attrs)
    return ds
