"""Relocation search for the mobile units: nodal prices rank route changes, LPs judge them.

With every trip fixed (one route per unit) and every charge/discharge mode fixed, the routing model
is a linear program, which HiGHS re-solves from its last basis when only column bounds change
(:meth:`~feederflex.solve.Session.relax_integers` once, then :meth:`~feederflex.solve.Session.fix`).
The search walks from the incumbent schedule:

1. **Prices.** The incumbent's LP gives, per station and step, what one more MW injected there is
   worth (duals of the bus power balance rows) and, per unit and step, what one more MWh stored is
   worth (duals of the unit's energy balance rows).
2. **Ranking.** A move changes one unit's route: from a step where it is parked, leave for another
   station and stay there to the end of the day or come back later. Its estimated gain is what the
   unit's rating earns at the new place (discharge when the bus price beats the stored energy's
   value, charge the other way round, degradation included; its best steps only, as many as its
   usable energy lasts at full power) minus what it earns on its current route from the
   departure on, minus the change in trip costs. The best move of each unit and destination
   stands for its group (the latest-leaving one within 1 % of the group's best estimate);
   ``mess.search.candidates`` groups are evaluated, a fair share of them per unit.
3. **Evaluation.** A move is solved as an LP twice: with the moved unit's modes from the prices,
   then with every unit's modes from that LP (the direction each unit runs in, or for an idle unit
   the direction its rating earns more in at that LP's prices). The best move gets its trips
   shifted earlier or later (a few LPs). If it beats the incumbent it is kept, and the modes of the
   new routes are re-optimised by a small MILP (routes fixed, modes free) started from it.
4. Repeat until no move improves; then once more with moves that also park the units moved so
   far (a unit's trip traded for another's); stop there or when ``mess.search.time_s`` is spent.

Every evaluated LP is a feasible schedule of the routing model, and a move is kept only when it
beats the incumbent, so the search never ends worse than where it started. The duals come from
:meth:`feederflex.solve.Session.row_duals`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap
from pyomo.repn import generate_standard_repn

from feederflex.model.mess import Arc, departure_stride
from feederflex.settings import Settings
from feederflex.solve import Session, restore, snapshot

log = logging.getLogger(__name__)

_TIMING_TRIALS = 6  # LPs spent on shifting the trips of one promising move


def _coefficient(constraint, var) -> float:
    """Coefficient of ``var`` in ``constraint``'s body (0 when absent)."""
    repn = generate_standard_repn(constraint.body, compute_values=True, quadratic=False)
    for v, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        if v is var:
            return float(coef)
    return 0.0


@dataclass
class _Prices:
    """Where a unit's power is worth what, from the LP duals of the incumbent."""

    bus_usd: np.ndarray  # (station, step): $ per MW injected for one step
    energy_usd_per_mwh: np.ndarray  # (unit, step): $ per MWh more stored at the end of the step


@dataclass
class _Structure:
    """The rows and coefficients the prices are read from, found once per model."""

    stations: list[int]
    units: list[str]
    steps: list[int]
    net_rows: list  # (station, step) flattened: the bus power balance row holding the injection
    net_coef: np.ndarray
    energy_rows: list  # (unit, step) flattened
    energy_coef: np.ndarray  # per MWh stored
    trip_cost: np.ndarray  # (unit, arc): objective coefficient of each trip, $
    deg_ch: np.ndarray  # (unit,): objective coefficient of 1 MW charging for a step, $
    deg_dis: np.ndarray
    p_mw: np.ndarray
    eta_ch: np.ndarray
    eta_dis: np.ndarray
    initial: list[int]
    full_steps: np.ndarray  # (unit,): steps of full-power discharge its usable energy lasts
    leaving: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (station, step) -> arcs


