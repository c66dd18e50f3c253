"""Siting and sizing (paper 001): the MILP's design is the best of all designs, costs by hand, zero
size where nothing is built."""

from __future__ import annotations

import numpy as np
import pytest

from feederflex import schedule
from feederflex.model.planning import capital_recovery_factor

DAY = {
    "load": {"shape": [60, 70, 100, 90]},
    "pv": {"sunrise_h": 0.0, "sunset_h": 3.0},
    "prices": [[0, 2, 310.0], [2, 24, 840.0]],
}


def _base(fixed: dict, mobile: dict | None = None) -> dict:
    return {
        "pv": [{"name": "pv18", "bus": 18, "p_mw": 1.5}],
        "planning": {
            "enabled": True,
            "currency": "CNY",
            "days_per_year": 365.0,
            "fixed": {"hours": 1.0, "soc_init": 0.5, **fixed},
            "mobile": mobile or {"max_units": 0},
        },
        "grid": {"export_price_factor": 0.0},
        "objective": {"weights": {"planning_cost": 1 / 365, "energy_cost_usd": 0.0, "voltage_offset": 50.0}},
        "ac_correction": {"enabled": False},
        "solver": {"mip_gap": 1e-7, "threads": 1},
    }


@pytest.fixture(scope="module")
def solve(schema, feeder33):
    import copy

    from feederflex import profiles, study

    def run(base: dict):
        cfg = study.validate_config(
            {"base": copy.deepcopy(base), "time": {"hours": 4, "step_minutes": 60}, "days": {"summer": DAY}}, schema
        )
        settings = study.expand_scenarios(cfg, schema, bus_numbers=feeder33.bus.values)["base"]
        prof = profiles.build_profiles(feeder33, cfg["days"]["summer"], 4, 60, "summer")
        return schedule.solve_scenario(feeder33, prof, settings)

    return run


def test_the_milp_picks_the_best_of_every_enumerated_design(solve):
    """Three candidate buses, at most one unit: the MILP's objective equals the best of the four
    designs (nothing, or one unit at each bus with its size optimised) solved one by one."""
    sites = [6, 18, 30]
    chosen = solve(_base({"candidates": sites, "max_units": 1}))
    assert chosen.attrs["solver_status"] == "optimal"
    designs = {0: solve(_base({"candidates": sites, "max_units": 0}))}
    for bus in sites:
        designs[bus] = solve(_base({"candidates": [bus], "min_units": 1, "max_units": 1}))
    objectives = {bus: float(ds.attrs["solver_objective"]) for bus, ds in designs.items()}
    best = min(objectives, key=objectives.__getitem__)
    assert float(chosen.attrs["solver_objective"]) == pytest.approx(objectives[best], rel=1e-6)
    built = chosen.candidate_bus.values[chosen.plan_built.values > 0.5]
    assert list(built) == ([] if best == 0 else [best]), objectives
    assert best != 0 and len(set(np.round(list(objectives.values()), 3))) == 4, objectives  # the choice mattered


