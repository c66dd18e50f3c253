"""Objective terms: each a named Pyomo Expression with a unit and a sense.

The scenario objective is the weighted sum  sum_k w_k s_k f_k / c_k  (minimised), where s_k = +1
for a term to minimise and -1 for a term to maximise (000 eq. 20: max f1 - f2 - f3) and c_k a
scale (1 unless ``objective.scales`` normalises the term, e.g. by its payoff-table range). On top:

- ``objective.bounds``: a term no worse than a value (<= for a term to minimise, >= to maximise);
  the epsilon constraints of a Pareto front;
- ``objective.fuzzy``: the fuzzy min-max compromise of 003 eq. 21-22, membership
  mu_k = s_k (f_k - best_k) / (s_k (reference_k - best_k)), minimise lambda >= mu_k.

Terms whose value needs auxiliary variables (peak import, squared deviations) are "epigraph"
terms: their variables and constraints are only built when the term is weighted, bounded or
fuzzy, because an epigraph is only tight when it is pushed down. Squares enter as
piecewise-linear outer approximations (tangents); after each solve, :func:`refine` adds tangents
at the solution until the approximation is within ``objective.quadratic.tolerance``. Reported
values (:func:`term_values`) are always exact, computed from the solution; the PWL value the
solver saw and its error are reported next to them (:func:`pwl_errors`).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from feederflex.model.catalogue import CATALOGUE, SIGN
from feederflex.model.data import ScenarioData
from feederflex.settings import Objective, Settings


def used_terms(objective: Objective) -> set[str]:
    """Terms an ``objective`` settings block weights, bounds or puts in its fuzzy compromise."""
    used = {name for name, weight in objective.weights.items() if weight != 0}
    return used | set(objective.bounds) | set(objective.fuzzy)


def net_import_range_mw(data: ScenarioData) -> float:
    """A bound on |net import - any other net import| of the scenario: all load, EV charging and
    storage power one way, all PV and storage power the other (MW); the tangents span it."""
    load = float(data.profiles.load_p_mw.sum("bus").max())
    ev = float(data.ev_p_mw.sum(axis=1).max())
    if data.fleet is not None and "charger_kw" in data.fleet:
        ev = max(ev, float(data.fleet.charger_kw.sum()) / 1000)
    storage = sum(float(u.p_mw) for u in data.settings.fess)
    storage += sum(float(u.p_mw) for u in data.settings.mess.units)
    pv = sum(float(u.p_mw) for u in data.settings.pv)
    return load + ev + pv + 2 * storage


def _square_epigraph(blk: pyo.Block, name: str, index: list, x: dict, lo: float, hi: float, tangents: int) -> pyo.Var:
    """``z[i] >= x[i]^2`` for i in ``index`` by tangents at ``tangents`` points on [lo, hi]; returns z.

    The tangents and the expressions are kept on the block (``_sq``) so that :func:`refine` can
    add more at the solution."""
    z = pyo.Var(index, within=pyo.NonNegativeReals)
    blk.add_component(f"{name}_z", z)
    cuts = pyo.ConstraintList()
    blk.add_component(f"{name}_tangents", cuts)
    for a in np.linspace(lo, hi, max(2, int(tangents))):
        for i in index:
            cuts.add(z[i] >= 2 * float(a) * x[i] - float(a) ** 2)
    blk._sq[name] = (z, x, cuts)
    return z


def add_objectives(m: pyo.Block, data: ScenarioData) -> pyo.Block:
    """Add ``m.terms`` (one Expression per catalogue term) and the objective ``m.objective``.

    Long by design: one statement per equation of the module docstring, in its order, so that the
    block reads as the model it writes.
    """
    dt = data.step_hours
    price = data.profiles.price_usd_per_mwh.values
    cfg = data.settings.objective
    export_factor = float(data.settings.grid.export_price_factor)
    net, pv, fess, mess = m.net, m.pv, m.fess, m.mess
    steps = list(net.T)
    blk = pyo.Block()
    m.terms = blk
    blk._sq = {}
    blk.pv_used_mwh = pyo.Expression(expr=sum(pv.p_mw[u, t] for u in pv.U for t in pv.T) * dt)
    blk.pv_curtailed_mwh = pyo.Expression(expr=sum(pv.avail_mw[u, t] - pv.p_mw[u, t] for u in pv.U for t in pv.T) * dt)
    blk.energy_cost_usd = pyo.Expression(
        expr=sum(float(price[t]) * (net.p_import[t] - export_factor * net.p_export[t]) for t in net.T) * dt
    )
    mess_wear = (
        sum(
            mess.cost_usd_per_mwh[u] * (mess.p_ch_mw[u, s, t] + mess.p_dis_mw[u, s, t])
            for u in mess.U
            for s in mess.S
            for t in mess.T
        )
        * dt
    )
    blk.storage_cost_usd = pyo.Expression(
        expr=sum(fess.cost_usd_per_mwh[u] * (fess.p_ch_mw[u, t] + fess.p_dis_mw[u, t]) for u in fess.U for t in fess.T)
        * dt
        + mess_wear
    )
    blk.mess_transfer_cost_usd = pyo.Expression(
        expr=sum(mess.trip_cost_usd[a] * mess.depart[u, a] for u in mess.U for a in mess.A)
    )
    blk.mess_cost_usd = pyo.Expression(expr=mess_wear + blk.mess_transfer_cost_usd)
    blk.voltage_violation_pu_h = pyo.Expression(
        expr=sum(net.s_under[b, t] + net.s_over[b, t] for b in net.BV for t in net.T) * dt
    )
    blk.branch_overload_mva_h = pyo.Expression(expr=sum(net.s_overload.values()) * dt)
    blk.ev_discharge_payment = pyo.Expression(
        expr=float(data.settings.regional.ev_discharge_price_per_mwh) * ev_discharge_mwh(m.ev)
    )
    _add_resource_terms(m, blk, data)
    _add_planning_terms(m, blk, data)
    # the $ terms priced in their own settings blocks (dr, inverters, risk) count unless weighted here
    weights = {**block_weights(data.settings), **cfg.weights}
    used = used_terms(cfg)
    n_tangents = int(cfg.quadratic.tangents)
    p_net = {t: net.p_import[t] - net.p_export[t] for t in steps}
    span = net_import_range_mw(data)
    if "voltage_offset" in used:
        width = float(data.settings.grid.v_max_pu) - float(data.settings.grid.v_min_pu)
        cells = [(b, t) for b in net.BV for t in steps]
        x = {(b, t): (net.s_under[b, t] + net.s_over[b, t]) / width for b, t in cells}
        z = _square_epigraph(blk, "voltage_offset", cells, x, 0.0, 1.0, n_tangents)
        blk.voltage_offset = pyo.Expression(expr=sum(z[c] for c in cells) * dt)
    if "load_variance_mw2" in used:
        mean = sum(p_net.values()) / len(steps)
        x = {t: p_net[t] - mean for t in steps}
        z = _square_epigraph(blk, "load_variance_mw2", steps, x, -span, span, n_tangents)
        blk.load_variance_mw2 = pyo.Expression(expr=sum(z[t] for t in steps) / len(steps))
    if "power_deviation_mw2" in used:
        pairs = steps[:-1]
        x = {t: p_net[t + 1] - p_net[t] for t in pairs}
        z = _square_epigraph(blk, "power_deviation_mw2", pairs, x, -span, span, n_tangents)
        blk.power_deviation_mw2 = pyo.Expression(expr=sum(z[t] for t in pairs))
    if "peak_import_mw" in used:
        blk.peak = pyo.Var(within=pyo.NonNegativeReals)
        blk.peak_cuts = pyo.Constraint(steps, rule=lambda b, t: b.peak >= net.p_import[t])
        blk.peak_import_mw = pyo.Expression(expr=blk.peak)
    unknown = used - set(CATALOGUE)
    if unknown:
        raise KeyError(f"objective terms {sorted(unknown)} are not in the catalogue {sorted(CATALOGUE)}")

    def signed(name: str):
        return SIGN[CATALOGUE[name].sense] * getattr(blk, name)

    scales = cfg.scales
    expr = sum(float(w) * signed(name) / float(scales.get(name, 1.0)) for name, w in weights.items() if w != 0)
    blk.bounds = pyo.Constraint(
        list(cfg.bounds),
        rule=lambda b, name: signed(name) <= SIGN[CATALOGUE[name].sense] * float(cfg.bounds[name]),
    )
    fuzzy = cfg.fuzzy
    if fuzzy:
        blk.membership_max = pyo.Var(within=pyo.NonNegativeReals)
        ranges = {n: SIGN[CATALOGUE[n].sense] * (float(ref) - float(best)) for n, (best, ref) in fuzzy.items()}
        judged = [n for n in fuzzy if ranges[n] > 0]
        blk.membership = pyo.Expression(
            judged, rule=lambda b, n: (signed(n) - SIGN[CATALOGUE[n].sense] * float(fuzzy[n][0])) / ranges[n]
        )
        blk.fuzzy_max = pyo.Constraint(judged, rule=lambda b, n: b.membership[n] <= b.membership_max)
        # lambda first; the sum of memberships (weight 1e-3) picks the best among equal lambdas
        expr = expr + blk.membership_max + 1e-3 * sum(blk.membership[n] for n in judged)
    m.objective = pyo.Objective(expr=expr, sense=pyo.minimize)
    blk._refine = (float(cfg.quadratic.tolerance), int(cfg.quadratic.refine_rounds))
    # what one unit of a squared term's error moves the objective by (for exact_objective)
    blk._sq_weight = {
        n: float(weights.get(n, 0.0)) * SIGN[CATALOGUE[n].sense] / float(scales.get(n, 1.0)) for n in blk._sq
    }
    blk._sq_bounds = {n: float(v) for n, v in cfg.bounds.items() if n in blk._sq}
    blk._scenario = data
    return blk


def exact_score(m: pyo.Block) -> tuple[float, float]:
    """How good the loaded solution is with every squared term at its exact value instead of its
    tangents': (how far the exact squares exceed their bounds, the objective with exact squares).
    Without squared terms: (0, ``m.objective``)."""
    value = float(pyo.value(m.objective))
    if not getattr(m.terms, "_sq", None):
        return 0.0, value
    data = m.terms._scenario
    errors = pwl_errors(m, data)
    exact = exact_values(m, data)
    excess = sum(max(0.0, SIGN[CATALOGUE[n].sense] * (exact[n] - bound)) for n, bound in m.terms._sq_bounds.items())
    return excess, value + sum(m.terms._sq_weight[name] * error for name, error in errors.items())


def block_weights(settings: Settings) -> dict[str, float]:
    """Weights of the $ terms priced in their own settings blocks (dr, inverters, risk), not in objective.weights."""
    return {
        "dr_cost_usd": 1.0,
        "inverter_q_cost_usd": 1.0,
        "risk_cost_usd": 1.0 if settings.risk.enabled else 0.0,
    }


def _add_resource_terms(m: pyo.Block, blk: pyo.Block, data: ScenarioData) -> None:
    """Demand response, inverter reactive power and forecast-risk terms (002 eq. 33c-e)."""
    dt = data.step_hours
    dr, risk = m.dr, m.risk
    blk.dr_cost_usd = pyo.Expression(
        expr=sum(
            dr.price[u][0] * dr.p_curtail_mw[u, t] + dr.price[u][1] * dr.p_down_mw[u, t] for u in dr.U for t in dr.T
        )
        * dt
    )
    blk.dr_curtailed_mwh = pyo.Expression(expr=sum(dr.p_curtail_mw[u, t] for u in dr.U for t in dr.T) * dt)
    q_abs = [v for part in (m.pv, m.fess, m.mess) if hasattr(part, "q_abs") for v in part.q_abs.values()]
    blk.inverter_q_cost_usd = pyo.Expression(expr=float(data.settings.inverters.q_cost_usd_per_mvarh) * sum(q_abs) * dt)
    blk.expected_not_served_mwh = pyo.Expression(expr=sum(risk.epns[k] for k in risk.K) * dt)
    blk.expected_curtailed_mwh = pyo.Expression(expr=sum(risk.epc[k] for k in risk.K) * dt)
    blk.risk_cost_usd = pyo.Expression(
        expr=(
            risk.reserve_price * sum(risk.epns[k] for k in risk.K)
            - risk.curtailment_price * sum(risk.epc[k] for k in risk.K)
        )
        * dt
    )


def _add_planning_terms(m: pyo.Block, blk: pyo.Block, data: ScenarioData) -> None:
    """001's annual costs (:mod:`feederflex.model.planning`); zero without candidates."""
    plan, cfg = m.planning, data.settings.planning
    w = cfg.weights
    blk.storage_investment_per_yr = pyo.Expression(expr=plan.investment_per_yr)
    blk.storage_om_per_yr = pyo.Expression(expr=plan.om_per_yr)
    blk.mobile_rental_per_yr = pyo.Expression(expr=plan.rental_per_yr)
    energy = 0.0
    if cfg.enabled:  # f3: each step's purchase x the days a year its day stands for
        net, dt = m.net, data.step_hours
        price, weight = data.profiles.price_usd_per_mwh.values, data.step_weights
        factor = float(data.settings.grid.export_price_factor)
        energy = sum(float(weight[t] * price[t]) * (net.p_import[t] - factor * net.p_export[t]) for t in net.T) * dt
    blk.planning_cost = pyo.Expression(
        expr=float(w.investment) * plan.investment_per_yr
        + float(w.om) * plan.om_per_yr
        + float(w.energy) * energy
        + float(w.migration) * plan.rental_per_yr
    )


