"""Coordinated EV charging: aggregate envelopes per bus (optional V2G) or per-vehicle start times.

``aggregate`` (000 eq. 16-19 as a fleet envelope): per pool (the vehicles of a bus that leave in
the same step), charging and (with V2G) discharging per step; the cumulative energy delivered to
the cars, counted from the cut step of the periodic day (``fleet.envelopes``), stays between the
latest-possible and the earliest-possible trajectories of the pool, and the power within its
connected chargers. The model's size depends on buses and steps only, never on the number of
vehicles. Vehicles that the envelope cannot deliver (found by disaggregating the solution) are
modelled one by one in a re-solve (``ev_control.repair_iterations``).

``per_vehicle`` (003 eq. 18-19): each vehicle charges at constant power for whole consecutive
steps starting at one chosen step in [arrival, departure - duration] (a binary per feasible start).

``itinerary`` (004: vehicles that park at home and at work): every vehicle on its own, an LP. At
each stay it charges (with V2G also discharges) within its charger while parked, at the stay's
bus; its energy is followed step by step from the stay's arrival and carries to the next stay minus
the trip between them (cyclic over the periodic day); it stays within [SOC floor, battery] and
leaves each stay with at least its ``departure_soc_min`` (full at home) and the next trip plus its
reserve (``reserve_soc``). Home-only fleets are the special case of one stay.

``uncontrolled``: the sampled load as a fixed demand (no block variables).
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.fleet import (
    UNMET_TOLERANCE_KWH,
    charging_windows,
    connected_hours,
    departure_need_kwh,
    disaggregate,
    envelopes,
)
from feederflex.model.data import ScenarioData
from feederflex.model.extract import Reader, values, variable
from feederflex.settings import EVControl


def add_ev(m: pyo.Block, data: ScenarioData, p_inj: dict, q_inj: dict) -> pyo.Block:
    """Add ``m.ev`` with ``p_ch_mw[b, t]`` and ``p_dis_mw[b, t]`` per bus (zero-size when uncontrolled)."""
    control = data.settings.ev_control
    mode = control.mode if data.fleet is not None else "uncontrolled"
    blk = pyo.Block()
    m.ev = blk
    blk.mode = mode
    steps = list(data.steps)
    blk.T = pyo.Set(initialize=steps, ordered=True)
    blk.dt = dt = data.step_hours
    if mode == "uncontrolled":
        blk.B = pyo.Set(initialize=[], ordered=True)
        blk.p_ch_mw = pyo.Var(blk.B, blk.T, within=pyo.NonNegativeReals)
        blk.p_dis_mw = pyo.Var(blk.B, blk.T, within=pyo.NonNegativeReals)
        return blk
    hours = len(steps) * dt
    step_minutes = int(round(dt * 60))
    if mode == "aggregate":
        assert data.fleet is not None  # a mode other than uncontrolled needs the fleet
        v2g = control.v2g
        individual = data.individual if data.individual is not None else np.zeros(data.fleet.sizes["ev"], dtype=bool)
        pooled = data.fleet.isel(ev=np.flatnonzero(~individual))
        env = envelopes(pooled, data.buses, hours, step_minutes, control.v2g_soc_min if v2g else None)
        blk.envelope = env
        p_max = env.p_max_mw.values
        order = [int(t) for t in env.order.values]
        position = {t: k for k, t in enumerate(order)}
        pool_bus = [int(b) for b in env.pool_bus.values]
        blk.P = pyo.Set(initialize=range(len(pool_bus)), ordered=True)
        blk.B = pyo.Set(
            initialize=sorted(set(pool_bus) | {int(data.fleet.ev_bus.values[v]) for v in np.flatnonzero(individual)}),
            ordered=True,
        )
        blk.K = pyo.Set(initialize=range(len(order) + 1), ordered=True)
        frac = float(control.v2g_power_fraction) if v2g else 0.0
        blk.pool_ch_mw = pyo.Var(blk.P, blk.T, bounds=lambda b, q, t: (0, float(p_max[position[t], q])))
        blk.pool_dis_mw = pyo.Var(blk.P, blk.T, bounds=lambda b, q, t: (0, frac * float(p_max[position[t], q])))
        e_min, e_max = env.e_min_mwh.values, env.e_max_mwh.values
        blk.e_mwh = pyo.Var(
            blk.P,
            blk.K,
            bounds=lambda b, q, k: (float(e_min[k, q]) - 1e-9, float(e_max[k, q]) + 1e-9),
            doc="cumulative energy delivered to the pool's cars after k steps from the cut",
        )
        eta = float(control.v2g_efficiency)
        blk.start = pyo.Constraint(blk.P, rule=lambda b, q: b.e_mwh[q, 0] == 0)
        blk.cumulate = pyo.Constraint(
            blk.P,
            range(1, len(order) + 1),
            rule=lambda b, q, k: (
                b.e_mwh[q, k]
                == b.e_mwh[q, k - 1] + (b.pool_ch_mw[q, order[k - 1]] - b.pool_dis_mw[q, order[k - 1]] / eta) * dt
            ),
        )
        pools_at = {bus: [q for q, pb in enumerate(pool_bus) if pb == bus] for bus in blk.B}
        blk.p_ch_mw = pyo.Expression(
            blk.B, blk.T, rule=lambda b, bus, t: sum(b.pool_ch_mw[q, t] for q in pools_at[bus])
        )
        blk.p_dis_mw = pyo.Expression(
            blk.B, blk.T, rule=lambda b, bus, t: sum(b.pool_dis_mw[q, t] for q in pools_at[bus])
        )
        if v2g:
            blk.charging = pyo.Var(blk.B, blk.T, within=pyo.Binary)
            cap = {(bus, t): sum(float(p_max[position[t], q]) for q in pools_at[bus]) for bus in blk.B for t in steps}
            blk.ch_mode = pyo.Constraint(
                blk.B, blk.T, rule=lambda b, bus, t: b.p_ch_mw[bus, t] <= cap[bus, t] * b.charging[bus, t]
            )
            blk.dis_mode = pyo.Constraint(
                blk.B, blk.T, rule=lambda b, bus, t: b.p_dis_mw[bus, t] <= frac * cap[bus, t] * (1 - b.charging[bus, t])
            )
        _add_individual(blk, data.fleet, np.flatnonzero(individual), dt, len(steps), p_inj, control)
    elif mode == "per_vehicle":
        _add_per_vehicle(blk, data, dt)
    elif mode == "itinerary" and data.fleet is not None:
        add_itinerary(blk, data.fleet, dt, len(steps), control)
    else:
        raise ValueError(f"ev_control.mode: unknown mode {mode!r}")
    for bus in blk.B:
        for t in steps:
            p_inj.setdefault((bus, t), []).extend([blk.p_dis_mw[bus, t], -blk.p_ch_mw[bus, t]])
    return blk


def _add_individual(
    blk: pyo.Block, fleet, vehicles: np.ndarray, dt: float, n_steps: int, p_inj: dict, control: EVControl
) -> None:
    """Vehicles modelled one by one next to the envelope: power within the charger while connected
    (on the periodic day), their whole need by departure; with V2G they may discharge down to the
    SOC floor, their energy followed step by step from arrival."""
    from feederflex.fleet import charging_load, charging_windows

    blk.I = pyo.Set(initialize=[int(v) for v in vehicles], ordered=True)
    arrival, departure = charging_windows(fleet)
    connected = {int(v): charging_load(arrival[[v]], departure[[v]], np.ones(1), dt, n_steps) for v in vehicles}
    power = {int(v): float(fleet.charger_kw.values[v]) / 1000 for v in vehicles}
    frac = float(control.v2g_power_fraction) if control.v2g else 0.0
    eta = float(control.v2g_efficiency)
    blk.p_vehicle_mw = pyo.Var(blk.I, blk.T, bounds=lambda b, v, t: (0, power[v] * connected[v][t]))
    blk.p_vehicle_dis_mw = pyo.Var(blk.I, blk.T, bounds=lambda b, v, t: (0, frac * power[v] * connected[v][t]))
    need = {int(v): float(fleet.energy_kwh.values[v]) / 1000 for v in vehicles}
    blk.vehicle_energy = pyo.Constraint(
        blk.I, rule=lambda b, v: sum(b.p_vehicle_mw[v, t] - b.p_vehicle_dis_mw[v, t] / eta for t in b.T) * dt == need[v]
    )
    if frac > 0:
        # energy above arrival, step by step from the arrival step: never below the SOC floor
        first = {int(v): int(np.floor(arrival[v] / dt)) % n_steps for v in vehicles}
        spare = {
            int(v): float(fleet.battery_kwh.values[v] - fleet.energy_kwh.values[v]) / 1000
            - float(control.v2g_soc_min) * float(fleet.battery_kwh.values[v]) / 1000
            for v in vehicles
        }
        blk.vehicle_floor = pyo.Constraint(
            [(v, j) for v in blk.I for j in range(1, n_steps + 1)],
            rule=lambda b, v, j: (
                sum(
                    b.p_vehicle_mw[v, (first[v] + i) % n_steps] - b.p_vehicle_dis_mw[v, (first[v] + i) % n_steps] / eta
                    for i in range(j)
                )
                * dt
                >= -max(spare[v], 0.0)
            ),
        )
    for v in blk.I:
        bus = int(fleet.ev_bus.values[v])
        for t in blk.T:
            p_inj.setdefault((bus, t), []).extend([-blk.p_vehicle_mw[v, t], blk.p_vehicle_dis_mw[v, t]])


def stay_steps(fleet, dt: float, n_steps: int) -> tuple[list[list[int]], np.ndarray]:
    """Per stay, its connected steps in the order it lives them (from the arrival step, wrapping
    the periodic day), and the hours connected per (stay, step)."""
    arrival, departure = charging_windows(fleet)
    hours = connected_hours(arrival, departure, dt, n_steps)
    first = np.floor(arrival / dt + 1e-9).astype(int) % n_steps
    order = [
        [(int(f) + i) % n_steps for i in range(n_steps) if hours[s, (int(f) + i) % n_steps] > 1e-9]
        for s, f in enumerate(first)
    ]
    return order, hours


def next_stays(fleet) -> np.ndarray:
    """Index of the stay each stay's vehicle drives to next (its first stay after its last one)."""
    vehicle = fleet.ev_vehicle.values
    arrival = np.mod(fleet.arrival_h.values, 24.0)
    out = np.empty(len(vehicle), dtype=int)
    for v in np.unique(vehicle):
        rows = np.flatnonzero(vehicle == v)
        rows = rows[np.argsort(arrival[rows], kind="stable")]
        out[rows] = np.roll(rows, -1)
    return out


