"""Forecast-error risk of PV and demand response (002 eq. 24-32, priced as eq. 33d-e).

The deliverable power X of a PV unit (or of a DR unit's response) in a step is Gaussian around its
forecast mu with standard deviation sigma = forecast_error x mu (002 eq. 23). Scheduling x, the
expected power not served (EPNS, eq. 24 and 29) and the expected curtailment (EPC, eq. 27 and 31) are

    EPNS(x) = E[(x - X)+] = sigma (phi(z) + z Phi(z)),   z = (x - mu) / sigma,
    EPC(x)  = E[(X - x)+] = EPNS(x) + mu - x.

EPNS is convex in x, so a variable ``epns`` >= each of ``tangents`` tangent lines (at z evenly
spaced from max(-mu/sigma, -4) to 0, the range x in [0, mu] that the schedule can take) and >= 0 is
its outer approximation: exact at the tangent points, below the curve by at most
:func:`tangent_error` x sigma between them; EPC follows exactly from the identity. The paper
integrates x from 0 (a truncated distribution); for forecast errors up to 30 % the mass below 0
is under 0.05 % and is ignored. The reactive counterparts (eq. 26, 28, 30, 32) are left out: 002
finds them little affected, at a reactive price far below the active one.

Price (``risk_cost_usd``): reserve_price x EPNS - curtailment_price x EPC per MWh (002 eq. 33d-e:
the day's highest and lowest price by default). Since EPC = EPNS + mu - x, the cost is
(reserve - curtailment) EPNS + curtailment (x - mu): convex when reserve >= curtailment, which is
checked. The exact EPNS and EPC of the schedule are stored in the solution whatever the setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model.data import ScenarioData
from feederflex.model.extract import variable

Z_FLOOR = -4.0  # below this EPNS < 1e-5 sigma
_ERFC = np.vectorize(math.erfc, otypes=[float])


def _pdf(z) -> np.ndarray:
    """Standard normal density (math, not scipy.stats, whose import cost every solve job about 1 s)."""
    z = np.asarray(z, float)
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _cdf(z) -> np.ndarray:
    """Standard normal distribution function, 0.5 erfc(-z / sqrt 2)."""
    return 0.5 * _ERFC(-np.asarray(z, float) / math.sqrt(2.0))


def expected_shortfall(x: np.ndarray | float, mu: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
    """E[(x - X)+] for X ~ N(mu, sigma) (sigma = 0: max(x - mu, 0)), elementwise."""
    x, mu, sigma = np.broadcast_arrays(np.asarray(x, float), np.asarray(mu, float), np.asarray(sigma, float))
    shape = x.shape
    x, mu, sigma = np.atleast_1d(x), np.atleast_1d(mu), np.atleast_1d(sigma)
    out = np.maximum(x - mu, 0.0)
    pos = sigma > 0
    z = (x[pos] - mu[pos]) / sigma[pos]
    out[pos] = sigma[pos] * (_pdf(z) + z * _cdf(z))
    return out.reshape(shape)


def tangent_points(n: int, forecast_error: float) -> np.ndarray:
    """Standardised points z of the tangents: evenly from max(-1/forecast_error, -4) to 0."""
    z_low = max(-1.0 / forecast_error, Z_FLOOR)
    return np.linspace(z_low, 0.0, n)


def tangent_error(n: int, forecast_error: float) -> float:
    """Largest gap between EPNS and its tangent approximation on x in [0, mu], in units of sigma."""
    z_k = tangent_points(n, forecast_error)
    z = np.linspace(-1.0 / forecast_error, 0.0, 4001)
    exact = _pdf(z) + z * _cdf(z)
    lines = (_pdf(z_k) + z_k * _cdf(z_k))[None, :] + _cdf(z_k)[None, :] * (z[:, None] - z_k[None, :])
    return float(np.max(exact - np.maximum(lines.max(axis=1), 0.0)))


def risk_prices(data: ScenarioData) -> tuple[float, float]:
    """Reserve and curtailment prices, $/MWh (the day's highest and lowest price when not set)."""
    cfg = data.settings.risk
    price = data.profiles.price_usd_per_mwh.values
    reserve = cfg.reserve_price_usd_per_mwh
    curtail = cfg.curtailment_price_usd_per_mwh
    return (
        float(np.max(price)) if reserve is None else float(reserve),
        float(np.min(price)) if curtail is None else float(curtail),
    )


def risk_keys(m: pyo.Block, data: ScenarioData) -> list[tuple[str, str, int, float, float]]:
    """(kind, unit, step, mu, sigma) of every uncertain quantity with a positive forecast."""
    keys = []
    for pv in data.settings.pv:
        for t in data.steps:
            mu = float(pyo.value(m.pv.avail_mw[pv.name, t]))
            if pv.forecast_error > 0 and mu > 0:
                keys.append(("pv", pv.name, t, mu, pv.forecast_error * mu))
    for dr in data.settings.dr:
        for t in data.steps:
            mu = float(m.dr.mu_mw[dr.name, t])
            if dr.forecast_error > 0 and mu > 0:
                keys.append(("dr", dr.name, t, mu, dr.forecast_error * mu))
    return keys


def add_risk(m: pyo.Block, data: ScenarioData) -> pyo.Block:
    """Add ``m.risk``: ``epns[k]`` (MW) above its tangents and the expressions ``epc[k]``; empty when disabled."""
    cfg = data.settings.risk
    blk = pyo.Block()
    m.risk = blk
    keys = risk_keys(m, data) if cfg.enabled else []
    blk.keys = keys
    blk.K = pyo.Set(initialize=range(len(keys)), ordered=True)
    blk.J = pyo.Set(initialize=range(int(cfg.tangents)), ordered=True)

    def scheduled(k):
        kind, unit, t, _, _ = keys[k]
        if kind == "pv":
            return m.pv.p_mw[unit, t]
        return m.dr.p_curtail_mw[unit, t] + m.dr.p_down_mw[unit, t]

    blk.epns = pyo.Var(blk.K, within=pyo.NonNegativeReals, doc="expected power not served, MW")
    z_of = {k: tangent_points(int(cfg.tangents), keys[k][4] / keys[k][3]) for k in range(len(keys))}

    def tangent(b, k, j):
        _, _, _, mu, sigma = keys[k]
        z = float(z_of[k][j])
        value = sigma * (_pdf(z) + z * _cdf(z))
        return b.epns[k] >= value + float(_cdf(z)) * (scheduled(k) - mu - sigma * z)

    blk.tangent = pyo.Constraint(blk.K, blk.J, rule=tangent)
    blk.epc = pyo.Expression(blk.K, rule=lambda b, k: b.epns[k] + keys[k][3] - scheduled(k))
    blk.reserve_price, blk.curtailment_price = risk_prices(data)
    if blk.reserve_price < blk.curtailment_price:
        raise ValueError(
            f"risk: reserve price {blk.reserve_price} $/MWh is below the curtailment price "
            f"{blk.curtailment_price} $/MWh; "
            "the risk cost would reward unserved power without bound"
        )
    return blk


def exact_risk(
    schedule_mw: np.ndarray, mu_mw: np.ndarray, forecast_error: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact EPNS and EPC (MW) of scheduled powers, shape (time, unit), forecast errors per unit."""
    sigma = np.asarray(forecast_error, float)[None, :] * mu_mw
    epns = expected_shortfall(schedule_mw, mu_mw, sigma)
    return epns, epns + mu_mw - schedule_mw


def solution(data: ScenarioData, parts: dict[str, xr.Variable]) -> dict[str, xr.Variable]:
    """Exact expected power not served and curtailment of the scheduled PV and DR (from the PV
    and DR parts of the solution), whether or not the model priced them."""
    pv_epns, pv_epc = exact_risk(
        parts["pv_p_mw"].values, parts["pv_avail_mw"].values, [u.forecast_error for u in data.settings.pv]
    )
    dr_epns, dr_epc = exact_risk(
        parts["dr_p_curtail_mw"].values + parts["dr_p_down_mw"].values,
        parts["dr_forecast_mw"].values,
        [u.forecast_error for u in data.settings.dr],
    )
    exact = "under the forecast error, exact"
    return {
        "pv_epns_mw": variable(("time", "pv"), pv_epns, f"MW (expected power not served {exact})"),
        "pv_epc_mw": variable(("time", "pv"), pv_epc, f"MW (expected curtailment {exact})"),
        "dr_epns_mw": variable(("time", "dr"), dr_epns, "MW (expected response not delivered, exact)"),
        "dr_epc_mw": variable(("time", "dr"), dr_epc, "MW (expected response beyond the schedule, exact)"),
    }
