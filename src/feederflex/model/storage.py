"""Fixed batteries (FESS): charge and discharge powers, energy balance, SOC window, end state.

Energy at the end of step t:  e_t = e_{t-1} + (eta_ch p_ch,t - p_dis,t / eta_dis) dt,  e_{-1} = soc_init E
(with ``planning.days``, every representative day starts from soc_init E and meets the end rule).
A binary per unit and step forbids charging and discharging at once, which an objective that
rewards PV use would otherwise exploit to burn energy in the conversion losses.
A planning candidate (:mod:`feederflex.model.planning`) has its rating P as a decision: its
energy window and initial energy scale with E = h P, and p_ch + p_dis <= P.
Reactive power: |q| <= tan(acos(pf)) (p_ch + p_dis) and (p_dis - p_ch, q) inside the inscribed polygon
of the inverter's kVA circle (002 eq. 22, the same limits as the MESS inverters); q = 0 at power
factor 1 or when ``inverters.reactive_control`` is false.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model import planning
from feederflex.model.data import ScenarioData
from feederflex.model.extract import Reader, variable
from feederflex.model.inverter import add_pq_limits, apparent_rating, tan_phi


def add_fess(m: pyo.Block, data: ScenarioData, p_inj: dict, q_inj: dict) -> pyo.Block:
    """Add ``m.fess`` with ``p_ch_mw``, ``p_dis_mw``, ``e_mwh`` and ``charging`` per unit and step."""
    units = {u.name: u for u in data.settings.fess}
    planned = {c.name: c for c in data.candidates if not c.moving}
    dt = data.step_hours
    blk = pyo.Block()
    m.fess = blk
    blk.U = pyo.Set(initialize=list(units), ordered=True)
    blk.T = pyo.Set(initialize=list(data.steps), ordered=True)
    blk.p_ch_mw = pyo.Var(blk.U, blk.T, within=pyo.NonNegativeReals)
    blk.p_dis_mw = pyo.Var(blk.U, blk.T, within=pyo.NonNegativeReals)
    blk.charging = pyo.Var(blk.U, blk.T, within=pyo.Binary)
    blk.e_mwh = pyo.Var(
        blk.U,
        blk.T,
        bounds=lambda b, u, t: (
            0.0 if u in planned else units[u].soc_min * units[u].e_mwh,
            units[u].soc_max * units[u].e_mwh,
        ),
    )

    e_capacity = _size_candidates(m, blk, units, planned, data)

    def e_init(u):
        return units[u].soc_init * e_capacity(u)

    blk.ch_limit = pyo.Constraint(
        blk.U, blk.T, rule=lambda b, u, t: b.p_ch_mw[u, t] <= units[u].p_mw * b.charging[u, t]
    )
    blk.dis_limit = pyo.Constraint(
        blk.U, blk.T, rule=lambda b, u, t: b.p_dis_mw[u, t] <= units[u].p_mw * (1 - b.charging[u, t])
    )

    starts = data.day_starts  # {0}, or the first step of every representative day

    def balance(b, u, t):
        previous = e_init(u) if t in starts else b.e_mwh[u, t - 1]
        unit = units[u]
        return b.e_mwh[u, t] == previous + (unit.eta_ch * b.p_ch_mw[u, t] - b.p_dis_mw[u, t] / unit.eta_dis) * dt

    blk.energy_balance = pyo.Constraint(blk.U, blk.T, rule=balance)

    def end_state(b, u, last_step):
        rule = units[u].end
        last = b.e_mwh[u, last_step]
        if rule == "cyclic":
            return last == e_init(u)
        if rule == "at_least_initial":
            return last >= e_init(u)
        return pyo.Constraint.Skip

    blk.end_state = pyo.Constraint(blk.U, data.day_ends, rule=end_state)
    blk.cost_usd_per_mwh = {u: float(units[u].cost_usd_per_mwh) for u in units}
    inverters = data.settings.inverters
    tan = {u: tan_phi(units[u].power_factor, inverters.reactive_control) for u in units}
    s_mva = {u: apparent_rating(units[u]) for u in units}
    blk.q_mvar = pyo.Var(blk.U, blk.T, doc="reactive power injected, Mvar")
    if any(tan.values()) or any(s_mva[u] < units[u].p_mw for u in units):
        add_pq_limits(
            blk,
            (blk.U, blk.T),
            p_net=lambda u, t: blk.p_dis_mw[u, t] - blk.p_ch_mw[u, t],
            p_abs=lambda u, t: blk.p_ch_mw[u, t] + blk.p_dis_mw[u, t],
            q=lambda u, t: blk.q_mvar[u, t],
            s_max=lambda u, t: s_mva[u],
            tan_phi_of=lambda u, t: tan[u],
            n_sides=inverters.kva_polygon_sides,
        )
    else:
        for var in blk.q_mvar.values():
            var.fix(0.0)
    for name, unit in units.items():
        for t in data.steps:
            p_inj.setdefault((unit.bus, t), []).extend([blk.p_dis_mw[name, t], -blk.p_ch_mw[name, t]])
            if tan[name]:
                q_inj.setdefault((unit.bus, t), []).append(blk.q_mvar[name, t])
    return blk


def _size_candidates(m: pyo.Block, blk: pyo.Block, units: dict, planned: dict, data: ScenarioData):
    """A planning candidate's powers within its rating P and its energy window scaled by E = h P;
    returns each unit's energy capacity (MWh, an expression for a candidate)."""

    def e_capacity(u):
        return planned[u].spec.hours * m.planning.p_mw[u] if u in planned else units[u].e_mwh

    sized = [(u, t) for u in planned for t in data.steps]
    blk.size_limit = pyo.Constraint(
        sized, rule=lambda b, u, t: b.p_ch_mw[u, t] + b.p_dis_mw[u, t] <= m.planning.p_mw[u]
    )
    blk.e_floor = pyo.Constraint(sized, rule=lambda b, u, t: b.e_mwh[u, t] >= units[u].soc_min * e_capacity(u))
    blk.e_ceiling = pyo.Constraint(sized, rule=lambda b, u, t: b.e_mwh[u, t] <= units[u].soc_max * e_capacity(u))
    return e_capacity


def solution(read: Reader, data: ScenarioData) -> dict[str, xr.Variable]:
    """Charging, discharging, energy and reactive injection of each fixed battery (a planning
    candidate's initial energy follows its built size)."""
    fess, steps = data.settings.fess, list(data.steps)
    units = [u.name for u in fess]
    e_init = np.array([u.soc_init * u.e_mwh for u in fess], float)
    sizes = planning.solution(read, data.candidates)["plan_e_mwh"].values
    for c, e_mwh in zip(data.candidates, sizes, strict=True):
        if not c.moving:
            e_init[units.index(c.name)] = c.spec.soc_init * e_mwh
    return {
        "fess_p_ch_mw": variable(("time", "fess"), read.take("fess", "p_ch_mw", units, steps), "MW"),
        "fess_p_dis_mw": variable(("time", "fess"), read.take("fess", "p_dis_mw", units, steps), "MW"),
        "fess_e_mwh": variable(("time", "fess"), read.take("fess", "e_mwh", units, steps), "MWh (end of step)"),
        "fess_q_mvar": variable(("time", "fess"), read.take("fess", "q_mvar", units, steps), "Mvar (injected)"),
        "fess_e_init_mwh": variable("fess", e_init, "MWh (before the first step)"),
    }
