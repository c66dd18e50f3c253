from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from feederflex import acpf, kpis, schedule

EVENING = {"date": "2026-07-15", "load": {"shape": "rts_winter_weekday", "bus_shapes": {}, "scale": 1.0}}


@pytest.fixture(scope="module")
def two(feeder33, schema):
    from feederflex import profiles, study

    out = {}
    for name, base in {"ok": {}, "starved": {"grid": {"max_import_mw": 0.05}}}.items():
        cfg = study.validate_config({"base": base, "time": {"hours": 24}}, schema)
        settings = study.expand_scenarios(cfg, schema)["base"]
        prof = profiles.build_profiles(feeder33, cfg["days"]["summer"], 24, 60, "summer")
        sol = schedule.solve_scenario(feeder33, prof, settings)
        out[name] = (sol, acpf.ac_check(feeder33, sol))
    return out


def test_kpis_agree_with_the_solution(two):
    sol, ac = two["ok"]
    row = kpis.scenario_kpis(sol, ac)
    assert row["status"] == "optimal"
    assert row["pv_curtailed_mwh"] == pytest.approx(sol.attrs["objective_pv_curtailed_mwh"], rel=1e-6)
    assert row["peak_import_mw"] == pytest.approx(float(sol.p_grid_mw.max()))
    assert row["v_min_pu"] == pytest.approx(float(sol.v_pu.min()))
    # violations by the model: the slacks (first-order in v, against the band the AC correction
    # may have raised) cover at least the violation of the configured band
    assert row["model_violation_pu_h"] <= sol.attrs["objective_voltage_violation_pu_h"] * 1.02
    assert row["model_violation_bus_steps"] > 0
    # what AC finds beyond what the model admits is gone after the AC correction
    assert row["ac_unexpected_violation_bus_steps"] == 0
    assert row["ac_correction_status"] == "converged"
    assert row["ac_losses_mwh"] == pytest.approx(float(ac.loss_mw.sum()), rel=1e-9)
    assert 0 < row["pv_curtailed_pct"] < 100


def test_summary_lists_infeasible_scenarios_with_their_status(two):
    ds, table = kpis.summarize({k: v[0] for k, v in two.items()}, {k: v[1] for k, v in two.items()})
    assert list(table.index) == ["ok", "starved"]
    assert table.loc["starved", "status"] == "infeasible"
    assert math.isnan(table.loc["starved", "energy_cost_usd"])
    assert list(ds.kpi_status.values) == ["optimal", "infeasible"]
    assert np.isnan(ds.v_pu.sel(scenario="starved")).all()
    np.testing.assert_allclose(ds.v_ac_pu.sel(scenario="ok"), two["ok"][1].v_ac_pu)
    assert ds.kpi_v_min_pu.attrs["units"] == "pu"


def test_monte_carlo_statistics_use_the_same_realisations_for_every_operation():
    from feederflex.kpis import monte_carlo_summary

    rows = pd.DataFrame(
        {
            "scenario": ["s"] * 6,
            "realisation": [0, 0, 1, 1, 2, 2],
            "operation": ["plan_on_actual", "rolling"] * 3,
            "status": ["feasible", "optimal", "feasible", "infeasible", "feasible", "feasible"],
            "energy_cost_usd": [10.0, 9.0, 30.0, np.nan, 20.0, 18.0],
        }
    )
    summary = monte_carlo_summary(rows)
    plan, real = summary.loc[("s", "plan_on_actual", "mean")], summary.loc[("s", "rolling", "mean")]
    # realisation 1 has no rolling schedule: it is left out of both columns, and said why
    assert plan["energy_cost_usd"] == pytest.approx(15.0) and real["energy_cost_usd"] == pytest.approx(13.5)
    assert plan["used"] == real["used"] == 2 and plan["left_out"] == 1 and plan["realisations"] == 3
    assert plan["left_out_why"] == "r1: rolling infeasible"
    assert real["optimal"] == 1 and real["feasible"] == 1 and plan["feasible"] == 2


def test_001s_local_consumption_and_voltage_offset_by_hand(two):
    import xarray as xr

    times = pd.date_range("2026-07-15 05:00", periods=4, freq="4h")  # 05, 09, 13, 17 h: the last three count
    sol = xr.Dataset(
        {
            "pv_avail_mw": (("time", "pv"), [[1.0], [2.0], [4.0], [2.0]]),
            "pv_p_mw": (("time", "pv"), [[1.0], [2.0], [3.0], [2.0]]),  # 1 MW curtailed at 13 h
            "p_grid_mw": ("time", [0.5, 0.2, -1.0, 0.3]),  # 1 MW exported at 13 h
        },
        coords={"time": times},
    )
    # within 6-19 h: available 2 + 4 + 2 = 8 MWh-steps, used locally 2 + (3 - 1) + 2 = 6
    assert kpis.pv_local_consumption_pct(sol) == pytest.approx(75.0)
    v = np.array([[0.94, 1.00], [1.00, 1.06]])
    assert kpis.voltage_offset(v, 0.95, 1.05, 0.5) == pytest.approx(2 * 0.1**2 * 0.5)
    assert math.isnan(kpis.voltage_offset(np.array([[np.nan, 1.0]]), 0.95, 1.05, 1.0))
    solved, ac = two["ok"]
    row = kpis.scenario_kpis(solved, ac)
    assert 0 < row["pv_local_consumption_pct"] <= 100
    assert row["voltage_offset_ac"] == pytest.approx(
        kpis.voltage_offset(ac.v_ac_pu.values, solved.attrs["v_min_pu"], solved.attrs["v_max_pu"], 1.0)
    )
