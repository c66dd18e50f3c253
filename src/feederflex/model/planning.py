"""Siting and sizing of fixed and mobile batteries (001 section 3, upper layer), on top of the
scenario's operation.

Every candidate c (a bus of ``planning.fixed.candidates`` or ``planning.mobile.candidates``) is a
battery of the fixed-storage block (:mod:`feederflex.model.storage`) whose rating is a decision:

    p_min y_c <= P_c <= p_max y_c,   y_c binary (built),   min_units <= sum_kind y_c <= max_units,
    E_c = h P_c (energy-to-power ratio h),   p_ch + p_dis <= P_c,
    soc_min E_c <= e_t <= soc_max E_c,   e_{-1} = soc_init E_c,

so a candidate not built has rating, energy and power exactly zero, and nothing is bilinear. A
mobile unit is parked at its access bus for the day (001's "access node"), so it operates like a
fixed one; it differs in size range and costs. With ``planning.mobile.moving``, the mobile
candidates are instead ``max_units`` units of the MESS block (:mod:`feederflex.model.mess`) that
start at a station the model chooses (binaries x_s, sum_s x_s = y) and move on the time-space
network, with sum over stations of p_ch + p_dis <= P and the same energy scaling.

Annual costs (001 eq. 13-17), in ``planning.currency``:

    f1 = Q sum_c C P_c,  Q = q (1 + q)^y / ((1 + q)^y - 1)      (investment per kW C, eq. 14)
    f2 = o sum_c C P_c                                           (O&M fraction o per year, eq. 15)
    f3 = days_per_year x the day's energy purchase                (eq. 16)
    f4 = 12 R sum_{c mobile} y_c                                  (rent per month R, eq. 17)
    planning_cost = w1 f1 + w2 f2 + w3 f3 + w4 f4                 (eq. 13)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model.extract import Reader, values, variable
from feederflex.settings import PlannedStorage, Planning

KINDS = ("fixed", "mobile")


@dataclass(frozen=True)
class Candidate:
    """A battery a planning scenario may build: its fixed-storage unit name, kind and bus."""

    name: str
    kind: str  # "fixed" or "mobile"
    bus: int  # -1 for a moving unit: it starts at the station the model chooses
    spec: PlannedStorage
    moving: bool = False


def capital_recovery_factor(rate: float, years: float) -> float:
    """q (1 + q)^y / ((1 + q)^y - 1), 001 eq. 14; 1 / y without interest."""
    if rate == 0:
        return 1.0 / years
    growth = (1.0 + rate) ** years
    return rate * growth / (growth - 1.0)


def candidates(planning: Planning, buses: list[int], root: int) -> list[Candidate]:
    """The candidates of a scenario, fixed first, each kind in bus order; none unless enabled."""
    if not planning.enabled:
        return []
    out = []
    for kind in KINDS:
        spec: PlannedStorage = getattr(planning, kind)
        if spec.max_units == 0:
            continue
        if kind == "mobile" and planning.mobile.moving:
            out += [Candidate(f"new_mobile{k}", kind, -1, spec, True) for k in range(1, spec.max_units + 1)]
            continue
        at = sorted(spec.candidates) if spec.candidates is not None else [b for b in buses if b != root]
        out += [Candidate(f"new_{kind}{bus}", kind, int(bus), spec) for bus in at]
    return out


def add_planning(m: pyo.Block, found: list[Candidate], planning: Planning) -> pyo.Block:
    """Add ``m.planning``: ``built`` and ``p_mw`` per candidate, the unit counts and the annual
    cost expressions (an empty block without candidates: every cost is zero)."""
    blk = pyo.Block()
    m.planning = blk
    by_name = {c.name: c for c in found}
    blk.C = pyo.Set(initialize=list(by_name), ordered=True)
    blk.built = pyo.Var(blk.C, within=pyo.Binary)
    blk.p_mw = pyo.Var(blk.C, within=pyo.NonNegativeReals, bounds=lambda b, c: (0.0, by_name[c].spec.p_max_mw))
    blk.size_min = pyo.Constraint(blk.C, rule=lambda b, c: b.p_mw[c] >= by_name[c].spec.p_min_mw * b.built[c])
    blk.size_max = pyo.Constraint(blk.C, rule=lambda b, c: b.p_mw[c] <= by_name[c].spec.p_max_mw * b.built[c])
    kinds = [k for k in KINDS if any(c.kind == k for c in found)]

    def count(b, kind):
        spec: PlannedStorage = getattr(planning, kind)
        built = sum(b.built[c.name] for c in found if c.kind == kind)
        return (spec.min_units, built, spec.max_units)

    blk.count = pyo.Constraint(kinds, rule=count)
    factor = capital_recovery_factor(float(planning.interest_rate), float(planning.lifetime_years))
    invest = sum(1000.0 * by_name[c].spec.cost_per_kw * blk.p_mw[c] for c in blk.C)
    blk.investment_per_yr = pyo.Expression(expr=factor * invest)
    blk.om_per_yr = pyo.Expression(
        expr=sum(by_name[c].spec.om_fraction * 1000.0 * by_name[c].spec.cost_per_kw * blk.p_mw[c] for c in blk.C)
    )
    blk.rental_per_yr = pyo.Expression(expr=sum(12.0 * by_name[c].spec.rental_per_month * blk.built[c] for c in blk.C))
    blk.factor = factor
    blk.candidates = by_name
    return blk


def solution(read: Reader, found: list[Candidate]) -> dict[str, xr.Variable]:
    """Which candidates are built, their power rating and energy (exactly 0 where not built)."""
    names = [c.name for c in found]
    built = np.full(len(names), np.nan)
    p_mw = np.full(len(names), np.nan)
    if read.solved and read.m is not None and names:
        built = np.round(values(read.m.planning.built, [names]))
        p_mw = np.where(built > 0.5, values(read.m.planning.p_mw, [names]), 0.0)
    hours = np.array([c.spec.hours for c in found], float)
    return {
        "plan_built": variable("candidate", built, "1 if built"),
        "plan_p_mw": variable("candidate", p_mw, "MW (power rating; 0 where not built)"),
        "plan_e_mwh": variable("candidate", p_mw * hours, "MWh (energy; 0 where not built)"),
    }
