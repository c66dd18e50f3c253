"""Day-ahead vs real-time: forecast errors, the plan on the actual day, receding horizon."""

from __future__ import annotations

import json

import numpy as np
import pytest

from feederflex import montecarlo, operation
from feederflex.errors import RollingError
from feederflex.forecast import actual_day, errors

FESS = [
    {
        "name": "b18",
        "bus": 18,
        "p_mw": 1.0,
        "e_mwh": 4.0,
        "soc_init": 0.5,
        "end": "at_least_initial",
        "eta_ch": 0.9,
        "eta_dis": 0.9,
    }
]


# a band the battery scenario's plan stays well inside on the 33-bus feeder (its AC voltages on the
# actual day of realisation 6 span about 0.85-1.07 pu); the tight band is violated by the plan
WIDE = (0.7, 1.3)


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
    same = actual_day(forecast, spec(0.0), 0)
    np.testing.assert_allclose(same.load_p_mw, forecast.load_p_mw)
    np.testing.assert_allclose(same.pv_avail_pu, forecast.pv_avail_pu)
    a, b = actual_day(forecast, spec(0.2), 1), actual_day(forecast, spec(0.2), 1)
    np.testing.assert_array_equal(a.load_p_mw, b.load_p_mw)
    assert not np.allclose(a.load_p_mw, actual_day(forecast, spec(0.2), 2).load_p_mw)
    assert (a.pv_avail_pu <= 1).all() and (a.pv_avail_pu >= 0).all()
    ratio = a.load_p_mw.sum("bus") / forecast.load_p_mw.sum("bus")
    np.testing.assert_allclose(ratio, 1 + a.error_load, rtol=1e-9)
    rng = np.random.default_rng(0)
    long = errors(20000, 0.1, 0.8, rng)
    assert long.std() == pytest.approx(0.1, rel=0.05)
    assert np.corrcoef(long[1:], long[:-1])[0, 1] == pytest.approx(0.8, abs=0.03)


@pytest.mark.parametrize(
    ("kwargs", "pattern"), [({"sd": -0.1}, "cannot be negative"), ({"correlation": 1.0}, "0 <= correlation < 1")]
)
def test_bad_error_settings_are_named(kwargs, pattern):
    with pytest.raises(RollingError, match=pattern):
        errors(4, kwargs.get("sd", 0.1), kwargs.get("correlation", 0.0), np.random.default_rng(0))


def test_zero_forecast_error_rolls_to_the_day_ahead_result(scenario, feeder33):
    settings, forecast = scenario
    ds = operation.solve_rolling(feeder33, forecast, actual_day(forecast, spec(0.0), 0), settings)
    assert ds.attrs["rolling_status"] == "completed"
    assert ds.attrs["solver_objective"] == pytest.approx(ds.attrs["day_ahead_objective"], rel=1e-6)
    assert ds.attrs["plan_on_actual_objective"] == pytest.approx(ds.attrs["day_ahead_objective"], rel=1e-6)
    # every re-solve is an LP around the plan's battery modes, solved to optimality; the day keeps
    # the plan's integers, so it is feasible, with no gap of its own and the reason
    assert ds.attrs["day_ahead_status"] == "optimal" and ds.attrs["solver_integers"] > 0
    assert (ds.rolling_status.values == "optimal").all()
    assert ds.attrs["solver_status"] == "feasible" and np.isnan(ds.attrs["solver_mip_gap"])
    assert "day-ahead plan (integers)" in ds.attrs["solver_gap_note"]
    # its seconds are the sum of its 24 re-solves
    assert ds.attrs["solver_solve_seconds"] == pytest.approx(float(ds.rolling_solve_seconds.sum()), rel=1e-9)


def test_without_keep_integers_each_step_is_a_milp_and_the_day_can_be_optimal(scenario, feeder33):
    settings, forecast = scenario
    actual = actual_day(forecast, spec(0.25), 4)
    ds = operation.solve_rolling(feeder33, forecast, actual, settings, keep_integers=False)
    stages = json.loads(ds.attrs["solver_stages"])
    assert [s["kind"] for s in stages] == ["MILP"] * 24
    assert (ds.rolling_status.values == "optimal").all() and ds.attrs["solver_status"] == "optimal"
    assert ds.attrs["solver_gap_note"] == "" and ds.attrs["solver_mip_gap"] <= settings["solver"]["mip_gap"]
    kept = operation.solve_rolling(feeder33, forecast, actual, settings)
    assert {s["kind"] for s in json.loads(kept.attrs["solver_stages"])} == {"LP"}
    # (free modes need not realise a better day: each re-solve is optimal for forecasts, not actuals)