def test_costs_follow_001_by_hand_and_nothing_is_left_where_not_built(solve):
    ds = solve(_base({"candidates": [6, 18, 30], "min_units": 2, "max_units": 2, "p_min_mw": 0.5}))
    assert capital_recovery_factor(0.08, 20) == pytest.approx(0.10185, abs=5e-6)  # 001 section 5.1
    assert capital_recovery_factor(0.0, 20) == pytest.approx(0.05)
    built = ds.plan_built.values > 0.5
    assert built.sum() == 2
    p_kw = 1000 * ds.plan_p_mw.values
    assert np.all((p_kw[built] >= 500 - 1e-6) & (p_kw[built] <= 1000 + 1e-6))
    assert np.all(ds.plan_p_mw.values[~built] == 0.0) and np.all(ds.plan_e_mwh.values[~built] == 0.0)
    invest = 1000.0 * p_kw.sum()  # 1000 CNY/kW
    q = 0.08
    factor = q * (1 + q) ** 20 / ((1 + q) ** 20 - 1)
    assert ds.attrs["objective_storage_investment_per_yr"] == pytest.approx(factor * invest, rel=1e-9)
    assert ds.attrs["objective_storage_om_per_yr"] == pytest.approx(0.02 * invest, rel=1e-9)
    assert ds.attrs["objective_mobile_rental_per_yr"] == 0.0
    annual = factor * invest + 0.02 * invest + 365.0 * ds.attrs["objective_energy_cost_usd"]
    assert ds.attrs["objective_planning_cost"] == pytest.approx(annual, rel=1e-9)
    names = list(ds.fess.values)
    for name, is_built, p_mw in zip(ds.candidate.values, built, ds.plan_p_mw.values, strict=True):
        k = names.index(str(name))
        power = ds.fess_p_ch_mw.values[:, k] + ds.fess_p_dis_mw.values[:, k]
        if is_built:
            assert power.max() <= p_mw + 1e-7
            e = ds.fess_e_mwh.values[:, k]
            assert np.all(e >= 0.2 * p_mw - 1e-7) and np.all(e <= 0.9 * p_mw + 1e-7)  # hours = 1
            assert ds.fess_e_init_mwh.values[k] == pytest.approx(0.5 * p_mw)
        else:
            assert np.abs(power).max() <= 1e-9 and ds.fess_e_init_mwh.values[k] == 0.0


def test_a_mobile_unit_pays_its_rent_per_month(solve):
    ds = solve(
        _base(
            {"max_units": 0},
            {"candidates": [18], "min_units": 1, "max_units": 1, "rental_per_month": 3000.0, "hours": 1.0},
        )
    )
    assert list(ds.candidate_kind.values) == ["mobile"]
    assert ds.plan_built.values[0] == 1.0 and 0.4 - 1e-9 <= ds.plan_p_mw.values[0] <= 0.9 + 1e-9
    assert ds.attrs["objective_mobile_rental_per_yr"] == pytest.approx(36000.0)


def test_without_planning_there_are_no_candidates_and_no_planning_cost(make_scenario, feeder33):
    settings, prof, _ = make_scenario(hours=4, day=DAY)
    ds = schedule.solve_scenario(feeder33, prof, settings)
    assert ds.sizes["candidate"] == 0
    assert ds.attrs["objective_planning_cost"] == 0.0
    assert all(not str(name).startswith("new_") for name in ds.fess.values)


@pytest.mark.parametrize(
    "planning, weights, pattern",
    [
        ({"enabled": True}, {}, r"objective.weights.planning_cost is 0 and planning_cost is not bounded"),
        (
            {"enabled": True, "fixed": {"p_min_mw": 2.0, "p_max_mw": 1.0}},
            {"planning_cost": 1.0},
            r"planning.fixed: p_min_mw 2.0 is above p_max_mw 1.0",
        ),
        (
            {"enabled": True, "mobile": {"candidates": [40], "max_units": 1}},
            {"planning_cost": 1.0},
            r"planning.mobile.candidates: \[40\] are not buses of the feeder",
        ),
        (
            {"enabled": True, "fixed": {"candidates": [5], "min_units": 2, "max_units": 2}},
            {"planning_cost": 1.0},
            r"planning.fixed: min_units 2 is more than the 1 candidates",
        ),
    ],
)
def test_bad_planning_settings_fail_at_parse_time_naming_the_key(schema, planning, weights, pattern):
    from feederflex import study
    from feederflex.errors import ConfigError

    cfg = study.validate_config({"base": {"planning": planning, "objective": {"weights": weights}}}, schema)
    with pytest.raises(ConfigError, match=pattern):
        study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))


