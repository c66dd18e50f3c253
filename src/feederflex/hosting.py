"""PV hosting capacity: the most PV a feeder takes at given buses with the voltage band (and branch
limits) holding at every step of the day, confirmed by the AC power flow (001 section 5.2).

A case puts PV of total rating S at its buses, split by ``shares`` (even by default), each unit at
the day's PV availability and at unity power factor, never curtailed (curtailment would make any
S feasible). PV of the scenario at other buses stays, at its available power (not curtailed
either); with ``mode: each``, every bus of the case is hosted alone, the scenario's PV at the
case's other buses taken out. The scenario's storage, EV control and
planning candidates operate as in the scenario.

1. LinDistFlow capacity: maximise S in the scenario's model with the band and the branch limits
   hard (their slacks fixed at zero). The cell (bus, step) closest to the band at that S is the one
   that binds.
2. AC capacity: with S fixed, the scenario's own objective (band soft again) gives the operation (the
   integer decisions, storage modes and a planning design, kept from the LinDistFlow capacity's
   solution, so every trial is a linear program), and
   the AC power flow of every step checks it; a scale passes when every step converges, no bus leaves
   the band by more than ``v_tolerance_pu`` (with ``edges: upper``, only overvoltage counts: the
   undervoltage a feeder has without PV is not the PV's doing and stays a soft, penalised limit
   in both stages) and, with branch limits, no branch is loaded above 100 %.
   Starting from the LinDistFlow answer, the scale grows by 10 % while it passes (or falls back to
   zero when it does not), then bisection to ``tolerance_mw`` between the largest passing and the
   smallest failing scale. The reported capacity is the largest scale that passed, so it never
   leaves the band in AC; bisection assumes that a scale passing implies that every smaller one
   would (monotone in S, as voltage rise is), which the trials recorded in the output let a reader
   check.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from feederflex.checks import check_inputs
from feederflex.errors import InputError
from feederflex.settings import PVUnit, Settings, as_settings

if TYPE_CHECKING:  # the workflow reads the cases (expand_cases) while it parses: no Pyomo there
    import pyomo.environ as pyo

    from feederflex import acpf
    from feederflex.model import ScenarioData
    from feederflex.solve import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    """One hosting-capacity case: PV of one total rating at ``buses``, split by ``shares``."""

    name: str
    scenario: str
    buses: tuple[int, ...]
    shares: tuple[float, ...]
    edges: str = "both"  # "both": the whole band holds; "upper": only overvoltage counts
    clears: tuple[int, ...] = ()  # buses whose scenario PV is taken out too (mode each: the case's other buses)


def expand_cases(section: Mapping[str, Any]) -> dict[str, Case]:
    """The cases of a study's ``hosting_capacity.cases``: ``mode: each`` gives one case per bus
    (``<case>-bus<b>``), ``common`` one case for all buses; shares normalised to sum to 1."""
    out: dict[str, Case] = {}
    for name, spec in section.get("cases", {}).items():
        buses = tuple(int(b) for b in spec["buses"])
        shares = spec.get("shares")
        where = f"hosting_capacity.cases.{name}"
        if shares is not None and len(shares) != len(buses):
            raise InputError(f"{where}.shares has {len(shares)} values for {len(buses)} buses")
        if len(set(buses)) != len(buses):
            raise InputError(f"{where}.buses = {list(buses)} names a bus twice")
        weights = np.ones(len(buses)) if shares is None else np.asarray(shares, float)
        if weights.sum() <= 0:
            raise InputError(f"{where}.shares = {shares} must have a positive sum")
        edges = spec.get("edges", "both")
        if spec.get("mode", "common") == "each":
            for bus in buses:
                out[f"{name}-bus{bus}"] = Case(f"{name}-bus{bus}", spec["scenario"], (bus,), (1.0,), edges, buses)
        else:
            split = tuple(float(w) for w in weights / weights.sum())
            out[name] = Case(name, spec["scenario"], buses, split, edges)
    return out


def hosted_settings(settings: Settings, case: Case, max_scale_mw: float) -> Settings:
    """``settings`` with the case's PV units (``host<bus>``, rated share x the largest scale, unity
    power factor) in place of the scenario's PV at those buses (and at ``clears``)."""
    kept = tuple(u for u in settings.pv if u.bus not in case.buses and u.bus not in case.clears)
    hosted = tuple(
        PVUnit(f"host{bus}", bus, share * max_scale_mw, None, 1.0, 0.0)
        for bus, share in zip(case.buses, case.shares, strict=True)
    )
    return replace(settings, pv=kept + hosted)