def test_realised_schedule_obeys_the_actual_day(scenario, feeder33):
    settings, forecast = scenario
    actual = actual_day(forecast, spec(0.25), 4)
    ds = operation.solve_rolling(feeder33, forecast, actual, settings)
    assert ds.attrs["rolling_status"] == "completed"
    # the realised day balances with the actual loads and never uses more PV than actually there
    np.testing.assert_allclose(ds.load_p_mw, actual.load_p_mw)
    demand = ds.load_p_mw.sum("bus") + ds.fess_p_ch_mw.sum("fess") - ds.fess_p_dis_mw.sum("fess")
    np.testing.assert_allclose(ds.p_grid_mw, demand - ds.pv_p_mw.sum("pv"), atol=1e-6)
    assert (ds.pv_p_mw <= ds.pv_avail_mw + 1e-7).all()
    # state of charge carried step to step: e_t = e_(t-1) + 0.9 p_ch - p_dis / 0.9 (1 h steps)
    e = np.concatenate([[ds.fess_e_init_mwh.values[0]], ds.fess_e_mwh.values[:, 0]])
    np.testing.assert_allclose(
        np.diff(e), 0.9 * ds.fess_p_ch_mw.values[:, 0] - ds.fess_p_dis_mw.values[:, 0] / 0.9, atol=1e-6
    )
    assert e[-1] >= e[0] - 1e-6
    # the plan on the actual day was evaluated too (its battery decisions come from the plan's model,
    # so it is feasible, not optimal), and its cost differs from the forecast's
    assert ds.attrs["plan_on_actual_status"] == "feasible"
    assert ds.attrs["plan_on_actual_objective"] != pytest.approx(ds.attrs["day_ahead_objective"], rel=1e-4)


def _soc_follows_powers(ds, eta: float = 0.9, hours: float = 1.0) -> None:
    """Energy carried step to step: e_t = e_(t-1) + (eta p_ch - p_dis / eta) h, from the initial energy."""
    e = np.concatenate([[ds.fess_e_init_mwh.values[0]], ds.fess_e_mwh.values[:, 0]])
    np.testing.assert_allclose(
        np.diff(e), (eta * ds.fess_p_ch_mw.values[:, 0] - ds.fess_p_dis_mw.values[:, 0] / eta) * hours, atol=1e-6
    )


def test_lookahead_window_keeps_the_plan_beyond_it(scenario, feeder33):
    settings, forecast = scenario
    actual = actual_day(forecast, spec(0.25), 5)
    shrinking = operation.solve_rolling(feeder33, forecast, actual, settings)
    whole_day = operation.solve_rolling(feeder33, forecast, actual, settings, lookahead_steps=forecast.sizes["time"])
    one, plan = operation.run_day(feeder33, forecast, actual, settings, lookahead_steps=1)
    # a window as long as the day is the shrinking horizon
    assert whole_day.attrs["solver_objective"] == pytest.approx(shrinking.attrs["solver_objective"], rel=1e-7)
    np.testing.assert_allclose(whole_day.fess_e_mwh, shrinking.fess_e_mwh, atol=1e-6)
    # a one-step window must hand over the plan's energy at its end: the battery follows the plan
    assert one.attrs["rolling_status"] == "completed" and one.attrs["lookahead_steps"] == 1
    np.testing.assert_allclose(one.fess_e_mwh, plan.fess_e_mwh, atol=1e-6)
    assert one.attrs["solver_objective"] == pytest.approx(plan.attrs["plan_on_actual_objective"], rel=1e-7)
    # ... while the rest-of-day re-solves move away from the plan and do better on the actual day
    assert not np.allclose(shrinking.fess_e_mwh, plan.fess_e_mwh, atol=1e-3)
    assert shrinking.attrs["solver_objective"] < plan.attrs["plan_on_actual_objective"] - 1.0
    for ds in (one, shrinking):
        _soc_follows_powers(ds)


