"""IEEE 69 with PV and storage inverter reactive power, demand response and forecast-risk terms (seed paper 002).

The scenario tests run a short version of config/studies/cai2023.yaml: eight hours of the 69-bus
feeder with the load rising to its peak while PV fades, PV and DR at buses 11, 18, 61, a battery at 65,
and the study's 0.97-1.03 pu band, which unity power factor cannot hold at the peak.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import yaml
from scipy import integrate
from scipy.stats import norm

from feederflex import acpf, checks, feeders, profiles, schedule, study
from feederflex.model.inverter import polygon_error, polygon_sides
from feederflex.model.risk import expected_shortfall, tangent_error, tangent_points
from feederflex.settings import as_settings
from tests.conftest import assert_proven_then_corrected

PV = [
    {"name": "pv11", "bus": 11, "p_mw": 1.0, "s_mva": 1.1, "power_factor": 0.9, "forecast_error": 0.20},
    {"name": "pv18", "bus": 18, "p_mw": 2.0, "s_mva": 2.2, "power_factor": 0.9, "forecast_error": 0.25},
    {"name": "pv61", "bus": 61, "p_mw": 3.0, "s_mva": 3.3, "power_factor": 0.9, "forecast_error": 0.30},
]
DR = [
    {
        "name": f"dr{b}",
        "bus": b,
        "curtail_max_mw": 0.1 * p,
        "shift_max_mw": 0.1 * p,
        "curtail_price_usd_per_mwh": 200.0,
        "shift_price_usd_per_mwh": 30.0,
        "forecast_error": 0.1,
    }
    for b, p in ((11, 0.145), (18, 0.06), (61, 1.244))
]
FESS = [{"name": "b65", "bus": 65, "p_mw": 0.5, "e_mwh": 1.0, "s_mva": 0.55, "power_factor": 0.9, "soc_init": 0.5}]
DAY = {
    "date": "2026-07-15",
    "load": {"shape": [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.3], "bus_shapes": {}, "scale": 1.0},
    "pv": {"model": "typical", "sunrise_h": 0.0, "sunset_h": 8.0},
    "prices": [[0, 3, 100.0], [3, 5, 60.0], [5, 8, 350.0], [8, 24, 220.0]],
}
SCENARIOS = {
    "unity": {"inverters": {"reactive_control": False}},
    "control": {"inverters": {"reactive_control": True}},
    "control_risk": {"inverters": {"reactive_control": True}, "risk": {"enabled": True}},
}


@pytest.fixture(scope="module")
def feeder69():
    return feeders.build_feeder("case69")


@pytest.fixture(scope="module")
def solved(schema, feeder69):
    base = {
        "pv": PV,
        "dr": DR,
        "fess": FESS,
        "grid": {"v_min_pu": 0.97, "v_max_pu": 1.03},
        "objective": {"weights": {"pv_used_mwh": 0.0}},
        "solver": {"time_limit_s": 60, "mip_gap": 1e-4, "threads": 1},
    }
    cfg = study.validate_config(
        {
            "network": {"source": "case69"},
            "time": {"hours": 8},
            "days": {"summer": DAY},
            "plots": {"bus": 65},
            "base": base,
            "scenarios": {"list": SCENARIOS},
        },
        schema,
    )
    settings = study.expand_scenarios(
        cfg, schema, bus_numbers=range(1, 70), loaded_buses=feeders.loaded_buses("case69")
    )
    prof = profiles.build_profiles(feeder69, DAY, 8, 60, "summer")
    out = {}
    for name, s in settings.items():
        ds = schedule.solve_scenario(feeder69, prof, s)
        assert_proven_then_corrected(ds)
        out[name] = (ds, acpf.ac_check(feeder69, ds), s)
    return out


def test_polygon_is_inscribed_with_a_vertex_at_unity_power_factor_and_the_stated_error():
    for n in (12, 16, 24):
        sides = polygon_sides(n)
        angles = np.linspace(0, 2 * np.pi, 3601)
        # the largest radius the polygon admits in each direction, against the unit circle
        radius = np.min(
            [
                [scale / c if c > 1e-12 else np.inf for c in np.cos(angles - math.atan2(sn, cs))]
                for cs, sn, scale in sides
            ],
            axis=0,
        )
        assert radius.max() == pytest.approx(1.0, abs=1e-9), "inscribed: never beyond the circle"
        assert 1 - radius.min() == pytest.approx(polygon_error(n), abs=1e-6)
        assert radius[0] == pytest.approx(1.0), "rated active power at unity power factor is reachable"
    assert polygon_error(16) == pytest.approx(0.0192, abs=1e-4)  # the default, stated in config.yaml


def test_expected_shortfall_and_its_tangents():
    mu, sigma = 2.0, 0.5
    for x in (0.5, 1.5, 2.0):
        exact = integrate.quad(lambda v, x=x: (x - v) * norm.pdf(v, mu, sigma), -np.inf, x)[0]
        assert float(expected_shortfall(x, mu, sigma)) == pytest.approx(exact, rel=1e-7)
    z_k = tangent_points(12, 0.25)
    z = np.linspace(-4, 0, 801)
    f = norm.pdf(z) + z * norm.cdf(z)
    lines = np.max([norm.pdf(zk) + zk * norm.cdf(zk) + norm.cdf(zk) * (z - zk) for zk in z_k], axis=0)
    assert (lines <= f + 1e-12).all(), "an outer approximation of a convex function stays below it"
    assert np.max(f - np.maximum(lines, 0)) <= tangent_error(12, 0.25) + 1e-9 < 0.007


def test_reactive_limits_hold_on_every_solved_step(solved):
    for name, (ds, _, settings) in solved.items():
        for kind, p, q in (
            ("pv", ds.pv_p_mw.values, ds.pv_q_mvar.values),
            ("fess", ds.fess_p_dis_mw.values - ds.fess_p_ch_mw.values, ds.fess_q_mvar.values),
        ):
            units = settings[kind]
            s = np.array([u["s_mva"] for u in units])
            tan = np.array([math.tan(math.acos(u["power_factor"])) for u in units])
            if name == "unity":
                assert np.abs(q).max() < 1e-9
            assert (np.abs(q) <= tan * np.abs(p) + 1e-6).all(), f"{name} {kind}: power factor"
            assert (p**2 + q**2 <= s**2 * (1 + 1e-6)).all(), f"{name} {kind}: kVA circle"
    assert np.abs(solved["control"][0].pv_q_mvar.values).max() > 0.05, "reactive control is used"


def test_ac_check_includes_reactive_power_and_demand_response(solved, feeder69):
    ds, ac, _ = solved["control"]
    assert ac.attrs["ac_unexpected_violation_bus_steps"] == 0
    assert float(ds.dr_p_curtail_mw.sum() + ds.dr_p_down_mw.sum()) > 0.01, "demand response is used"
    p, q = acpf.net_injections(ds)
    expected_q = ds.load_q_mvar.values.copy()
    for k, bus in enumerate(ds.pv_bus.values):
        expected_q[:, bus - 1] -= ds.pv_q_mvar.values[:, k]
    for k, bus in enumerate(ds.dr_bus.values):
        expected_q[:, bus - 1] += ds.dr_q_mvar.values[:, k]
    expected_q[:, 64] -= ds.fess_q_mvar.values[:, 0]
    np.testing.assert_allclose(q, expected_q, atol=1e-9)
    np.testing.assert_allclose(ac.p_grid_ac_mw, ds.p_grid_mw - ds.loss_load_p_mw.sum("bus") + ac.loss_mw, atol=1e-6)
    # DR keeps its energy: what is moved out comes back within the horizon, at the load's power factor
    np.testing.assert_allclose(ds.dr_p_down_mw.sum("time"), ds.dr_p_up_mw.sum("time"), atol=1e-7)


def test_reactive_control_narrows_the_voltage_range(solved):
    unity, control = solved["unity"][1], solved["control"][1]
    spread = {k: float(ac.v_ac_pu.max() - ac.v_ac_pu.min()) for k, ac in (("unity", unity), ("control", control))}
    assert spread["control"] < spread["unity"] - 0.002, spread
    assert (
        solved["control"][0].attrs["objective_voltage_violation_pu_h"]
        < solved["unity"][0].attrs["objective_voltage_violation_pu_h"]
    )


def test_risk_terms_lower_the_scheduled_pv_and_the_expected_power_not_served(solved):
    plain, risky = solved["control"][0], solved["control_risk"][0]
    assert float(risky.pv_p_mw.sum()) < float(plain.pv_p_mw.sum()) - 0.1
    epns = {k: float(ds.pv_epns_mw.sum() + ds.dr_epns_mw.sum()) for k, ds in (("plain", plain), ("risk", risky))}
    assert epns["risk"] < epns["plain"], epns
    # the model's outer approximation is below the exact value, by at most the tangent error
    dt = risky.attrs["step_hours"]
    assert risky.attrs["objective_expected_not_served_mwh"] <= epns["risk"] * dt + 1e-6
    assert (
        risky.attrs["objective_expected_not_served_mwh"]
        >= epns["risk"] * dt
        - 0.007
        * float((risky.pv_avail_mw * [u["forecast_error"] for u in PV]).sum() + (risky.dr_forecast_mw * 0.1).sum())
        * dt
    )
    assert plain.attrs["objective_risk_cost_usd"] == 0.0 and risky.attrs["objective_risk_cost_usd"] != 0.0


def test_power_factor_outside_0_1_is_a_clear_error(schema):
    for bad in (0.0, 1.2):
        pv = [dict(PV[0], power_factor=bad)]
        with pytest.raises(study.ConfigError, match=r"study\.yaml: base\.pv\[0\]\.power_factor: .*(minimum|maximum)"):
            study.validate_config({"base": {"pv": pv}}, schema, [("study.yaml", {"base": {"pv": pv}})])


def _settings_with(schema, **units):
    """Valid settings (no units) with ``units`` put in afterwards, past the schema's checks, as a
    library caller could construct them."""
    plain = study.expand_scenarios(study.validate_config({"base": {"pv": [], "fess": []}}, schema), schema)["base"]
    return dataclasses.replace(as_settings(plain), **units)


def test_power_factor_outside_0_1_is_caught_by_the_library_too(feeder69, schema):
    valid = as_settings(study.expand_scenarios(study.validate_config({"base": {"pv": PV}}, schema), schema)["base"])
    settings = _settings_with(schema, pv=(dataclasses.replace(valid.pv[0], power_factor=1.5),))
    data = schedule.ScenarioData(feeder69, profiles.build_profiles(feeder69, DAY, 8, 60, "summer"), settings)
    with pytest.raises(checks.InputError, match=r"pv\[0\] \(pv11\)\.power_factor = 1\.5 is outside \(0, 1\]"):
        checks.check_inputs(data)


def test_demand_response_at_a_bus_without_load_is_a_clear_error(tmp_path, root, feeder69, schema):
    config = study.load_yaml(root / "config" / "config.yaml")
    path = tmp_path / "dr_study.yaml"
    override = {
        "network": {"source": "case69"},
        "plots": {"bus": 65},
        "base": {"dr": [{"name": "d5", "bus": 5, "curtail_max_mw": 0.1}]},
    }
    path.write_text(yaml.safe_dump(override))
    merged = copy.deepcopy(config)
    merged["network"] = override["network"]
    merged["plots"]["bus"] = 65
    merged["base"]["dr"] = override["base"]["dr"]
    with pytest.raises(study.ConfigError, match=r"dr_study\.yaml: .*dr\[0\] \(d5\)\.bus = 5 has no load"):
        study.load_study(merged, root / "config" / "schema.yaml", [root / "config" / "config.yaml", path])
    dr = {"base": {"pv": [], "fess": [], "dr": [{"name": "d5", "bus": 5}]}}
    settings = as_settings(study.expand_scenarios(study.validate_config(dr, schema), schema)["base"])
    data = schedule.ScenarioData(feeder69, profiles.build_profiles(feeder69, DAY, 8, 60, "summer"), settings)
    with pytest.raises(checks.InputError, match=r"dr\[0\] \(d5\)\.bus = 5 has no load in the feeder \(case69\)"):
        checks.check_inputs(data)


def test_cai2023_study_is_valid(root):
    files = [root / "config" / "config.yaml", root / "config" / "studies" / "cai2023.yaml"]
    _, scenarios = study.load_study(study.merge_study_files(files), root / "config" / "schema.yaml", files)
    assert len(scenarios) == 4
    assert {(s["risk"]["enabled"], s["inverters"]["reactive_control"]) for s in scenarios.values()} == {
        (False, False),
        (False, True),
        (True, False),
        (True, True),
    }
