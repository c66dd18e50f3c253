"""Honest outcomes: every label, gap and time is true for the schedule it describes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from feederflex import acpf, operation, schedule
from feederflex.acpf import ac_network
from feederflex.kpis import scenario_kpis

BATTERY = [{"name": "b18", "bus": 18, "p_mw": 0.5, "e_mwh": 1.0, "soc_init": 0.5, "end": "at_least_initial"}]
DAY = {"load": {"shape": [80, 90, 100, 95, 90, 85]}, "pv": {"sunrise_h": 0.0, "sunset_h": 10.0}}


def label_is_honest(attrs: dict) -> bool:
    """The rule of feederflex.solve: optimal only with objective and bound within the MIP gap;
    a gap of 0 only when objective and bound agree."""
    objective, bound = attrs.get("solver_objective", math.nan), attrs.get("solver_bound", math.nan)
    gap = json.loads(attrs["solver_options"]).get("mip_rel_gap", 0.0) if attrs.get("solver_options") else 0.0
    apart = abs(objective - bound) / max(abs(objective), 1e-9) if np.isfinite([objective, bound]).all() else math.nan
    if attrs["solver_status"] == "optimal" and not apart <= gap + 1e-9:
        return False
    return not (attrs.get("solver_mip_gap") == 0 and not apart <= gap + 1e-9)


def _solve(make_scenario, feeder33, base=None, **kw):
    settings, prof, _ = make_scenario({"fess": BATTERY, **(base or {})}, day=DAY, hours=6)
    return schedule.solve_scenario(feeder33, prof, settings, **kw), settings


def test_an_ac_corrected_milp_keeping_its_integers_is_feasible_not_optimal(make_scenario, feeder33):
    ds, settings = _solve(make_scenario, feeder33)
    stages = json.loads(ds.attrs["solver_stages"])
    assert ds.attrs["ac_correction_iterations"] >= 1, "the setup must make the correction re-solve"
    assert [s["name"] for s in stages][0] == "scenario" and stages[0]["kind"] == "MILP"
    assert all(s["kind"] == "LP" for s in stages[1:]) and stages[1]["name"].startswith("AC correction")
    assert ds.attrs["solver_status"] == "feasible" and np.isnan(ds.attrs["solver_mip_gap"])
    assert "integers" in ds.attrs["solver_gap_note"]
    # seconds are the sum over every stage, the breakdown kept
    assert ds.attrs["solver_solve_seconds"] == pytest.approx(sum(s["highs_seconds"] for s in stages))
    assert ds.attrs["solver_wall_seconds"] >= ds.attrs["solver_solve_seconds"]
    assert label_is_honest(ds.attrs)


def test_without_keep_integers_the_correction_re_solves_the_milp_and_its_own_gap_stands(make_scenario, feeder33):
    ds, settings = _solve(make_scenario, feeder33, {"ac_correction": {"keep_integers": False}})
    stages = json.loads(ds.attrs["solver_stages"])
    assert ds.attrs["ac_correction_iterations"] >= 1 and all(s["kind"] == "MILP" for s in stages)
    assert ds.attrs["solver_status"] == "optimal" and ds.attrs["solver_gap_note"] == ""
    assert ds.attrs["solver_mip_gap"] <= settings["solver"]["mip_gap"]
    assert ds.attrs["solver_mip_gap"] == pytest.approx(stages[-1]["gap"])


def test_an_lp_scenario_through_the_correction_stays_optimal(make_scenario, feeder33):
    settings, prof, _ = make_scenario({}, day=DAY, hours=6)  # no battery: no integers at all
    ds = schedule.solve_scenario(feeder33, prof, settings)
    stages = json.loads(ds.attrs["solver_stages"])
    assert {s["kind"] for s in stages} == {"LP"} and ds.attrs["solver_status"] == "optimal"
    assert ds.attrs["solver_bound"] == pytest.approx(ds.attrs["solver_objective"])


def test_a_stopped_milp_through_the_correction_is_feasible(make_scenario, feeder33, monkeypatch):
    """A MILP stopped before its gap closed (here, deterministically, at HiGHS's first improving
    solution, which is what a time limit does at an unknown moment) keeps feasible through the
    correction, with its own stage's gap on record and no gap claimed for the corrected schedule."""
    from feederflex.solve import Session

    options = Session._options
    monkeypatch.setattr(
        Session,
        "_options",
        lambda self, limit, milp: options(self, limit, milp) | ({"mip_max_improving_sols": 1} if milp else {}),
    )
    settings, prof, _ = make_scenario({"fess": BATTERY, "solver": {"mip_gap": 0.0}}, hours=24)
    ds = schedule.solve_scenario(feeder33, prof, settings)
    first = json.loads(ds.attrs["solver_stages"])[0]
    assert first["kind"] == "MILP" and first["status"] == "feasible" and first["gap"] > 0
    assert ds.attrs["ac_correction_iterations"] >= 1
    assert ds.attrs["solver_status"] == "feasible" and np.isnan(ds.attrs["solver_mip_gap"])


