"""Multi-objective studies: payoff table, weighted sums, fuzzy min-max compromise, epsilon fronts.

Every method is an ordinary scenario solve with a different ``objective`` settings block (see
:mod:`feederflex.model.objectives`): weights, scales, bounds (epsilon constraints) and fuzzy
memberships. The functions here turn a study's ``multiobjective`` section and a payoff table into
those settings, and gather the solved points into datasets.

- Payoff table (one row per objective): optimise the objective alone (the study's ``penalties``,
  soft constraints such as the voltage-violation slack, keep their weights), then, when
  ``lexicographic``, optimise the scenario's weighted objective without making the first one worse.
  The best value of each objective is its row's value; its worst over the rows is the nadir estimate.
- Front (epsilon constraint): at fraction phi in [0, 1], the swept objective is held no worse than
  best + phi (worst - best) while the other objective is optimised; the second (lexicographic)
  stage then improves the swept objective without worsening any term of the first, so no point
  is dominated by another point (up to the MIP gap).
- Fuzzy compromise (003 eq. 21-22): membership mu_k = (f_k - best_k) / (reference_k - best_k),
  minimise the largest (plus 1e-3 x their sum to pick among equal maxima).
- Weighted sum: sum_k w_k f_k / range_k with ``normalise`` (range from the payoff table).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from feederflex.errors import MultiObjectiveError
from feederflex.model.catalogue import CATALOGUE, SIGN
from feederflex.settings import Settings, as_settings

log = logging.getLogger(__name__)


HOLD_TOLERANCE = 0.01  # relative: an objective without a membership range is held this close to its best


def fractions(points: int | list[float]) -> list[str]:
    """Front point names: fractions of the swept range, formatted so the same fraction always has
    the same name (going from 3 to 5 points re-uses 0, 0.5 and 1)."""
    values = np.linspace(0.0, 1.0, points) if isinstance(points, int) else np.asarray(points, float)
    return [f"{v:.4f}" for v in sorted(set(np.round(values, 4)))]


def payoff_objectives(mo: Mapping, scenario: str) -> list[str]:
    """Objectives with a payoff row for ``scenario``: those its fronts and compromises trade."""
    names: list[str] = []
    for front in mo["fronts"].values():
        if front["scenario"] == scenario:
            names += [front["optimise"], front["sweep"]]
    for comp in mo["compromises"].values():
        if comp["scenario"] == scenario:
            if comp["method"] == "fuzzy":
                names += comp["objectives"]
            elif comp["normalise"]:
                names += [n for n, w in comp["weights"].items() if w != 0]
    return sorted(set(names), key=list(CATALOGUE).index)


def _objective(
    settings: Settings,
    weights: Mapping[str, float],
    penalties: Sequence[str],
    others: str = "none",
    traded: tuple = (),
    **changes: Any,
) -> Settings:
    """Settings with a new objective block: ``weights``, plus the scenario's weights of the
    penalty terms (and of every other term with ``others: weighted``) that are not traded;
    ``changes`` replace further parts of the block (``bounds`` are added to the kept ones)."""
    base = settings.objective.weights
    keep = set(penalties) | (set(base) if others == "weighted" else set())
    new = {n: float(base[n]) for n in keep if n not in traded and n in base and base[n] != 0}
    new.update({n: float(w) for n, w in weights.items()})
    # the scenario's own bounds hold the other objectives fixed ("others fixed"), unless traded
    bounds = {n: v for n, v in settings.objective.bounds.items() if n not in traded}
    bounds.update(changes.pop("bounds", {}))
    objective = replace(settings.objective, weights=new, bounds=bounds, scales={}, fuzzy={})
    return replace(settings, objective=replace(objective, **changes))


def payoff_settings(settings: Settings, objective: str, penalties: list[str]) -> Settings:
    """First stage of a payoff row: ``objective`` alone, penalties kept."""
    return _objective(settings, {objective: 1.0}, penalties, traded=(objective,))


def second_stage(first: Settings, solution: xr.Dataset, weights: Mapping[str, float], penalties: list[str]) -> Settings:
    """Lexicographic second stage: optimise ``weights`` while every term weighted in ``first`` is no
    worse than it was in ``solution`` (plus the MIP gap and 1e-6 relative), ``first``'s bounds kept.
    ``penalties`` (soft constraints that are not traded here) are not bounded: they keep their weight."""
    gap = max(float(first.solver.mip_gap), 1e-6)
    bounds = dict(first.objective.bounds)
    kept = {n: w for n, w in first.objective.weights.items() if n in penalties}
    for name, weight in first.objective.weights.items():
        if weight == 0 or name in kept:
            continue
        value = float(solution.attrs[f"objective_{name}"])
        slack = gap * max(1.0, abs(value))
        bounds[name] = value + SIGN[CATALOGUE[name].sense] * slack
    chosen = kept | {n: float(w) for n, w in weights.items() if w != 0}
    return replace(first, objective=replace(first.objective, weights=chosen, bounds=bounds, fuzzy={}))


def solve_lexicographic(
    solve: Callable[..., xr.Dataset],
    first: Settings,
    weights: Mapping[str, float] | None,
    penalties: Sequence[str] = (),
) -> xr.Dataset:
    """Solve ``first``; with ``weights``, solve the second stage from it (see :func:`second_stage`),
    starting from the first stage's booked AC losses and voltage band (``ac_state``).

    The returned solution is the second stage's when it has a schedule, else the first's; its
    attributes name the stage reported and the first stage's status and objective values."""
    one = solve(first)
    stage = {f"first_stage_{k}": v for k, v in one.attrs.items() if k.startswith("objective_") or k == "solver_status"}
    if weights is None or not np.isfinite(float(one.attrs["solver_objective"])):
        return one.assign_attrs(stage, mo_stage="first")
    two = solve(second_stage(first, one, weights, list(penalties)), ac_state=one)
    # the second stage's record includes the first stage's solves: its seconds are the whole solve's
    first_stages = [
        dict(s, name=f"lexicographic first stage: {s['name']}") for s in json.loads(one.attrs["solver_stages"])
    ]
    stages = first_stages + json.loads(two.attrs["solver_stages"])
    two.attrs.update(
        solver_stages=json.dumps(stages),
        solver_solve_seconds=float(sum(s["highs_seconds"] for s in stages)),
        solver_wall_seconds=float(sum(s["wall_seconds"] for s in stages)),
        build_seconds=float(one.attrs.get("build_seconds", 0.0)) + float(two.attrs.get("build_seconds", 0.0)),
    )
    ac = str(two.attrs.get("ac_correction_status", "disabled"))
    if not np.isfinite(float(two.attrs["solver_objective"])) or ac not in ("converged", "disabled"):
        # the second stage's bounds come from the first stage's AC-corrected schedule; when its own
        # AC correction cannot hold them, its schedule is not AC-secure: keep the first stage's
        log.warning(
            "second stage ended %s with AC correction %s; reporting the first stage", two.attrs["solver_status"], ac
        )
        return one.assign_attrs(
            stage, mo_stage="first", mo_second_stage_status=f"{two.attrs['solver_status']}, AC correction {ac}"
        )
    return two.assign_attrs(stage, mo_stage="second")


