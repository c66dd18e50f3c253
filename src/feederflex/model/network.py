"""LinDistFlow network: power balance, squared-voltage drop, voltage band with slacks.

For the branch from parent i to child j (Baran and Wu 1989, losses neglected):

    P_ij = p_j + sum_k P_jk,    Q_ij = q_j + sum_k Q_jk,
    w_j  = w_i / a_ij^2 - 2 (r_ij P_ij + x_ij Q_ij),

with w = v^2 in pu^2, P, Q and r, x in per unit on ``s_base_mva`` and p_j, q_j the net load at j;
a_ij is a transformer's off-nominal ratio at its tap position (1 for lines). The band
v_min <= v <= v_max is imposed on w with slacks s in pu of voltage magnitude, linearised at the
limit: w >= v_min^2 - 2 v_min s_under and w <= v_max^2 + 2 v_max s_over.

Branch limits (``grid.branch_limits``): the flow (P_ij, Q_ij) stays inside the regular polygon of
``grid.branch_limit_sides`` sides inscribed in the circle of radius S_ij (a line's
sqrt(3) vn_kv max_i_ka at its nominal voltage, a transformer's sn_mva), with an overload slack
o_ij >= 0 in MVA on every side (penalised by the ``branch_overload_mva_h`` term). Being inscribed,
the polygon never admits more than the rating. Branches without a finite rating below
``NO_LIMIT_MVA`` (pandapower's 99999 kA placeholder) get no limit.

No backfeed (``grid.no_backfeed_buses``): P_ij >= 0 on the branch into each such bus j, so
nothing behind j is exported past it (a metered subarea that may not export, 004).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model.data import ScenarioData
from feederflex.model.extract import Reader, values, variable
from feederflex.model.inverter import polygon_sides
from feederflex.settings import FessUnit, PVUnit

NO_LIMIT_MVA = 1e4  # a rating above this is no rating: case33bw's lines carry 99999 kA


def add_network(m: pyo.Block, data: ScenarioData, p_inj: Mapping, q_inj: Mapping) -> pyo.Block:
    """Add the network block ``m.net``.

    ``p_inj[bus, t]`` and ``q_inj[bus, t]`` are lists of Pyomo expressions (MW, Mvar) injected at a
    bus by the components (generation positive, consumption negative), besides loads and EVs.

    Long by design: one statement per equation of the module docstring, in its order, so that the
    block reads as the model it writes.
    """
    fd = data.feeder
    grid = data.settings.grid
    s_base = float(fd.attrs["s_base_mva"])
    branches = [int(b) for b in fd.branch.values]
    parent = {int(b): int(fd.from_bus.sel(branch=b)) for b in branches}
    child = {int(b): int(fd.to_bus.sel(branch=b)) for b in branches}
    branch_into = {child[b]: b for b in branches}
    r = {b: float(fd.r_pu.sel(branch=b)) for b in branches}
    x = {b: float(fd.x_pu.sel(branch=b)) for b in branches}
    ratio = dict(zip(branches, fd.ratio_pu.values.astype(float), strict=True)) if "ratio_pu" in fd else {}
    load_p = data.profiles.load_p_mw.values + data.fixed_ev_p_mw
    load_q = data.profiles.load_q_mvar.values
    bus_pos = {b: k for k, b in enumerate(data.buses)}
    root = data.root
    non_root = [b for b in data.buses if b != root]

    net = pyo.Block()
    m.net = net
    net.T = pyo.Set(initialize=list(data.steps), ordered=True)
    net.B = pyo.Set(initialize=data.buses, ordered=True)
    net.L = pyo.Set(initialize=branches, ordered=True)
    net.BV = pyo.Set(initialize=non_root, ordered=True)
    one_way = {branch_into[int(bus)] for bus in grid.no_backfeed_buses}
    net.p_mw = pyo.Var(
        net.L,
        net.T,
        bounds=lambda b, k, t: (0.0, None) if k in one_way else (None, None),
        doc="active power flow parent->child, MW (one-way branches: never back)",
    )
    net.q_mvar = pyo.Var(net.L, net.T, doc="reactive power flow parent->child, Mvar")
    net.w = pyo.Var(net.B, net.T, bounds=(0.5, 1.6), doc="squared voltage magnitude, pu^2")
    net.s_under = pyo.Var(net.BV, net.T, within=pyo.NonNegativeReals, doc="undervoltage slack, pu")
    net.s_over = pyo.Var(net.BV, net.T, within=pyo.NonNegativeReals, doc="overvoltage slack, pu")
    net.p_import = pyo.Var(net.T, within=pyo.NonNegativeReals, bounds=(0, grid.max_import_mw))
    net.p_export = pyo.Var(net.T, within=pyo.NonNegativeReals, bounds=(0, grid.max_export_mw))

    def injection(table, bus, t):
        return sum(table.get((bus, t), []))

    # AC losses booked as loads at the sending bus of each branch (AC correction; zero at first)
    net.loss_p_mw = pyo.Param(net.B, net.T, initialize=0.0, mutable=True)
    net.loss_q_mvar = pyo.Param(net.B, net.T, initialize=0.0, mutable=True)

    # loads (and uncontrolled EV charging) as parameters: a rolling re-solve sets the actual values
    net.load_p_mw = pyo.Param(
        net.B,
        net.T,
        mutable=True,
        initialize={(b, t): float(load_p[t, bus_pos[b]]) for b in data.buses for t in data.steps},
    )
    net.load_q_mvar = pyo.Param(
        net.B,
        net.T,
        mutable=True,
        initialize={(b, t): float(load_q[t, bus_pos[b]]) for b in data.buses for t in data.steps},
    )

    def net_load_p(bus, t):
        return net.load_p_mw[bus, t] + net.loss_p_mw[bus, t] - injection(p_inj, bus, t)

    def net_load_q(bus, t):
        return net.load_q_mvar[bus, t] + net.loss_q_mvar[bus, t] - injection(q_inj, bus, t)

    children = {b: [br for br in branches if parent[br] == b] for b in data.buses}

    def p_balance(blk, br, t):
        j = child[br]
        return blk.p_mw[br, t] == net_load_p(j, t) + sum(blk.p_mw[k, t] for k in children[j])

    def q_balance(blk, br, t):
        j = child[br]
        return blk.q_mvar[br, t] == net_load_q(j, t) + sum(blk.q_mvar[k, t] for k in children[j])

    def voltage_drop(blk, br, t):
        upstream = blk.w[parent[br], t] if ratio.get(br, 1.0) == 1.0 else blk.w[parent[br], t] / ratio[br] ** 2
        return blk.w[child[br], t] == upstream - 2 * (r[br] * blk.p_mw[br, t] + x[br] * blk.q_mvar[br, t]) / s_base

    def substation(blk, t):
        return blk.p_import[t] - blk.p_export[t] == net_load_p(root, t) + sum(blk.p_mw[k, t] for k in children[root])

    net.p_balance = pyo.Constraint(net.L, net.T, rule=p_balance)
    net.q_balance = pyo.Constraint(net.L, net.T, rule=q_balance)
    net.voltage_drop = pyo.Constraint(net.L, net.T, rule=voltage_drop)
    net.substation_balance = pyo.Constraint(net.T, rule=substation)
    v_sub = float(grid.substation_v_pu)
    net.slack_voltage = pyo.Constraint(net.T, rule=lambda blk, t: blk.w[root, t] == v_sub**2)
    # the band per bus and step: tightened by the AC correction where LinDistFlow is optimistic
    net.v_min_pu = pyo.Param(net.BV, net.T, initialize=float(grid.v_min_pu), mutable=True)
    net.v_max_pu = pyo.Param(net.BV, net.T, initialize=float(grid.v_max_pu), mutable=True)
    net.v_lower = pyo.Constraint(
        net.BV,
        net.T,
        rule=lambda blk, b, t: blk.w[b, t] >= blk.v_min_pu[b, t] ** 2 - 2 * blk.v_min_pu[b, t] * blk.s_under[b, t],
    )
    net.v_upper = pyo.Constraint(
        net.BV,
        net.T,
        rule=lambda blk, b, t: blk.w[b, t] <= blk.v_max_pu[b, t] ** 2 + 2 * blk.v_max_pu[b, t] * blk.s_over[b, t],
    )
    _add_branch_limits(net, data, branches)
    net.branch_into = branch_into
    return net


def limited_branches(data: ScenarioData) -> dict[int, float]:
    """Branch number -> rating (MVA) of the branches the model limits (``grid.branch_limits``).

    A rated branch whose flow cannot reach its rating is left out: with every load at its
    largest, every unit below it at its rating in the worse direction (a MESS at every station, a
    coordinated fleet at all its chargers) and a 20 % allowance for the AC losses booked as loads,
    the apparent power still stays inside the polygon. Its limit rows would never bind, and on a
    real grid they are most of the model (:func:`flow_bounds_mva`). Scenarios with demand response
    or operated on actual days (whose loads the bound does not know) limit every rated branch.
    """
    fd = data.feeder
    if not data.settings.grid.branch_limits or "s_max_mva" not in fd:
        return {}
    ratings = zip(fd.branch.values.astype(int), fd.s_max_mva.values.astype(float), strict=True)
    rated = {int(b): s for b, s in ratings if np.isfinite(s) and 0 < s < NO_LIMIT_MVA}
    if not rated or data.settings.dr or data.settings.operation.mode != "day_ahead":
        return rated  # demand response moves loads and actual days change them: limit every rated branch
    inside = math.cos(math.pi / int(data.settings.grid.branch_limit_sides))
    bound = flow_bounds_mva(data)
    return {b: s for b, s in rated.items() if LOSS_ALLOWANCE * bound[b] > inside * s}


LOSS_ALLOWANCE = 1.2  # the booked AC losses of the branches below, as a share of the flow bound


def flow_bounds_mva(data: ScenarioData) -> dict[int, float]:
    """Per branch, an upper bound of its LinDistFlow apparent power (MVA): the sums below it of
    each bus's largest |load| plus the ratings of the units that can be there."""
    from feederflex.model.inverter import apparent_rating

    fd, buses = data.feeder, data.buses
    pos = {b: k for k, b in enumerate(buses)}
    p = np.abs(data.profiles.load_p_mw.values + data.fixed_ev_p_mw).max(axis=0)
    q = np.abs(data.profiles.load_q_mvar.values).max(axis=0)
    units: list[PVUnit | FessUnit] = [*data.settings.pv, *data.settings.fess]
    for unit in units:
        p[pos[unit.bus]] += float(unit.p_mw)
        q[pos[unit.bus]] += apparent_rating(unit)
    if data.travel is not None and data.settings.mess.units:
        for station in data.travel.station.values.astype(int):
            p[pos[int(station)]] += sum(float(u.p_mw) for u in data.settings.mess.units)
            q[pos[int(station)]] += sum(apparent_rating(u) for u in data.settings.mess.units)
    if data.ev_controlled and data.fleet is not None:
        np.add.at(p, [pos[int(b)] for b in data.fleet.ev_bus.values], data.fleet.charger_kw.values / 1000)
    parent = [pos[int(b)] for b in fd.from_bus.values]
    child = [pos[int(b)] for b in fd.to_bus.values]
    for k in reversed(range(len(child))):  # breadth-first order: every child before its parent here
        p[parent[k]] += p[child[k]]
        q[parent[k]] += q[child[k]]
    return {int(br): float(np.hypot(p[child[k]], q[child[k]])) for k, br in enumerate(fd.branch.values)}


