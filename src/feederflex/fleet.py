"""Household EV fleets: Monte Carlo samples of vehicles and their uncontrolled charging load.

``tong2021`` follows Tong et al., IEEE Access 2021 (seed paper 000), section III.A:

- daily mileage d ~ lognormal(mu=3.019, sigma=1.123) km (eq. 9), capped at the vehicle range;
- end of the last trip t_e ~ Weibull(shape 5.427, scale 18.618) h with the after-midnight wrap
  of eq. 12: a draw x in (24, 28] h is an arrival at x - 24 h; the density is used on (4, 28] h,
  so draws at or below 4 h are redrawn (probability 2e-4);
- charging starts at t_e ("random" strategy) or after a uniform back-off in [0, max_delay_h]
  ("delayed"); it runs at the rated charger power until d x kWh/km is replaced (eq. 14-15).

The simulated day is periodic: charging that runs past midnight loads the early steps of the same
day, the steady state of one day following another. Departure (not modelled in the paper) is the
next morning at ``departure_h``, or the end of charging if that is later; it bounds flexible
charging in later capabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

SAMPLERS = ("tong2021",)


class FleetError(ValueError):
    """A fleet definition that cannot be sampled."""


def _weibull_wrapped(rng: np.random.Generator, n: int, shape: float, scale: float) -> np.ndarray:
    out = np.empty(0)
    while out.size < n:
        draw = scale * rng.weibull(shape, size=2 * (n - out.size) + 16)
        draw = draw[(draw > 4.0) & (draw <= 28.0)]
        out = np.concatenate([out, draw])
    out = out[:n]
    return np.where(out > 24.0, out - 24.0, out)


def sample_tong2021(
    rng: np.random.Generator,
    n: int,
    *,
    mileage_mu: float,
    mileage_sigma: float,
    arrival_shape: float,
    arrival_scale: float,
    strategy: str,
    max_delay_h: float,
    departure_h: float,
    battery_kwh: float,
    charger_kw: float,
    kwh_per_km: float,
    range_km: float,
) -> pd.DataFrame:
    """Sample ``n`` vehicles: mileage (km), arrival, charge start, departure (h), energy (kWh)."""
    mileage = np.minimum(rng.lognormal(mileage_mu, mileage_sigma, size=n), range_km)
    arrival = _weibull_wrapped(rng, n, arrival_shape, arrival_scale)
    delay = rng.uniform(0.0, max_delay_h, size=n) if strategy == "delayed" else np.zeros(n)
    start = arrival + delay
    energy = np.minimum(mileage * kwh_per_km, battery_kwh)
    end = start + energy / charger_kw
    # Vehicles arriving after midnight (wrap) leave the same morning at the latest; others next day.
    departure_abs = np.where(arrival < departure_h, departure_h, departure_h + 24.0)
    return pd.DataFrame(
        {
            "mileage_km": mileage,
            "arrival_h": arrival,
            "charge_start_h": start,
            "departure_h": np.maximum(departure_abs, end),
            "energy_kwh": energy,
            "battery_kwh": np.full(n, battery_kwh),
            "charger_kw": np.full(n, charger_kw),
        }
    )


def charging_load(start_h: np.ndarray, end_h: np.ndarray, power_kw: np.ndarray, step_hours: float, n_steps: int) -> np.ndarray:
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


def sample_fleet(spec: dict, feeder: xr.Dataset, hours: float, step_minutes: int, name: str = "fleet") -> xr.Dataset:
    """Sample the fleet ``spec`` (one entry of the config's ``fleets``) on ``feeder``.

    Vehicles are placed ``vehicles_per_bus`` at each bus of ``buses`` (every bus with load when
    empty). Returns per-vehicle arrays (dimension ``ev``) and the uncontrolled charging load
    ``ev_p_mw(time, bus)`` over a horizon of ``hours`` from midnight: the periodic daily load,
    repeated for horizons over a day. ``time`` is the time since midnight of the step start.
    """
    step_hours = step_minutes / 60
    n_steps = int(round(hours * 60 / step_minutes))
    steps_per_day = int(round(24 * 60 / step_minutes))
    if spec["sampler"] not in SAMPLERS:
        raise FleetError(f"fleets.{name}.sampler: unknown sampler {spec['sampler']!r}; expected one of {SAMPLERS}")
    bus_list = [int(b) for b in feeder.bus.values]
    buses = [int(b) for b in spec["buses"]] or [b for b in bus_list if feeder.p_load_mw.sel(bus=b) > 0]
    unknown = sorted(set(buses) - set(bus_list))
    if unknown:
        raise FleetError(f"fleets.{name}.buses: {unknown} are not buses of the feeder (1..{max(bus_list)})")
    n_per_bus = int(spec["vehicles_per_bus"])
    rng = np.random.default_rng(int(spec["seed"]))
    dist, veh = spec["distributions"], spec["vehicle"]
    frame = sample_tong2021(
        rng,
        n_per_bus * len(buses),
        mileage_mu=dist["mileage_mu"],
        mileage_sigma=dist["mileage_sigma"],
        arrival_shape=dist["arrival_shape"],
        arrival_scale=dist["arrival_scale"],
        strategy=spec["strategy"],
        max_delay_h=spec["max_delay_h"],
        departure_h=spec["departure_h"],
        battery_kwh=veh["battery_kwh"],
        charger_kw=veh["charger_kw"],
        kwh_per_km=veh["kwh_per_km"],
        range_km=veh["range_km"],
    )
    ev_bus = np.repeat(buses, n_per_bus)
    end = frame.charge_start_h + frame.energy_kwh / frame.charger_kw
    load_kw = np.zeros((steps_per_day, len(bus_list)))
    for bus in buses:
        sel = (ev_bus == bus)
        load_kw[:, bus_list.index(bus)] = charging_load(
            frame.charge_start_h.values[sel], end.values[sel], frame.charger_kw.values[sel], step_hours, steps_per_day
        )
    load_kw = np.tile(load_kw, (n_steps // steps_per_day + 1, 1))[:n_steps]
    times = pd.timedelta_range(0, periods=n_steps, freq=f"{step_minutes}min")
    data = {col: ("ev", frame[col].to_numpy()) for col in frame.columns}
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
            "units": "mileage_km: km; *_h: hours after midnight of the day (over 24 = next day); "
            "energy_kwh, battery_kwh: kWh; charger_kw: kW; ev_p_mw: MW (uncontrolled charging)",
        },
    )