def hosting_capacity(
    feeder: xr.Dataset,
    profiles: xr.Dataset,
    settings: Settings | Mapping[str, Any],
    case: Case,
    *,
    fleet: xr.Dataset | None = None,
    travel: xr.Dataset | None = None,
    max_scale_mw: float = 50.0,
    tolerance_mw: float = 0.01,
    v_tolerance_pu: float = 0.0,
) -> xr.Dataset:
    """The LinDistFlow and AC hosting capacity of ``case`` (see the module docstring): one dataset
    with every AC trial, the voltages at both capacities and, in ``attrs``, the capacities, the
    binding bus and step of each, the status and the seconds of every stage together."""
    import pyomo.environ as pyo

    from feederflex.model import ScenarioData, build_model
    from feederflex.solution import solution_dataset
    from feederflex.solve import Session

    began = time.perf_counter()
    base = as_settings(settings)
    ev = None if fleet is None else fleet.ev_p_mw.transpose("time", "bus").values
    missing = sorted(set(case.buses) - {int(b) for b in feeder.bus.values})
    if missing:  # before the scenario's checks, which would name the hosted PV unit instead of the case
        raise InputError(f"hosting_capacity.cases.{case.name}.buses: {missing} are not buses of the feeder")
    data = ScenarioData(feeder, profiles, hosted_settings(base, case, max_scale_mw), ev, travel, fleet)
    check_inputs(data)
    m = build_model(data)
    hosted = [f"host{b}" for b in case.buses]
    blk = pyo.Block()
    m.hosting = blk
    blk.scale_mw = pyo.Var(bounds=(0.0, max_scale_mw))
    blk.follows = pyo.Constraint(
        hosted,
        list(data.steps),
        rule=lambda b, u, t: m.pv.p_mw[u, t] == b.scale_mw / max_scale_mw * m.pv.avail_mw[u, t],
    )
    for (u, t), var in m.pv.p_mw.items():  # the scenario's other PV runs at its available power
        if u not in hosted:
            var.fix(float(pyo.value(m.pv.avail_mw[u, t])))
    under = [*m.net.s_under.values()] if case.edges == "both" else []
    slacks = [*under, *m.net.s_over.values(), *m.net.s_overload.values()]
    for var in slacks:
        var.fix(0.0)
    m.objective.deactivate()
    blk.objective = pyo.Objective(expr=-blk.scale_mw)
    session = Session(m, data.settings.solver)
    ldf = session.solve(f"hosting {case.name}: LinDistFlow capacity", refine=False)
    attrs: dict[str, Any] = {"case": case.name, "scenario": case.scenario, "ldf_status": ldf.status.value}
    attrs["ldf_mip_gap"] = float(ldf.mip_gap)  # "feasible": the time limit ended the proof; the bound is above
    attrs["ldf_bound_mw"] = -float(ldf.bound) if math.isfinite(ldf.bound) else math.nan
    attrs.update({"buses": list(case.buses), "shares": list(case.shares), "max_scale_mw": max_scale_mw})
    attrs["edges"] = case.edges
    attrs.update({"tolerance_mw": tolerance_mw, "v_tolerance_pu": v_tolerance_pu})
    v_ldf = np.full((len(data.steps), len(data.buses)), np.nan)
    if ldf.status.has_solution:
        s_ldf = float(pyo.value(blk.scale_mw))
        ds = solution_dataset(m, data, ldf)
        v_ldf = ds.v_pu.values
        attrs.update(binding(ds, "ldf", edges=case.edges))
        attrs["ldf_capacity_mw"] = s_ldf
        attrs["ldf_at_scale_bound"] = int(s_ldf >= max_scale_mw * (1 - 1e-9))
    else:
        s_ldf = math.nan
        attrs["ldf_capacity_mw"] = math.nan
        attrs["ldf_note"] = "; ".join(ldf.diagnostics) or f"LinDistFlow stage ended {ldf.status.value}"
    for var in slacks:
        var.unfix()
    if ldf.status.has_solution:  # the design and storage modes at the LinDistFlow capacity: LP trials
        session.fix([v for v in m.component_data_objects(pyo.Var) if v.is_integer() and not v.fixed])
    blk.objective.deactivate()
    m.objective.activate()
    trials = _ac_search(m, data, session, s_ldf, (max_scale_mw, tolerance_mw, v_tolerance_pu), case.edges)
    passed = [t for t in trials if t["passed"]]
    best = max(passed, key=lambda t: t["scale_mw"]) if passed else None
    attrs["ac_capacity_mw"] = best["scale_mw"] if best else math.nan
    if best is not None:
        attrs.update(binding(best["solution"], "ac", best["ac"], case.edges))
    attrs["seconds"] = time.perf_counter() - began  # wall time of the whole case: build, every solve and AC check
    attrs["highs_stages"] = len(session.stages)
    attrs["highs_seconds"] = float(sum(stage.highs_seconds for stage in session.stages))
    return _dataset(data, trials, v_ldf, best, attrs)


