"""AC-secure schedules: the iterative correction closes the LinDistFlow-vs-AC gap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from feederflex import acpf, fleet, schedule
from tests.test_fleet import spec_of

FESS = [{"name": "fess18", "bus": 18, "p_mw": 1.0, "e_mwh": 4.0}]


@pytest.fixture(scope="module")
def peak_fleet(feeder33):
    return fleet.sample_fleet(spec_of(seed=2022, vehicles_per_bus=20), feeder33, 24, 60)  # the default study's "peak"


def run(make_scenario, feeder33, ev, **correction):
    settings, prof, _ = make_scenario(
        {"ev_fleet": "f", "fess": FESS, "ac_correction": correction}, hours=24, fleets={"f": {}}
    )
    return schedule.solve_scenario(feeder33, prof, settings, fleet=ev)


def test_corrected_schedule_holds_the_band_in_ac_and_matches_the_ac_import(make_scenario, feeder33, peak_fleet):
    raw = run(make_scenario, feeder33, peak_fleet, enabled=False)
    raw_ac = acpf.ac_check(feeder33, raw, 0.001)
    assert raw_ac.attrs["ac_unexpected_violation_bus_steps"] > 0, "uncorrected LinDistFlow is optimistic somewhere"
    ds = run(make_scenario, feeder33, peak_fleet)
    assert ds.attrs["ac_correction_status"] == "converged"
    history = json.loads(ds.attrs["ac_iterations"])
    assert 1 <= ds.attrs["ac_correction_iterations"] <= 3
    assert history[0]["ac_unexpected_violation_bus_steps"] == raw_ac.attrs["ac_unexpected_violation_bus_steps"]
    ac = acpf.ac_check(feeder33, ds)
    assert ac.attrs["tolerance_pu"] == 0.001
    assert ac.attrs["ac_unexpected_violation_bus_steps"] == 0
    np.testing.assert_array_less(np.abs(ds.p_grid_mw - ac.p_grid_ac_mw), 0.01 * np.abs(ac.p_grid_ac_mw) + 1e-3)
    # the final cost includes the AC losses: the booked losses are the AC losses of the schedule
    assert float(ds.loss_load_p_mw.sum()) == pytest.approx(float(ac.loss_mw.sum()), rel=0.02)
    assert ds.attrs["objective_energy_cost_usd"] > raw.attrs["objective_energy_cost_usd"]


def test_a_correction_that_cannot_finish_says_so(make_scenario, feeder33, peak_fleet):
    ds = run(make_scenario, feeder33, peak_fleet, max_iterations=0)
    assert ds.attrs["ac_correction_status"] == "not_converged"
    assert "AC violations the model does not admit remain" in ds.attrs["solver_diagnostics"]
    ac = acpf.ac_check(feeder33, ds)
    assert ac.attrs["ac_unexpected_violation_bus_steps"] > 0