@pytest.mark.parametrize(("mode", "lookahead"), [("rolling", 0), ("rolling", 25), ("sometimes", None)])
def test_bad_operation_is_refused_before_any_solve(scenario, feeder33, mode, lookahead):
    settings, forecast = scenario
    with pytest.raises(RollingError, match="operation.lookahead_steps = |operation.mode = 'sometimes'"):
        operation.run_day(
            feeder33,
            forecast,
            forecast.assign(ev_factor=("time", np.ones(24))),
            settings,
            mode=mode,
            lookahead_steps=lookahead,
        )


@pytest.fixture(scope="module")
def banded(schema):
    """Settings of the battery scenario with a wide band (no AC violation) and a tight one."""
    from feederflex import study

    out = {}
    for name, band in (("wide", WIDE), ("tight", (0.95, 1.05))):
        cfg = study.validate_config(
            {
                "base": {
                    "fess": FESS,
                    "grid": {"v_min_pu": band[0], "v_max_pu": band[1]},
                    "operation": {"mode": "on_violation"},
                }
            },
            schema,
        )
        out[name] = study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))["base"]
    return out


def test_on_violation_without_violations_is_the_plan_on_the_actual_day(scenario, banded, feeder33):
    from feederflex.acpf import ac_check

    _, forecast = scenario
    actual = actual_day(forecast, spec(0.25), 6)
    realised, plan = operation.run_day(feeder33, forecast, actual, banded["wide"], mode="on_violation")
    # the wide band is out of this feeder's reach: the plan on the actual day keeps a stated margin
    # to it in AC, so no optimal vertex (the battery's timing is degenerate) can touch it
    ac = ac_check(feeder33, plan, 0.001)
    assert float(ac.v_ac_pu.min()) >= WIDE[0] + 0.05 and float(ac.v_ac_pu.max()) <= WIDE[1] - 0.05
    assert realised.attrs["rolling_resolves"] == 0 and (realised.rolling_resolved == 0).all()
    assert (realised.rolling_status == "plan").all() and realised.attrs["rolling_status"] == "completed"
    np.testing.assert_allclose(realised.p_grid_mw, plan.p_grid_mw, atol=1e-9)
    np.testing.assert_allclose(realised.fess_e_mwh, plan.fess_e_mwh, atol=1e-9)


def test_on_violation_re_solves_where_ac_leaves_the_band(scenario, banded, feeder33):
    from feederflex.acpf import ac_check

    _, forecast = scenario
    actual = actual_day(forecast, spec(0.25), 6)
    realised, plan = operation.run_day(feeder33, forecast, actual, banded["tight"], mode="on_violation")
    ac = ac_check(feeder33, plan, 0.001)
    violating = np.flatnonzero(((ac.v_ac_under_pu > 0.001) | (ac.v_ac_over_pu > 0.001)).any("bus").values)
    assert violating.size, "the tight band must be violated by the plan on the actual day"
    first = int(violating[0])
    resolved = np.flatnonzero(realised.rolling_resolved.values)
    assert realised.attrs["rolling_status"] == "completed" and resolved.size == realised.attrs["rolling_resolves"] >= 1
    assert resolved[0] == first and realised.rolling_status.values[first] == "optimal"
    assert np.isfinite(realised.rolling_solve_seconds.values[resolved]).all()
    # the steps before the first violation ran as planned; the state carries on continuously
    np.testing.assert_allclose(realised.fess_p_ch_mw[:first], plan.fess_p_ch_mw[:first], atol=1e-7)
    np.testing.assert_allclose(realised.fess_p_dis_mw[:first], plan.fess_p_dis_mw[:first], atol=1e-7)
    _soc_follows_powers(realised)
    demand = realised.load_p_mw.sum("bus") + realised.fess_p_ch_mw.sum("fess") - realised.fess_p_dis_mw.sum("fess")
    np.testing.assert_allclose(realised.p_grid_mw, demand - realised.pv_p_mw.sum("pv"), atol=1e-6)


