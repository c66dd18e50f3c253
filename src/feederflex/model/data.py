"""The numbers one scenario's model is built from, gathered from the prepared datasets."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import InitVar, dataclass, field

import numpy as np
import xarray as xr

from feederflex.errors import InputError
from feederflex.fleet import with_stays
from feederflex.model.planning import Candidate, candidates
from feederflex.settings import FessUnit, MessUnit, PVUnit, Settings, as_settings


def with_network_units(settings: Settings, feeder: xr.Dataset) -> Settings:
    """``settings`` with the feeder's own generation units and batteries appended to ``pv`` and
    ``fess`` (``network_units``), named ``sgen<index>`` and ``storage<index>`` after the net's rows."""
    cfg = settings.network_units
    pv: list[PVUnit] = []
    fess: list[FessUnit] = []
    if cfg.generation and feeder.sizes.get("gen", 0):
        for name, bus, p_mw, s_mva in zip(
            feeder.gen_name.values, feeder.gen_bus.values, feeder.gen_p_mw.values, feeder.gen_s_mva.values, strict=True
        ):
            s = float(s_mva) if math.isfinite(float(s_mva)) and float(s_mva) > 0 else None
            pv.append(PVUnit(str(name), int(bus), float(p_mw), s, float(cfg.power_factor), 0.0))
    if cfg.storage and feeder.sizes.get("storage", 0):
        for k in range(feeder.sizes["storage"]):
            unit = feeder.isel(storage=k)
            eta = math.sqrt(float(unit.storage_efficiency))
            soc_min = float(unit.storage_soc_min)
            fess.append(
                FessUnit(
                    name=str(unit.storage_name.values),
                    p_mw=float(unit.storage_p_mw),
                    e_mwh=float(unit.storage_e_mwh),
                    s_mva=None,
                    power_factor=float(cfg.power_factor),
                    eta_ch=eta,
                    eta_dis=eta,
                    soc_min=soc_min,
                    soc_max=1.0,
                    soc_init=max(float(unit.storage_soc_init), soc_min),
                    end=cfg.storage_end,
                    cost_usd_per_mwh=float(cfg.storage_cost_usd_per_mwh),
                    bus=int(unit.storage_bus),
                )
            )
    if not pv and not fess:
        return settings
    own: dict[str, PVUnit | FessUnit] = {u.name: u for u in settings.pv} | {u.name: u for u in settings.fess}
    imported: dict[str, PVUnit | FessUnit] = {u.name: u for u in pv} | {u.name: u for u in fess}
    if all(own.get(name) == unit for name, unit in imported.items()):
        return settings  # already joined (settings of a ScenarioData passed on)
    taken = set(own) & set(imported)
    if taken:
        raise InputError(
            f"pv/fess: unit names {sorted(taken)} are those of the network's own units; rename them "
            "or set network_units.generation/storage to false"
        )
    return dataclasses.replace(settings, pv=(*settings.pv, *pv), fess=(*settings.fess, *fess))


def with_candidates(settings: Settings, feeder: xr.Dataset, travel: xr.Dataset | None = None) -> Settings:
    """``settings`` with every planning candidate appended as a battery of its largest size
    (:mod:`feederflex.model.planning` makes the size a decision): to ``fess``, or, moving mobile
    units, to ``mess.units`` (starting at the first station of ``travel``; the model chooses)."""
    found = candidates(settings.planning, [int(b) for b in feeder.bus.values], int(feeder.attrs["root_bus"]))
    have = {u.name for u in settings.fess} | {u.name for u in settings.mess.units}
    if not found or found[0].name in have:
        return settings  # no planning, or already joined
    taken = have & {c.name for c in found}
    if taken:
        raise InputError(f"fess/mess.units: unit names {sorted(taken)} are those of planning candidates; rename them")

    def sizing(c: Candidate) -> dict:
        spec = c.spec
        return {
            "name": c.name,
            "p_mw": spec.p_max_mw,
            "e_mwh": spec.hours * spec.p_max_mw,
            "s_mva": None,
            "power_factor": 1.0,
            **{k: getattr(spec, k) for k in ("eta_ch", "eta_dis", "soc_min", "soc_max", "soc_init", "end")},
            "cost_usd_per_mwh": spec.cost_per_mwh,
        }

    fess = tuple(FessUnit(**sizing(c), bus=c.bus) for c in found if not c.moving)
    moving = [c for c in found if c.moving]
    if moving and (travel is None or not travel.sizes.get("station", 0)):
        raise InputError(
            "planning.mobile.moving: the units move between transport.stations, but no travel dataset was given"
        )
    first = int(travel.station.values[0]) if moving and travel is not None else 0
    mess = tuple(MessUnit(**sizing(c), initial_station=first) for c in moving)
    joined = dataclasses.replace(settings.mess, units=(*settings.mess.units, *mess))
    return dataclasses.replace(settings, fess=(*settings.fess, *fess), mess=joined)


