"""Rule-based operation of regional microgrids with commuting EVs (seed paper 004, section 4).

At every step of the day, from ``regional.rules.day_start_h`` (004: 04:45), each subarea of
``regional.subareas`` applies 004's six rules to the vehicles parked at its bus, residential
subareas first so that their surplus can reach their commercial subarea in the same step:

1. the load is served and every vehicle at or below SOC_L (Lv1) charges at its charger's power;
2. surplus PV charges the other vehicles (Lv2), lowest SOC first, each within its charger;
3. a residential subarea's surplus left after (2) goes to the subarea named by ``surplus_to``,
   which uses it as its own PV in (2) (what neither can use is curtailed: nothing is exported);
4. what PV and discharge leave uncovered is imported from the grid;
5. in the subarea's peak windows, vehicles above SOC_H (Lv3) discharge, each its energy above
   SOC_H spread evenly over the steps left before the window ends (or it leaves), and more if that
   is needed to keep the import at or below the previous step's (004 eq. 17), never more than
   the deficit (no export) nor its charger's discharge power;
6. in the valley windows, residential vehicles below SOC_stop charge what they lack spread evenly
   over the valley hours left before they leave (or the valley ends), within their charger.

A vehicle leaves a stay with what it has; its next trip then takes its energy. The simulated
day is repeated from the state it ended in until the vehicles' energies at the day start repeat
(``periodic_passes`` at most), the steady state of one day following another, which is what the
optimised counterpart (``ev_control.mode: itinerary``, cyclic) assumes too. The thresholds and
windows are 004's names with our values (docs/regional.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from feederflex.checks import check_regional
from feederflex.errors import InputError
from feederflex.fleet import charging_windows, connected_hours, with_stays
from feederflex.model.ev import next_stays
from feederflex.settings import Settings

PERIODIC_TOLERANCE_MWH = 1e-6  # 1 Wh


@dataclass
class RuleDay:
    """The rules' schedule of one day: per stay (``ev``) and step, MW; per subarea and step, MW."""

    ch_mw: np.ndarray  # (time, ev), into the car
    dis_mw: np.ndarray  # (time, ev), into the grid (the car gives dis / efficiency)
    arrival_mwh: np.ndarray  # (ev,), energy when the vehicle arrives at the stay
    departure_mwh: np.ndarray  # (ev,), energy when it leaves
    import_mw: np.ndarray  # (time, subarea), from the grid
    transfer_mw: np.ndarray  # (time, subarea), surplus sent to surplus_to
    surplus_left_mw: np.ndarray  # (time, subarea), PV neither used nor sent (curtailed)
    passes: int
    periodic_residual_mwh: float


def _in(windows, hour: float) -> bool:
    return any(lo <= hour < hi for lo, hi in windows)


def _hours_left(windows, hour: float, step_hours: float) -> float:
    """Hours from ``hour`` to the end of the window it is in (windows joined across midnight)."""
    left, h = 0.0, hour
    while _in(windows, h % 24.0) and left < 24.0:
        left += step_hours
        h += step_hours
    return left


def pv_by_bus(settings: Settings, availability: np.ndarray, buses: list[int]) -> np.ndarray:
    """Available PV per step and bus, MW."""
    out = np.zeros((availability.shape[0], len(buses)))
    for k, unit in enumerate(settings.pv):
        out[:, buses.index(unit.bus)] += availability[:, k] * float(unit.p_mw)
    return out