def _structure(m: pyo.ConcreteModel, settings: Settings) -> _Structure:
    mess = m.mess
    units = list(mess.U)
    stations = list(mess.S)
    steps = list(mess.T)
    dt = float(mess.step_minutes) / 60.0
    cfg = {u.name: u for u in settings.mess.units}
    holder: dict[tuple[int, int], tuple] = {}
    probe = {id(mess.p_dis_mw[units[0], s, t]): (s, t) for s in stations for t in steps}
    rows = [c for c in m.net.p_balance.values()] + [c for c in m.net.substation_balance.values()]
    for con in rows:
        repn = generate_standard_repn(con.body, compute_values=True, quadratic=False)
        for v, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
            key = probe.get(id(v))
            if key is not None:
                holder[key] = (con, float(coef))
    net_rows, net_coef = [], []
    for s in stations:
        for t in steps:
            con, coef = holder.get((s, t), (None, 0.0))
            net_rows.append(con)
            net_coef.append(coef)
    energy_rows, energy_coef = [], []
    for u in units:
        per_mwh = cfg[u].eta_ch * dt
        for t in steps:
            con = mess.energy_balance[u, t]
            energy_rows.append(con)
            energy_coef.append(_coefficient(con, mess.p_ch_mw[u, stations[0], t]) / per_mwh)
    objective = next(m.component_data_objects(pyo.Objective, active=True))
    repn = generate_standard_repn(objective.expr, compute_values=True, quadratic=False)
    cost = ComponentMap(zip(repn.linear_vars, repn.linear_coefs, strict=True))
    trip_cost = np.array([[float(cost.get(mess.depart[u, a], 0.0)) for a in mess.A] for u in units])
    deg_ch = np.array([float(cost.get(mess.p_ch_mw[u, stations[0], steps[0]], 0.0)) for u in units])
    deg_dis = np.array([float(cost.get(mess.p_dis_mw[u, stations[0], steps[0]], 0.0)) for u in units])
    out = _Structure(
        stations,
        units,
        steps,
        net_rows,
        np.array(net_coef),
        energy_rows,
        np.array(energy_coef),
        trip_cost,
        deg_ch,
        deg_dis,
        np.array([cfg[u].p_mw for u in units], float),
        np.array([cfg[u].eta_ch for u in units], float),
        np.array([cfg[u].eta_dis for u in units], float),
        [cfg[u].initial_station for u in units],
        np.array(
            [
                max(1, math.ceil((c.soc_max - c.soc_min) * c.e_mwh * c.eta_dis / (c.p_mw * dt)))
                for c in (cfg[u] for u in units)
            ]
        ),
    )
    for a, arc in enumerate(mess.arc_list):
        out.leaving.setdefault((arc.origin, arc.depart), []).append(a)
    return out


def _prices(session: Session, st: _Structure) -> _Prices | None:
    """The prices of the last LP run (the incumbent with every integer fixed); None without duals."""
    net = np.where(st.net_coef == 0, 0.0, session.row_duals(st.net_rows))  # a station without a row: no price
    energy = session.row_duals(st.energy_rows)
    if not (np.isfinite(net).all() and np.isfinite(energy).all()):
        return None
    n_s, n_t, n_u = len(st.stations), len(st.steps), len(st.units)
    return _Prices(
        (net * st.net_coef).reshape(n_s, n_t),
        (energy * st.energy_coef).reshape(n_u, n_t),
    )


def _locations(route: list[Arc], initial: int, n_steps: int) -> np.ndarray:
    """Station of each step along ``route`` (-1 on the road)."""
    loc = np.full(n_steps, initial, dtype=int)
    for arc in sorted(route, key=lambda a: a.depart):
        loc[arc.depart : arc.arrive] = -1
        loc[arc.arrive :] = arc.dest
    return loc


def _rent(st: _Structure, prices: _Prices, k: int, dt: float) -> np.ndarray:
    """(station, step): what unit ``k``'s rating earns there at the prices, $ per step (>= 0)."""
    lam = prices.energy_usd_per_mwh[k]  # (step,)
    bus = prices.bus_usd  # (station, step)
    p = st.p_mw[k]
    discharge = p * (bus - lam * dt / st.eta_dis[k] - st.deg_dis[k])
    charge = p * (lam * dt * st.eta_ch[k] - bus - st.deg_ch[k])
    return np.maximum(0.0, np.maximum(discharge, charge))