def add_itinerary(blk: pyo.Block, fleet, dt: float, n_steps: int, control: EVControl) -> None:
    """Every vehicle on its own with its energy carried across stays and trips (module docstring)."""
    order, hours = stay_steps(fleet, dt, n_steps)
    battery = fleet.battery_kwh.values / 1000.0
    power = fleet.charger_kw.values / 1000.0
    trip = fleet.next_trip_kwh.values / 1000.0
    frac = float(control.v2g_power_fraction) if control.v2g else 0.0
    eta = float(control.v2g_efficiency)
    floor = float(control.v2g_soc_min) * battery if control.v2g else np.zeros_like(battery)
    leave = departure_need_kwh(fleet) / 1000.0
    stays = range(fleet.sizes["ev"])
    pairs = [(s, t) for s in stays for t in order[s]]
    cap = {(s, t): float(power[s] * hours[s, t] / dt) for s, t in pairs}
    blk.S = pyo.Set(initialize=stays, ordered=True)
    blk.ST = pyo.Set(initialize=pairs, dimen=2, ordered=True)
    blk.stay_ch_mw = pyo.Var(blk.ST, bounds=lambda b, s, t: (0, cap[s, t]))
    blk.stay_dis_mw = pyo.Var(blk.ST, bounds=lambda b, s, t: (0, frac * cap[s, t]))
    blk.arrival_mwh = pyo.Var(blk.S, bounds=lambda b, s: (float(floor[s]), float(battery[s])))
    blk.stay_e_mwh = pyo.Var(
        blk.ST,
        bounds=lambda b, s, t: (float(floor[s]), float(battery[s])),
        doc="energy in the car at the end of the step",
    )

    previous = {(s, t): (order[s][k - 1] if k else None) for s in stays for k, t in enumerate(order[s])}

    def before(s, t):
        return blk.arrival_mwh[s] if previous[s, t] is None else blk.stay_e_mwh[s, previous[s, t]]

    def departure(s):
        return blk.stay_e_mwh[s, order[s][-1]] if order[s] else blk.arrival_mwh[s]

    blk.stay_energy = pyo.Constraint(
        blk.ST,
        rule=lambda b, s, t: b.stay_e_mwh[s, t] == before(s, t) + (b.stay_ch_mw[s, t] - b.stay_dis_mw[s, t] / eta) * dt,
    )
    blk.stay_leave = pyo.Constraint(blk.S, rule=lambda b, s: departure(s) >= float(leave[s]) - 1e-9)
    following = next_stays(fleet)
    blk.trip = pyo.Constraint(
        blk.S, rule=lambda b, s: b.arrival_mwh[int(following[s])] == departure(s) - float(trip[s])
    )
    bus_of = fleet.ev_bus.values.astype(int)
    at: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for s, t in pairs:
        at.setdefault((int(bus_of[s]), t), []).append((s, t))
    blk.B = pyo.Set(initialize=sorted({int(b) for b in bus_of}), ordered=True)
    blk.p_ch_mw = pyo.Expression(
        blk.B, blk.T, rule=lambda b, bus, t: sum(b.stay_ch_mw[k] for k in at.get((bus, t), []))
    )
    blk.p_dis_mw = pyo.Expression(
        blk.B, blk.T, rule=lambda b, bus, t: sum(b.stay_dis_mw[k] for k in at.get((bus, t), []))
    )
    blk.departure = departure
    blk.leave_mwh = leave


