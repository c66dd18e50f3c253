"""Day-ahead vs real-time: forecast errors, the plan on the actual day, receding horizon."""

from __future__ import annotations

import numpy as np
import pytest

from feederflex import rolling

FESS = [{"name": "b18", "bus": 18, "p_mw": 1.0, "e_mwh": 4.0, "soc_init": 0.5, "end": "at_least_initial",
         "eta_ch": 0.9, "eta_dis": 0.9}]


def spec(sd: float, correlation: float = 0.5, seed: int = 3) -> dict:
    return {"seed": seed, "relative_sd": {"pv": sd, "load": sd / 2, "ev": sd / 2}, "correlation": correlation}


@pytest.fixture(scope="module")
def scenario(schema, feeder33):
    from feederflex import profiles, study

    cfg = study.validate_config({"base": {"fess": FESS, "ac_correction": {"enabled": False}}}, schema)
    settings = study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))["base"]
    return settings, profiles.build_profiles(feeder33, cfg["days"]["summer"], 24, 60, "summer")


def test_actual_day_errors_are_seeded_scaled_and_correlated(scenario):
    _, forecast = scenario
    same = rolling.actual_day(forecast, spec(0.0), 0)
    np.testing.assert_allclose(same.load_p_mw, forecast.load_p_mw)
    np.testing.assert_allclose(same.pv_avail_pu, forecast.pv_avail_pu)
    a, b = rolling.actual_day(forecast, spec(0.2), 1), rolling.actual_day(forecast, spec(0.2), 1)
    np.testing.assert_array_equal(a.load_p_mw, b.load_p_mw)
    assert not np.allclose(a.load_p_mw, rolling.actual_day(forecast, spec(0.2), 2).load_p_mw)
    assert (a.pv_avail_pu <= 1).all() and (a.pv_avail_pu >= 0).all()
    ratio = a.load_p_mw.sum("bus") / forecast.load_p_mw.sum("bus")
    np.testing.assert_allclose(ratio, 1 + a.error_load, rtol=1e-9)
    rng = np.random.default_rng(0)
    long = rolling.errors(20000, 0.1, 0.8, rng)
    assert long.std() == pytest.approx(0.1, rel=0.05)
    assert np.corrcoef(long[1:], long[:-1])[0, 1] == pytest.approx(0.8, abs=0.03)


@pytest.mark.parametrize(("kwargs", "pattern"), [({"sd": -0.1}, "cannot be negative"), ({"correlation": 1.0}, "0 <= correlation < 1")])
def test_bad_error_settings_are_named(kwargs, pattern):
    with pytest.raises(rolling.RollingError, match=pattern):
        rolling.errors(4, kwargs.get("sd", 0.1), kwargs.get("correlation", 0.0), np.random.default_rng(0))


def test_zero_forecast_error_rolls_to_the_day_ahead_result(scenario, feeder33):
    settings, forecast = scenario
    ds = rolling.solve_rolling(feeder33, forecast, rolling.actual_day(forecast, spec(0.0), 0), settings)
    assert ds.attrs["rolling_status"] == "completed" and ds.attrs["solver_status"] == "optimal"
    assert ds.attrs["solver_objective"] == pytest.approx(ds.attrs["day_ahead_objective"], rel=1e-6)
    assert ds.attrs["plan_on_actual_objective"] == pytest.approx(ds.attrs["day_ahead_objective"], rel=1e-6)
    assert (ds.rolling_status.values == "optimal").all()


def test_realised_schedule_obeys_the_actual_day(scenario, feeder33):
    settings, forecast = scenario
    actual = rolling.actual_day(forecast, spec(0.25), 4)
    ds = rolling.solve_rolling(feeder33, forecast, actual, settings)
    assert ds.attrs["rolling_status"] == "completed"
    # the realised day balances with the actual loads and never uses more PV than actually there
    np.testing.assert_allclose(ds.load_p_mw, actual.load_p_mw)
    demand = ds.load_p_mw.sum("bus") + ds.fess_p_ch_mw.sum("fess") - ds.fess_p_dis_mw.sum("fess")
    np.testing.assert_allclose(ds.p_grid_mw, demand - ds.pv_p_mw.sum("pv"), atol=1e-6)
    assert (ds.pv_p_mw <= ds.pv_avail_mw + 1e-7).all()
    # state of charge carried step to step: e_t = e_(t-1) + 0.9 p_ch - p_dis / 0.9 (1 h steps)
    e = np.concatenate([[ds.fess_e_init_mwh.values[0]], ds.fess_e_mwh.values[:, 0]])
    np.testing.assert_allclose(np.diff(e), 0.9 * ds.fess_p_ch_mw.values[:, 0] - ds.fess_p_dis_mw.values[:, 0] / 0.9, atol=1e-6)
    assert e[-1] >= e[0] - 1e-6
    # the plan on the actual day was evaluated too, and its cost differs from the forecast's
    assert ds.attrs["plan_on_actual_status"] == "optimal"
    assert ds.attrs["plan_on_actual_objective"] != pytest.approx(ds.attrs["day_ahead_objective"], rel=1e-4)
