"""Mobile energy storage (MESS) on a time-space network.

Each unit is, in every step, parked at exactly one station or on the road (000 eq. 4-5,
002 eq. 16-17). A departure from station s to s' at the start of step t (binary ``depart``) keeps
the truck on the road, and installing, for ``tau(s, s', t)`` steps; it is parked at s' from step
t + tau on. Parking follows by flow conservation,

    parked[s, t] = parked[s, t-1] - sum_s' depart[s, s', t] + sum_{arcs arriving at s in t} depart,

so ``parked`` is integral without being declared binary. Only arcs that arrive inside the horizon
exist. Power flows only while parked (000 eq. 4 and 30): p_ch + p_dis <= P x parked, never both at
once (a binary per step), the sum at a station within the bus's hosting limit (000 eq. 3).
Reactive power obeys the inverter's power factor, |q| <= tan(acos(pf)) (p_ch + p_dis), and its kVA
circle as an inscribed regular polygon (002 eq. 22). Energy follows the charge and discharge
powers with efficiencies, inside the SOC window, ending cyclic or at least at the initial energy.

A planning candidate (``planning.mobile.moving``, :mod:`feederflex.model.planning`) starts where
binaries ``start[u, s]`` say (one station if built, none if not), sum_s p_ch + p_dis <= P (its rating,
a decision), and its energy window and initial energy scale with E = h P.

Costs (objective terms): degradation per MWh of throughput (000 eq. 6, in ``storage_cost_usd``);
transfer per move, per km and per hour on the road (000 eq. 7, 002 eq. 33f, in
``mess_transfer_cost_usd``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model.data import ScenarioData
from feederflex.model.extract import Reader, values, variable
from feederflex.model.inverter import add_pq_limits, apparent_rating, tan_phi
from feederflex.settings import MessUnit


@dataclass(frozen=True)
class Arc:
    """A possible trip: leave ``origin`` at step ``depart`` and be parked at ``dest`` from ``arrive``."""

    origin: int
    dest: int
    depart: int
    arrive: int
    km: float
    road_hours: float


def arcs(travel: xr.Dataset, n_steps: int) -> list[Arc]:
    """Every trip that arrives within the horizon (no arcs for missing roads)."""
    stations = [int(s) for s in travel.station.values]
    steps = travel.travel_steps.values
    hours = travel.travel_h.values
    dist = travel.distance_km.values
    out = []
    for t in range(n_steps):
        for i, s in enumerate(stations):
            for j, s2 in enumerate(stations):
                tau = int(steps[t, i, j])
                if i == j or tau < 1 or t + tau > n_steps - 1:
                    continue
                out.append(Arc(s, s2, t, t + tau, float(dist[i, j]), float(hours[t, i, j])))
    return out


def add_mess(m: pyo.Block, data: ScenarioData, p_inj: dict, q_inj: dict) -> pyo.Block:
    """Add ``m.mess``; a scenario without units gets an empty block (all sums are zero).

    Long by design: one statement per equation of the module docstring, in its order, so that the
    block reads as the model it writes.
    """
    cfg = data.settings.mess
    units = {u.name: u for u in cfg.units}
    planned = {c.name: c for c in data.candidates if c.moving}
    dt = data.step_hours
    steps = list(data.steps)
    blk = pyo.Block()
    m.mess = blk
    blk.U = pyo.Set(initialize=list(units), ordered=True)
    blk.T = pyo.Set(initialize=steps, ordered=True)
    travel = data.travel
    stations = [int(s) for s in travel.station.values] if travel is not None and units else []
    blk.S = pyo.Set(initialize=stations, ordered=True)
    arc_list = arcs(travel, len(steps)) if travel is not None and stations else []
    blk.arc_list = arc_list
    blk.step_minutes = int(round(dt * 60))
    blk.A = pyo.Set(initialize=range(len(arc_list)), ordered=True)

    blk.parked = pyo.Var(blk.U, blk.S, blk.T, bounds=(0, 1), doc="1 while the unit is connected at the station")
    blk.depart = pyo.Var(blk.U, blk.A, within=pyo.Binary, doc="1 if the unit makes this trip")
    blk.charging = pyo.Var(blk.U, blk.T, within=pyo.Binary)
    blk.p_ch_mw = pyo.Var(blk.U, blk.S, blk.T, within=pyo.NonNegativeReals)
    blk.p_dis_mw = pyo.Var(blk.U, blk.S, blk.T, within=pyo.NonNegativeReals)
    blk.q_mvar = pyo.Var(blk.U, blk.S, blk.T)
    blk.e_mwh = pyo.Var(
        blk.U,
        blk.T,
        bounds=lambda b, u, t: (
            0.0 if u in planned else units[u].soc_min * units[u].e_mwh,
            units[u].soc_max * units[u].e_mwh,
        ),
    )
    blk.start = pyo.Var(list(planned), blk.S, within=pyo.Binary, doc="1 if a planned unit starts at the station")
    blk.one_start = pyo.Constraint(
        list(planned), rule=lambda b, u: sum(b.start[u, s] for s in b.S) == m.planning.built[u]
    )

    leaving: dict[tuple[int, int], list[int]] = {}
    arriving: dict[tuple[int, int], list[int]] = {}
    for a, arc in enumerate(arc_list):
        leaving.setdefault((arc.origin, arc.depart), []).append(a)
        arriving.setdefault((arc.dest, arc.arrive), []).append(a)

    def initially(b, u, s):
        if u in planned:
            return b.start[u, s]
        return 1.0 if s == units[u].initial_station else 0.0

    def conservation(b, u, s, t):
        before = initially(b, u, s) if t == b.T.first() else b.parked[u, s, t - 1]
        out = sum(b.depart[u, a] for a in leaving.get((s, t), []))
        into = sum(b.depart[u, a] for a in arriving.get((s, t), []))
        return b.parked[u, s, t] == before - out + into

    blk.conservation = pyo.Constraint(blk.U, blk.S, blk.T, rule=conservation)

    p_rated = {u: float(units[u].p_mw) for u in units}
    blk.power_parked = pyo.Constraint(
        blk.U,
        blk.S,
        blk.T,
        rule=lambda b, u, s, t: b.p_ch_mw[u, s, t] + b.p_dis_mw[u, s, t] <= p_rated[u] * b.parked[u, s, t],
    )
    blk.ch_mode = pyo.Constraint(
        blk.U, blk.T, rule=lambda b, u, t: sum(b.p_ch_mw[u, s, t] for s in b.S) <= p_rated[u] * b.charging[u, t]
    )
    blk.dis_mode = pyo.Constraint(
        blk.U, blk.T, rule=lambda b, u, t: sum(b.p_dis_mw[u, s, t] for s in b.S) <= p_rated[u] * (1 - b.charging[u, t])
    )

    hosting_mw = travel.p_max_mw.values if travel is not None and stations else []
    limits = {int(s): float(v) for s, v in zip(stations, hosting_mw, strict=True)}

    def hosting(b, s, t):
        if not np.isfinite(limits[s]):
            return pyo.Constraint.Skip
        return sum(b.p_ch_mw[u, s, t] + b.p_dis_mw[u, s, t] for u in b.U) <= limits[s]

    blk.hosting = pyo.Constraint(blk.S, blk.T, rule=hosting)

    reactive = data.settings.inverters.reactive_control
    tan = {u: tan_phi(units[u].power_factor, reactive) for u in units}
    s_rated = {u: apparent_rating(units[u]) for u in units}
    add_pq_limits(
        blk,
        (blk.U, blk.S, blk.T),
        p_net=lambda u, s, t: blk.p_dis_mw[u, s, t] - blk.p_ch_mw[u, s, t],
        p_abs=lambda u, s, t: blk.p_ch_mw[u, s, t] + blk.p_dis_mw[u, s, t],
        q=lambda u, s, t: blk.q_mvar[u, s, t],
        s_max=lambda u, s, t: s_rated[u] * blk.parked[u, s, t],
        tan_phi_of=lambda u, s, t: tan[u],
        n_sides=cfg.kva_polygon_sides,
    )

    def e_capacity(u):  # MWh: a candidate's E = h P
        return planned[u].spec.hours * m.planning.p_mw[u] if u in planned else units[u].e_mwh

    def e_init(u):
        return units[u].soc_init * e_capacity(u)

    sized = [(u, t) for u in planned for t in steps]
    blk.size_limit = pyo.Constraint(
        sized, rule=lambda b, u, t: sum(b.p_ch_mw[u, s, t] + b.p_dis_mw[u, s, t] for s in b.S) <= m.planning.p_mw[u]
    )
    blk.e_floor = pyo.Constraint(sized, rule=lambda b, u, t: b.e_mwh[u, t] >= units[u].soc_min * e_capacity(u))
    blk.e_ceiling = pyo.Constraint(sized, rule=lambda b, u, t: b.e_mwh[u, t] <= units[u].soc_max * e_capacity(u))

    def balance(b, u, t):
        previous = e_init(u) if t == b.T.first() else b.e_mwh[u, t - 1]
        unit = units[u]
        ch = sum(b.p_ch_mw[u, s, t] for s in b.S)
        dis = sum(b.p_dis_mw[u, s, t] for s in b.S)
        return b.e_mwh[u, t] == previous + (unit.eta_ch * ch - dis / unit.eta_dis) * dt

    blk.energy_balance = pyo.Constraint(blk.U, blk.T, rule=balance)

    def end_state(b, u):
        last = b.e_mwh[u, b.T.last()]
        if units[u].end == "cyclic":
            return last == e_init(u)
        if units[u].end == "at_least_initial":
            return last >= e_init(u)
        return pyo.Constraint.Skip

    blk.end_state = pyo.Constraint(blk.U, rule=end_state)

    # Identical units starting alike are interchangeable: order them by their number of trips.
    twins = _identical_pairs(cfg.units) if cfg.symmetry_breaking else []
    blk.symmetry = pyo.Constraint(
        range(len(twins)),
        rule=lambda b, k: sum(b.depart[twins[k][0], a] for a in b.A) >= sum(b.depart[twins[k][1], a] for a in b.A),
    )

    if cfg.routing == "fixed":
        for u in units:
            for a in blk.A:
                blk.depart[u, a].fix(0)

    transfer = cfg.transfer
    blk.trip_cost_usd = {
        a: float(transfer.cost_per_move_usd)
        + float(transfer.cost_usd_per_km) * arc.km
        + float(transfer.labour_usd_per_h) * arc.road_hours
        for a, arc in enumerate(arc_list)
    }
    blk.cost_usd_per_mwh = {u: float(units[u].cost_usd_per_mwh) for u in units}
    for u in units:
        for s in stations:
            for t in steps:
                p_inj.setdefault((s, t), []).extend([blk.p_dis_mw[u, s, t], -blk.p_ch_mw[u, s, t]])
                q_inj.setdefault((s, t), []).append(blk.q_mvar[u, s, t])
    return blk


def _identical_pairs(units: tuple[MessUnit, ...]) -> list[tuple[str, str]]:
    """Consecutive pairs of units with identical parameters, station and energy."""

    def key(unit):
        return tuple(sorted((k, str(v)) for k, v in dataclasses.asdict(unit).items() if k != "name"))

    groups: dict[tuple, list[str]] = {}
    for unit in units:
        groups.setdefault(key(unit), []).append(unit.name)
    return [(g[k], g[k + 1]) for g in groups.values() for k in range(len(g) - 1)]


def departure_stride(every_minutes: float | None, step_minutes: int) -> int:
    """Steps between allowed departures of the routing search (1 = every step)."""
    if every_minutes is None or every_minutes <= step_minutes:
        return 1
    return max(1, int(round(every_minutes / step_minutes)))


def allow_moves(m: pyo.Block, unit: str | None = None, every: int = 1) -> None:
    """Unfix the trip variables of ``unit`` (every unit when None) that leave at a multiple of
    ``every`` steps; its other trips are fixed at zero (hourly routing on quarter-hour steps)."""
    for (u, a), var in m.mess.depart.items():
        if unit is None or u == unit:
            if m.mess.arc_list[a].depart % every == 0:
                var.unfix()
            else:
                var.fix(0)


def keep_routes(m: pyo.Block, unit: str) -> None:
    """Fix ``unit``'s trips to those of the loaded solution (rounded)."""
    for (u, _arc), var in m.mess.depart.items():
        if u == unit:
            var.fix(round(pyo.value(var)))


