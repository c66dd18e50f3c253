"""Coordinated EV charging: envelopes, aggregate and per-vehicle modes, V2G, disaggregation."""

from __future__ import annotations

import numpy as np
import pytest

from feederflex import fleet, schedule
from tests.conftest import assert_proven_then_corrected
from tests.test_fleet import spec_of


@pytest.fixture(scope="module")
def peak_fleet(feeder33):
    return fleet.sample_fleet(spec_of(seed=2022, vehicles_per_bus=20), feeder33, 24, 60)


def solve(make_scenario, feeder33, ev, **control):
    settings, prof, _ = make_scenario({"ev_fleet": "f", "ev_control": control, "fess": []}, hours=24, fleets={"f": {}})
    return schedule.solve_scenario(feeder33, prof, settings, fleet=ev)


def test_envelopes_are_the_earliest_and_latest_trajectories_on_charging_windows(peak_fleet):
    env = fleet.envelopes(peak_fleet, list(range(1, 34)), 24, 60)
    assert env.sizes["pool"] == 32 * 24, "one pool per EV bus and leaving step, whatever the fleet"
    arrival, departure = fleet.charging_windows(peak_fleet)
    assert (departure - arrival >= peak_fleet.energy_kwh / peak_fleet.charger_kw - 1e-9).all()
    power = peak_fleet.charger_kw.values
    energy = peak_fleet.energy_kwh.values
    earliest = fleet.charging_load(arrival, arrival + energy / power, power, 1.0, 24) / 1000
    latest = fleet.charging_load(departure - energy / power, departure, power, 1.0, 24) / 1000
    order = env.order.values
    # equal but for the few windows crossing the cut, whose energy is split in proportion to time
    crossing = (
        float(energy[(arrival % 24 < env.attrs["cut_step"]) | (departure > 24 + env.attrs["cut_step"])].sum()) / 1000
    )
    np.testing.assert_allclose(env.e_max_mwh.sum("pool")[1:], np.cumsum(earliest[order]), atol=max(crossing, 1e-9))
    np.testing.assert_allclose(env.e_min_mwh.sum("pool")[1:], np.cumsum(latest[order]), atol=max(crossing, 1e-9))
    assert (env.p_max_mw.sum("pool").values >= earliest[order] - 1e-9).all()
    assert env.e_max_mwh.values[-1].sum() == pytest.approx(energy.sum() / 1000)


def test_coordinated_charging_lowers_the_evening_peak_and_undervoltage(make_scenario, feeder33, peak_fleet):
    free = solve(make_scenario, feeder33, peak_fleet)
    smart = solve(make_scenario, feeder33, peak_fleet, mode="aggregate")
    evening = slice(17, 23)
    assert smart.attrs["solver_status"] == "optimal"
    assert float(smart.p_grid_mw[evening].max()) < float(free.p_grid_mw[evening].max()) - 0.05
    under = lambda ds: float(ds.v_under_pu[evening].sum())  # noqa: E731
    assert under(smart) < under(free)
    # same energy to the cars, every vehicle served by its departure
    assert float(smart.ev_p_mw.sum()) == pytest.approx(float(free.ev_p_mw.sum()), rel=1e-6)
    assert smart.attrs["ev_unmet_mwh"] == 0.0
    assert float(np.abs(smart.ev_delivered_kwh - peak_fleet.energy_kwh).max()) < 1e-3


def test_model_size_does_not_grow_with_the_fleet(make_scenario, feeder33):
    sizes = []
    for per_bus in (5, 60):
        ev = fleet.sample_fleet(spec_of(seed=1, vehicles_per_bus=per_bus), feeder33, 24, 60)
        ds = solve(make_scenario, feeder33, ev, mode="aggregate", repair_iterations=0)
        sizes.append((ds.attrs["solver_rows"], ds.attrs["solver_columns"], ds.attrs["solver_integers"]))
    assert sizes[0] == sizes[1]