def vehicle_options(fleet, dt: float, n_steps: int) -> list[tuple[int, int, int, float, list[int]]]:
    """Per vehicle: (ev, bus, steps of charging, power MW, feasible start steps) on the periodic day."""
    out = []
    for k in range(fleet.sizes["ev"]):
        energy = float(fleet.energy_kwh.values[k]) / 1000
        power = float(fleet.charger_kw.values[k]) / 1000
        if energy <= 0:
            continue
        length = max(1, math.ceil(energy / (power * dt) - 1e-9))
        first = math.ceil(float(fleet.arrival_h.values[k]) / dt - 1e-9)
        last = math.floor(float(fleet.departure_h.values[k]) / dt + 1e-9) - length
        starts = list(range(first, last + 1)) or [first]
        out.append((k, int(fleet.ev_bus.values[k]), length, energy / (length * dt), [s % n_steps for s in starts]))
    return out


def _add_per_vehicle(blk: pyo.Block, data: ScenarioData, dt: float) -> None:
    n_steps = len(data.steps)
    options = vehicle_options(data.fleet, dt, n_steps)
    blk.options = options
    blk.V = pyo.Set(initialize=range(len(options)))
    blk.choice = pyo.Var([(v, s) for v, opt in enumerate(options) for s in opt[4]], within=pyo.Binary)
    blk.one_start = pyo.Constraint(blk.V, rule=lambda b, v: sum(b.choice[v, s] for s in options[v][4]) == 1)
    buses = sorted({opt[1] for opt in options})
    blk.B = pyo.Set(initialize=buses, ordered=True)
    load: dict[tuple[int, int], list] = {}
    for v, (_, bus, length, power, starts) in enumerate(options):
        for s in starts:
            for j in range(length):
                load.setdefault((bus, (s + j) % n_steps), []).append(power * blk.choice[v, s])
    blk.p_ch_mw = pyo.Var(blk.B, blk.T, within=pyo.NonNegativeReals)
    blk.p_dis_mw = pyo.Var(blk.B, blk.T, bounds=(0, 0))
    blk.load = pyo.Constraint(blk.B, blk.T, rule=lambda b, bus, t: b.p_ch_mw[bus, t] == sum(load.get((bus, t), [])))