def test_a_diverged_ac_step_is_counted_and_its_losses_are_not_summed(make_scenario, feeder33):
    ds, _ = _solve(make_scenario, feeder33, {"ac_correction": {"enabled": False}})
    doctored = ds.copy(deep=True)
    doctored["load_p_mw"][2] = doctored.load_p_mw[2] * 40  # no power flow can carry this
    ac = acpf.ac_check(feeder33, doctored)
    assert ac.attrs["ac_nonconverged_steps"] == 1 and list(ac.converged.values) == [1, 1, 0, 1, 1, 1]
    assert np.isnan(ac.attrs["loss_mwh"]) and "[2]" in ac.attrs["ac_nonconverged_note"]
    assert np.isnan(ac.v_ac_pu[2]).all() and np.isfinite(ac.v_ac_pu[1]).all()
    row = scenario_kpis(doctored, ac)
    assert row["ac_nonconverged_steps"] == 1 and np.isnan(row["ac_losses_mwh"])
    # on_violation operation treats the unverifiable step as a violation (even with any band tolerance)
    net = ac_network(feeder33, float(ds.attrs["substation_v_pu"]))
    assert operation._first_violation(feeder33, net, doctored, 0, 1.0) == 2


def test_a_diverged_step_flips_the_correction_status(make_scenario, feeder33, monkeypatch):
    from feederflex import feeders

    real = feeders.run_ac
    calls = {"n": 0}

    def fails_at_the_second_step(net, recycle=False):
        calls["n"] += 1
        if calls["n"] % 6 == 2:
            raise RuntimeError("power flow did not converge")
        real(net, recycle)

    monkeypatch.setattr(acpf, "run_ac", fails_at_the_second_step)
    ds, _ = _solve(make_scenario, feeder33)
    assert ds.attrs["ac_correction_status"] == "ac_diverged"
    assert "diverged" in ds.attrs["solver_diagnostics"]
    history = json.loads(ds.attrs["ac_iterations"])
    assert history[-1]["ac_nonconverged_steps"] == 1


@pytest.mark.parametrize("method", ["unit_milp", "lp_moves"])
def test_routed_mess_is_never_worse_than_parked_in_what_is_written(make_scenario, feeder33, method):
    transport = {
        "stations": [
            {"bus": 6, "x_km": 0, "y_km": 0},
            {"bus": 18, "x_km": 3, "y_km": 0},
            {"bus": 33, "x_km": 0, "y_km": 3},
        ]
    }
    mess = {
        "units": [{"name": "m1", "p_mw": 0.5, "e_mwh": 1.0, "initial_station": 6}],
        "routing": "optimised",
        "search": {"method": method, "rounds": 1, "unit_time_s": 2.0, "time_s": 5.0},
    }
    settings, prof, cfg = make_scenario({"mess": mess}, day=DAY, hours=6, transport=transport)
    from feederflex.travel import build_travel

    travel = build_travel(cfg["transport"], list(range(1, 34)), 6, 60)
    ds = schedule.solve_scenario(feeder33, prof, settings, travel=travel)
    stages = [s["name"] for s in json.loads(ds.attrs["solver_stages"])]
    assert stages[0] == "MESS parked baseline" and "MESS routing" in stages
    assert (
        any(name.startswith("AC correction of the parked baseline") for name in stages)
        or ds.attrs["ac_correction_iterations"] == 0
    )
    outcome = ds.attrs["mess_routing_outcome"]
    if outcome == "routed":
        assert ds.attrs["solver_objective"] <= ds.attrs["mess_parked_corrected_objective"] + 1e-6
    else:
        assert outcome.startswith("parked:")
    # the seconds cover the baseline, the search and the full solve (and the corrections)
    total = json.loads(ds.attrs["solver_stages"])
    assert ds.attrs["solver_solve_seconds"] >= sum(s["highs_seconds"] for s in total[:3]) - 1e-9
