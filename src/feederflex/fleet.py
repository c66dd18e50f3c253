"""EV fleets: Monte Carlo samples of vehicles, their uncontrolled charging load, and envelopes.

Samplers (``fleets.<name>.sampler``), each seeded, each from its seed paper:

``tong2021`` (000, section III.A): daily mileage d ~ lognormal(mu 3.019, sigma 1.123) km (eq. 9),
capped at the range; end of the last trip t_e ~ Weibull(shape 5.427, scale 18.618) h with the
after-midnight wrap of eq. 12 (a draw in (24, 28] h is an arrival at x - 24; draws at or below
4 h are redrawn, probability 2e-4); charging at the rated power until d x kWh/km is replaced
(eq. 14-15). Departure (not in the paper) the next morning at ``departure_h``.

``feng2024`` (001, eq. 11-12): d ~ lognormal(mu 3.2, sigma 0.88) km; charging start ~
normal(17.6 h, 3.4 h) on (mu - 12, mu + 12) wrapped at midnight as in eq. 12; the vehicle leaves
``dwell_h`` after its charge is complete (a public station; not in the paper).

``commute`` (004): arrival at work t1 and at home t2 by rejection sampling from tabulated target
distributions with proposals N(8.25, 1.4) and N(18.25, 1.4). The home table is 004's Table 2 (from
the publisher's version); Table 1 (work) did not survive, so the shipped stand-in is Table 2
shifted by -10 h. The paper's M = 1 does not bound such tables, so the smallest M that does is
used. Without ``routes`` (home charging only): distance classes 2.5/10/20/30 km with shares
31.8/30.8/20.3/17.1 % and 1-4 quarter hours of driving; the vehicle charges at home on arrival
what the round trip used, and leaves the next morning to reach work at t1. With ``routes``
(rows home bus, work bus, one-way km, driving h, share; 004's A-A ... C-A commutes) every
vehicle has an itinerary of two stays, at work [t1, t2 - drive) and at home [t2, t1 - drive + 24),
joined by the two trips (km x kWh/km each); the routes' vehicle counts are their shares of
``vehicles`` rounded by largest remainder (004's 288/276/182/154).

``yang2015`` (003, eq. 18-19): arrival time, departure time and arrival SOC from normal
distributions (its Fig. 6 did not survive extraction: parameters in the config); charging lasts
(1 - SOC) x T_full with T_full = battery / charger power.

Every sampler may delay the start by a uniform back-off in [0, max_delay_h] (``delayed``
strategy, 000). The simulated day is periodic: charging that runs past midnight loads the early
steps of the same day, the steady state of one day following another.

Itineraries: a row of the fleet (dimension ``ev``) is one parked stay of a vehicle
(``ev_vehicle``); a home-only vehicle has one. ``energy_kwh`` is what the trip before the stay
used (what the stay must put back when every stay refills its own trip, the rule of the
``uncontrolled``, ``aggregate`` and ``per_vehicle`` modes), ``next_trip_kwh`` what the trip after
it uses, and ``departure_soc_min`` the state of charge the vehicle must leave with (1 at home: it
leaves full; 0 elsewhere, where only the next trip and the reserve bound it). The ``itinerary``
mode of :mod:`feederflex.model.ev` carries the energy across stays instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from feederflex.errors import FleetError

SAMPLERS = ("tong2021", "feng2024", "commute", "yang2015")
UNMET_TOLERANCE_KWH = 1e-3  # 1 Wh: below this a vehicle counts as served (solver tolerances are ~1e-4 kWh)


def _weibull_wrapped(rng: np.random.Generator, n: int, shape: float, scale: float) -> np.ndarray:
    out = np.empty(0)
    while out.size < n:
        draw = scale * rng.weibull(shape, size=2 * (n - out.size) + 16)
        draw = draw[(draw > 4.0) & (draw <= 28.0)]
        out = np.concatenate([out, draw])
    out = out[:n]
    return np.where(out > 24.0, out - 24.0, out)


def _columns(mileage, arrival, start, departure, energy, battery, charger) -> pd.DataFrame:
    """One home stay per vehicle: it puts back the day's driving and leaves full."""
    n = len(arrival)
    return pd.DataFrame(
        {
            "mileage_km": np.asarray(mileage, float),
            "arrival_h": np.asarray(arrival, float),
            "charge_start_h": np.asarray(start, float),
            "departure_h": np.asarray(departure, float),
            "energy_kwh": np.asarray(energy, float),
            "battery_kwh": np.full(n, battery),
            "charger_kw": np.full(n, charger),
            "ev_vehicle": np.arange(n),
            "next_trip_kwh": np.asarray(energy, float),
            "departure_soc_min": np.ones(n),
        }
    )


def _delay(rng: np.random.Generator, n: int, spec: dict) -> np.ndarray:
    return rng.uniform(0.0, spec["max_delay_h"], size=n) if spec["strategy"] == "delayed" else np.zeros(n)