def _moving(make_scenario, feeder33, mobile: dict):
    """An evening of undervoltage at the feeder's end (tests/test_mess.py) with one mobile unit to plan."""
    from feederflex.travel import build_travel
    from tests.test_mess import DAY as EVENING
    from tests.test_mess import TRANSPORT

    base = {
        "pv": [],
        "planning": {
            "enabled": True,
            "fixed": {"max_units": 0},
            "mobile": {"min_units": 1, "max_units": 1, "hours": 4.0, "soc_init": 0.8, "end": "free", **mobile},
        },
        "objective": {"weights": {"planning_cost": 1 / 365, "energy_cost_usd": 0.0}},
        "ac_correction": {"enabled": False},
        "solver": {"mip_gap": 1e-6, "threads": 1, "time_limit_s": 60},
    }
    settings, prof, cfg = make_scenario(base, day=EVENING, hours=8, transport=TRANSPORT)
    travel = build_travel(cfg["transport"], list(range(1, 34)), 8, 60)
    return schedule.solve_scenario(feeder33, prof, settings, travel=travel), travel


def test_a_moving_mobile_unit_chooses_its_start_moves_and_is_never_worse_than_parked(make_scenario, feeder33):
    moving, travel = _moving(make_scenario, feeder33, {"moving": True})
    parked, _ = _moving(make_scenario, feeder33, {"moving": False, "candidates": [2, 18, 33]})
    assert moving.attrs["solver_status"] == parked.attrs["solver_status"] == "optimal"
    # staying at any one station is one of the moving unit's choices: never worse; here equal, since
    # bus 18 is the best place all evening and the moving unit starts there, where the parked one is built
    assert moving.attrs["solver_objective"] <= parked.attrs["solver_objective"] * (1 + 1e-6)
    assert parked.candidate_bus.values[parked.plan_built.values > 0.5].tolist() == [18]
    assert int(moving.mess_initial_station.values[0]) == 18
    assert list(moving.mess.values) == ["new_mobile1"] and moving.plan_built.values[0] == 1.0
    size = float(moving.plan_p_mw.values[0])
    assert 0.4 - 1e-9 <= size <= 0.9 + 1e-9 and moving.candidate_bus.values[0] == -1
    start = int(moving.mess_initial_station.values[0])
    assert start in travel.station.values and start == moving.mess_station.values[0, 0]
    on_road = moving.mess_station.values[:, 0] == -1
    power = moving.mess_p_ch_mw.values[:, 0] + moving.mess_p_dis_mw.values[:, 0]
    assert np.all(power[on_road] <= 1e-9) and np.all(power <= size + 1e-7)
    e = 0.8 * 4.0 * size + np.cumsum(0.95 * moving.mess_p_ch_mw.values[:, 0] - moving.mess_p_dis_mw.values[:, 0] / 0.95)
    np.testing.assert_allclose(moving.mess_e_mwh.values[:, 0], e, atol=1e-6)  # hourly steps
    assert moving.attrs["objective_mobile_rental_per_yr"] == pytest.approx(36000.0)


def test_moving_units_need_stations_and_no_candidate_buses(schema):
    from feederflex import study
    from feederflex.errors import ConfigError

    planning = {"enabled": True, "mobile": {"max_units": 1, "moving": True}}
    cfg = study.validate_config(
        {"base": {"planning": planning, "objective": {"weights": {"planning_cost": 1.0}}}}, schema
    )
    with pytest.raises(ConfigError, match=r"planning.mobile.moving is true, but transport.stations is empty"):
        study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))
    planning["mobile"]["candidates"] = [5]
    cfg = study.validate_config(
        {"base": {"planning": planning, "objective": {"weights": {"planning_cost": 1.0}}}}, schema
    )
    with pytest.raises(ConfigError, match=r"planning.mobile.candidates = \[5\]: moving units start"):
        study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))