@dataclass(frozen=True)
class Move:
    """A new route for one unit and its estimated gain, $."""

    unit: str
    route: tuple[int, ...]  # arc indices
    gain_usd: float


def _best_steps(rent: np.ndarray, row: int, t1: int, t2: int, n: int, memo: dict) -> float:
    """What a unit earns at station ``row`` in steps t1..t2-1: its best ``n`` steps there, as far
    as its usable energy lasts at full power (a penalty price in every step is not n times the gain)."""
    key = (row, t1, t2)
    if key not in memo:
        memo[key] = float(np.sort(rent[row, t1:t2])[-n:].sum()) if t2 > t1 else 0.0
    return memo[key]


def rank_moves(
    m: pyo.ConcreteModel, st: _Structure, prices: _Prices, routes: dict[str, tuple[int, ...]], every: int
) -> list[Move]:
    """Every one-unit relocation from the incumbent ``routes``, best estimated gain first.

    From each step ``t0`` (a multiple of ``every``) where unit u is parked at a: keep its trips
    before t0, then leave a at t0 for b and stay to the end, or come back to a later."""
    arc_list = m.mess.arc_list
    n_t = len(st.steps)
    dt = float(m.mess.step_minutes) / 60.0
    col = {s: i for i, s in enumerate(st.stations)}
    moves: list[Move] = []
    for k, u in enumerate(st.units):
        rent = _rent(st, prices, k, dt)
        n_full = int(st.full_steps[k])
        memo: dict[tuple[int, int, int], float] = {}

        def window(row: int, t1: int, t2: int, rent: np.ndarray = rent, n: int = n_full, memo: dict = memo) -> float:
            return _best_steps(rent, row, t1, t2, n, memo)

        route = [arc_list[a] for a in routes[u]]
        loc = _locations(route, st.initial[k], n_t)
        now = np.array([rent[col[s], t] if s >= 0 else 0.0 for t, s in enumerate(loc)])
        cost_now = float(sum(st.trip_cost[k, a] for a in routes[u]))
        for t0 in range(0, n_t, every):
            here = st.initial[k] if t0 == 0 else int(loc[t0 - 1])
            if here < 0:  # on the road at t0 - 1: no departure at t0
                continue
            earned = float(np.sort(now[t0:])[-n_full:].sum())  # what the incumbent route earns from t0 on
            prefix = tuple(a for a in routes[u] if arc_list[a].depart < t0)
            prefix_cost = float(sum(st.trip_cost[k, a] for a in prefix))
            if prefix != routes[u]:  # stay at `here` from t0 on
                gain = window(col[here], t0, n_t) - earned
                moves.append(Move(u, prefix, gain - (prefix_cost - cost_now)))
            for a in st.leaving.get((here, t0), []):
                arc = arc_list[a]
                b = arc.dest
                base = prefix_cost + st.trip_cost[k, a]
                away = window(col[b], arc.arrive, n_t)
                moves.append(Move(u, (*prefix, a), away - earned - (base - cost_now)))
                for t2 in range(arc.arrive, n_t):
                    if t2 % every:
                        continue
                    for r in st.leaving.get((b, t2), []):
                        back = arc_list[r]
                        if back.dest != here:
                            continue
                        there = max(window(col[b], arc.arrive, t2), window(col[here], back.arrive, n_t))
                        gain = there - earned - (base + st.trip_cost[k, r] - cost_now)
                        moves.append(Move(u, (*prefix, a, r), gain))
    moves = [mv for mv in moves if mv.route != routes[mv.unit]]

    def order(mv: Move) -> tuple[float, int]:
        # estimates within 0.1 % are ties: the later departure first (less time away)
        first = next((arc_list[a].depart for a in mv.route if a not in routes[mv.unit]), n_t)
        return (-float(f"{mv.gain_usd:.3g}"), -first)

    moves.sort(key=order)
    return moves


