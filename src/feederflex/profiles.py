"""Profiles of one day: load per bus, PV availability and time-of-use prices.

Sources of the shipped defaults:

- ``rts_winter_weekday`` and ``rts_summer_weekday``: hourly load in percent of the daily peak from
  the IEEE Reliability Test System, IEEE RTS Task Force, "IEEE Reliability Test System",
  IEEE Trans. PAS-98(6), 1979, Table 3 (weekday columns).
- ``tong2021`` prices: Table 1 of Tong et al., IEEE Access 2021 (seed paper 000), $/MWh.
- PV ``typical``: a clear-day half-sine between sunrise and sunset, averaged over each step;
  ``clearsky``: pvlib's Ineichen clear-sky GHI at the given site and date, divided by 1000 W/m2;
  ``cloudy``: the clear sky times a clearness index k_t = clip(mean + x_t, 0.05, 1) with
  x_t = rho x_(t-1) + sd sqrt(1 - rho^2) e_t, e_t standard normal from ``cloud_seed`` (a plain
  AR(1) stand-in for measured irradiance, e.g. 004's lost Table 5).

Steps shorter than an hour take the hourly load value of the hour they start in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


def time_index(date: str, hours: float, step_minutes: int, start_h: float = 0.0) -> pd.DatetimeIndex:
    """Step start times from ``start_h`` hours after midnight of ``date`` over ``hours`` hours."""
    steps = hours * 60 / step_minutes
    if steps != int(steps):
        raise ProfileError(f"time.hours={hours} is not a whole number of {step_minutes}-minute steps")
    start = pd.Timestamp(date) + pd.Timedelta(hours=float(start_h))
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


def clearness_index(n_steps: int, pv_cfg: dict) -> np.ndarray:
    """A seeded AR(1) clearness index per step in [0.05, 1] (the ``cloudy`` model of the module docstring)."""
    rng = np.random.default_rng(int(pv_cfg["cloud_seed"]))
    rho, sd = float(pv_cfg["cloud_correlation"]), float(pv_cfg["cloud_sd"])
    x = np.empty(n_steps)
    x[0] = sd * rng.standard_normal()
    for t in range(1, n_steps):
        x[t] = rho * x[t - 1] + sd * np.sqrt(1 - rho**2) * rng.standard_normal()
    return np.clip(float(pv_cfg["cloud_mean"]) + x, 0.05, 1.0)


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


def build_profiles(
    feeder: xr.Dataset, day: dict, hours: float, step_minutes: int, name: str = "day", net=None
) -> xr.Dataset:
    """Profiles of one named day on ``feeder``.

    Parameters
    ----------
    feeder
        Feeder dataset (base loads per bus, MW and Mvar; the net's generation units).
    day
        One entry of the config's ``days``: ``source`` (``shapes`` or ``net``), ``date``, ``pick``,
        ``months``, ``load`` (shape, bus_shapes, scale), ``pv`` (model and its parameters), ``prices``.
    hours, step_minutes
        Horizon length (h) and step length (min).
    net
        The pandapower net with its yearly profiles, for ``source: net``.

    ``source: shapes``: load = base load x shape x scale, and every generation unit of the net follows
    the day's PV curve. ``source: net``: the net's measured year (SimBench), the day picked by
    ``pick``, load per bus and each unit's availability (its power over its rating) resampled to the
    step; ``load.scale`` still multiplies the loads, and the PV curve serves the study's own PV units.
    """
    where = f"days.{name}"
    step_hours = step_minutes / 60
    source = day.get("source", "shapes")
    attrs = {"day": name, "step_hours": step_hours, "profile_source": source}
    units = None
    if source == "net":
        if net is None:
            raise ProfileError(f"{where}.source = net needs the network's yearly profiles")
        year = net_year(net, where)
        start = pick_day(year, day["pick"], day["date"], day.get("months", []), where)
        times = time_index(str(start.date()), hours, step_minutes)
        load_p, load_q, units = _net_day(feeder, net, year, times, step_minutes)
        load_p, load_q = load_p * float(day["load"]["scale"]), load_q * float(day["load"]["scale"])
        attrs.update({"picked_by": day["pick"], "date": str(start.date()), "months": str(list(day.get("months", [])))})
    else:
        times = time_index(day["date"], hours, step_minutes, float(day.get("start_h", 0.0)))
        load_p, load_q = _shaped_loads(feeder, times, day["load"], where)
        attrs["date"] = day["date"]
    pv_cfg = day["pv"]
    if pv_cfg["model"] == "typical":
        pv = pv_typical(times, step_hours, pv_cfg["sunrise_h"], pv_cfg["sunset_h"])
    else:
        pv = pv_clearsky(times, step_hours, pv_cfg["latitude"], pv_cfg["longitude"], pv_cfg["timezone"])
    if pv_cfg["model"] == "cloudy":
        pv = pv * clearness_index(len(times), pv_cfg)
    n_gen = feeder.sizes.get("gen", 0)
    if units is None:
        units = np.repeat(pv[:, None], n_gen, axis=1)
    gen_names = [str(g) for g in feeder.gen_name.values] if n_gen else []
    if source == "file":
        measured = measured_day(feeder, day, times, step_minutes, where)
        attrs["file"] = str(day["file"])
        load_p, load_q, pv = measured.apply(feeder, load_p, load_q, pv)
        units = np.repeat(pv[:, None], n_gen, axis=1)  # the measured PV curve, or the day's
        for unit, column in measured.avail.items():
            if unit in gen_names:
                units[:, gen_names.index(unit)] = column
            else:  # a study PV unit's own availability
                gen_names.append(unit)
                units = np.column_stack([units, column])
    price = tou_price(times, day["prices"], f"{where}.prices")
    return xr.Dataset(
        {
            "load_p_mw": (("time", "bus"), load_p),
            "load_q_mvar": (("time", "bus"), load_q),
            "pv_avail_pu": ("time", pv),
            "unit_avail_pu": (("time", "gen"), units),
            "price_usd_per_mwh": ("time", price),
        },
        coords={"time": times, "bus": feeder.bus.values, "gen": np.array(gen_names, dtype=object)},
        attrs={
            **attrs,
            "units": "load_p_mw: MW; load_q_mvar: Mvar; pv_avail_pu: fraction of rated PV power (the study's PV "
            "units); unit_avail_pu: fraction of each named unit's rating (the net's sgen, units a file names); "
            "price_usd_per_mwh: $/MWh",
        },
    )


def _shaped_loads(feeder: xr.Dataset, times: pd.DatetimeIndex, load_cfg: dict, where: str):
    default_shape = load_shape(times, load_cfg["shape"], f"{where}.load.shape")
    shape = np.repeat(default_shape[:, None], feeder.sizes["bus"], axis=1)
    buses = list(feeder.bus.values)
    for bus, bus_shape in (load_cfg.get("bus_shapes") or {}).items():
        if int(bus) not in buses:
            raise ProfileError(f"{where}.load.bus_shapes: bus {bus} is not a bus of the feeder (1..{max(buses)})")
        shape[:, buses.index(int(bus))] = load_shape(times, bus_shape, f"{where}.load.bus_shapes.{bus}")
    scale = float(load_cfg["scale"])
    return shape * scale * feeder.p_load_mw.values[None, :], shape * scale * feeder.q_load_mvar.values[None, :]


def _net_day(feeder: xr.Dataset, net, year: Year, times: pd.DatetimeIndex, step_minutes: int):
    """Load per feeder bus (MW, Mvar) and each generation unit's availability over ``times``."""
    bus_of = feeder.bus_of_pp_bus.to_series()
    buses = list(feeder.bus.values)
    loads = net.load
    kept = loads.in_service.astype(bool).to_numpy() & loads.bus.isin(bus_of.index).to_numpy()
    columns = np.array([buses.index(int(bus_of[b])) if k else -1 for b, k in zip(loads.bus, kept, strict=True)])
    to_bus = np.zeros((len(loads), len(buses)))
    to_bus[np.flatnonzero(kept), columns[kept]] = 1.0  # each load's column: its merged bus
    load_p = resample(year.load_p[loads.index], year.times, times, step_minutes) @ to_bus
    load_q = resample(year.load_q[loads.index], year.times, times, step_minutes) @ to_bus
    if not feeder.sizes.get("gen", 0):
        return load_p, load_q, np.zeros((len(times), 0))
    sgen_p = resample(year.sgen_p[feeder.gen_pp_index.values], year.times, times, step_minutes)
    rating = feeder.gen_p_mw.values
    units = np.divide(sgen_p, rating[None, :], out=np.zeros_like(sgen_p), where=rating[None, :] > 0)
    return load_p, load_q, np.clip(units, 0.0, 1.0)


PICK_RULES = ("date", "max_load", "max_generation", "max_residual_generation")


@dataclass(frozen=True)
class Year:
    """A net's measured year: absolute load (MW, Mvar, per pandapower load) and generation (MW, per
    sgen) at the profiles' own step, from ``simbench.get_absolute_values``."""

    times: pd.DatetimeIndex
    load_p: pd.DataFrame
    load_q: pd.DataFrame
    sgen_p: pd.DataFrame


def net_year(net, where: str) -> Year:
    """The yearly profiles a SimBench-format net carries (``net.profiles``)."""
    if not len(net.get("profiles", {}) or {}):
        raise ProfileError(f"{where}: source 'net' needs a net with yearly profiles (SimBench); this net has none")
    import simbench

    values = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    n = len(values[("load", "p_mw")])
    # a regular 15-minute year from the first stamp: SimBench's local-time stamps repeat an hour in October
    first = net.profiles["load"]["time"].iloc[0] if "time" in net.profiles["load"] else "01.01.2016 00:00"
    times = pd.date_range(pd.to_datetime(first, format="%d.%m.%Y %H:%M"), periods=n, freq="15min")
    return Year(times, values[("load", "p_mw")], values[("load", "q_mvar")], values[("sgen", "p_mw")])


def pick_day(year: Year, rule: str, date: str, months: Sequence[int], where: str) -> pd.Timestamp:
    """Midnight of the day ``rule`` picks from ``year`` (within ``months``, all when empty): the given
    ``date``, or the day of the highest load, generation or generation minus load (energy)."""
    if rule == "date":
        day = pd.Timestamp(date)
        if not year.times[0] <= day <= year.times[-1]:
            raise ProfileError(
                f"{where}.date = {date} is outside the net's profiles "
                f"({year.times[0].date()} to {year.times[-1].date()})"
            )
        return day
    if rule not in PICK_RULES:
        raise ProfileError(f"{where}.pick = {rule!r}: expected one of {list(PICK_RULES)}")
    load = year.load_p.sum(axis=1).to_numpy()
    gen = year.sgen_p.sum(axis=1).to_numpy()
    score = {"max_load": load, "max_generation": gen, "max_residual_generation": gen - load}[rule]
    daily = pd.Series(score, index=year.times).groupby(year.times.normalize()).sum()
    if months:
        daily = daily[daily.index.month.isin(list(months))]
    if daily.empty:
        raise ProfileError(f"{where}.months = {list(months)}: no day of the net's profiles lies in those months")
    return pd.Timestamp(daily.idxmax())


def resample(
    frame: pd.DataFrame, source_times: pd.DatetimeIndex, times: pd.DatetimeIndex, step_minutes: int
) -> np.ndarray:
    """Values of ``frame`` (rows at ``source_times``, each held until the next) averaged over each
    step of ``times``: the energy of every step is kept whatever the two step lengths."""
    fine = pd.date_range(times[0], times[-1] + pd.Timedelta(minutes=step_minutes), freq="1min", inclusive="left")
    held = frame.set_axis(source_times).reindex(fine, method="ffill")
    if held.isna().any().any():
        raise ProfileError(f"the profiles end before {held.index[held.isna().any(axis=1)][0]}")
    return held.to_numpy(float).reshape(len(times), step_minutes, -1).mean(axis=1)


@dataclass(frozen=True)
class MeasuredDay:
    """What a day's measurement file gives, at the study's steps: load per feeder bus (MW, Mvar; NaN
    where the file is silent), the PV curve (``avail:pv``) and named units' availability."""

    load_p: np.ndarray
    load_q: np.ndarray
    pv: np.ndarray | None
    avail: dict[str, np.ndarray]

    def apply(self, feeder: xr.Dataset, load_p: np.ndarray, load_q: np.ndarray, pv: np.ndarray):
        """The shaped day with the measured values in place; a bus given active power only keeps its
        base power factor."""
        given_p, given_q = np.isfinite(self.load_p), np.isfinite(self.load_q)
        base_p, base_q = feeder.p_load_mw.values, feeder.q_load_mvar.values
        ratio = np.divide(base_q, base_p, out=np.zeros_like(base_p), where=base_p != 0)
        p = np.where(given_p, self.load_p, load_p)
        q = np.where(given_q, self.load_q, np.where(given_p, self.load_p * ratio[None, :], load_q))
        return p, q, (pv if self.pv is None else self.pv)


def read_series(path: str | Path, where: str) -> pd.DataFrame:
    """A measured time series: a CSV with a ``time`` column, or a NetCDF with a ``time`` dimension and
    one variable per column; indexed by time, sorted."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"{where}.file: {str(path)!r} is not a file")
    try:
        if path.suffix in (".nc", ".nc4", ".netcdf"):
            with xr.open_dataset(path) as ds:
                frame = ds.to_dataframe()
        else:
            frame = pd.read_csv(path, comment="#")
            if "time" not in frame:
                raise ProfileError(f"{where}.file {str(path)!r}: no 'time' column (have {list(frame.columns)[:6]})")
            frame = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame.pop("time")), name="time"))
    except (ValueError, OSError) as exc:
        raise ProfileError(f"{where}.file {str(path)!r}: cannot be read as a time series ({exc})") from exc
    return frame.sort_index()


def measured_day(feeder: xr.Dataset, day: dict, times: pd.DatetimeIndex, step_minutes: int, where: str) -> MeasuredDay:
    """The columns of ``day["file"]`` over ``times``: ``p_mw:<bus>``, ``q_mvar:<bus>`` (a feeder bus),
    ``p_mw:load<index>``, ``q_mvar:load<index>`` (a pandapower load, added into its bus), in MW and
    Mvar (``file_values: absolute``) or per unit of the base load (``per_unit``); ``avail:<unit>`` (a PV
    unit of the study or a net's sgen<index>) and ``avail:pv`` (every other unit), per unit of rating.
    Each row holds until the next; steps average them."""
    frame = read_series(day["file"], where)
    file = f"{where}.file {str(day['file'])!r}"
    if frame.index[0] > times[0]:
        raise ProfileError(f"{file}: starts at {frame.index[0]}, after the day's first step {times[0]}")
    buses = [int(b) for b in feeder.bus.values]
    per_unit = day.get("file_values", "absolute") == "per_unit"
    n = len(times)
    load = {"p_mw": np.full((n, len(buses)), np.nan), "q_mvar": np.full((n, len(buses)), np.nan)}
    avail: dict[str, np.ndarray] = {}
    pv = None
    values = resample(frame.astype(float), frame.index, times, step_minutes)
    for k, column in enumerate(frame.columns):
        kind, _, target = str(column).partition(":")
        series = values[:, k]
        if kind == "avail":
            if target == "pv":
                pv = np.clip(series, 0.0, 1.0)
            else:
                avail[target] = np.clip(series, 0.0, 1.0)
            continue
        if kind not in load or not target:
            raise ProfileError(
                f"{file}: column {column!r} is not p_mw:<bus>, q_mvar:<bus>, p_mw:load<index>, q_mvar:load<index>, "
                "avail:<unit> or avail:pv"
            )
        col, base = _load_target(feeder, buses, kind, target, file, column)
        series = series * base if per_unit else series
        previous = load[kind][:, col]
        load[kind][:, col] = np.where(np.isnan(previous), series, previous + series)
    return MeasuredDay(load["p_mw"], load["q_mvar"], pv, avail)


def _load_target(feeder: xr.Dataset, buses: list[int], kind: str, target: str, file: str, column) -> tuple[int, float]:
    """The feeder-bus column and base value (MW or Mvar) of a load column's target."""
    base_name = "p_load_mw" if kind == "p_mw" else "q_load_mvar"
    if target.startswith("load"):
        if "pp_load" not in feeder.dims or not target[4:].isdigit() or int(target[4:]) not in feeder.pp_load.values:
            raise ProfileError(f"{file}: column {column!r} names no in-service pandapower load of the network")
        row = feeder.sel(pp_load=int(target[4:]))
        name = "pp_load_p_mw" if kind == "p_mw" else "pp_load_q_mvar"
        return buses.index(int(row.bus_of_pp_load)), float(row[name])
    if not target.isdigit() or int(target) not in buses:
        raise ProfileError(f"{file}: column {column!r} names no bus of the feeder (buses {min(buses)}..{max(buses)})")
    col = buses.index(int(target))
    return col, float(feeder[base_name].values[col])


def join_days(days: list[xr.Dataset]) -> xr.Dataset:
    """Representative days one after the other on one time axis (``planning.days``): ``day_of_step``
    names each step's day; the days must have the same steps, step length and generation units."""
    if len(days) == 1:
        return days[0]
    first = days[0]
    names = [str(d.attrs["day"]) for d in days]
    if len(set(names)) != len(names):
        raise ProfileError(f"planning.days: a day is named twice in {names}")
    for d in days[1:]:
        where = f"days.{d.attrs['day']}"
        if d.sizes["time"] != first.sizes["time"] or float(d.attrs["step_hours"]) != float(first.attrs["step_hours"]):
            raise ProfileError(
                f"{where}: {d.sizes['time']} steps of {d.attrs['step_hours']} h, the first day has "
                f"{first.sizes['time']} of {first.attrs['step_hours']} h; representative days must match"
            )
        if list(d.gen.values) != list(first.gen.values):
            raise ProfileError(f"{where}: generation units {list(d.gen.values)} differ from {list(first.gen.values)}")
    joined = xr.concat(days, dim="time", combine_attrs="override")
    if not joined.indexes["time"].is_unique:
        raise ProfileError(f"planning.days: days {names} share dates; give each representative day its own date")
    joined["day_of_step"] = ("time", np.repeat(np.array(names, dtype=object), first.sizes["time"]))
    joined.attrs.update({"day": "+".join(names), "days": names, "date": str(first.attrs.get("date", ""))})
    return joined