def scenario_solver(
    network: str,
    profiles: str | list[str],
    fleet: str | None,
    travel: str | None,
    solver_log: str | None = None,
) -> Callable[..., xr.Dataset]:
    """A function (settings, ac_state=None) -> solution for one scenario's prepared files (read once;
    several profile files are the representative days of ``planning.days``)."""
    from feederflex.io import read_dataset, read_profiles
    from feederflex.schedule import solve_scenario

    feeder, day = read_dataset(network), read_profiles(profiles)
    ev = read_dataset(fleet) if fleet else None
    trips = read_dataset(travel) if travel else None
    return lambda settings, ac_state=None: solve_scenario(
        feeder, day, settings, fleet=ev, travel=trips, solver_log=solver_log, ac_state=ac_state
    )


def solve_payoff_row(
    solve: Callable[..., xr.Dataset],
    settings: Settings | Mapping[str, Any],
    objective: str,
    penalties: list[str],
    lexicographic: bool,
) -> tuple[xr.Dataset, Settings]:
    """One payoff row: ``objective`` alone (penalties kept), then, when ``lexicographic``, the
    scenario's weighted objective without worsening it. Returns the solution and first-stage settings."""
    settings = as_settings(settings)
    first = payoff_settings(settings, objective, penalties)
    untraded = [n for n in penalties if n != objective]
    second = settings.objective.weights if lexicographic else None
    return solve_lexicographic(solve, first, second, untraded), first


def solve_front_point(
    solve: Callable[..., xr.Dataset],
    settings: Settings | Mapping[str, Any],
    front: Mapping,
    payoff: xr.Dataset,
    fraction: float,
    penalties: list[str],
    lexicographic: bool,
) -> tuple[xr.Dataset, Settings]:
    """One epsilon-constraint point (see :func:`front_point_settings`), then, when ``lexicographic``,
    the swept objective improved without worsening the first stage. Returns solution and settings."""
    first = front_point_settings(as_settings(settings), front, payoff, fraction, penalties)
    untraded = [n for n in penalties if n not in (front["optimise"], front["sweep"])]
    second = {front["sweep"]: 1.0} if lexicographic else None
    return solve_lexicographic(solve, first, second, untraded), first