def refine(m: pyo.Block) -> int:
    """Add a tangent at the solution wherever a square's PWL value is short of the exact square by
    more than ``objective.quadratic.tolerance`` (absolute, in the term's cell units: MW^2, or
    (deviation / band width)^2); return how many were added."""
    tolerance = m.terms._refine[0]
    added = 0
    for z, x, cuts in m.terms._sq.values():
        for i, zi in z.items():
            xv = pyo.value(x[i])
            if xv * xv - pyo.value(zi) > tolerance:
                cuts.add(zi >= 2 * xv * x[i] - xv * xv)
                added += 1
    return added


def _net_import(m: pyo.Block) -> np.ndarray:
    return np.array([pyo.value(m.net.p_import[t]) - pyo.value(m.net.p_export[t]) for t in m.net.T])


def exact_values(m: pyo.Block, data: ScenarioData) -> dict[str, float]:
    """Exact value of every epigraph term on the loaded solution (whether or not it was optimised)."""
    p = _net_import(m)
    width = float(data.settings.grid.v_max_pu) - float(data.settings.grid.v_min_pu)
    dev = np.array(
        [[pyo.value(m.net.s_under[b, t]) + pyo.value(m.net.s_over[b, t]) for b in m.net.BV] for t in m.net.T]
    )
    return {
        "voltage_offset": float(np.sum((dev / width) ** 2)) * data.step_hours,
        "load_variance_mw2": float(np.mean((p - p.mean()) ** 2)),
        "power_deviation_mw2": float(np.sum(np.diff(p) ** 2)),
        "peak_import_mw": float(max(0.0, max(pyo.value(m.net.p_import[t]) for t in m.net.T))),
    }


def ev_discharge_mwh(ev: pyo.Block) -> pyo.Expression:
    """Energy the EVs discharge into the grid over the day, MWh (pools or stays, and vehicles on their own)."""
    dt_total = sum(ev.p_dis_mw[b, t] for b in ev.B for t in ev.T)
    own = sum(ev.p_vehicle_dis_mw[v, t] for v in ev.I for t in ev.T) if hasattr(ev, "I") else 0.0
    return (dt_total + own) * ev.dt


def term_values(m: pyo.Block, data: ScenarioData) -> dict[str, float]:
    """Exact value of every catalogue term on the loaded solution."""
    values = {name: float(pyo.value(getattr(m.terms, name))) for name, t in CATALOGUE.items() if not t.epigraph}
    values.update(exact_values(m, data))
    return values


def pwl_errors(m: pyo.Block, data: ScenarioData) -> dict[str, float]:
    """Exact minus piecewise-linear value of every square term the solver optimised."""
    exact = exact_values(m, data)
    return {name: exact[name] - float(pyo.value(getattr(m.terms, name))) for name in m.terms._sq}
