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
    weights = data.settings["objective"]["weights"]
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


def term_values(m: pyo.Block) -> dict[str, float]:
    """Value of every catalogue term on the loaded solution."""
    return {name: float(pyo.value(getattr(m.terms, name))) for name in CATALOGUE}