def vehicle_schedule(blk: pyo.Block, n_vehicles: int, n_steps: int) -> np.ndarray:
    """Per-vehicle charging power (MW) of a solved per-vehicle block, shape (time, ev)."""
    out = np.zeros((n_steps, n_vehicles))
    for v, (ev, _, length, power, starts) in enumerate(blk.options):
        for s in starts:
            if pyo.value(blk.choice[v, s]) > 0.5:
                for j in range(length):
                    out[(s + j) % n_steps, ev] += power
    return out


def solution(read: Reader, data: ScenarioData) -> dict[str, xr.Variable]:
    """Net EV load per bus (charging minus V2G), its V2G part and the uncontrolled load it replaces."""
    net, dis = data.ev_p_mw.copy(), np.zeros_like(data.ev_p_mw)
    m = read.m
    if data.ev_controlled and (not read.solved or m is None):  # no schedule (perhaps no model): NaN charging
        net[:] = np.nan
        dis[:] = np.nan
    elif data.ev_controlled and m is not None:
        assert data.fleet is not None  # ev_controlled says so
        steps, buses = list(data.steps), data.buses
        ev_buses = list(m.ev.B)
        cols = [buses.index(b) for b in ev_buses]
        net[:] = 0.0
        net[:, cols] = read.take("ev", "p_ch_mw", ev_buses, steps) - read.take("ev", "p_dis_mw", ev_buses, steps)
        dis[:, cols] = read.take("ev", "p_dis_mw", ev_buses, steps)
        for v in getattr(m.ev, "I", []):
            col = buses.index(int(data.fleet.ev_bus.values[v]))
            v_dis = read.take("ev", "p_vehicle_dis_mw", [v], steps)[:, 0]
            net[:, col] += read.take("ev", "p_vehicle_mw", [v], steps)[:, 0] - v_dis
            dis[:, col] += v_dis
    return {
        "ev_p_mw": variable(("time", "bus"), net, "MW (net EV load: charging - V2G discharging)"),
        "ev_p_dis_mw": variable(("time", "bus"), dis, "MW (V2G injection)"),
        "ev_uncontrolled_p_mw": variable(
            ("time", "bus"), data.ev_p_mw, "MW (the fleet charging on arrival, for comparison)"
        ),
    }


