"""Routing the mobile storage units: parked baseline, a search (unit by unit or price-ranked
relocations, :mod:`feederflex.relocation`), full model."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from feederflex.model.mess import allow_moves, departure_stride, forbid_moves, keep_routes
from feederflex.relocation import relocation_search
from feederflex.settings import Settings
from feederflex.solve import Session, SolveResult, SolveStatus, relative_gap, restore, snapshot, state

log = logging.getLogger(__name__)


@dataclass
class Parked:
    """The MESS units' parked baseline: its result and the variable values of its schedule."""

    result: SolveResult
    values: ComponentMap


def solve_routing(
    m: pyo.ConcreteModel, settings: Settings, session: Session, prefix: str = ""
) -> tuple[SolveResult, Parked]:
    """Route the mobile units: fixed baseline, search, full model.

    1. Solve with every unit parked at its initial station (the "fixed" baseline).
    2. Search, as ``mess.search.method`` says. ``unit_milp``: a large-neighbourhood search that
       frees one unit's trips at a time, the others keeping their current routes, and re-solves
       from the incumbent (``mess.search.unit_time_s`` each), for up to ``mess.search.rounds``
       rounds or until a round improves nothing. ``lp_moves``: relocations of one unit ranked by
       the nodal prices of the incumbent's LP and judged by LPs with the routes fixed, within
       ``mess.search.time_s`` (:func:`feederflex.relocation.relocation_search`; units that a
       planning scenario sizes and places use ``unit_milp``). Trips in the search leave only every
       ``mess.search.departure_every_minutes`` (hourly routing of a quarter-hour model: a quarter
       of the trip variables).
    3. Solve the full routing model from the best schedule within ``solver.time_limit_s``: this
       may improve it further and gives the proven bound and gap that are reported.

    The result is never worse than the baseline: every solve starts from the incumbent (HiGHS
    setSolution) and a solve that ends worse is discarded. Returns the result and the baseline.
    """
    search = settings.mess.search
    forbid_moves(m)
    baseline = session.solve(f"{prefix}MESS parked baseline")
    parked = Parked(baseline, state(m))
    log.info("fixed MESS baseline: %s, objective %.6g", baseline.status.value, baseline.objective)
    if not baseline.status.has_solution:
        allow_moves(m)
        return session.solve(f"{prefix}MESS routing"), parked
    best = baseline.objective
    incumbent = snapshot(m)
    if search.method == "lp_moves" and not len(m.mess.start):
        if float(search.time_s) > 0:
            moved = relocation_search(m, settings, session, best, incumbent, prefix)
            best, incumbent = moved.objective, moved.values
            log.info(
                "relocation search: %.6g after %d moves solved, %d kept (%s)",
                best,
                moved.evaluated,
                moved.kept,
                moved.stopped,
            )
        return _full_model(m, settings, session, best, incumbent, prefix), parked
    units = list(m.mess.U)
    every = departure_stride(search.departure_every_minutes, m.mess.step_minutes)
    for round_no in range(int(search.rounds)):
        improved = False
        for unit in units:
            allow_moves(m, unit, every)
            trial = session.solve(
                f"{prefix}MESS search {round_no + 1} {unit}", start=incumbent, time_limit_s=float(search.unit_time_s)
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
    return _full_model(m, settings, session, best, incumbent, prefix), parked


def _full_model(
    m: pyo.ConcreteModel, settings: Settings, session: Session, best: float, incumbent: ComponentMap, prefix: str
) -> SolveResult:
    """The full routing model from the search's schedule ``incumbent`` (objective ``best``): its
    bound, and a better schedule if it finds one; the search's schedule when it does not."""
    solver = settings.solver
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
        result.status = SolveStatus.OPTIMAL if result.mip_gap <= float(solver.mip_gap) else SolveStatus.FEASIBLE
        if not math.isfinite(result.mip_gap):
            result.gap_note = "the full routing model gave no bound"
    return result