def _add_branch_limits(net: pyo.Block, data: ScenarioData, branches: list[int]) -> None:
    """(P, Q) of each rated branch inside the inscribed polygon of its rating, plus an overload slack."""
    rating = limited_branches(data)
    sides = polygon_sides(int(data.settings.grid.branch_limit_sides))
    net.LR = pyo.Set(initialize=[b for b in branches if b in rating], ordered=True)
    net.K = pyo.Set(initialize=range(len(sides)), ordered=True)
    net.s_overload = pyo.Var(net.LR, net.T, within=pyo.NonNegativeReals, doc="branch overload slack, MVA")
    net.branch_limit = pyo.Constraint(
        net.LR,
        net.T,
        net.K,
        rule=lambda blk, br, t, k: (
            sides[k][0] * blk.p_mw[br, t] + sides[k][1] * blk.q_mvar[br, t]
            <= sides[k][2] * rating[br] + blk.s_overload[br, t]
        ),
    )


def solution(read: Reader, data: ScenarioData) -> dict[str, xr.Variable]:
    """Voltages, band slacks, branch flows and the substation import; the day's loads and prices;
    the AC losses and voltage band the last solve held (when a model exists)."""
    steps, buses = list(data.steps), data.buses
    branches = [int(b) for b in data.feeder.branch.values]
    non_root = [b for b in buses if b != data.root]
    idx = [buses.index(b) for b in non_root]
    s_under = np.zeros((len(steps), len(buses)))
    s_over = np.zeros((len(steps), len(buses)))
    s_under[:, idx] = read.take("net", "s_under", non_root, steps)
    s_over[:, idx] = read.take("net", "s_over", non_root, steps)
    limited = list(limited_branches(data))
    overload = np.zeros((len(steps), len(branches)))
    if limited:
        overload[:, [branches.index(b) for b in limited]] = read.take("net", "s_overload", limited, steps)
    pr = data.profiles
    out = {
        "v_pu": variable(("time", "bus"), np.sqrt(read.take("net", "w", buses, steps)), "pu"),
        "v_under_pu": variable(("time", "bus"), s_under, "pu"),
        "v_over_pu": variable(("time", "bus"), s_over, "pu"),
        "p_branch_mw": variable(("time", "branch"), read.take("net", "p_mw", branches, steps), "MW"),
        "branch_overload_mva": variable(("time", "branch"), overload, "MVA (model's overload slack; 0 unlimited)"),
        "q_branch_mvar": variable(("time", "branch"), read.take("net", "q_mvar", branches, steps), "Mvar"),
        "p_grid_mw": variable(
            "time", read.take("net", "p_import", steps) - read.take("net", "p_export", steps), "MW (import positive)"
        ),
        "load_p_mw": variable(("time", "bus"), pr.load_p_mw.values, "MW"),
        "load_q_mvar": variable(("time", "bus"), pr.load_q_mvar.values, "Mvar"),
        "price_usd_per_mwh": variable("time", pr.price_usd_per_mwh.values, "$/MWh"),
    }
    if read.m is None:
        return out
    net = read.m.net
    out["loss_load_p_mw"] = variable(
        ("time", "bus"),
        values(net.loss_p_mw, [buses, steps]).T,
        "MW (AC losses booked as load at sending buses; 0 without AC correction)",
    )
    out["loss_load_q_mvar"] = variable(
        ("time", "bus"), values(net.loss_q_mvar, [buses, steps]).T, "Mvar (AC losses booked as load at sending buses)"
    )
    for name, param in (("v_min_band_pu", net.v_min_pu), ("v_max_band_pu", net.v_max_pu)):
        band = np.full((len(steps), len(buses)), np.nan)  # the band the model held (moved by the AC correction)
        band[:, idx] = values(param, [non_root, steps]).T
        out[name] = variable(("time", "bus"), band, "pu (voltage band of the last solve; NaN at the substation)")
    return out