def _ac_search(
    m: pyo.ConcreteModel,
    data: ScenarioData,
    session: Session,
    start: float,
    limits: tuple[float, float, float],
    edges: str,
) -> list[dict[str, Any]]:
    """AC trials: up by 10 % from ``start`` while they pass (down to zero if it fails), then
    bisection to ``tolerance_mw``; ``limits`` = (largest scale, tolerance MW, voltage tolerance pu)."""
    from feederflex import acpf

    max_scale_mw, tolerance_mw, v_tolerance_pu = limits
    net = acpf.ac_network(data.feeder, float(data.settings.grid.substation_v_pu))
    trials: list[dict[str, Any]] = []

    def passes(scale: float) -> bool:
        trial = _ac_trial(m, data, session, net, scale, v_tolerance_pu, edges)
        trials.append(trial)
        return bool(trial["passed"])

    if math.isfinite(start) and passes(start):
        lo, hi = start, math.inf
        while hi == math.inf:
            scale = min(max_scale_mw, lo * 1.1 + tolerance_mw)
            if scale <= lo:
                return trials  # passes at the largest scale: the capacity is at least that
            if passes(scale):
                lo = scale
            else:
                hi = scale
    else:
        lo, hi = 0.0, start if math.isfinite(start) else max_scale_mw
        if not passes(0.0):
            return trials
    while hi - lo > tolerance_mw:
        mid = 0.5 * (lo + hi)
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return trials


def _ac_trial(
    m: pyo.ConcreteModel,
    data: ScenarioData,
    session: Session,
    net: acpf.ACNet,
    scale: float,
    v_tol: float,
    edges: str,
) -> dict[str, Any]:
    """Operate the day with PV fixed at ``scale`` and check it in AC."""
    from feederflex import acpf
    from feederflex.solution import solution_dataset

    m.hosting.scale_mw.fix(scale)
    result = session.solve(f"hosting: operation at {scale:.4f} MW")
    ds = solution_dataset(m, data, result)
    trial: dict[str, Any] = {"scale_mw": scale, "status": result.status.value, "solution": ds}
    if not result.status.has_solution:
        return {**trial, "passed": False, "ac": None, "v_ac_max": math.nan, "v_ac_min": math.nan, "loading": math.nan}
    ac = acpf.ac_check(data.feeder, ds, tolerance_pu=v_tol, net=net)
    loading = float(ac.attrs["max_loading_pct"])
    overloaded = data.settings.grid.branch_limits and math.isfinite(loading) and loading > 100.0 + 1e-6
    beyond = ac.v_ac_over_pu.values if edges == "upper" else ac.v_ac_over_pu.values + ac.v_ac_under_pu.values
    ok = int(ac.attrs["ac_nonconverged_steps"]) == 0 and not bool((beyond > v_tol).any())
    log.info("hosting trial %.4f MW: %s", scale, "passes" if ok and not overloaded else "fails")
    return {
        **trial,
        "passed": ok and not overloaded,
        "ac": ac,
        "v_ac_max": float(np.nanmax(ac.v_ac_pu.values)),
        "v_ac_min": float(np.nanmin(ac.v_ac_pu.values)),
        "loading": loading,
        "v_model_max": float(np.nanmax(ds.v_pu.values)),
    }


