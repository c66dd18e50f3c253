"""Profiles of one day: load per bus, PV availability and time-of-use prices.

Sources of the shipped defaults:

- ``rts_winter_weekday`` and ``rts_summer_weekday``: hourly load in percent of the daily peak from
  the IEEE Reliability Test System, IEEE RTS Task Force, "IEEE Reliability Test System",
  IEEE Trans. PAS-98(6), 1979, Table 3 (weekday columns).
- ``tong2021`` prices: Table 1 of Tong et al., IEEE Access 2021 (seed paper 000), $/MWh.
- PV ``typical``: a clear-day half-sine between sunrise and sunset, averaged over each step;
  ``clearsky``: pvlib's Ineichen clear-sky GHI at the given site and date, divided by 1000 W/m2.

Steps shorter than an hour take the hourly load value of the hour they start in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from feederflex.errors import ProfileError

LOAD_SHAPES: dict[str, list[float]] = {
    "rts_winter_weekday": [
        67,
        63,
        60,
        59,
        59,
        60,
        74,
        86,
        95,
        96,
        96,
        95,
        95,
        95,
        93,
        94,
        99,
        100,
        100,
        96,
        91,
        83,
        73,
        63,
    ],
    "rts_summer_weekday": [
        64,
        60,
        58,
        56,
        56,
        58,
        64,
        76,
        87,
        95,
        99,
        100,
        99,
        100,
        100,
        97,
        96,
        96,
        93,
        92,
        92,
        93,
        87,
        72,
    ],
}

TOU_TABLES: dict[str, list[tuple[float, float, float]]] = {
    "tong2021": [
        (0, 8, 53.2),
        (8, 10, 72.4),
        (10, 12, 63.5),
        (12, 14, 63.5),
        (14, 16, 72.4),
        (16, 18, 72.4),
        (18, 20, 81.2),
        (20, 22, 72.4),
        (22, 24, 53.2),
    ],
}

_SUBSAMPLES = 12


def time_index(date: str, hours: float, step_minutes: int) -> pd.DatetimeIndex:
    """Step start times from midnight of ``date`` over ``hours`` hours."""
    steps = hours * 60 / step_minutes
    if steps != int(steps):
        raise ProfileError(f"time.hours={hours} is not a whole number of {step_minutes}-minute steps")
    start = pd.Timestamp(date)
    return pd.date_range(start, periods=int(steps), freq=f"{step_minutes}min")


def _hours_of_day(times: pd.DatetimeIndex) -> np.ndarray:
    midnight = times[0].normalize()
    return np.asarray((times - midnight) / pd.Timedelta(hours=1), dtype=float)


def load_shape(times: pd.DatetimeIndex, shape: str | Sequence[float], key: str = "load.shape") -> np.ndarray:
    """Load multiplier (fraction of the peak) per step.

    ``shape`` is a shipped name, 24 hourly values (percent or fraction of peak, scaled so the
    largest is 1), or one value per step.
    """
    if isinstance(shape, str):
        if shape not in LOAD_SHAPES:
            raise ProfileError(f"{key}: unknown load shape {shape!r}; expected one of {sorted(LOAD_SHAPES)} or a list")
        values = np.asarray(LOAD_SHAPES[shape], float)
    else:
        values = np.asarray(shape, float)
    if values.size == 0 or (values < 0).any() or values.max() <= 0:
        raise ProfileError(f"{key}: load shape values must be non-negative with a positive peak")
    values = values / values.max()
    if values.size == len(times):
        return values
    if values.size == 24:
        return values[np.floor(_hours_of_day(times)).astype(int) % 24]
    raise ProfileError(f"{key}: expected 24 hourly values or {len(times)} values (one per step), got {values.size}")


def pv_typical(times: pd.DatetimeIndex, step_hours: float, sunrise_h: float, sunset_h: float) -> np.ndarray:
    """Clear-day PV availability (fraction of rated power), the step average of a half-sine."""
    if not 0 <= sunrise_h < sunset_h <= 24:
        raise ProfileError(f"pv: need 0 <= sunrise_h < sunset_h <= 24, got {sunrise_h}, {sunset_h}")
    start = _hours_of_day(times)
    sub = start[:, None] + (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES * step_hours
    phase = (sub - sunrise_h) / (sunset_h - sunrise_h)
    shape = np.where((phase > 0) & (phase < 1), np.sin(np.pi * np.clip(phase, 0, 1)), 0.0)
    return shape.mean(axis=1)


def pv_clearsky(
    times: pd.DatetimeIndex, step_hours: float, latitude: float, longitude: float, timezone: str
) -> np.ndarray:
    """PV availability from pvlib's Ineichen clear-sky GHI / 1000 W/m2, averaged over each step."""
    import pvlib

    local = times.tz_localize(timezone) if times.tz is None else times
    offsets = pd.to_timedelta((np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES * step_hours, unit="h")
    fine = pd.DatetimeIndex(np.concatenate([(local + off).asi8 for off in offsets])).tz_localize("UTC")
    fine = fine.tz_convert(timezone)
    location = pvlib.location.Location(latitude, longitude, tz=timezone)
    ghi = location.get_clearsky(fine, model="ineichen")["ghi"].to_numpy()
    ghi = ghi.reshape(_SUBSAMPLES, len(times)).mean(axis=0)
    return np.clip(ghi / 1000.0, 0.0, 1.0)


def tou_price(times: pd.DatetimeIndex, table: str | Sequence[Sequence[float]], key: str = "prices") -> np.ndarray:
    """Price in $/MWh per step from a table of (start hour, end hour, price) rows covering 0-24 h."""
    if isinstance(table, str):
        if table not in TOU_TABLES:
            raise ProfileError(f"{key}: unknown price table {table!r}; expected one of {sorted(TOU_TABLES)} or rows")
        rows = TOU_TABLES[table]
    else:
        rows = [(float(row[0]), float(row[1]), float(row[2])) for row in table]
    covered = np.zeros(24 * 60, dtype=int)
    for start_h, end_h, _ in rows:
        if not 0 <= start_h < end_h <= 24:
            raise ProfileError(f"{key}: row ({start_h}, {end_h}) must satisfy 0 <= start < end <= 24")
        covered[int(round(start_h * 60)) : int(round(end_h * 60))] += 1
    if (covered != 1).any():
        minute = int(np.argmax(covered != 1))
        raise ProfileError(
            f"{key}: rows must cover every hour of the day exactly once; "
            f"{minute // 60:02d}:{minute % 60:02d} is covered {covered[minute]} times"
        )
    hours = _hours_of_day(times) % 24
    price = np.full(len(times), np.nan)
    for start_h, end_h, value in rows:
        price[(hours >= start_h) & (hours < end_h)] = value
    return price


def build_profiles(feeder: xr.Dataset, day: dict, hours: float, step_minutes: int, name: str = "day") -> xr.Dataset:
    """Profiles of one named day on ``feeder``.

    Parameters
    ----------
    feeder
        Feeder dataset (base loads per bus, MW and Mvar).
    day
        One entry of the config's ``days``: ``date``, ``load`` (shape, bus_shapes, scale),
        ``pv`` (model and its parameters), ``prices``.
    hours, step_minutes
        Horizon length (h) and step length (min).
    """
    times = time_index(day["date"], hours, step_minutes)
    step_hours = step_minutes / 60
    load_cfg = day["load"]
    default_shape = load_shape(times, load_cfg["shape"], f"days.{name}.load.shape")
    shape = np.repeat(default_shape[:, None], feeder.sizes["bus"], axis=1)
    buses = list(feeder.bus.values)
    for bus, bus_shape in (load_cfg.get("bus_shapes") or {}).items():
        if int(bus) not in buses:
            raise ProfileError(f"days.{name}.load.bus_shapes: bus {bus} is not a bus of the feeder (1..{max(buses)})")
        shape[:, buses.index(int(bus))] = load_shape(times, bus_shape, f"days.{name}.load.bus_shapes.{bus}")
    scale = float(load_cfg["scale"])
    pv_cfg = day["pv"]
    if pv_cfg["model"] == "typical":
        pv = pv_typical(times, step_hours, pv_cfg["sunrise_h"], pv_cfg["sunset_h"])
    else:
        pv = pv_clearsky(times, step_hours, pv_cfg["latitude"], pv_cfg["longitude"], pv_cfg["timezone"])
    price = tou_price(times, day["prices"], f"days.{name}.prices")
    return xr.Dataset(
        {
            "load_p_mw": (("time", "bus"), shape * scale * feeder.p_load_mw.values[None, :]),
            "load_q_mvar": (("time", "bus"), shape * scale * feeder.q_load_mvar.values[None, :]),
            "pv_avail_pu": ("time", pv),
            "price_usd_per_mwh": ("time", price),
        },
        coords={"time": times, "bus": feeder.bus.values},
        attrs={
            "day": name,
            "step_hours": step_hours,
            "units": "load_p_mw: MW; load_q_mvar: Mvar; pv_avail_pu: fraction of rated PV power; "
            "price_usd_per_mwh: $/MWh",
        },
    )
