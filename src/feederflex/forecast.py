"""Forecast errors: the actual day a forecast turns out to be.

Gaussian relative errors per source (PV availability, load, uncontrolled EV charging),
AR(1)-correlated in time (Cai & Luo 2023 model PV and demand forecast errors as Gaussian;
20-30 % for PV, 10 % for load). The errors of a realisation depend only on (seed,
realisation), so adding realisations keeps the old ones.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from feederflex.errors import RollingError

SOURCES = ("pv", "load", "ev")


def errors(n_steps: int, sd: float, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """Relative errors e_t = rho e_{t-1} + sqrt(1 - rho^2) sd xi_t (stationary sd ``sd``)."""
    if sd < 0:
        raise RollingError(f"relative_sd = {sd}: a standard deviation cannot be negative")
    if not 0 <= correlation < 1:
        raise RollingError(f"correlation = {correlation}: expected 0 <= correlation < 1")
    xi = rng.standard_normal(n_steps)
    out = np.empty(n_steps)
    out[0] = sd * xi[0]
    for t in range(1, n_steps):
        out[t] = correlation * out[t - 1] + np.sqrt(1 - correlation**2) * sd * xi[t]
    return out


def actual_day(forecast: xr.Dataset, spec: dict, realisation: int) -> xr.Dataset:
    """The actual day of ``realisation``: forecast x (1 + e), factors clipped at 0, PV at 1 pu.

    ``spec`` holds ``seed``, ``relative_sd`` (pv, load, ev) and ``correlation``; the errors of a
    realisation depend only on (seed, realisation), so adding realisations keeps the old ones."""
    n = forecast.sizes["time"]
    rng = np.random.default_rng([int(spec["seed"]), int(realisation)])
    factor = {
        s: np.clip(1 + errors(n, float(spec["relative_sd"][s]), float(spec["correlation"]), rng), 0, None)
        for s in SOURCES
    }
    out = forecast.copy(deep=True)
    out["load_p_mw"] = forecast.load_p_mw * xr.DataArray(factor["load"], dims="time")
    out["load_q_mvar"] = forecast.load_q_mvar * xr.DataArray(factor["load"], dims="time")
    out["pv_avail_pu"] = (forecast.pv_avail_pu * xr.DataArray(factor["pv"], dims="time")).clip(0, 1)
    if "unit_avail_pu" in forecast:  # the network's generation units share the PV error
        out["unit_avail_pu"] = (forecast.unit_avail_pu * xr.DataArray(factor["pv"], dims="time")).clip(0, 1)
    out["ev_factor"] = ("time", factor["ev"])
    out["ev_factor"].attrs["units"] = "actual / forecast uncontrolled EV charging"
    for source in SOURCES:
        out[f"error_{source}"] = ("time", factor[source] - 1)
    out.attrs.update(
        {
            "realisation": int(realisation),
            "seed": int(spec["seed"]),
            "correlation": float(spec["correlation"]),
            **{f"relative_sd_{s}": float(spec["relative_sd"][s]) for s in SOURCES},
        }
    )
    return out