def pool_keys(fleet: xr.Dataset, step_hours: float, n_steps: int) -> np.ndarray:
    """An id per vehicle of its envelope pool: its bus and the step it leaves in."""
    _, departure = charging_windows(fleet)
    leave = np.rint(departure / step_hours).astype(int) % n_steps
    return fleet.ev_bus.values.astype(int) * (n_steps + 1) + leave


def vehicle_solution(
    m: pyo.ConcreteModel, data: ScenarioData, solved: bool, individual: np.ndarray
) -> dict[str, xr.Variable]:
    """Per-vehicle delivery of a coordinated schedule: power, energy delivered and unmet by departure.

    Per-vehicle mode: as chosen. Aggregate mode: vehicles modelled one by one keep their own
    schedule; the others share their bus's envelope schedule (:func:`feederflex.fleet.disaggregate`).
    """
    fleet = data.fleet
    assert fleet is not None, "vehicle schedules need the scenario's fleet"
    steps, n_ev = list(data.steps), fleet.sizes["ev"]
    delivered = np.full(n_ev, np.nan)
    unmet = np.full(n_ev, np.nan)
    per_vehicle = np.zeros((len(steps), n_ev))
    need = fleet.energy_kwh.values
    extra: dict[str, xr.Variable] = {}
    if solved and m.ev.mode == "per_vehicle":
        per_vehicle = vehicle_schedule(m.ev, n_ev, len(steps)) * 1000  # kW
        delivered = per_vehicle.sum(axis=0) * data.step_hours
        unmet = np.where(need - delivered > UNMET_TOLERANCE_KWH, need - delivered, 0.0)
    elif solved and m.ev.mode == "itinerary":
        eta = float(data.settings.ev_control.v2g_efficiency)
        for s, t in m.ev.ST:
            per_vehicle[t, s] = (pyo.value(m.ev.stay_ch_mw[s, t]) - pyo.value(m.ev.stay_dis_mw[s, t]) / eta) * 1000
        delivered = per_vehicle.sum(axis=0) * data.step_hours
        leaving = np.array([pyo.value(m.ev.departure(s)) for s in m.ev.S]) * 1000
        short = m.ev.leave_mwh * 1000 - leaving
        unmet = np.where(short > UNMET_TOLERANCE_KWH, short, 0.0)
        extra = {
            "ev_arrival_kwh": variable("ev", [pyo.value(m.ev.arrival_mwh[s]) * 1000 for s in m.ev.S], "kWh"),
            "ev_departure_kwh": variable("ev", leaving, "kWh (in the car when it leaves the stay)"),
        }
    elif solved:
        control = data.settings.ev_control
        eta = float(control.v2g_efficiency)
        into_cars = np.zeros((len(steps), len(data.buses)))
        for bus in m.ev.B:
            into_cars[:, data.buses.index(bus)] = [
                pyo.value(m.ev.p_ch_mw[bus, t]) - pyo.value(m.ev.p_dis_mw[bus, t]) / eta for t in steps
            ]
        pooled = np.flatnonzero(~individual)
        shares = disaggregate(
            fleet.isel(ev=pooled),
            into_cars,
            data.buses,
            int(round(data.step_hours * 60)),
            control.v2g_soc_min if control.v2g else None,
        )
        per_vehicle[:, pooled] = shares.ev_vehicle_p_kw.values
        delivered[pooled] = shares.ev_delivered_kwh.values
        unmet[pooled] = shares.ev_unmet_kwh.values
        for v in m.ev.I:
            charge = values(m.ev.p_vehicle_mw, [[v], steps])[0] - values(m.ev.p_vehicle_dis_mw, [[v], steps])[0] / eta
            per_vehicle[:, v] = charge * 1000
            delivered[v] = per_vehicle[:, v].sum() * data.step_hours
            gap = float(need[v]) - delivered[v]
            unmet[v] = gap if gap > UNMET_TOLERANCE_KWH else 0.0
    out = {
        "ev_delivered_kwh": variable("ev", delivered, "kWh (delivered by departure)"),
        "ev_unmet_kwh": variable("ev", unmet, "kWh (need not delivered by departure)"),
        "ev_bus": variable("ev", fleet.ev_bus.values, "bus number"),
        "ev_energy_need_kwh": variable("ev", need, "kWh"),
        "ev_individual": variable("ev", individual.astype(int), "1 where the vehicle was modelled on its own"),
        "ev_vehicle": variable("ev", fleet.ev_vehicle.values, "the vehicle whose stay this is"),
        **extra,
    }
    if n_ev <= 5000:  # per-vehicle profiles of large fleets stay out of the file
        out["ev_vehicle_p_kw"] = variable(("time", "ev"), per_vehicle, "kW (into the car; V2G negative)")
    return out