def binding(ds: xr.Dataset, prefix: str, ac: xr.Dataset | None = None, edges: str = "both") -> dict[str, Any]:
    """The bus and step closest to the voltage band (smallest margin to an edge that counts), in the
    model's voltages or, with ``ac``, the AC ones; and the most loaded branch."""
    v = ds.v_pu.values if ac is None else ac.v_ac_pu.values
    v_min, v_max = float(ds.attrs["v_min_pu"]), float(ds.attrs["v_max_pu"])
    margin = v_max - v if edges == "upper" else np.minimum(v_max - v, v - v_min)
    margin[:, ds.bus.values == int(ds.attrs["root_bus"])] = np.inf  # the substation is held
    t, b = np.unravel_index(int(np.nanargmin(margin)), margin.shape)
    out = {
        f"{prefix}_binding_bus": int(ds.bus.values[b]),
        f"{prefix}_binding_time": str(np.datetime_as_string(ds.time.values[t], unit="m")),
        f"{prefix}_binding_edge": "upper" if v[t, b] >= 0.5 * (v_min + v_max) else "lower",
        f"{prefix}_binding_margin_pu": float(margin[t, b]),
    }
    if ac is not None and np.isfinite(ac.loading_pct.values).any():
        tt, br = np.unravel_index(int(np.nanargmax(ac.loading_pct.values)), ac.loading_pct.shape)
        out[f"{prefix}_max_loading_branch"] = int(ac.branch.values[br])
        out[f"{prefix}_max_loading_pct"] = float(ac.loading_pct.values[tt, br])
    return out


def _dataset(
    data: ScenarioData, trials: list[dict[str, Any]], v_ldf: np.ndarray, best: dict | None, attrs: dict
) -> xr.Dataset:
    """Trials in the order they ran, the voltages at both capacities and the attributes."""
    v_ac = best["ac"].v_ac_pu.values if best else np.full_like(v_ldf, np.nan)
    ds = xr.Dataset(
        {
            "trial_scale_mw": ("trial", np.array([t["scale_mw"] for t in trials], float)),
            "trial_passed": ("trial", np.array([int(t["passed"]) for t in trials], int)),
            "trial_status": ("trial", np.array([t["status"] for t in trials], dtype=str)),
            "trial_v_ac_max_pu": ("trial", np.array([t["v_ac_max"] for t in trials], float)),
            "trial_v_ac_min_pu": ("trial", np.array([t["v_ac_min"] for t in trials], float)),
            "trial_v_model_max_pu": ("trial", np.array([t.get("v_model_max", math.nan) for t in trials], float)),
            "trial_max_loading_pct": ("trial", np.array([t["loading"] for t in trials], float)),
            "v_ldf_pu": (("time", "bus"), v_ldf),
            "v_ac_pu": (("time", "bus"), v_ac),
        },
        coords={"trial": np.arange(len(trials)), "time": data.profiles.time.values, "bus": data.buses},
    )
    units = {"trial_scale_mw": "MW (total PV rating of the case)", "v_ldf_pu": "pu (LinDistFlow at its capacity)"}
    units["v_ac_pu"] = "pu (AC at the AC capacity)"
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    ds.attrs.update({**attrs, "v_min_pu": float(data.settings.grid.v_min_pu)})
    ds.attrs["v_max_pu"] = float(data.settings.grid.v_max_pu)
    return ds


def hosting_table(results: Mapping[str, xr.Dataset]) -> list[dict[str, Any]]:
    """One row per case: capacities, what binds, trials and seconds."""
    keys = [
        *("scenario", "ldf_capacity_mw", "ac_capacity_mw", "ldf_binding_bus", "ldf_binding_time"),
        *("ldf_binding_edge", "ac_binding_bus", "ac_binding_time", "ac_binding_edge", "ldf_status"),
        *("ldf_mip_gap", "ldf_bound_mw", "seconds", "highs_seconds"),
    ]
    rows = []
    for name, ds in results.items():
        row: dict[str, Any] = {"case": name, "buses": " ".join(map(str, np.atleast_1d(ds.attrs["buses"])))}
        row.update({k: ds.attrs.get(k, math.nan) for k in keys})
        row["ac_trials"] = int(ds.sizes["trial"])
        rows.append(row)
    return rows
