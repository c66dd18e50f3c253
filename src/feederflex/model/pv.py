"""PV units: active power up to availability (curtailment is the rest), unity power factor."""

from __future__ import annotations

import pyomo.environ as pyo

from feederflex.model.data import ScenarioData


def add_pv(m: pyo.Block, data: ScenarioData, p_inj: dict, q_inj: dict) -> pyo.Block:
    """Add ``m.pv``: ``p_mw[unit, t]`` in [0, availability x rating]; register injections."""
    units = data.settings["pv"]
    avail = data.profiles.pv_avail_pu.values
    blk = pyo.Block()
    m.pv = blk
    blk.U = pyo.Set(initialize=[u["name"] for u in units], ordered=True)
    blk.T = pyo.Set(initialize=list(data.steps), ordered=True)
    cap = {u["name"]: float(u["p_mw"]) for u in units}
    blk.avail_mw = pyo.Param(
        blk.U, blk.T, initialize={(u, t): cap[u] * float(avail[t]) for u in cap for t in data.steps}, mutable=True
    )
    blk.p_mw = pyo.Var(blk.U, blk.T, within=pyo.NonNegativeReals, doc="PV active power, MW")
    blk.available = pyo.Constraint(blk.U, blk.T, rule=lambda b, u, t: b.p_mw[u, t] <= b.avail_mw[u, t])
    for unit in units:
        for t in data.steps:
            p_inj.setdefault((unit["bus"], t), []).append(blk.p_mw[unit["name"], t])
    return blk