def check_rules(settings: Settings, fleet: xr.Dataset | None, buses: list[int], step_hours: float) -> None:
    """What the rules can operate (:func:`feederflex.checks.check_regional`): every vehicle parked
    at a subarea, and every trip over at least one step boundary (the rules book a trip at the end
    of the step the vehicle leaves in, before the step it arrives in)."""
    check_regional(settings, buses, "", InputError)
    if fleet is None:
        return
    parked = sorted({int(b) for b in fleet.ev_bus.values} - {a.bus for a in settings.regional.subareas})
    if parked:
        raise InputError(f"operation.mode = rules: vehicles park at buses {parked}, which are no subarea's")
    fleet = with_stays(fleet)
    n_steps = int(round(24.0 / step_hours))
    f = _Fleet(fleet, step_hours, n_steps)
    for s, following in enumerate(next_stays(fleet)):
        if following != s and f.arrive_step[following] == f.leave_step[s]:
            raise InputError(
                f"operation.mode = rules: vehicle {int(f.vehicle[s])} leaves bus {int(f.bus[s])} at "
                f"{float(fleet.departure_h[s]) % 24:.2f} h and arrives at bus {int(f.bus[following])} at "
                f"{float(fleet.arrival_h[following]) % 24:.2f} h, inside one step of {step_hours * 60:g} min; "
                "the rules need every trip to cross a step boundary: use shorter steps (004: 15 min)"
            )


class _Fleet:
    """The stays' fixed data, in MW and MWh."""

    def __init__(self, fleet: xr.Dataset, step_hours: float, n_steps: int):
        fleet = with_stays(fleet)
        self.vehicle = fleet.ev_vehicle.values.astype(int)
        self.bus = fleet.ev_bus.values.astype(int)
        self.battery = fleet.battery_kwh.values / 1000.0
        self.power = fleet.charger_kw.values / 1000.0
        self.trip = fleet.next_trip_kwh.values / 1000.0
        arrival, departure = charging_windows(fleet)
        self.departure = departure
        self.fraction = connected_hours(arrival, departure, step_hours, n_steps) / step_hours  # (ev, time)
        self.leave_step = np.floor(np.mod(departure, 24.0) / step_hours - 1e-9).astype(int) % n_steps
        self.arrive_step = np.floor(np.mod(arrival, 24.0) / step_hours + 1e-9).astype(int) % n_steps


def _charge(order, cap, room, amount: float) -> np.ndarray:
    """Give up to ``amount`` MW to the stays in ``order``, each within min(cap, room)."""
    give = np.zeros(len(cap))
    for s in order:
        if amount <= 1e-12:
            break
        g = min(cap[s], room[s], amount)
        give[s] = max(g, 0.0)
        amount -= give[s]
    return give


def simulate(
    feeder: xr.Dataset, profiles: xr.Dataset, settings: Settings, fleet: xr.Dataset, pv_avail_mw: np.ndarray
) -> RuleDay:
    """004's six rules over the day (module docstring); ``pv_avail_mw`` is (time, bus)."""
    rules, areas = settings.regional.rules, settings.regional.subareas
    control = settings.ev_control
    eta = float(control.v2g_efficiency)
    frac = float(control.v2g_power_fraction) if control.v2g else 0.0
    buses = [int(b) for b in feeder.bus.values]
    load = profiles.load_p_mw.values
    n_steps = load.shape[0]
    dt = 24.0 / n_steps
    f = _Fleet(fleet, dt, n_steps)
    n_veh = int(f.vehicle.max()) + 1
    energy = np.zeros(n_veh)
    np.maximum.at(energy, f.vehicle, f.battery)  # a first guess: every vehicle full at the day start
    first = int(round(rules.day_start_h / dt)) % n_steps
    order = sorted(range(len(areas)), key=lambda a: areas[a].kind != "residential")
    index = {a.name: k for k, a in enumerate(areas)}
    passes = 0
    while True:
        start = energy.copy()
        day = _one_day(f, areas, order, index, rules, load, pv_avail_mw, buses, energy, first, dt, eta, frac)
        passes += 1
        residual = float(np.max(np.abs(energy - start))) if n_veh else 0.0
        if residual < PERIODIC_TOLERANCE_MWH or passes >= int(rules.periodic_passes):
            break
    day.passes, day.periodic_residual_mwh = passes, residual
    return day