def _set_route(session: Session, m: pyo.ConcreteModel, unit: str, route: tuple[int, ...]) -> None:
    """Fix ``unit``'s trips to ``route`` (its other trips at zero), in Pyomo and HiGHS."""
    chosen = set(route)
    variables = []
    for a in m.mess.A:
        var = m.mess.depart[unit, a]
        var.set_value(1.0 if a in chosen else 0.0, skip_validation=True)
        variables.append(var)
    session.fix(variables)


def _set_modes(session: Session, m: pyo.ConcreteModel, unit: str, charging: np.ndarray) -> None:
    """Fix ``unit``'s charge/discharge modes (1 = charging) per step."""
    variables = []
    for k, t in enumerate(m.mess.T):
        var = m.mess.charging[unit, t]
        var.set_value(float(charging[k]), skip_validation=True)
        variables.append(var)
    session.fix(variables)


def _modes(m: pyo.ConcreteModel, unit: str, values: ComponentMap | None = None) -> np.ndarray:
    """``unit``'s modes per step, in the model or in ``values`` (a snapshot)."""
    var = m.mess.charging
    return np.array(
        [round(pyo.value(var[unit, t]) if values is None else values[var[unit, t]]) for t in m.mess.T], dtype=float
    )


def _modes_for(
    st: _Structure, prices: _Prices, k: int, dt: float, now: np.ndarray, old: np.ndarray, new: np.ndarray
) -> np.ndarray:
    """Modes of unit ``k`` on a new route: the incumbent's where it stays where it was, else the
    direction its rating earns more in at the prices of the new place."""
    col = {s: i for i, s in enumerate(st.stations)}
    out = now.copy()
    lam = prices.energy_usd_per_mwh[k]
    for t in np.nonzero(new != old)[0]:
        if new[t] < 0:
            continue
        bus = prices.bus_usd[col[int(new[t])], t]
        discharge = bus - lam[t] * dt / st.eta_dis[k] - st.deg_dis[k]
        charge = lam[t] * dt * st.eta_ch[k] - bus - st.deg_ch[k]
        out[t] = 1.0 if charge > discharge else 0.0
    return out


def _diverse(ranked: list[Move], m: pyo.ConcreteModel, top: int) -> list[Move]:
    """The ``top`` best groups of moves (one unit, one destination, one number of trips; at most
    max(3, top / units) groups per unit), each
    by its latest-leaving move whose estimate is within 1 % of the group's best: the estimate
    sees little difference between leaving early and leaving just in time, the exact solve does."""
    arc_list = m.mess.arc_list
    groups: dict[tuple, list[Move]] = {}
    for mv in ranked:
        key = (mv.unit, arc_list[mv.route[-1]].dest if mv.route else None, len(mv.route))
        groups.setdefault(key, []).append(mv)
    chosen = []
    for members in groups.values():
        best = members[0].gain_usd
        near = [mv for mv in members if mv.gain_usd >= best - 0.01 * abs(best)]
        chosen.append((best, max(near, key=lambda mv: max((arc_list[a].depart for a in mv.route), default=-1))))
    chosen.sort(key=lambda pair: -pair[0])
    units = {mv.unit for mv in ranked} or {""}
    per_unit: dict[str, int] = {}
    out = []
    for _, mv in chosen:  # a fair share of groups per unit (at least three), so that the top moves cover several units
        if per_unit.get(mv.unit, 0) < max(3, math.ceil(top / len(units))):
            per_unit[mv.unit] = per_unit.get(mv.unit, 0) + 1
            out.append(mv)
    return out[:top]