def sample_tong2021(rng: np.random.Generator, n: int, spec: dict) -> pd.DataFrame:
    """Seed paper 000: lognormal mileage, wrapped Weibull arrival, charge on arrival, leave next morning."""
    dist, veh = spec["distributions"]["tong2021"], spec["vehicle"]
    mileage = np.minimum(rng.lognormal(dist["mileage_mu"], dist["mileage_sigma"], size=n), veh["range_km"])
    arrival = _weibull_wrapped(rng, n, dist["arrival_shape"], dist["arrival_scale"])
    start = arrival + _delay(rng, n, spec)
    energy = np.minimum(mileage * veh["kwh_per_km"], veh["battery_kwh"])
    end = start + energy / veh["charger_kw"]
    # arrivals after midnight (wrap) leave the same morning; the others the next morning
    leave = np.where(arrival < spec["departure_h"], spec["departure_h"], spec["departure_h"] + 24.0)
    return _columns(mileage, arrival, start, np.maximum(leave, end), energy, veh["battery_kwh"], veh["charger_kw"])


def sample_feng2024(rng: np.random.Generator, n: int, spec: dict) -> pd.DataFrame:
    """Seed paper 001 eq. 11-12: lognormal mileage, normal start wrapped at midnight."""
    dist, veh = spec["distributions"]["feng2024"], spec["vehicle"]
    mileage = np.minimum(rng.lognormal(dist["mileage_mu"], dist["mileage_sigma"], size=n), veh["range_km"])
    mean, sd = dist["start_mean_h"], dist["start_sd_h"]
    draws = np.empty(0)
    while draws.size < n:
        x = rng.normal(mean, sd, size=2 * (n - draws.size) + 16)
        draws = np.concatenate([draws, x[(x > mean - 12) & (x < mean + 12)]])
    arrival = np.mod(draws[:n], 24.0)
    start = arrival + _delay(rng, n, spec)
    energy = np.minimum(mileage * veh["kwh_per_km"], veh["battery_kwh"])
    end = start + energy / veh["charger_kw"]
    return _columns(mileage, arrival, start, end + spec["dwell_h"], energy, veh["battery_kwh"], veh["charger_kw"])


def rejection_sample(rng: np.random.Generator, n: int, table: list, proposal: list) -> np.ndarray:
    """Draw ``n`` values of a tabulated distribution (rows [value, probability] on an even grid)
    by rejection from a normal proposal N(mean, sd) discretised onto the same grid (004)."""
    from scipy import stats

    values = np.array([row[0] for row in table], float)
    target = np.array([row[1] for row in table], float)
    target = target / target.sum()
    half = (values[1] - values[0]) / 2 if len(values) > 1 else 0.5
    q = stats.norm(proposal[0], proposal[1])
    q_mass = q.cdf(values + half) - q.cdf(values - half)
    bound = float(np.max(target / q_mass))  # the smallest M with target <= M q
    out = np.empty(0)
    while out.size < n:
        x = rng.normal(proposal[0], proposal[1], size=4 * (n - out.size) + 16)
        k = np.rint((x - values[0]) / (2 * half)).astype(int)
        inside = (k >= 0) & (k < len(values))
        k = k[inside]
        accept = rng.uniform(size=k.size) < target[k] / (bound * q_mass[k])
        out = np.concatenate([out, values[k[accept]]])
    return out[:n]


def sample_commute(rng: np.random.Generator, n: int, spec: dict) -> pd.DataFrame:
    """Seed paper 004: commuters charging at home what the round trip to work used."""
    dist, veh = spec["distributions"]["commute"], spec["vehicle"]
    work = rejection_sample(rng, n, dist["work_arrival_table"], dist["work_proposal"])
    home = rejection_sample(rng, n, dist["home_arrival_table"], dist["home_proposal"])
    share = np.asarray(dist["distance_share"], float)
    cls = rng.choice(len(share), size=n, p=share / share.sum())
    distance = np.asarray(dist["distance_km"], float)[cls]
    drive_h = np.asarray(dist["drive_h"], float)[cls]
    mileage = np.minimum(2 * distance, veh["range_km"])
    energy = np.minimum(mileage * veh["kwh_per_km"], veh["battery_kwh"])
    start = home + _delay(rng, n, spec)
    leave = work - drive_h + 24.0
    end = start + energy / veh["charger_kw"]
    return _columns(mileage, home, start, np.maximum(leave, end), energy, veh["battery_kwh"], veh["charger_kw"])