def test_representative_days_share_one_design_and_weigh_their_purchases(schema, feeder33):
    """Two days planned together: each starts its batteries from their initial state, and f3 is the
    sum of weight x each day's purchase, computed here from the written import and prices."""
    import copy

    from feederflex import profiles, study

    sunny = {**DAY, "date": "2026-07-15"}
    dull = {
        **DAY,
        "date": "2026-11-15",
        "pv": {"sunrise_h": 1.0, "sunset_h": 3.0},
        "load": {"shape": [90, 95, 100, 95]},
    }
    base = _base({"candidates": [6, 18, 30], "min_units": 1, "max_units": 1})
    base["planning"]["days"] = [{"day": "sunny", "weight": 200.0}, {"day": "dull", "weight": 165.0}]
    base["day"] = "sunny"
    cfg = study.validate_config(
        {"base": base, "time": {"hours": 4, "step_minutes": 60}, "days": {"sunny": sunny, "dull": dull}}, schema
    )
    settings = study.expand_scenarios(copy.deepcopy(cfg), schema, bus_numbers=feeder33.bus.values)["base"]
    days = [profiles.build_profiles(feeder33, cfg["days"][d], 4, 60, d) for d in ("sunny", "dull")]
    ds = schedule.solve_scenario(feeder33, profiles.join_days(days), settings)
    assert ds.attrs["solver_status"] == "optimal" and ds.sizes["time"] == 8
    built = ds.plan_built.values > 0.5
    assert built.sum() == 1
    k = list(ds.fess.values).index(str(ds.candidate.values[built][0]))
    p_mw = float(ds.plan_p_mw.values[built][0])
    ch, dis = ds.fess_p_ch_mw.values[:, k], ds.fess_p_dis_mw.values[:, k]
    for first in (0, 4):  # each day from soc_init E (hours = 1), by the powers
        e = 0.5 * p_mw + np.cumsum(0.95 * ch[first : first + 4] - dis[first : first + 4] / 0.95)
        np.testing.assert_allclose(ds.fess_e_mwh.values[first : first + 4, k], e, atol=1e-6)
    price = np.concatenate([d.price_usd_per_mwh.values for d in days])
    purchase = np.clip(ds.p_grid_mw.values, 0, None) * price  # export is paid nothing here
    f3 = 200.0 * purchase[:4].sum() + 165.0 * purchase[4:].sum()
    capital = ds.attrs["objective_storage_investment_per_yr"] + ds.attrs["objective_storage_om_per_yr"]
    assert ds.attrs["objective_planning_cost"] == pytest.approx(capital + f3, rel=1e-7)


def test_representative_days_must_be_defined_and_plannable(schema):
    from feederflex import study
    from feederflex.errors import ConfigError

    planning = {"enabled": True, "days": [{"day": "summer", "weight": 300.0}, {"day": "nope", "weight": 65.0}]}
    weights = {"planning_cost": 1.0}
    cfg = study.validate_config({"base": {"planning": planning, "objective": {"weights": weights}}}, schema)
    with pytest.raises(ConfigError, match=r"planning.days: \['nope'\] are not defined in days"):
        study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))
    planning["days"] = [{"day": "summer", "weight": 365.0}]
    base = {"planning": planning, "objective": {"weights": weights}, "operation": {"mode": "rolling"}}
    cfg = study.validate_config({"base": base}, schema)
    with pytest.raises(ConfigError, match=r"representative days are planned without an operated mode"):
        study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))


def test_the_workflow_reads_representative_days_from_their_files(tmp_path, feeder33, make_config):
    from feederflex import io, profiles

    cfg = make_config({"days": {"a": {"date": "2026-07-15"}, "b": {"date": "2026-01-15"}}})
    days = [profiles.build_profiles(feeder33, cfg["days"][d], 24, 60, d) for d in ("a", "b")]
    paths = [io.write_dataset(day, tmp_path / f"{d}.nc") for day, d in zip(days, "ab", strict=True)]
    joined = io.read_profiles([str(p) for p in paths])
    assert joined.sizes["time"] == 48 and list(joined.day_of_step.values[[0, 23, 24, 47]]) == ["a", "a", "b", "b"]
    np.testing.assert_allclose(joined.load_p_mw.values[24:], days[1].load_p_mw.values)
    assert io.read_profiles(str(paths[0])).sizes["time"] == 24
    with pytest.raises(Exception, match=r"share dates"):
        profiles.join_days([days[0], days[0].assign_attrs(day="c")])
