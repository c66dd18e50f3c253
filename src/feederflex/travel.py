"""MESS travel: station-to-station distances and hour-dependent travel times in whole steps.

Travel time from station n to m departing in step t follows 002 (Cai & Luo 2023) eq. 16:

    zeta_nm(t) = k_delay(t) + D_nm / v + eps_install    (n != m),   0 (n = m),

in hours, rounded up to whole steps (at least one step for a move): a truck that departs at the
start of step t is on the road (and installing) during steps t .. t + tau - 1 and connected again
from step t + tau. Distances come from station coordinates (straight line, km) times a detour
factor, or from a distance matrix (km; null = no road).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from feederflex.errors import TravelError


def distance_matrix(transport: dict) -> np.ndarray:
    """Distances in km between the stations (NaN where there is no road)."""
    stations = transport["stations"]
    n = len(stations)
    if transport["distance_km"] is not None:
        matrix = np.array([[np.nan if d is None else float(d) for d in row] for row in transport["distance_km"]])
        if matrix.shape != (n, n):
            raise TravelError(
                f"transport.distance_km: expected a {n} x {n} matrix (one row per station), got {matrix.shape}"
            )
        if np.nanmin(matrix) < 0:
            raise TravelError("transport.distance_km: distances must be non-negative")
        np.fill_diagonal(matrix, 0.0)
        return matrix
    xy = np.array([[s["x_km"], s["y_km"]] for s in stations], dtype=float)
    if np.isnan(xy).any():
        raise TravelError("transport.stations: every station needs x_km and y_km when distance_km is not given")
    diff = xy[:, None, :] - xy[None, :, :]
    return np.sqrt((diff**2).sum(axis=2)) * float(transport["detour_factor"])


def delay_hours(transport: dict, times: pd.DatetimeIndex | pd.TimedeltaIndex) -> np.ndarray:
    """Traffic delay (h) for a departure at each step, from the hourly profile ``delay_h``."""
    profile = np.asarray(transport["delay_h"], float)
    if profile.size not in (1, 24):
        raise TravelError(f"transport.delay_h: expected 1 or 24 hourly values, got {profile.size}")
    if (profile < 0).any():
        raise TravelError("transport.delay_h: delays must be non-negative")
    if isinstance(times, pd.DatetimeIndex):
        hours = np.asarray((times - times[0].normalize()) / pd.Timedelta(hours=1))
    else:
        hours = np.asarray(times / pd.Timedelta(hours=1))
    return profile[np.floor(hours).astype(int) % 24] if profile.size == 24 else np.full(len(times), profile[0])


def build_travel(transport: dict, bus_numbers: list[int], hours: float, step_minutes: int) -> xr.Dataset:
    """Travel times between every pair of stations for a departure at every step.

    Returns ``distance_km(station, station_to)``, ``travel_h(time, station, station_to)`` and
    ``travel_steps(time, station, station_to)`` (whole steps; -1 where there is no road), plus
    the hosting limit ``p_max_mw(station)`` (NaN = none).

    Raises
    ------
    TravelError
        For a station that is not a bus of the feeder, a repeated station, or a station that no
        other station can reach within the horizon.
    """
    stations = transport["stations"]
    buses = [int(s["bus"]) for s in stations]
    for k, bus in enumerate(buses):
        if bus not in bus_numbers:
            raise TravelError(f"transport.stations[{k}].bus = {bus} is not a bus of the feeder (1..{max(bus_numbers)})")
    if len(set(buses)) != len(buses):
        raise TravelError(f"transport.stations: each bus may be a station once, got {buses}")
    step_hours = step_minutes / 60
    n_steps = int(round(hours / step_hours))
    times = pd.timedelta_range(0, periods=n_steps, freq=f"{step_minutes}min")
    dist = distance_matrix(transport)
    speed = float(transport["speed_kmh"])
    delay = delay_hours(transport, times)
    travel_h = delay[:, None, None] + dist[None, :, :] / speed + float(transport["install_h"])
    off_diagonal = ~np.eye(len(buses), dtype=bool)
    travel_h[:, ~off_diagonal] = 0.0
    steps = np.where(np.isnan(travel_h), -1, np.ceil(np.nan_to_num(travel_h) / step_hours - 1e-9)).astype(int)
    steps[:, off_diagonal] = np.where(steps[:, off_diagonal] == 0, 1, steps[:, off_diagonal])
    if len(buses) > 1:
        reachable = (steps >= 1) & (np.arange(n_steps)[:, None, None] + steps <= n_steps - 1)
        for k, bus in enumerate(buses):
            if not reachable[:, :, k].any():
                raise TravelError(
                    f"transport.stations[{k}] (bus {bus}) cannot be reached from any other station within the "
                    f"{hours} h horizon (no road, or the trip takes longer)"
                )
    limits = np.array([np.nan if s["p_max_mw"] is None else float(s["p_max_mw"]) for s in stations])
    return xr.Dataset(
        {
            "distance_km": (("station", "station_to"), dist),
            "travel_h": (("time", "station", "station_to"), travel_h),
            "travel_steps": (("time", "station", "station_to"), steps),
            "delay_h": ("time", delay),
            "p_max_mw": ("station", limits),
        },
        coords={"time": times, "station": buses, "station_to": buses},
        attrs={
            "step_hours": step_hours,
            "speed_kmh": speed,
            "install_h": float(transport["install_h"]),
            "units": "distance_km: km; travel_h, delay_h: h; travel_steps: whole steps (-1 = no road); "
            "p_max_mw: MW hosting limit of the station bus (NaN = none)",
        },
    )