def _shifts(m: pyo.ConcreteModel, st: _Structure, route: tuple[int, ...], every: int) -> list[tuple[int, ...]]:
    """``route`` with one trip leaving ``every`` or 2 ``every`` steps earlier or later (same roads)."""
    arc_list = m.mess.arc_list
    out = []
    for i, a in enumerate(route):
        arc = arc_list[a]
        for shift in (4 * every, 2 * every, every, -every, -2 * every, -4 * every):  # later first
            for b in st.leaving.get((arc.origin, arc.depart + shift), []):
                new = arc_list[b]
                if new.dest != arc.dest:
                    continue
                if i > 0 and arc_list[route[i - 1]].arrive > new.depart:
                    continue
                if i + 1 < len(route) and new.arrive > arc_list[route[i + 1]].depart:
                    continue
                out.append((*route[:i], b, *route[i + 1 :]))
    return out


@dataclass
class SearchOutcome:
    """Where the relocation search ended."""

    objective: float
    values: ComponentMap  # the incumbent's variable values (a start for the full model)
    routes: dict[str, tuple[int, ...]]
    evaluated: int
    kept: int
    stopped: str


class _Search:
    """The state of one relocation search (see :func:`relocation_search`)."""

    def __init__(self, m, settings, session, objective, incumbent, prefix) -> None:
        search = settings.mess.search
        self.m, self.session, self.prefix = m, session, prefix
        self.began = time.perf_counter()
        self.budget = float(search.time_s)
        self.per_solve = float(search.unit_time_s)
        self.top = int(search.candidates)
        self.every = departure_stride(search.departure_every_minutes, m.mess.step_minutes)
        self.dt = float(m.mess.step_minutes) / 60.0
        self.st = _structure(m, settings)
        self.routes: dict[str, tuple[int, ...]] = {u: () for u in self.st.units}
        self.best, self.values = objective, incumbent
        self.tol = 1e-6 * max(1.0, abs(objective))
        self.evaluated = self.kept = 0
        fixed = [v for v in m.component_data_objects(pyo.Var) if v.fixed and v.parent_component() is not m.mess.depart]
        self.keep_continuous = {id(v) for v in fixed if not v.is_integer()}
        self.fixed_integers = [v for v in fixed if v.is_integer()]

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.began)

    def locations(self, unit: str, route: tuple[int, ...]) -> np.ndarray:
        k = self.st.units.index(unit)
        return _locations([self.m.mess.arc_list[a] for a in route], self.st.initial[k], len(self.st.steps))

    def to_lp(self) -> None:
        """Every integer fixed at the incumbent's value and continuous: each run is an LP."""
        restore(self.values)
        self.session.relax_integers()

    def to_milp(self) -> None:
        """The routes fixed, the modes free again."""
        self.session.restore_columns(self.keep_continuous)
        self.session.fix(self.fixed_integers)
        self.session.fix(self.m.mess.depart.values())

    def solve(self, name: str, start=None):
        self.evaluated += 1
        return self.session.solve(
            f"{self.prefix}MESS moves: {name}",
            sync=False,
            start=start,
            time_limit_s=max(min(self.per_solve, self.left()), 0.01),
            refine=False,
        )

    def incumbent_prices(self) -> _Prices | None:
        """Re-solve the incumbent's LP (warm: only bounds changed) and read its prices."""
        for u in self.st.units:
            _set_route(self.session, self.m, u, self.routes[u])
        for u in self.st.units:
            _set_modes(self.session, self.m, u, _modes(self.m, u, self.values))
        restore(self.values)
        lp = self.solve("prices")
        prices = _prices(self.session, self.st) if lp.status.has_solution else None
        restore(self.values)
        return prices

    def lp_modes(self, prices: _Prices, moved: str, route: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Every unit's modes after an LP run: the direction it runs in where it runs, else the
        direction its rating earns more in at the LP's prices where it is parked (``moved`` on ``route``)."""
        mess = self.m.mess
        col = {s: i for i, s in enumerate(self.st.stations)}
        out = {}
        for k, u in enumerate(self.st.units):
            loc = self.locations(u, route if u == moved else self.routes[u])
            modes = _modes(self.m, u)
            lam = prices.energy_usd_per_mwh[k]
            for i, t in enumerate(self.st.steps):
                ch = sum(pyo.value(mess.p_ch_mw[u, s, t]) for s in mess.S)
                dis = sum(pyo.value(mess.p_dis_mw[u, s, t]) for s in mess.S)
                if ch > 1e-6 or dis > 1e-6:
                    modes[i] = 1.0 if ch > dis else 0.0
                elif loc[i] >= 0:
                    bus = prices.bus_usd[col[int(loc[i])], i]
                    discharge = bus - lam[i] * self.dt / self.st.eta_dis[k] - self.st.deg_dis[k]
                    charge = lam[i] * self.dt * self.st.eta_ch[k] - bus - self.st.deg_ch[k]
                    modes[i] = 1.0 if charge > discharge else 0.0
            out[u] = modes
        return out

    def try_route(self, unit: str, route: tuple[int, ...], prices: _Prices) -> tuple[float, ComponentMap] | None:
        """The LP value of ``unit`` on ``route``: its modes first from the incumbent's prices
        (:func:`_modes_for`), then every unit's from that LP's solution and prices
        (:meth:`lp_modes`), where stored energy is worth what the new route makes of it; the
        better LP counts. Every unit is put back on its incumbent route and modes afterwards."""
        k = self.st.units.index(unit)
        now = {u: _modes(self.m, u) for u in self.st.units}
        old, new = self.locations(unit, self.routes[unit]), self.locations(unit, route)
        _set_route(self.session, self.m, unit, route)
        _set_modes(self.session, self.m, unit, _modes_for(self.st, prices, k, self.dt, now[unit], old, new))
        out: tuple[float, ComponentMap] | None = None
        for _pass in range(2):
            trial = self.solve(unit)
            if not trial.status.has_solution:
                break
            if out is None or trial.objective < out[0]:
                out = (trial.objective, snapshot(self.m))
            after = _prices(self.session, self.st) if _pass == 0 and self.left() > 0 else None
            if after is None:
                break
            for u, modes in self.lp_modes(after, unit, route).items():
                _set_modes(self.session, self.m, u, modes)
        _set_route(self.session, self.m, unit, self.routes[unit])
        for u in self.st.units:
            _set_modes(self.session, self.m, u, now[u])
        restore(self.values)
        log.info(
            "move %s %s: %.6g (best %.6g)",
            unit,
            [(self.m.mess.arc_list[a].dest, self.m.mess.arc_list[a].depart) for a in route],
            math.nan if out is None else out[0],
            self.best,
        )
        return out

    def refine_timing(
        self, unit: str, route: tuple[int, ...], value: tuple[float, ComponentMap], prices: _Prices
    ) -> tuple[tuple[int, ...], tuple[float, ComponentMap]]:
        """Shift the trips of ``unit`` on ``route`` (LP value ``value``) earlier or later while
        that improves; at an equal value the later trip is taken (less time away). At most
        ``_TIMING_TRIALS`` LPs."""
        improved, trials = True, 0
        while improved and self.left() > 0 and trials < _TIMING_TRIALS:
            improved = False
            for shifted in _shifts(self.m, self.st, route, self.every):
                if self.left() <= 0 or trials >= _TIMING_TRIALS:
                    break
                trials += 1
                trial = self.try_route(unit, shifted, prices)
                if trial is None:
                    continue
                later = sum(self.m.mess.arc_list[a].depart for a in shifted) > sum(
                    self.m.mess.arc_list[a].depart for a in route
                )
                if trial[0] < value[0] - self.tol or (later and trial[0] <= value[0] + self.tol):
                    route, value, improved = shifted, trial, True
                    break
        return route, value

    def polish(self) -> bool:
        """The incumbent's routes with the modes free (a small MILP from the incumbent); True if better."""
        self.to_milp()
        trial = self.solve("modes", start=self.values)
        better = trial.status.has_solution and trial.objective < self.best - self.tol
        if better:
            self.best, self.values = trial.objective, snapshot(self.m)
        self.to_lp()
        return better

    def candidates(self, prices: _Prices, replace: bool) -> list[tuple[dict[str, tuple[int, ...]], Move]]:
        """The ranked moves, each with the routes it applies to: the incumbent's, or (``replace``)
        also the incumbent's with the other moved units parked again (one unit's move traded for another's)."""
        ranked = _diverse(rank_moves(self.m, self.st, prices, self.routes, self.every), self.m, self.top)
        out = [(self.routes, mv) for mv in ranked]
        if replace:
            for mv in ranked:
                others = {u: () for u in self.st.units if u != mv.unit and self.routes[u]}
                if others:
                    out.append(({**self.routes, **others}, mv))
        return out

    def try_routes(
        self, routes: dict[str, tuple[int, ...]], mv: Move, prices: _Prices
    ) -> tuple[float, ComponentMap] | None:
        """``mv`` on top of ``routes`` (which may park units the incumbent moves); back to the incumbent after."""
        changed = [u for u in self.st.units if u != mv.unit and routes[u] != self.routes[u]]
        for u in changed:
            _set_route(self.session, self.m, u, routes[u])
        trial = self.try_route(mv.unit, mv.route, prices)
        for u in changed:
            _set_route(self.session, self.m, u, self.routes[u])
        return trial

    def run(self) -> str:
        self.to_lp()
        replace = False
        while self.left() > 0:
            prices = self.incumbent_prices()
            if prices is None:
                return "no duals from the price LP"
            tried = []
            for routes, mv in self.candidates(prices, replace):
                if self.left() <= 0:
                    break
                trial = self.try_routes(routes, mv, prices)
                if trial is not None:
                    tried.append((trial[0], routes, mv, trial))
            tried.sort(key=lambda item: item[0])
            found = None
            for _, routes, mv, trial in tried[:1]:  # the best, timed better
                changed = [u for u in self.st.units if u != mv.unit and routes[u] != self.routes[u]]
                for u in changed:
                    _set_route(self.session, self.m, u, routes[u])
                saved, self.routes = self.routes, {**routes}
                route, value = self.refine_timing(mv.unit, mv.route, trial, prices)
                self.routes = saved
                for u in changed:
                    _set_route(self.session, self.m, u, self.routes[u])
                if value[0] < self.best - self.tol and (found is None or value[0] < found[0]):
                    found = (value[0], {**routes, mv.unit: route}, value[1])
            if found is not None:
                objective, routes, values = found
                self.best, self.values = objective, values
                for u in self.st.units:
                    if routes[u] != self.routes[u]:
                        self.routes[u] = routes[u]
                        _set_route(self.session, self.m, u, routes[u])
                        _set_modes(self.session, self.m, u, _modes(self.m, u, values))
                restore(values)
                self.kept += 1
                self.polish()  # the modes the LPs kept fixed, re-optimised for the new routes
                replace = False
                continue
            if replace or self.left() <= 0:
                break
            replace = True  # nothing improves on its own: trade a moved unit's trips for another's
        self.to_milp()
        restore(self.values)
        return "time limit (mess.search.time_s)" if self.left() <= 0 else "no ranked move improves"


def relocation_search(
    m: pyo.ConcreteModel,
    settings: Settings,
    session: Session,
    objective: float,
    incumbent: ComponentMap,
    prefix: str = "",
) -> SearchOutcome:
    """Improve the schedule ``incumbent`` (objective ``objective``, every unit parked) by
    relocations ranked by nodal prices and solved exactly (module docstring).

    Returns with every trip variable fixed at the incumbent's routes, the modes free (integer
    again) and the model's free variables at the incumbent's values."""
    search = _Search(m, settings, session, objective, incumbent, prefix)
    stopped = search.run()
    return SearchOutcome(search.best, search.values, search.routes, search.evaluated, search.kept, stopped)