def test_monte_carlo_reuses_one_plan_and_matches_fresh_days(scenario, feeder33):
    import copy

    settings, forecast = scenario
    settings = copy.deepcopy(settings)
    settings["operation"]["mode"] = "rolling"
    days = list(montecarlo.monte_carlo(feeder33, forecast, settings, spec(0.25), [4, 7]))
    assert [d.realisation for d in days] == [4, 7] and [r["operation"] for r in days[1].kpis] == [
        "plan_on_actual",
        "rolling",
    ]
    fresh = operation.solve_rolling(feeder33, forecast, actual_day(forecast, spec(0.25), 7), settings)
    assert days[1].realised.attrs["solver_objective"] == pytest.approx(fresh.attrs["solver_objective"], rel=1e-7)
    np.testing.assert_allclose(days[1].realised.fess_e_mwh, fresh.fess_e_mwh, atol=1e-6)
    assert days[1].kpis[1]["energy_cost_usd"] == pytest.approx(fresh.attrs["objective_energy_cost_usd"], rel=1e-9)


def test_rolling_with_mess_keeps_the_trucks_physics(make_scenario, feeder33):
    """Rolling re-solves with mobile storage: trips are step decisions, positions carry forward, and
    no unit delivers power while it is on the road."""
    from feederflex.travel import build_travel
    from tests.test_mess import DAY, TRANSPORT, check_invariants, unit

    base = {
        "pv": [],
        "mess": {"units": [unit()], "routing": "optimised", "search": {"rounds": 1, "unit_time_s": 2.0}},
        "ac_correction": {"enabled": False},
    }
    settings, forecast, cfg = make_scenario(base, day=DAY, hours=8, transport=TRANSPORT)
    travel = build_travel(cfg["transport"], list(range(1, 34)), 8, 60)
    actual = actual_day(forecast, spec(0.2), 1)
    realised, plan = operation.run_day(feeder33, forecast, actual, settings, travel=travel)
    assert realised.attrs["rolling_status"] == "completed" and (realised.rolling_status == "optimal").all()
    assert realised.attrs["solver_status"] == "feasible"  # the plan's trips are kept
    check_invariants(realised, settings, travel)
    np.testing.assert_array_equal(realised.mess_station.values, plan.mess_station.values)


def test_rolling_with_per_vehicle_evs_runs_the_whole_day(make_scenario, feeder33):
    """Per-vehicle EV starts are step decisions (003); the day used to stop with an AttributeError."""
    from feederflex import fleet
    from tests.test_fleet import spec_of

    ev = fleet.sample_fleet(
        spec_of(
            sampler="yang2015",
            seed=9,
            vehicles_per_bus=8,
            buses=[18],
            vehicle={"battery_kwh": 40.0, "charger_kw": 7.0, "kwh_per_km": 0.15, "range_km": 240.0},
        ),
        feeder33,
        24,
        60,
    )
    settings, forecast, _ = make_scenario(
        {"ev_fleet": "f", "ev_control": {"mode": "per_vehicle"}, "fess": FESS, "ac_correction": {"enabled": False}},
        hours=24,
        fleets={"f": {}},
    )
    actual = actual_day(forecast, spec(0.2), 2)
    realised, plan = operation.run_day(feeder33, forecast, actual, settings, fleet=ev)
    assert realised.attrs["rolling_status"] == "completed" and realised.attrs["solver_status"] == "feasible"
    # every vehicle is served by the plan's start steps, which the re-solves keep
    np.testing.assert_allclose(realised.ev_p_mw.sum(), plan.ev_p_mw.sum(), rtol=1e-9)
    assert float(realised.ev_p_mw.sum()) == pytest.approx(float(ev.energy_kwh.sum()) / 1000, rel=1e-6)


def test_a_stopped_re_solve_with_a_solution_is_feasible_and_the_day_goes_on(scenario, feeder33, monkeypatch):
    """A re-solve that stops before its gap closes (deterministically here: at HiGHS's first improving
    solution, as a time limit does at an unknown moment) is recorded feasible, not infeasible."""
    from feederflex.solve import Session

    options = Session._options
    monkeypatch.setattr(
        Session,
        "_options",
        lambda self, limit, milp: options(self, limit, milp) | ({"mip_max_improving_sols": 1} if milp else {}),
    )
    settings, forecast = scenario
    settings = {**settings, "solver": {**settings["solver"], "mip_gap": 0.0}}
    actual = actual_day(forecast, spec(0.25), 4)
    ds = operation.solve_rolling(feeder33, forecast, actual, settings, keep_integers=False)
    steps = ds.rolling_status.values
    assert ds.attrs["rolling_status"] == "completed" and "feasible" in steps
    assert set(steps) <= {"optimal", "feasible"} and ds.attrs["solver_status"] == "feasible"