def route_counts(shares: np.ndarray, n: int) -> np.ndarray:
    """Vehicles per route: ``n`` x share rounded by largest remainder (the counts sum to ``n``)."""
    exact = n * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def sample_routes(rng: np.random.Generator, spec: dict, name: str) -> pd.DataFrame:
    """Seed paper 004 with workplaces: every vehicle a stay at work and one at home (two rows)."""
    dist, veh = spec["distributions"]["commute"], spec["vehicle"]
    routes = dist["routes"]
    homes = sorted({int(r["home"]) for r in routes})
    n = int(spec["vehicles_per_bus"]) * len(homes)
    counts = route_counts(np.array([r["share"] for r in routes], float), n)
    route = np.repeat(np.arange(len(routes)), counts)
    work = rejection_sample(rng, n, dist["work_arrival_table"], dist["work_proposal"])
    home = rejection_sample(rng, n, dist["home_arrival_table"], dist["home_proposal"])
    drive = np.array([routes[k]["drive_h"] for k in route], float)
    trip = np.minimum(np.array([routes[k]["km"] for k in route], float), veh["range_km"] / 2) * veh["kwh_per_km"]
    leave_work = home - drive
    bad = np.flatnonzero(leave_work <= work)
    if bad.size:
        k = int(bad[0])
        raise FleetError(
            f"fleets.{name}: vehicle {k} arrives at work at {work[k]:.2f} h and must leave at {leave_work[k]:.2f} h "
            "to be home by its sampled arrival; the arrival tables must leave a stay at work"
        )
    vehicle = np.arange(n)
    both = {
        "mileage_km": np.repeat(2 * trip / veh["kwh_per_km"], 2),
        "battery_kwh": np.full(2 * n, float(veh["battery_kwh"])),
        "charger_kw": np.full(2 * n, float(veh["charger_kw"])),
        "ev_vehicle": np.repeat(vehicle, 2),
        "energy_kwh": np.repeat(trip, 2),
        "next_trip_kwh": np.repeat(trip, 2),
    }
    frame = pd.DataFrame(both)
    at_work = np.arange(2 * n) % 2 == 0
    frame["bus"] = np.where(at_work, np.repeat([routes[k]["work"] for k in route], 2), 0)
    frame.loc[~at_work, "bus"] = [routes[k]["home"] for k in route]
    frame["arrival_h"] = np.where(at_work, np.repeat(work, 2), np.repeat(home, 2))
    frame["departure_h"] = np.where(at_work, np.repeat(leave_work, 2), np.repeat(work - drive + 24.0, 2))
    frame["charge_start_h"] = frame.arrival_h + _delay(rng, 2 * n, spec)
    frame["departure_soc_min"] = np.where(at_work, 0.0, 1.0)
    return frame


def sample_yang2015(rng: np.random.Generator, n: int, spec: dict) -> pd.DataFrame:
    """Seed paper 003 eq. 18-19: arrival, departure and arrival SOC; duration (1 - SOC) T_full."""
    dist, veh = spec["distributions"]["yang2015"], spec["vehicle"]
    arrival = np.mod(rng.normal(dist["arrival_mean_h"], dist["arrival_sd_h"], size=n), 24.0)
    soc = np.clip(rng.normal(dist["soc_mean"], dist["soc_sd"], size=n), dist["soc_min"], dist["soc_max"])
    energy = (1.0 - soc) * veh["battery_kwh"]
    duration = (1.0 - soc) * veh["battery_kwh"] / veh["charger_kw"]  # (1 - SOC) x T_full, eq. 19
    start = arrival + _delay(rng, n, spec)
    leave = arrival + np.mod(rng.normal(dist["departure_mean_h"], dist["departure_sd_h"], size=n) - arrival, 24.0)
    mileage = energy / veh["kwh_per_km"]
    return _columns(
        mileage, arrival, start, np.maximum(leave, start + duration), energy, veh["battery_kwh"], veh["charger_kw"]
    )


_SAMPLE = {
    "tong2021": sample_tong2021,
    "feng2024": sample_feng2024,
    "commute": sample_commute,
    "yang2015": sample_yang2015,
}


def check_vehicles(frame: pd.DataFrame, where: str) -> None:
    """Raise :class:`FleetError` for a departure before arrival, a negative energy, or a need
    that the charger cannot deliver between charge start and departure."""
    bad = frame.index[frame.departure_h < frame.arrival_h]
    if len(bad):
        raise FleetError(
            f"{where}: vehicle {int(bad[0])} departs ({frame.departure_h[bad[0]]:.2f} h) before it arrives "
            f"({frame.arrival_h[bad[0]]:.2f} h)"
        )
    bad = frame.index[frame.energy_kwh < 0]
    if len(bad):
        raise FleetError(
            f"{where}: vehicle {int(bad[0])} has a negative energy need ({frame.energy_kwh[bad[0]]:.3g} kWh)"
        )
    short = frame.charge_start_h + frame.energy_kwh / frame.charger_kw - frame.departure_h
    bad = frame.index[short > 1e-9]
    if len(bad):
        raise FleetError(
            f"{where}: vehicle {int(bad[0])} cannot get its {frame.energy_kwh[bad[0]]:.3g} kWh before departure"
        )


def charging_load(
    start_h: np.ndarray, end_h: np.ndarray, power_kw: np.ndarray, step_hours: float, n_steps: int
) -> np.ndarray:
    """Average charging power (kW) per step of a periodic day for intervals [start_h, end_h).

    The exact overlap of each interval with each step is used, so the energy of every vehicle is
    conserved whatever the step length. Intervals may extend past 24 h and wrap to the morning.
    """
    day = n_steps * step_hours
    edges = np.arange(n_steps + 1) * step_hours
    load = np.zeros(n_steps)
    for shift in (0.0, -day, -2 * day):
        lo = np.clip(start_h + shift, 0.0, day)
        hi = np.clip(end_h + shift, 0.0, day)
        for k in range(n_steps):
            overlap = np.clip(np.minimum(hi, edges[k + 1]) - np.maximum(lo, edges[k]), 0.0, None)
            load[k] += float(np.dot(overlap, power_kw))
    return load / step_hours