def solve_compromise(
    solve: Callable[..., xr.Dataset],
    settings: Settings | Mapping[str, Any],
    comp: Mapping,
    payoff: xr.Dataset | None,
    penalties: list[str],
    reference: xr.Dataset | None = None,
) -> tuple[xr.Dataset, Settings]:
    """A fuzzy min-max or weighted-sum compromise; a fuzzy one records ``membership_<term>`` and
    ``membership_max`` on the solution. Returns the solution and the settings solved."""
    settings = as_settings(settings)
    if comp["method"] == "fuzzy":
        if payoff is None:
            raise MultiObjectiveError("a fuzzy compromise needs the scenario's payoff table")
        chosen = fuzzy_settings(settings, comp, payoff, penalties, reference)
    else:
        chosen = weighted_settings(settings, comp, payoff, penalties)
    solution = solve(chosen)
    fuzzy = chosen.objective.fuzzy
    if fuzzy:
        mu = memberships(solution, fuzzy)
        solution.attrs.update({f"membership_{k}": v for k, v in mu.items()})
        solution.attrs["membership_max"] = max(mu.values())
    return solution, chosen


def payoff_table(rows: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """Payoff table from single-objective solutions: ``value(optimised, objective)`` for every
    catalogue term, ``best`` and ``worst`` (nadir estimate) of each optimised objective."""
    names = list(rows)
    terms = list(CATALOGUE)
    value = np.array([[float(rows[r].attrs[f"objective_{t}"]) for t in terms] for r in names])
    sign = np.array([SIGN[CATALOGUE[t].sense] for t in terms])
    signed = value * sign
    best = np.array([value[names.index(t), k] if t in names else np.nan for k, t in enumerate(terms)])
    with np.errstate(all="ignore"):
        worst = np.nanmax(signed, axis=0) * sign
    status = [str(rows[r].attrs["solver_status"]) for r in names]
    ds = xr.Dataset(
        {
            "value": (("optimised", "objective"), value),
            "best": ("objective", best),
            "worst": ("objective", worst),
            "status": ("optimised", np.array(status, dtype=object)),
        },
        coords={
            "optimised": names,
            "objective": terms,
            "unit": ("objective", [CATALOGUE[t].unit for t in terms]),
            "sense": ("objective", [CATALOGUE[t].sense for t in terms]),
        },
    )
    ds.attrs["description"] = (
        "row r: every objective's value when r is optimised (lexicographically: then the rest "
        "without worsening r); best = r's own value on its row, worst = worst over the rows"
    )
    bad = [r for r, s in zip(names, status, strict=True) if s not in ("optimal", "feasible")]
    if bad:
        ds.attrs["warning"] = f"rows without a schedule: {bad}; best and worst of those objectives are not known"
    return ds


def payoff_csv(payoff: xr.Dataset) -> pd.DataFrame:
    table = payoff.value.to_pandas()
    table.loc["best"] = payoff.best.values
    table.loc["worst"] = payoff.worst.values
    table.insert(0, "status", list(payoff.status.values) + ["", ""])
    return table


def _range(payoff: xr.Dataset, name: str) -> tuple[float, float]:
    best = float(payoff.best.sel(objective=name))
    worst = float(payoff.worst.sel(objective=name))
    if not (math.isfinite(best) and math.isfinite(worst)):
        raise MultiObjectiveError(f"payoff table has no best/worst value for {name!r} (a payoff row failed?)")
    return best, worst


def front_point_settings(
    settings: Settings, front: Mapping, payoff: xr.Dataset, fraction: float, penalties: list[str]
) -> Settings:
    """First stage of the front point at ``fraction`` of the swept objective's payoff range."""
    optimise, sweep = front["optimise"], front["sweep"]
    best, worst = _range(payoff, sweep)
    epsilon = best + float(fraction) * (worst - best)
    weight = float(settings.objective.weights.get(optimise, 0.0)) or 1.0
    weights = {optimise: weight if front["others"] == "weighted" else 1.0}
    return _objective(settings, weights, penalties, front["others"], (optimise, sweep), bounds={sweep: epsilon})


def fuzzy_settings(
    settings: Settings, comp: Mapping, payoff: xr.Dataset, penalties: list[str], reference: xr.Dataset | None = None
) -> Settings:
    """Fuzzy min-max compromise: best from the payoff table, reference from the payoff table's
    worst value or, with a reference scenario, from its solution."""
    fuzzy: dict[str, tuple[float, float]] = {}
    held: dict[str, float] = {}
    for name in comp["objectives"]:
        best, worst = _range(payoff, name)
        ref = float(reference.attrs[f"objective_{name}"]) if reference is not None else worst
        if SIGN[CATALOGUE[name].sense] * (ref - best) > 1e-9 * max(1.0, abs(best)):
            fuzzy[name] = (best, ref)
        else:  # no range to judge (every row reaches the best): hold it within 1 % of there instead
            held[name] = best + SIGN[CATALOGUE[name].sense] * HOLD_TOLERANCE * max(1.0, abs(best))
    return _objective(settings, {}, penalties, comp["others"], tuple(comp["objectives"]), fuzzy=fuzzy, bounds=held)


def weighted_settings(settings: Settings, comp: Mapping, payoff: xr.Dataset | None, penalties: list[str]) -> Settings:
    """Weighted sum of ``comp['weights']``, each term divided by its payoff range when ``normalise``."""
    weights = {n: float(w) for n, w in comp["weights"].items() if w != 0}
    scales = {}
    if comp["normalise"]:
        if payoff is None:
            raise MultiObjectiveError("a normalised weighted sum needs the scenario's payoff table")
        for name in weights:
            best, worst = _range(payoff, name)
            scales[name] = abs(worst - best) if abs(worst - best) > 1e-9 else 1.0
    return _objective(settings, weights, penalties, comp["others"], tuple(comp["weights"]), scales=scales)


def memberships(solution: xr.Dataset, fuzzy: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Membership of each fuzzy objective (003 eq. 21, not clipped) on a solution."""
    out = {}
    for name, (best, ref) in fuzzy.items():
        span = SIGN[CATALOGUE[name].sense] * (ref - best)
        value = float(solution.attrs[f"objective_{name}"])
        out[name] = SIGN[CATALOGUE[name].sense] * (value - best) / span if span > 0 else 0.0
    return out


def dominated(values: np.ndarray, senses: list[str], rel_tol: float = 1e-6) -> np.ndarray:
    """Which rows of ``values(point, objective)`` another row dominates: no worse in every
    objective and better in one by more than ``rel_tol`` relative (plus 1e-9 absolute)."""
    signed = values * np.array([SIGN[s] for s in senses])  # all minimised
    tol = rel_tol * np.maximum(1.0, np.abs(signed)) + 1e-9
    out = np.zeros(len(values), dtype=bool)
    for i in range(len(values)):
        for j in range(len(values)):
            if i != j and np.all(signed[j] <= signed[i] + tol[i]) and np.any(signed[j] < signed[i] - tol[i]):
                out[i] = True
    return out


def front_dataset(
    points: Mapping[str, xr.Dataset], files: Mapping[str, str], front: Mapping, payoff: xr.Dataset
) -> xr.Dataset:
    """One front: every point's objective values, epsilon, status and schedule summary; the full
    schedule is in the point's solution file (``solution_file``)."""
    names = list(points)
    terms = list(CATALOGUE)
    value = np.array([[float(points[p].attrs[f"objective_{t}"]) for t in terms] for p in names])
    best, worst = _range(payoff, front["sweep"])
    pair = [front["optimise"], front["sweep"]]
    cols = [terms.index(n) for n in pair]
    solved = np.array([np.isfinite(value[k, cols]).all() for k in range(len(names))])
    # strict check (1e-6 relative): a point whose solve ended with a MIP gap can be dominated, and
    # should be reported so; its gap is next to it
    flags = np.zeros(len(names), dtype=bool)
    if solved.any():
        flags[solved] = dominated(value[solved][:, cols], [CATALOGUE[n].sense for n in pair], 1e-6)
    first = next(iter(points.values()))
    ds = xr.Dataset(
        {
            "value": (("point", "objective"), value),
            "fraction": ("point", np.array([float(p) for p in names])),
            "epsilon": ("point", np.array([best + float(p) * (worst - best) for p in names])),
            "status": ("point", np.array([str(points[p].attrs["solver_status"]) for p in names], dtype=object)),
            "mip_gap": ("point", np.array([float(points[p].attrs.get("solver_mip_gap", np.nan)) for p in names])),
            "dominated": ("point", flags),
            "solution_file": ("point", np.array([files[p] for p in names], dtype=object)),
            "p_grid_mw": (("point", "time"), np.stack([points[p].p_grid_mw.values for p in names])),
            "v_min_pu": (("point", "time"), np.stack([points[p].v_pu.min("bus").values for p in names])),
            "v_max_pu": (("point", "time"), np.stack([points[p].v_pu.max("bus").values for p in names])),
        },
        coords={
            "point": names,
            "objective": terms,
            "time": first.time.values,
            "unit": ("objective", [CATALOGUE[t].unit for t in terms]),
            "sense": ("objective", [CATALOGUE[t].sense for t in terms]),
        },
    )
    ds.attrs.update(
        {
            "optimise": front["optimise"],
            "sweep": front["sweep"],
            "others": front["others"],
            "scenario": front["scenario"],
            "sweep_best": best,
            "sweep_worst": worst,
            "description": "epsilon-constraint front: at each point the swept objective is held no worse "
            "than epsilon = best + fraction x (worst - best) from the payoff table",
        }
    )
    return ds