@dataclass
class ScenarioData:
    """Inputs of one scenario's model.

    Attributes
    ----------
    feeder
        Feeder dataset (buses, branches in radial order, per-unit impedances).
    profiles
        Profiles of the scenario's day (``load_p_mw``, ``load_q_mvar``, ``pv_avail_pu``,
        ``price_usd_per_mwh`` over ``time``).
    settings
        The scenario's effective, validated settings (``base`` of the schema plus overrides).
    ev, ev_p_mw
        Uncontrolled EV charging per step and bus, MW, shape (time, bus) (given as ``ev``; zero
        without a fleet).
    travel
        MESS stations and travel times (``build_travel``), or None without mobile storage.
    fleet
        The sampled EV fleet, or None; with coordinated charging (``ev_control.mode`` not
        ``uncontrolled``) its load is decided by the model instead of ``ev_p_mw``.
    individual
        Aggregate mode: mask of the fleet's vehicles modelled one by one (with their own power
        and energy limits) instead of inside the bus envelope.
    """

    feeder: xr.Dataset
    profiles: xr.Dataset
    settings: Settings
    ev: InitVar[np.ndarray | None] = None  # uncontrolled EV load (time, bus), MW; None: no fleet
    travel: xr.Dataset | None = None
    fleet: xr.Dataset | None = None
    individual: np.ndarray | None = None
    ev_p_mw: np.ndarray = field(init=False)

    def __post_init__(self, ev: np.ndarray | None) -> None:
        joined = with_network_units(as_settings(self.settings), self.feeder)  # a mapping is accepted too
        self.settings = with_candidates(joined, self.feeder, self.travel)
        shape = (self.profiles.sizes["time"], self.feeder.sizes["bus"])
        if ev is not None and "day_of_step" in self.profiles and ev.shape[0] * self.n_days == shape[0]:
            ev = np.tile(ev, (self.n_days, 1))  # an uncontrolled fleet repeats its day on every representative day
        self.ev_p_mw = np.zeros(shape) if ev is None else ev
        if self.fleet is not None:
            self.fleet = with_stays(self.fleet)

    @property
    def ev_controlled(self) -> bool:
        return self.fleet is not None and self.settings.ev_control.mode != "uncontrolled"

    @property
    def fixed_ev_p_mw(self) -> np.ndarray:
        """EV load the network sees as fixed demand (zero when the model decides it)."""
        return np.zeros_like(self.ev_p_mw) if self.ev_controlled else self.ev_p_mw

    @property
    def pv_availability(self) -> np.ndarray:
        """Available power per unit of rating, (time, unit) in ``settings.pv`` order: a network
        unit's own profile (``unit_avail_pu``), the day's PV curve (``pv_avail_pu``) for the rest."""
        pr = self.profiles
        own = [str(g) for g in pr.gen.values] if "unit_avail_pu" in pr else []
        columns = [
            pr.unit_avail_pu.values[:, own.index(u.name)] if u.name in own else pr.pv_avail_pu.values
            for u in self.settings.pv
        ]
        return np.stack(columns, axis=1) if columns else np.zeros((pr.sizes["time"], 0))

    @functools.cached_property
    def candidates(self) -> list[Candidate]:
        """The planning candidates, fixed first; [] without planning."""
        return candidates(self.settings.planning, self.buses, self.root)

    @property
    def n_days(self) -> int:
        """Representative days on the time axis (``planning.days``; 1 otherwise)."""
        return len(self.profiles.attrs["days"]) if "day_of_step" in self.profiles else 1

    @functools.cached_property
    def day_starts(self) -> set[int]:
        """Steps that begin a day: storage starts there from its initial state (step 0 only, for one day)."""
        if "day_of_step" not in self.profiles:
            return {0}
        names = self.profiles.day_of_step.values
        return {t for t in range(len(names)) if t == 0 or names[t] != names[t - 1]}

    @property
    def day_ends(self) -> list[int]:
        """The last step of each day, where storage meets its end rule."""
        n = self.profiles.sizes["time"]
        return [t - 1 for t in sorted(self.day_starts) if t > 0] + [n - 1]

    @functools.cached_property
    def step_weights(self) -> np.ndarray:
        """Days a year each step's day stands for: ``planning.days`` weights, else ``days_per_year``."""
        plan = self.settings.planning
        n = self.profiles.sizes["time"]
        if "day_of_step" not in self.profiles:
            return np.full(n, float(plan.days_per_year))
        weight = {d.day: float(d.weight) for d in plan.days}
        return np.array([weight[str(d)] for d in self.profiles.day_of_step.values])

    @property
    def step_hours(self) -> float:
        return float(self.profiles.attrs["step_hours"])

    @property
    def steps(self) -> range:
        return range(self.profiles.sizes["time"])

    @property
    def buses(self) -> list[int]:
        return [int(b) for b in self.feeder.bus.values]

    @property
    def root(self) -> int:
        return int(self.feeder.attrs["root_bus"])
