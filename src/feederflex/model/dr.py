"""Demand response (DR) at load buses: curtailable and shiftable load (002 eq. 33c in a linear form).

Per unit and step: curtailment c in [0, curtail_max_mw], load moved out of the step d and into it u,
both in [0, shift_max_mw], with c + d never more than the bus load; the moved energy balances over
the horizon (sum u = sum d) and the curtailed energy stays within ``curtail_max_mwh``. The bus
load becomes  load - c - d + u,  its reactive load changes at the bus load's power factor of that
step. Compensation (``dr_cost_usd``): curtail_price x c + shift_price x d, per MWh; the avoided
purchase is already in the energy cost. 002 eq. 33c prices DR as the change of the customers'
bill between two tariffs, which needs the tariffs as decisions; with fixed prices its linear
counterpart is a price per MWh of response, as here.

The deliverable response of each step is forecast as min(bus load, curtail_max_mw + shift_max_mw)
(``mu_mw``); with ``forecast_error`` > 0 the risk terms (``feederflex.model.risk``) price a
scheduled reduction c + d that the customers may not deliver.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model.data import ScenarioData
from feederflex.model.extract import Reader, variable


def add_dr(m: pyo.Block, data: ScenarioData, p_inj: dict, q_inj: dict) -> pyo.Block:
    """Add ``m.dr`` with ``p_curtail_mw``, ``p_down_mw``, ``p_up_mw`` per unit and step; register injections."""
    units = {u.name: u for u in data.settings.dr}
    names = list(units)
    dt = data.step_hours
    blk = pyo.Block()
    m.dr = blk
    blk.U = pyo.Set(initialize=names, ordered=True)
    blk.T = pyo.Set(initialize=list(data.steps), ordered=True)
    load_at = bus_load_mw(data)
    q_over_p = q_ratio(data)
    load = {(u, t): float(load_at[t, k]) for k, u in enumerate(names) for t in data.steps}
    ratio = {(u, t): float(q_over_p[t, k]) for k, u in enumerate(names) for t in data.steps}
    blk.p_curtail_mw = pyo.Var(blk.U, blk.T, bounds=lambda b, u, t: (0.0, min(units[u].curtail_max_mw, load[u, t])))
    blk.p_down_mw = pyo.Var(blk.U, blk.T, bounds=lambda b, u, t: (0.0, min(units[u].shift_max_mw, load[u, t])))
    blk.p_up_mw = pyo.Var(blk.U, blk.T, bounds=lambda b, u, t: (0.0, units[u].shift_max_mw))
    blk.reduction_limit = pyo.Constraint(
        blk.U, blk.T, rule=lambda b, u, t: b.p_curtail_mw[u, t] + b.p_down_mw[u, t] <= load[u, t]
    )
    blk.shift_balance = pyo.Constraint(
        blk.U, rule=lambda b, u: sum(b.p_up_mw[u, t] for t in b.T) == sum(b.p_down_mw[u, t] for t in b.T)
    )

    def curtail_energy(b, u):
        limit = units[u].curtail_max_mwh
        if limit is None:
            return pyo.Constraint.Skip
        return sum(b.p_curtail_mw[u, t] for t in b.T) * dt <= float(limit)

    blk.curtail_energy = pyo.Constraint(blk.U, rule=curtail_energy)
    mu = forecast_mw(data)
    blk.mu_mw = {(u, t): float(mu[t, k]) for k, u in enumerate(names) for t in data.steps}
    blk.price = {u: (float(units[u].curtail_price_usd_per_mwh), float(units[u].shift_price_usd_per_mwh)) for u in units}
    for u, unit in units.items():
        for t in data.steps:
            relief = blk.p_curtail_mw[u, t] + blk.p_down_mw[u, t] - blk.p_up_mw[u, t]
            p_inj.setdefault((unit.bus, t), []).append(relief)
            if ratio[u, t]:
                q_inj.setdefault((unit.bus, t), []).append(ratio[u, t] * relief)
    return blk


def bus_load_mw(data: ScenarioData) -> np.ndarray:
    """Active load of each DR unit's bus, MW, shape (time, dr) (negative loads count as 0)."""
    col = [data.buses.index(u.bus) for u in data.settings.dr]
    return np.maximum(data.profiles.load_p_mw.values[:, col], 0.0).reshape(len(data.steps), len(col))


def q_ratio(data: ScenarioData) -> np.ndarray:
    """q/p of each DR unit's bus load per step (0 where the load is 0), shape (time, dr)."""
    col = [data.buses.index(u.bus) for u in data.settings.dr]
    p = data.profiles.load_p_mw.values[:, col].reshape(len(data.steps), len(col))
    q = data.profiles.load_q_mvar.values[:, col].reshape(p.shape)
    return np.divide(q, p, out=np.zeros_like(p), where=p > 0)


def forecast_mw(data: ScenarioData) -> np.ndarray:
    """Forecast deliverable response: min(bus load, curtail_max_mw + shift_max_mw), MW, shape (time, dr)."""
    limit = np.array([u.curtail_max_mw + u.shift_max_mw for u in data.settings.dr], float)
    return np.minimum(bus_load_mw(data), limit[None, :])


def solution(read: Reader, data: ScenarioData) -> dict[str, xr.Variable]:
    """Each DR unit's curtailed, moved-out and moved-in load, the bus load change and the forecast response."""
    units, steps = [u.name for u in data.settings.dr], list(data.steps)
    cut = read.take("dr", "p_curtail_mw", units, steps)
    down = read.take("dr", "p_down_mw", units, steps)
    up = read.take("dr", "p_up_mw", units, steps)
    return {
        "dr_p_curtail_mw": variable(("time", "dr"), cut, "MW (load curtailed)"),
        "dr_p_down_mw": variable(("time", "dr"), down, "MW (load moved out of the step)"),
        "dr_p_up_mw": variable(("time", "dr"), up, "MW (load moved into the step)"),
        "dr_p_mw": variable(
            ("time", "dr"), up - cut - down, "MW (change of the bus load by DR: up - curtailed - down)"
        ),
        "dr_q_mvar": variable(
            ("time", "dr"),
            (up - cut - down) * q_ratio(data),
            "Mvar (change of the bus reactive load by DR, at the load's power factor)",
        ),
        "dr_forecast_mw": variable(("time", "dr"), forecast_mw(data), "MW (forecast deliverable response)"),
    }