def forbid_moves(m: pyo.Block) -> None:
    """Fix every trip variable to zero: the units stay at their initial stations."""
    for var in m.mess.depart.values():
        var.fix(0)


def solution(read: Reader, data: ScenarioData) -> dict[str, xr.Variable]:
    """Each mobile unit's powers and energy (summed over stations), where it is parked (-1 on
    the road or installing) and its trips and kilometres in the day."""
    units = data.settings.mess.units
    names, steps = [u.name for u in units], list(data.steps)
    shape = (len(steps), len(names))
    p_ch, p_dis, q, e = (np.full(shape, np.nan) for _ in range(4))
    station = np.full(shape, -1, dtype=int)
    moves, km = np.zeros(len(names)), np.zeros(len(names))
    first = np.array([u.initial_station for u in units], dtype=int)
    e_init = np.array([u.soc_init * u.e_mwh for u in units], float)
    m = read.m
    if read.solved and m is not None and names:
        stations = list(m.mess.S)
        at_station = [names, stations, steps]
        p_ch = values(m.mess.p_ch_mw, at_station).sum(axis=1).T
        p_dis = values(m.mess.p_dis_mw, at_station).sum(axis=1).T
        q = values(m.mess.q_mvar, at_station).sum(axis=1).T
        e = values(m.mess.e_mwh, [names, steps]).T
        parked = values(m.mess.parked, at_station) > 0.5  # unit, station, time
        station = np.where(parked.any(axis=1), np.array(stations)[parked.argmax(axis=1)], -1).T
        for c in data.candidates:  # a planned unit starts where the model chose, sized as built
            if c.moving:
                k = names.index(c.name)
                built = pyo.value(m.planning.built[c.name]) > 0.5
                starts = [pyo.value(m.mess.start[c.name, s]) for s in stations]
                first[k] = stations[int(np.argmax(starts))] if built else -1
                e_init[k] = c.spec.soc_init * c.spec.hours * pyo.value(m.planning.p_mw[c.name]) if built else 0.0
        for k, unit in enumerate(names):
            for a, arc in enumerate(m.mess.arc_list):
                if pyo.value(m.mess.depart[unit, a]) > 0.5:
                    moves[k] += 1
                    km[k] += arc.km
    elif names:
        moves[:] = np.nan
        km[:] = np.nan
    return {
        "mess_p_ch_mw": variable(("time", "mess"), p_ch, "MW"),
        "mess_p_dis_mw": variable(("time", "mess"), p_dis, "MW"),
        "mess_q_mvar": variable(("time", "mess"), q, "Mvar (injected)"),
        "mess_e_mwh": variable(("time", "mess"), e, "MWh (end of step)"),
        "mess_station": variable(("time", "mess"), station, "bus number, -1 while travelling or installing"),
        "mess_moves": variable("mess", moves, "trips in the day"),
        "mess_km": variable("mess", km, "km driven in the day"),
        "mess_e_init_mwh": variable("mess", e_init, "MWh (before the first step)"),
        "mess_initial_station": variable(
            "mess", first, "bus number at the start of the day (-1: a planning candidate not built)"
        ),
    }
