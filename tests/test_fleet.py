from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from feederflex import fleet

SPEC = {
    "sampler": "tong2021",
    "seed": 11,
    "vehicles_per_bus": 300,
    "buses": [],
    "strategy": "random",
    "max_delay_h": 2.0,
    "departure_h": 7.0,
    "distributions": {"mileage_mu": 3.019, "mileage_sigma": 1.123, "arrival_shape": 5.427, "arrival_scale": 18.618},
    "vehicle": {"battery_kwh": 40.0, "charger_kw": 3.7, "kwh_per_km": 0.15, "range_km": 240.0},
}


@pytest.fixture(scope="module")
def big_fleet(feeder33):
    return fleet.sample_fleet(SPEC, feeder33, 24, 15, "big")


def test_same_seed_same_fleet_other_seed_other_fleet(feeder33):
    small = dict(SPEC, vehicles_per_bus=3)
    a = fleet.sample_fleet(small, feeder33, 24, 60)
    b = fleet.sample_fleet(small, feeder33, 24, 60)
    c = fleet.sample_fleet(dict(small, seed=12), feeder33, 24, 60)
    np.testing.assert_array_equal(a.ev_p_mw.values, b.ev_p_mw.values)
    assert not np.array_equal(a.arrival_h.values, c.arrival_h.values)


def test_vehicles_at_every_load_bus(big_fleet, feeder33):
    assert big_fleet.sizes["ev"] == 300 * 32
    counts = np.bincount(big_fleet.ev_bus.values, minlength=34)
    assert counts[1] == 0 and (counts[2:34] == 300).all()


def test_mileage_is_lognormal_with_the_paper_parameters(big_fleet):
    km = big_fleet.mileage_km.values
    uncapped = km[km < 240.0]
    assert (km <= 240.0).all()
    # The cap moves only the upper 1.4 %: the median and quartiles of ln(d) follow N(3.019, 1.123).
    q = np.quantile(np.log(km), [0.25, 0.5, 0.75])
    expected = stats.norm.ppf([0.25, 0.5, 0.75], 3.019, 1.123)
    np.testing.assert_allclose(q, expected, atol=0.04)
    assert 0.005 < 1 - uncapped.size / km.size < 0.03


def test_arrival_follows_the_wrapped_weibull_of_eq_12(big_fleet):
    t = big_fleet.arrival_h.values
    assert (t >= 0).all() and (t < 24).all()
    w = stats.weibull_min(5.427, scale=18.618)
    mass = w.cdf(28) - w.cdf(4)
    expected_after_midnight = (w.cdf(28) - w.cdf(24)) / mass
    expected_before_18 = (w.cdf(18) - w.cdf(4)) / mass
    assert np.mean(t < 4) == pytest.approx(expected_after_midnight, abs=0.006)
    assert np.mean((t >= 4) & (t < 18)) == pytest.approx(expected_before_18, abs=0.015)


def test_load_conserves_every_vehicles_energy_and_power_limits(big_fleet):
    energy_mwh = float(big_fleet.ev_p_mw.sum()) * 0.25
    assert energy_mwh == pytest.approx(float(big_fleet.energy_kwh.sum()) / 1000, rel=1e-9)
    per_bus_max = big_fleet.ev_p_mw.max("time").values
    assert (per_bus_max <= 300 * 3.7 / 1000 + 1e-12).all()
    needed = big_fleet.charge_start_h + big_fleet.energy_kwh / big_fleet.charger_kw
    assert (big_fleet.departure_h >= needed - 1e-9).all()


def test_evening_peak_of_uncontrolled_charging(big_fleet):
    total = big_fleet.ev_p_mw.sum("bus").values
    peak_hour = int(np.argmax(total)) / 4
    assert 17 <= peak_hour <= 22


def test_delayed_strategy_shifts_charging_later(feeder33):
    random_ = fleet.sample_fleet(SPEC, feeder33, 24, 60)
    delayed = fleet.sample_fleet(dict(SPEC, strategy="delayed"), feeder33, 24, 60)
    shift = delayed.charge_start_h - delayed.arrival_h
    assert float(shift.min()) >= 0 and float(shift.max()) <= 2.0
    assert float(shift.mean()) == pytest.approx(1.0, abs=0.05)
    hours = np.arange(24)
    centre = lambda ds: float((ds.ev_p_mw.sum("bus").values * ((hours - 12) % 24)).sum() / ds.ev_p_mw.sum())  # noqa: E731
    assert centre(delayed) > centre(random_) + 0.5


def test_fleet_at_an_unknown_bus_is_a_clear_error(feeder33):
    with pytest.raises(fleet.FleetError, match=r"fleets.bad.buses: \[40\] are not buses"):
        fleet.sample_fleet(dict(SPEC, buses=[3, 40]), feeder33, 24, 60, "bad")


def test_charging_load_wraps_past_midnight():
    load = fleet.charging_load(np.array([23.0]), np.array([25.5]), np.array([4.0]), 1.0, 24)
    assert load[23] == 4.0 and load[0] == 4.0 and load[1] == 2.0 and load[2:23].sum() == 0