def uncontrolled_load_kw(frame, ev_bus: np.ndarray, bus_list: list[int], step_hours: float, n_steps: int) -> np.ndarray:
    """Charging on arrival (from ``charge_start_h`` at the rated power) per step and bus, kW,
    over ``n_steps`` from midnight: the periodic daily load, repeated past a day."""
    steps_per_day = int(round(24 / step_hours))
    end = frame.charge_start_h + frame.energy_kwh / frame.charger_kw
    load_kw = np.zeros((steps_per_day, len(bus_list)))
    for bus in np.unique(ev_bus):
        sel = ev_bus == bus
        load_kw[:, bus_list.index(int(bus))] = charging_load(
            np.asarray(frame.charge_start_h)[sel],
            np.asarray(end)[sel],
            np.asarray(frame.charger_kw)[sel],
            step_hours,
            steps_per_day,
        )
    return np.tile(load_kw, (n_steps // steps_per_day + 1, 1))[:n_steps]


def sample_fleet(spec: dict, feeder: xr.Dataset, hours: float, step_minutes: int, name: str = "fleet") -> xr.Dataset:
    """Sample the fleet ``spec`` (one entry of the config's ``fleets``) on ``feeder``.

    Vehicles are placed ``vehicles_per_bus`` at each bus of ``buses`` (every bus with load when
    empty); commute routes place ``vehicles_per_bus`` x (home buses of the routes) vehicles on the
    routes. Returns per-stay arrays (dimension ``ev``) and the uncontrolled charging load
    ``ev_p_mw(time, bus)`` over a horizon of ``hours`` from midnight: the periodic daily load,
    repeated for horizons over a day. ``time`` is the time since midnight of the step start.
    """
    step_hours = step_minutes / 60
    n_steps = int(round(hours * 60 / step_minutes))
    if spec["sampler"] not in SAMPLERS:
        raise FleetError(f"fleets.{name}.sampler: unknown sampler {spec['sampler']!r}; expected one of {SAMPLERS}")
    bus_list = [int(b) for b in feeder.bus.values]
    buses = [int(b) for b in spec["buses"]] or [b for b in bus_list if feeder.p_load_mw.sel(bus=b) > 0]
    unknown = sorted(set(buses) - set(bus_list))
    if unknown:
        raise FleetError(f"fleets.{name}.buses: {unknown} are not buses of the feeder (1..{max(bus_list)})")
    n_per_bus = int(spec["vehicles_per_bus"])
    rng = np.random.default_rng(int(spec["seed"]))
    routes = spec["sampler"] == "commute" and spec["distributions"]["commute"].get("routes")
    if routes:
        frame = sample_routes(rng, spec, name)
        ev_bus = frame.pop("bus").to_numpy(int)
        unknown = sorted(set(ev_bus.tolist()) - set(bus_list))
        if unknown:
            raise FleetError(f"fleets.{name}.distributions.commute.routes: buses {unknown} are not buses of the feeder")
    else:
        frame = _SAMPLE[spec["sampler"]](rng, n_per_bus * len(buses), spec)
        ev_bus = np.repeat(buses, n_per_bus)
    check_vehicles(frame, f"fleets.{name}")
    frame["reserve_soc"] = float(spec["vehicle"].get("reserve_soc", 0.1))
    load_kw = uncontrolled_load_kw(frame, ev_bus, bus_list, step_hours, n_steps)
    times = pd.timedelta_range(0, periods=n_steps, freq=f"{step_minutes}min")
    data: dict[str, tuple] = {col: ("ev", frame[col].to_numpy()) for col in frame.columns}
    data["ev_bus"] = ("ev", ev_bus)
    data["ev_p_mw"] = (("time", "bus"), load_kw / 1000.0)
    return xr.Dataset(
        data,
        coords={"ev": np.arange(len(frame)), "time": times, "bus": bus_list},
        attrs={
            "fleet": name,
            "sampler": spec["sampler"],
            "seed": int(spec["seed"]),
            "step_hours": step_hours,
            "vehicles": int(np.unique(frame.ev_vehicle).size),
            "units": "one row (ev) per parked stay of vehicle ev_vehicle; mileage_km: km; *_h: hours after "
            "midnight of the day (over 24 = next day); energy_kwh (the trip before the stay), next_trip_kwh, "
            "battery_kwh: kWh; charger_kw: kW; departure_soc_min: 1; ev_p_mw: MW (uncontrolled charging)",
        },
    )


def with_stays(fleet: xr.Dataset) -> xr.Dataset:
    """``fleet`` with the itinerary columns of a home-only fleet filled in where it lacks them (a
    fleet file written before itineraries, or one built by hand): one stay per vehicle, leaving full."""
    n = fleet.sizes["ev"]
    defaults = {
        "ev_vehicle": np.arange(n),
        "next_trip_kwh": fleet.energy_kwh.values,
        "departure_soc_min": np.ones(n),
        "reserve_soc": np.zeros(n),
    }
    missing = {k: ("ev", v) for k, v in defaults.items() if k not in fleet}
    return fleet.assign(missing) if missing else fleet


def departure_need_kwh(fleet: xr.Dataset) -> np.ndarray:
    """Energy each stay must leave with, kWh: its ``departure_soc_min`` of the battery and its next
    trip plus the reserve, whichever is more, at most the battery (the itinerary mode and the rules)."""
    battery = fleet.battery_kwh.values
    floor = fleet.next_trip_kwh.values + fleet.reserve_soc.values * battery
    return np.minimum(battery, np.maximum(fleet.departure_soc_min.values * battery, floor))


def sampler_densities(spec: dict):
    """Densities a fleet was sampled from, for plots: (mileage pdf per km, arrival pdf per h on
    [0, 24)), each None where the sampler has no closed form (commute, yang2015 mileage)."""
    from scipy import stats

    sampler = spec["sampler"]
    dist = spec["distributions"][sampler]
    if sampler == "tong2021":
        mileage = stats.lognorm(s=dist["mileage_sigma"], scale=np.exp(dist["mileage_mu"]))
        weibull = stats.weibull_min(dist["arrival_shape"], scale=dist["arrival_scale"])
        mass = weibull.cdf(28.0) - weibull.cdf(4.0)

        def arrival_pdf(hours):
            hours = np.asarray(hours, float)
            return np.where(hours > 4.0, weibull.pdf(hours), weibull.pdf(hours + 24.0)) / mass

        return mileage.pdf, arrival_pdf
    if sampler == "feng2024":
        mileage = stats.lognorm(s=dist["mileage_sigma"], scale=np.exp(dist["mileage_mu"]))
        mean, sd = dist["start_mean_h"], dist["start_sd_h"]
        normal = stats.norm(mean, sd)
        mass = normal.cdf(mean + 12) - normal.cdf(mean - 12)

        def start_pdf(hours):
            hours = np.asarray(hours, float)
            total = np.zeros_like(hours)
            for shift in (-24.0, 0.0, 24.0):
                y = hours + shift
                total += np.where((y > mean - 12) & (y < mean + 12), normal.pdf(y), 0.0)
            return total / mass

        return mileage.pdf, start_pdf
    if sampler == "yang2015":
        normal = stats.norm(dist["arrival_mean_h"], dist["arrival_sd_h"])
        return None, lambda hours: sum(normal.pdf(np.asarray(hours, float) + k * 24.0) for k in (-1, 0, 1))
    return None, None


def expected_load_tong2021(spec: dict, n_vehicles: int, step_minutes: int, points_per_step: int = 30) -> np.ndarray:
    """Expected charging load (kW) per step of ``n_vehicles`` from 000 eq. 13-15, integrated numerically.

    P(t) = N P_cha Prob(t0 <= t < t0 + D) on the periodic day, with t0 the wrapped-Weibull arrival
    (plus the uniform back-off of the delayed strategy) and D = min(d kWh/km, battery) / P_cha the
    charging duration of a lognormal mileage d capped at the range; averaged over each step.
    """
    from scipy import stats

    dist, veh = spec["distributions"]["tong2021"], spec["vehicle"]
    _, arrival_pdf = sampler_densities(spec)
    mileage = stats.lognorm(s=dist["mileage_sigma"], scale=np.exp(dist["mileage_mu"]))
    power = veh["charger_kw"]
    longest = min(veh["range_km"] * veh["kwh_per_km"], veh["battery_kwh"]) / power

    def survival(duration):
        return np.where(duration < longest, mileage.sf(duration * power / veh["kwh_per_km"]), 0.0)

    grid = np.linspace(0, 24, 24 * 60 + 1)[:-1] + 0.5 / 60  # arrival grid, 1-minute cells
    weight = arrival_pdf(grid) / 60
    delays = (
        (np.linspace(0, spec["max_delay_h"], 21)[:-1] + spec["max_delay_h"] / 40)
        if spec["strategy"] == "delayed"
        else np.zeros(1)
    )
    step_hours = step_minutes / 60
    steps = int(round(24 / step_hours))
    times = (np.arange(steps)[:, None] + (np.arange(points_per_step) + 0.5) / points_per_step) * step_hours
    prob = np.zeros(times.shape)
    for delay in delays:
        lag = np.mod(times[..., None] - (grid + delay), 24.0)
        prob += (survival(lag) * weight).sum(axis=-1)
    prob /= len(delays)
    return n_vehicles * power * prob.mean(axis=1)


def charging_windows(fleet: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Charging windows [arrival, departure) in hours on the periodic day (at most 24 h long)."""
    arrival = fleet.arrival_h.values.astype(float)
    return arrival, np.minimum(fleet.departure_h.values.astype(float), arrival + 24.0)


def _rotated_windows(fleet: xr.Dataset, cut_h: float) -> pd.DataFrame:
    """Charging windows (:func:`charging_windows`) in hours after ``cut_h`` on the periodic day; a window
    that crosses the cut is split in two virtual vehicles sharing the energy in proportion to
    their lengths (each part stays feasible at the charger's power)."""
    arrival_h, departure_h = charging_windows(fleet)
    arrival = np.mod(arrival_h - cut_h, 24.0)
    length = np.minimum(departure_h - arrival_h, 24.0 - 1e-9)
    energy = fleet.energy_kwh.values / 1000.0
    power = fleet.charger_kw.values / 1000.0
    ev = np.arange(fleet.sizes["ev"])
    end = arrival + length
    crosses = end > 24.0
    first_share = np.where(crosses, (24.0 - arrival) / np.maximum(length, 1e-12), 1.0)
    parts = [
        pd.DataFrame(
            {
                "ev": ev,
                "bus": fleet.ev_bus.values,
                "start": arrival,
                "end": np.minimum(end, 24.0),
                "e_mwh": energy * first_share,
                "p_mw": power,
            }
        ),
        pd.DataFrame(
            {
                "ev": ev[crosses],
                "bus": fleet.ev_bus.values[crosses],
                "start": 0.0,
                "end": end[crosses] - 24.0,
                "e_mwh": energy[crosses] * (1 - first_share[crosses]),
                "p_mw": power[crosses],
            }
        ),
    ]
    return pd.concat(parts, ignore_index=True)


def cut_step(fleet: xr.Dataset, n_steps: int) -> int:
    """The step at whose start the fewest vehicles are connected (where the day is cut for envelopes)."""
    step_hours = 24.0 / n_steps
    starts = np.arange(n_steps) * step_hours
    a = fleet.arrival_h.values[:, None]
    d = fleet.departure_h.values[:, None]
    connected = ((starts >= a) & (starts < d)) | ((starts + 24.0 >= a) & (starts + 24.0 < d))
    return int(np.argmin(connected.sum(axis=0)))


def envelopes(
    fleet: xr.Dataset, bus_numbers: list[int], hours: float, step_minutes: int, v2g_soc_min: float | None = None
) -> xr.Dataset:
    """Aggregate flexibility of the fleet in pools: the vehicles of one bus leaving in the same step.

    With ``order`` the steps from the cut step on (``cut_step``), the cumulative energy charged in
    a pool after the first k steps of that order lies between ``e_min_mwh[k]`` (every vehicle as
    late as possible) and ``e_max_mwh[k]`` (as early as possible); the power in a step is at most
    ``p_max_mw`` (connected chargers, by the fraction of the step they are connected, each at most
    its whole need in one step). Pooling by
    departure step keeps vehicles with early deadlines from borrowing the flexibility of later ones;
    the number of pools is at most buses x steps, whatever the fleet's size. With ``v2g_soc_min``
    the lower bound allows discharging connected vehicles down to that SOC while every vehicle can
    still reach its energy by departure (000 eq. 16-19).
    """
    if abs(hours - 24.0) > 1e-9:
        raise FleetError(f"time.hours = {hours}: coordinated EV charging needs a 24-hour (periodic) day")
    step_hours = step_minutes / 60
    n_steps = int(round(24 / step_hours))
    cut = cut_step(fleet, n_steps)
    win = _rotated_windows(fleet, cut * step_hours)
    bounds = np.arange(n_steps + 1) * step_hours
    start, end = win.start.values[:, None], win.end.values[:, None]
    e, p = win.e_mwh.values[:, None], win.p_mw.values[:, None]
    early = np.minimum(e, p * np.clip(bounds[None, :] - start, 0, None))
    late = np.clip(e - p * np.clip(end - bounds[None, :], 0, None), 0, None)
    if v2g_soc_min is not None:
        # energy a vehicle may give back before it must charge: arrival energy above the SOC floor,
        # shared between the parts of a split window like its need
        share = (win.e_mwh.values / np.maximum(fleet.energy_kwh.values[win.ev.values] / 1000.0, 1e-12))[:, None]
        battery = fleet.battery_kwh.values[win.ev.values][:, None] / 1000.0
        arrival_energy = battery - fleet.energy_kwh.values[win.ev.values][:, None] / 1000.0
        floor = -np.clip(arrival_energy - v2g_soc_min * battery, 0, None) * np.where(e > 0, share, 0.0)
        inside = (bounds[None, :] > start) & (bounds[None, :] < end)
        late = np.where(inside, np.maximum(floor, e - p * np.clip(end - bounds[None, :], 0, None)), late)
    overlap = np.clip(np.minimum(end, bounds[None, 1:]) - np.maximum(start, bounds[None, :-1]), 0, None) / step_hours
    power = np.minimum(p * overlap, e / step_hours)  # a car takes no more in a step than its whole need
    leave_step = np.clip(np.rint(win.end.values / step_hours).astype(int), 1, n_steps)
    ev_buses = np.unique(fleet.ev_bus.values.astype(int))
    pools = np.array([(b, k) for b in ev_buses for k in range(1, n_steps + 1)], dtype=int).reshape(-1, 2)  # every pool
    bus_pos = {int(b): i for i, b in enumerate(ev_buses)}
    pool_of = np.array(
        [bus_pos[int(b)] * n_steps + k - 1 for b, k in zip(win.bus.values, leave_step, strict=True)], dtype=int
    )
    e_min = np.zeros((n_steps + 1, len(pools)))
    e_max = np.zeros((n_steps + 1, len(pools)))
    p_max = np.zeros((n_steps, len(pools)))
    np.add.at(e_min.T, pool_of, late)
    np.add.at(e_max.T, pool_of, early)
    np.add.at(p_max.T, pool_of, power)
    order = (cut + np.arange(n_steps)) % n_steps
    return xr.Dataset(
        {
            "e_min_mwh": (("boundary", "pool"), e_min),
            "e_max_mwh": (("boundary", "pool"), e_max),
            "p_max_mw": (("step", "pool"), p_max),
            "pool_bus": ("pool", pools[:, 0]),
            "pool_leave_step": ("pool", pools[:, 1]),
            "order": ("step", order),
        },
        coords={"boundary": np.arange(n_steps + 1), "step": np.arange(n_steps), "pool": np.arange(len(pools))},
        attrs={
            "cut_step": cut,
            "step_hours": step_hours,
            "units": "e_*_mwh: cumulative MWh after k steps of `order`; p_max_mw: MW in the k-th step of `order`; "
            "pool_leave_step: steps from the cut by which the pool's vehicles have left",
        },
    )


def connected_hours(arrival_h: np.ndarray, departure_h: np.ndarray, step_hours: float, n_steps: int) -> np.ndarray:
    """Hours each vehicle is connected in each step of the periodic day, shape (vehicle, step)."""
    day = n_steps * step_hours
    edges = np.arange(n_steps + 1) * step_hours
    out = np.zeros((len(arrival_h), n_steps))
    for shift in (0.0, -day, -2 * day):
        lo = np.clip(arrival_h + shift, 0.0, day)[:, None]
        hi = np.clip(departure_h + shift, 0.0, day)[:, None]
        out += np.clip(np.minimum(hi, edges[None, 1:]) - np.maximum(lo, edges[None, :-1]), 0.0, None)
    return out


def disaggregate_lp(fleet: xr.Dataset, p_bus_mw: np.ndarray, bus_numbers: list[int], step_minutes: int) -> xr.Dataset:
    """Share a charging schedule (MW per step and bus, no discharging) among the vehicles exactly.

    Per bus a linear program (HiGHS through scipy) gives every vehicle power within its charger
    while connected, at most the bus's schedule in each step, and minimises the energy left
    unmet at departure: zero whenever any per-vehicle split of the schedule exists.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n_steps = p_bus_mw.shape[0]
    step_hours = step_minutes / 60
    hours = connected_hours(*charging_windows(fleet), step_hours, n_steps)
    energy = fleet.energy_kwh.values / 1000.0
    cap = fleet.charger_kw.values[:, None] / 1000.0 * hours  # MWh per vehicle and step
    schedule = np.zeros((n_steps, fleet.sizes["ev"]))
    unmet = np.zeros(fleet.sizes["ev"])
    col = {int(b): k for k, b in enumerate(bus_numbers)}
    for bus in np.unique(fleet.ev_bus.values):
        vehicles = np.flatnonzero(fleet.ev_bus.values == bus)
        pairs_v, pairs_t = np.nonzero(cap[vehicles] > 1e-12)
        n_x, n_v = len(pairs_v), len(vehicles)
        # variables: x (MWh per connected vehicle-step), then u (unmet MWh per vehicle)
        rows = np.concatenate([pairs_v, np.arange(n_v)])
        cols = np.concatenate([np.arange(n_x), n_x + np.arange(n_v)])
        a_eq = coo_matrix((np.ones(n_x + n_v), (rows, cols)), shape=(n_v, n_x + n_v))
        a_ub = coo_matrix((np.ones(n_x), (pairs_t, np.arange(n_x))), shape=(n_steps, n_x + n_v))
        b_ub = np.clip(p_bus_mw[:, col[int(bus)]], 0, None) * step_hours + 1e-9
        bounds = np.concatenate(
            [
                np.stack([np.zeros(n_x), cap[vehicles][pairs_v, pairs_t]], axis=1),
                np.stack([np.zeros(n_v), np.full(n_v, np.inf)], axis=1),
            ]
        )
        cost = np.concatenate([np.zeros(n_x), np.ones(n_v)])
        res = linprog(
            cost, A_ub=a_ub.tocsr(), b_ub=b_ub, A_eq=a_eq.tocsr(), b_eq=energy[vehicles], bounds=bounds, method="highs"
        )
        if res.status != 0:
            raise RuntimeError(f"disaggregation LP at bus {bus} failed: {res.message}")
        x = res.x[:n_x]
        np.add.at(schedule, (pairs_t, vehicles[pairs_v]), x / step_hours * 1000)
        unmet[vehicles] = res.x[n_x:] * 1000
    delivered = schedule.sum(axis=0) * step_hours
    return xr.Dataset(
        {
            "ev_delivered_kwh": ("ev", delivered),
            "ev_unmet_kwh": ("ev", np.where(unmet > UNMET_TOLERANCE_KWH, unmet, 0.0)),
            "ev_vehicle_p_kw": (("time", "ev"), schedule),
        },
        coords={"ev": fleet.ev.values},
    )


def disaggregate(
    fleet: xr.Dataset, p_bus_mw: np.ndarray, bus_numbers: list[int], step_minutes: int, v2g_soc_min: float | None = None
) -> xr.Dataset:
    """Share an aggregate schedule (net power into the cars, MW per step and bus) among the vehicles.

    Without discharging this is :func:`disaggregate_lp` (exact). With V2G steps it is a greedy rule:

    Steps are walked from the envelope's cut step; in each, every connected vehicle first gets
    what it must have now to still finish at full power by departure, then the rest of the bus's
    energy goes to the vehicles with the least laxity (time to departure minus the time their
    remaining need takes at full power) first, each within its charger and its remaining need.
    A negative step (V2G) is taken from the vehicles leaving last, each within
    its charger and its energy above ``v2g_soc_min``, and adds to what they still need. Returns per
    vehicle the energy delivered (net) and unmet at departure (kWh) and ``ev_vehicle_p_kw(time, ev)``.
    """
    if (p_bus_mw >= -1e-9).all():
        return disaggregate_lp(fleet, p_bus_mw, bus_numbers, step_minutes)
    n_steps = p_bus_mw.shape[0]
    step_hours = step_minutes / 60
    cut = cut_step(fleet, n_steps)
    win = _rotated_windows(fleet, cut * step_hours)
    col = {int(b): k for k, b in enumerate(bus_numbers)}
    remaining = win.e_mwh.to_numpy().copy()
    share = win.e_mwh.to_numpy() / np.maximum(fleet.energy_kwh.values[win.ev.values] / 1000.0, 1e-12)
    battery = fleet.battery_kwh.values[win.ev.values] / 1000.0
    spare = (
        np.clip(battery - fleet.energy_kwh.values[win.ev.values] / 1000.0 - (v2g_soc_min or 0.0) * battery, 0, None)
        * share
    )
    delivered_part = np.zeros(len(win))
    schedule = np.zeros((n_steps, fleet.sizes["ev"]))
    for bus, rows in win.groupby("bus").groups.items():
        rows = np.asarray(rows)
        for j in range(n_steps):
            t = (cut + j) % n_steps
            lo, hi = j * step_hours, (j + 1) * step_hours
            laxity = (win.end.values[rows] - lo) - remaining[rows] / np.maximum(win.p_mw.values[rows], 1e-12)
            order = rows[np.lexsort((win.end.values[rows], laxity))]
            start, end, power = win.start.values[order], win.end.values[order], win.p_mw.values[order]
            capacity = power * np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None)  # MWh possible now
            energy = float(p_bus_mw[t, col[int(bus)]]) * step_hours
            need = remaining[order]
            if energy < 0:  # V2G: take from the vehicles that leave last
                room = np.minimum(capacity, spare[order] + delivered_part[order])[::-1]
                take = np.minimum(room, np.clip(-energy - np.concatenate([[0.0], np.cumsum(room)[:-1]]), 0, None))[::-1]
                remaining[order] = need + take
                delivered_part[order] -= take
                np.add.at(schedule[t], win.ev.values[order], -take / step_hours * 1000)
                continue
            must = np.minimum(capacity, np.clip(need - power * np.clip(end - hi, 0, None), 0, None))
            give = np.minimum(must, need)
            scale = min(1.0, energy / give.sum()) if give.sum() > 0 else 0.0
            give = give * scale
            left = energy - give.sum()
            room = np.minimum(capacity, need) - give
            give = give + np.minimum(room, np.clip(left - np.concatenate([[0.0], np.cumsum(room)[:-1]]), 0, None))
            remaining[order] = need - give
            delivered_part[order] += give
            np.add.at(schedule[t], win.ev.values[order], give / step_hours * 1000)
    unmet = np.zeros(fleet.sizes["ev"])
    np.add.at(unmet, win.ev.values, remaining * 1000)
    delivered = np.zeros(fleet.sizes["ev"])
    np.add.at(delivered, win.ev.values, delivered_part * 1000)
    return xr.Dataset(
        {
            "ev_delivered_kwh": ("ev", delivered),
            "ev_unmet_kwh": ("ev", np.where(unmet > UNMET_TOLERANCE_KWH, unmet, 0.0)),
            "ev_vehicle_p_kw": (("time", "ev"), schedule),
        },
        coords={"ev": fleet.ev.values},
        attrs={"cut_step": cut},
    )
