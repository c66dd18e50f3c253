"""The numbers one scenario's model is built from, gathered from the prepared datasets."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np
import xarray as xr

from feederflex.settings import Settings, as_settings


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
        self.settings = as_settings(self.settings)  # a validated mapping is accepted too
        shape = (self.profiles.sizes["time"], self.feeder.sizes["bus"])
        self.ev_p_mw = np.zeros(shape) if ev is None else ev

    @property
    def ev_controlled(self) -> bool:
        return self.fleet is not None and self.settings.ev_control.mode != "uncontrolled"

    @property
    def fixed_ev_p_mw(self) -> np.ndarray:
        """EV load the network sees as fixed demand (zero when the model decides it)."""
        return np.zeros_like(self.ev_p_mw) if self.ev_controlled else self.ev_p_mw

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
