"""Objective terms: each a named Pyomo Expression with a unit and a sense.

The scenario objective is the weighted sum  sum_k w_k s_k f_k  (minimised), where s_k = +1 for a
term to minimise and -1 for a term to maximise (000 eq. 20: max f1 - f2 - f3).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyomo.environ as pyo

from feederflex.model.data import ScenarioData


@dataclass(frozen=True)
class Term:
    name: str
    unit: str
    sense: str  # "min" or "max"
    description: str


CATALOGUE: dict[str, Term] = {
    t.name: t
    for t in (
        Term("pv_used_mwh", "MWh", "max", "PV energy used (000 eq. 21)"),
        Term("pv_curtailed_mwh", "MWh", "min", "PV energy available but not used"),
        Term("energy_cost_usd", "$", "min", "energy bought at the substation minus energy sold, at time-of-use prices"),
        Term("storage_cost_usd", "$", "min", "storage degradation (fixed and mobile): cost per MWh of charge plus discharge throughput (000 eq. 6)"),
        Term("mess_transfer_cost_usd", "$", "min", "MESS trips: cost per move, per km and per hour on the road (000 eq. 7, 002 eq. 33f)"),
        Term("voltage_violation_pu_h", "pu h", "min", "sum over buses and steps of the voltage slacks times the step length"),
        Term("dr_cost_usd", "$", "min", "demand response compensation: curtailed and shifted MWh at their prices (002 eq. 33c, linear)"),
        Term("dr_curtailed_mwh", "MWh", "min", "load curtailed by demand response"),
        Term("inverter_q_cost_usd", "$", "min", "reactive energy of the PV and storage inverters at inverters.q_cost_usd_per_mvarh"),
        Term("expected_not_served_mwh", "MWh", "min", "expected PV and DR power not served under forecast errors (002 eq. 24, 29), outer approximation; 0 unless risk.enabled"),
        Term("expected_curtailed_mwh", "MWh", "min", "expected PV and DR curtailment under forecast errors (002 eq. 27, 31); 0 unless risk.enabled"),
        Term("risk_cost_usd", "$", "min", "reserve cost of expected power not served minus the value of expected curtailment (002 eq. 33d-e); 0 unless risk.enabled"),
    )
}


def add_objectives(m: pyo.Block, data: ScenarioData) -> pyo.Block:
    """Add ``m.terms`` (one Expression per catalogue term) and the weighted objective ``m.objective``."""
    dt = data.step_hours
    price = data.profiles.price_usd_per_mwh.values
    export_factor = float(data.settings["grid"]["export_price_factor"])
    net, pv, fess, mess = m.net, m.pv, m.fess, m.mess
    blk = pyo.Block()
    m.terms = blk
    blk.pv_used_mwh = pyo.Expression(expr=sum(pv.p_mw[u, t] for u in pv.U for t in pv.T) * dt)
    blk.pv_curtailed_mwh = pyo.Expression(
        expr=sum(pv.avail_mw[u, t] - pv.p_mw[u, t] for u in pv.U for t in pv.T) * dt
    )
    blk.energy_cost_usd = pyo.Expression(
        expr=sum(float(price[t]) * (net.p_import[t] - export_factor * net.p_export[t]) for t in net.T) * dt
    )
    blk.storage_cost_usd = pyo.Expression(
        expr=(
            sum(fess.cost_usd_per_mwh[u] * (fess.p_ch_mw[u, t] + fess.p_dis_mw[u, t]) for u in fess.U for t in fess.T)
            + sum(
                mess.cost_usd_per_mwh[u] * (mess.p_ch_mw[u, s, t] + mess.p_dis_mw[u, s, t])
                for u in mess.U for s in mess.S for t in mess.T
            )
        )
        * dt
    )
    blk.mess_transfer_cost_usd = pyo.Expression(
        expr=sum(mess.trip_cost_usd[a] * mess.depart[u, a] for u in mess.U for a in mess.A)
    )
    blk.voltage_violation_pu_h = pyo.Expression(
        expr=sum(net.s_under[b, t] + net.s_over[b, t] for b in net.BV for t in net.T) * dt
    )
    _add_resource_terms(m, blk, data)
    weights = data.settings["objective"]["weights"]
    weights = {**block_weights(data.settings), **weights}
    sign = {"min": 1.0, "max": -1.0}
    m.objective = pyo.Objective(
        expr=sum(
            float(weight) * sign[CATALOGUE[name].sense] * getattr(blk, name)
            for name, weight in weights.items()
            if weight != 0
        ),
        sense=pyo.minimize,
    )
    return blk


def block_weights(settings: dict) -> dict[str, float]:
    """Weights of the $ terms priced in their own settings blocks (dr, inverters, risk), not in objective.weights."""
    return {"dr_cost_usd": 1.0, "inverter_q_cost_usd": 1.0, "risk_cost_usd": 1.0 if settings["risk"]["enabled"] else 0.0}


def _add_resource_terms(m: pyo.Block, blk: pyo.Block, data: ScenarioData) -> None:
    """Demand response, inverter reactive power and forecast-risk terms (002 eq. 33c-e)."""
    dt = data.step_hours
    dr, risk = m.dr, m.risk
    blk.dr_cost_usd = pyo.Expression(
        expr=sum(dr.price[u][0] * dr.p_curtail_mw[u, t] + dr.price[u][1] * dr.p_down_mw[u, t] for u in dr.U for t in dr.T) * dt
    )
    blk.dr_curtailed_mwh = pyo.Expression(expr=sum(dr.p_curtail_mw[u, t] for u in dr.U for t in dr.T) * dt)
    q_abs = [v for part in (m.pv, m.fess, m.mess) if hasattr(part, "q_abs") for v in part.q_abs.values()]
    blk.inverter_q_cost_usd = pyo.Expression(
        expr=float(data.settings["inverters"]["q_cost_usd_per_mvarh"]) * sum(q_abs) * dt
    )
    blk.expected_not_served_mwh = pyo.Expression(expr=sum(risk.epns[k] for k in risk.K) * dt)
    blk.expected_curtailed_mwh = pyo.Expression(expr=sum(risk.epc[k] for k in risk.K) * dt)
    blk.risk_cost_usd = pyo.Expression(
        expr=(risk.reserve_price * sum(risk.epns[k] for k in risk.K) - risk.curtailment_price * sum(risk.epc[k] for k in risk.K)) * dt
    )


def term_values(m: pyo.Block) -> dict[str, float]:
    """Value of every catalogue term on the loaded solution."""
    return {name: float(pyo.value(getattr(m.terms, name))) for name in CATALOGUE}