def _one_day(f, areas, order, index, rules, load, pv, buses, energy, first, dt, eta, frac) -> RuleDay:
    """One pass over the day from step ``first``; ``energy`` (per vehicle, MWh) is updated in place.

    Long by design: the six rules in 004's order, one block each, so that the loop reads as the
    strategy it simulates.
    """
    n_steps, n_ev = load.shape[0], len(f.bus)
    ch, dis = np.zeros((n_steps, n_ev)), np.zeros((n_steps, n_ev))
    imp, sent, left = (np.zeros((n_steps, len(areas))) for _ in range(3))
    arrival_e, departure_e = np.zeros(n_ev), np.zeros(n_ev)
    previous = np.full(len(areas), np.inf)
    for j in range(n_steps):
        t = (first + j) % n_steps
        hour = t * dt
        received = np.zeros(len(areas))
        for s in np.flatnonzero(f.arrive_step == t):
            arrival_e[s] = energy[f.vehicle[s]]
        for a in order:
            area = areas[a]
            here = np.flatnonzero((f.bus == area.bus) & (f.fraction[:, t] > 1e-9))
            veh = f.vehicle[here]
            soc = energy[veh] / f.battery[here]
            cap = f.power[here] * f.fraction[here, t]
            room = (f.battery[here] - energy[veh]) / dt
            give = np.zeros(len(here))
            lv1 = soc <= rules.soc_low + 1e-12
            give[lv1] = np.minimum(cap[lv1], room[lv1])  # rule 1
            col = buses.index(area.bus)
            net = load[t, col] + give.sum() - pv[t, col] - received[a]
            if net < 0:  # rule 2: surplus PV, lowest SOC first
                rank = [k for k in np.argsort(soc, kind="stable") if not lv1[k]]
                give += _charge(rank, cap - give, room - give, -net)
                net = load[t, col] + give.sum() - pv[t, col] - received[a]
            if net < 0 and area.surplus_to is not None:  # rule 3
                received[index[area.surplus_to]] += -net
                sent[t, a] = -net
                net = 0.0
            left[t, a] = max(-net, 0.0)
            net = max(net, 0.0)
            if area.kind == "residential" and _in(rules.valley, hour):  # rule 6
                need = np.clip(rules.soc_stop * f.battery[here] - energy[veh], 0, None)
                hours = np.maximum(np.minimum(_hours_left(rules.valley, hour, dt), _to_leave(f, here, hour)), dt)
                spread = np.minimum(need / hours, cap) * (~lv1)
                extra = np.clip(np.minimum(spread, room) - give, 0, None)
                give += extra
                net += extra.sum()
            take = np.zeros(len(here))
            windows = rules.peak_commercial if area.kind == "commercial" else rules.peak_residential
            high = rules.soc_high_commercial if area.kind == "commercial" else rules.soc_high_residential
            if frac > 0 and net > 0 and _in(windows, hour):  # rule 5
                spare = np.clip(energy[veh] - high * f.battery[here], 0, None) * (give == 0)
                most = np.minimum(frac * cap, spare * eta / dt)
                hours = np.maximum(np.minimum(_hours_left(windows, hour, dt), _to_leave(f, here, hour)), dt)
                even = np.minimum(spare * eta / hours, most)
                wanted = max(even.sum(), net - previous[a]) if np.isfinite(previous[a]) else even.sum()
                total = min(wanted, most.sum(), net)
                if total > 1e-12:
                    base = even if even.sum() >= total else most
                    take = base * min(1.0, total / base.sum())
                net -= take.sum()
            imp[t, a] = net  # rule 4: the rest from the grid
            previous[a] = net
            ch[t, here], dis[t, here] = give, take
            energy[veh] += (give - take / eta) * dt
        for s in np.flatnonzero(f.leave_step == t):
            departure_e[s] = energy[f.vehicle[s]]
            energy[f.vehicle[s]] -= f.trip[s]
    return RuleDay(ch, dis, arrival_e, departure_e, imp, sent, left, 0, 0.0)


def _to_leave(f: _Fleet, stays: np.ndarray, hour: float) -> np.ndarray:
    """Hours from ``hour`` until each stay's vehicle leaves (on the periodic day)."""
    return np.mod(f.departure[stays] - hour, 24.0)
