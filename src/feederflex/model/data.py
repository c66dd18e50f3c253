"""The numbers one scenario's model is built from, gathered from the prepared datasets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr


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
    ev_p_mw
        Uncontrolled EV charging per step and bus, MW, shape (time, bus).
    travel
        MESS stations and travel times (``build_travel``), or None without mobile storage.
    """

    feeder: xr.Dataset
    profiles: xr.Dataset
    settings: dict
    ev_p_mw: np.ndarray = field(default=None)  # type: ignore[assignment]
    travel: xr.Dataset | None = None

    def __post_init__(self) -> None:
        if self.ev_p_mw is None:
            self.ev_p_mw = np.zeros((self.profiles.sizes["time"], self.feeder.sizes["bus"]))

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