def test_disaggregation_serves_every_vehicle_of_a_few_hundred(make_scenario, feeder33):
    ev = fleet.sample_fleet(spec_of(sampler="commute", seed=3, vehicles_per_bus=10), feeder33, 24, 60)
    ds = solve(make_scenario, feeder33, ev, mode="aggregate")
    assert ev.sizes["ev"] == 320
    assert float(ds.ev_unmet_kwh.max()) == 0.0
    per_vehicle = ds.ev_vehicle_p_kw
    assert float(per_vehicle.max()) <= float(ev.charger_kw.max()) * (1 + 1e-5)
    np.testing.assert_allclose(per_vehicle.sum("time"), ev.energy_kwh, atol=1e-3)
    # per-vehicle power sums back to the bus schedule
    for bus in (5, 18):
        sel = ds.ev_bus.values == bus
        np.testing.assert_allclose(per_vehicle[:, sel].sum("ev") / 1000, ds.ev_p_mw.sel(bus=bus), atol=1e-6)


def test_v2g_discharges_in_the_evening_and_still_serves_everyone(make_scenario, feeder33, peak_fleet):
    ds = solve(make_scenario, feeder33, peak_fleet, mode="aggregate", v2g=True, v2g_soc_min=0.3)
    # the correction fixes the pooled plan when it re-solves (feasible); without a re-solve the proven MILP stands
    assert ds.attrs["solver_status"] == ("feasible" if ds.attrs["ac_correction_iterations"] else "optimal")
    assert float(ds.ev_p_dis_mw.sum()) > 0.1
    assert ds.attrs["ev_unmet_mwh"] == 0.0


def test_per_vehicle_mode_charges_contiguously_at_constant_power(make_scenario, feeder33):
    ev = fleet.sample_fleet(
        spec_of(
            sampler="yang2015",
            seed=9,
            vehicles_per_bus=100,
            buses=[18],
            vehicle={"battery_kwh": 40.0, "charger_kw": 7.0, "kwh_per_km": 0.15, "range_km": 240.0},
        ),
        feeder33,
        24,
        60,
    )
    ds = solve(make_scenario, feeder33, ev, mode="per_vehicle")
    assert_proven_then_corrected(ds)
    profile = ds.ev_vehicle_p_kw.values
    for k in range(ev.sizes["ev"]):
        on = np.flatnonzero(profile[:, k] > 1e-9)
        assert np.all(np.diff(on) == 1), "one contiguous block"
        assert np.allclose(profile[on, k], profile[on[0], k]) and profile[on[0], k] <= 7.0 + 1e-9
        assert on[0] >= np.ceil(float(ev.arrival_h[k]) - 1e-9)
        assert on[-1] + 1 <= np.floor(float(ev.departure_h[k]) + 1e-9)
    np.testing.assert_allclose(profile.sum(axis=0), ev.energy_kwh.values, atol=1e-6)
    assert ds.attrs["ev_unmet_mwh"] < 1e-9


def test_coordinated_charging_needs_a_whole_day(make_scenario, feeder33, peak_fleet):
    from feederflex import profiles
    from feederflex.study import ConfigError

    # refused when the study is parsed, before anything is sampled or solved ...
    with pytest.raises(
        ConfigError, match=r"ev_control.mode = aggregate needs a 24-hour \(periodic\) day, but time.hours = 12"
    ):
        make_scenario({"ev_fleet": "f", "ev_control": {"mode": "aggregate"}}, hours=12, fleets={"f": {}})
    # ... and by the library when called directly with a shorter day
    settings, _, cfg = make_scenario({"ev_fleet": "f", "ev_control": {"mode": "aggregate"}}, hours=24, fleets={"f": {}})
    prof = profiles.build_profiles(feeder33, cfg["days"]["summer"], 12, 60, "summer")
    short = fleet.sample_fleet(spec_of(seed=1, vehicles_per_bus=2), feeder33, 12, 60)
    with pytest.raises(fleet.FleetError, match="needs a 24-hour"):
        schedule.solve_scenario(feeder33, prof, settings, fleet=short)
