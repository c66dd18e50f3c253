"""PV units: active power up to availability (curtailment is the rest), reactive power within the
inverter's power factor and kVA rating (002 eq. 14-15).

0 <= p <= availability x rating (P^PV,max = min(P_max, P_MPPT) of 002 eq. 14, the availability being
the forecast MPPT power); |q| <= tan(acos(pf)) p and (p, q) inside the inscribed polygon of the
kVA circle (``feederflex.model.inverter``). A unit at power factor 1, or every unit when
``inverters.reactive_control`` is false, runs at unity power factor (q = 0).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model.data import ScenarioData
from feederflex.model.extract import Reader, variable
from feederflex.model.inverter import add_pq_limits, apparent_rating, tan_phi


def add_pv(m: pyo.Block, data: ScenarioData, p_inj: dict, q_inj: dict) -> pyo.Block:
    """Add ``m.pv``: ``p_mw[unit, t]`` in [0, availability x rating], ``q_mvar[unit, t]``; register injections."""
    units = data.settings.pv
    inverters = data.settings.inverters
    avail = data.pv_availability
    blk = pyo.Block()
    m.pv = blk
    blk.U = pyo.Set(initialize=[u.name for u in units], ordered=True)
    blk.T = pyo.Set(initialize=list(data.steps), ordered=True)
    cap = {u.name: float(u.p_mw) for u in units}
    blk.avail_mw = pyo.Param(
        blk.U,
        blk.T,
        initialize={(u, t): cap[u] * float(avail[t, k]) for k, u in enumerate(cap) for t in data.steps},
        mutable=True,
    )
    blk.p_mw = pyo.Var(blk.U, blk.T, within=pyo.NonNegativeReals, doc="PV active power, MW")
    blk.q_mvar = pyo.Var(blk.U, blk.T, doc="PV reactive power injected, Mvar")
    blk.available = pyo.Constraint(blk.U, blk.T, rule=lambda b, u, t: b.p_mw[u, t] <= b.avail_mw[u, t])
    tan = {u.name: tan_phi(u.power_factor, inverters.reactive_control) for u in units}
    s_mva = {u.name: apparent_rating(u) for u in units}
    if any(tan.values()):
        add_pq_limits(
            blk,
            (blk.U, blk.T),
            p_net=lambda u, t: blk.p_mw[u, t],
            p_abs=lambda u, t: blk.p_mw[u, t],
            q=lambda u, t: blk.q_mvar[u, t],
            s_max=lambda u, t: s_mva[u],
            tan_phi_of=lambda u, t: tan[u],
            n_sides=inverters.kva_polygon_sides,
        )
    else:
        for var in blk.q_mvar.values():
            var.fix(0.0)
        blk.kva = pyo.Constraint(
            blk.U,
            blk.T,
            rule=lambda b, u, t: b.p_mw[u, t] <= s_mva[u] if s_mva[u] < cap[u] else pyo.Constraint.Skip,
        )
    for unit in units:
        for t in data.steps:
            p_inj.setdefault((unit.bus, t), []).append(blk.p_mw[unit.name, t])
            if tan[unit.name]:
                q_inj.setdefault((unit.bus, t), []).append(blk.q_mvar[unit.name, t])
    return blk


def solution(read: Reader, data: ScenarioData) -> dict[str, xr.Variable]:
    """PV available, used and its reactive injection per unit."""
    units, steps = [u.name for u in data.settings.pv], list(data.steps)
    capacity = np.array([u.p_mw for u in data.settings.pv], float)
    return {
        "pv_avail_mw": variable(("time", "pv"), data.pv_availability * capacity[None, :], "MW"),
        "pv_p_mw": variable(("time", "pv"), read.take("pv", "p_mw", units, steps), "MW"),
        "pv_q_mvar": variable(("time", "pv"), read.take("pv", "q_mvar", units, steps), "Mvar (injected)"),
    }
