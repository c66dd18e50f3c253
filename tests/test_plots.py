"""Figures draw exactly the datasets' values (read back from the axes)."""

from __future__ import annotations

import numpy as np
import pytest

from feederflex import acpf, fleet, kpis, plots, schedule
from feederflex.travel import build_travel

TRANSPORT = {
    "stations": [
        {"bus": 2, "x_km": 0.0, "y_km": 0.0, "p_max_mw": None},
        {"bus": 18, "x_km": 6.0, "y_km": 8.0, "p_max_mw": None},
    ],
    "distance_km": None,
    "detour_factor": 1.0,
    "speed_kmh": 20.0,
    "delay_h": [0.0],
    "install_h": 0.25,
}


@pytest.fixture(scope="module")
def results(feeder33, schema):
    from feederflex import profiles, study

    base = {
        "pv": [{"name": "pv15", "bus": 15, "p_mw": 2.0}],
        "fess": [{"name": "b18", "bus": 18, "p_mw": 0.5, "e_mwh": 1.0}],
        "mess": {"units": [{"name": "M1", "p_mw": 1.0, "e_mwh": 3.0, "initial_station": 2, "soc_init": 0.8}]},
    }
    cfg = study.validate_config({"base": base, "transport": TRANSPORT, "time": {"hours": 24}}, schema)
    settings = study.expand_scenarios(cfg, schema)["base"]
    prof = profiles.build_profiles(feeder33, cfg["days"]["summer"], 24, 60)
    trav = build_travel(cfg["transport"], list(range(1, 34)), 24, 60)
    sol = schedule.solve_scenario(feeder33, prof, settings, travel=trav)
    ac = acpf.ac_check(feeder33, sol)
    summary, table = kpis.summarize({"a": sol, "b": sol}, {"a": ac, "b": ac})
    return sol, ac, summary, table


def test_heatmap_draws_model_and_ac_voltages(results):
    sol, ac, _, _ = results
    fig = plots.voltage_heatmap(sol, ac, "a")
    meshes = [ax.collections[0] for ax in fig.axes if ax.collections and ax.get_title()]
    np.testing.assert_allclose(np.asarray(meshes[0].get_array()).reshape(33, 24), sol.v_pu.T.values)
    np.testing.assert_allclose(np.asarray(meshes[1].get_array()).reshape(33, 24), ac.v_ac_pu.T.values)


def test_bus_voltage_and_import_lines_equal_the_summary(results):
    _, _, summary, _ = results
    fig = plots.bus_voltage(summary, 18, ["a"])
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), summary.v_pu.sel(scenario="a", bus=18))
    np.testing.assert_allclose(lines[1].get_ydata(), summary.v_ac_pu.sel(scenario="a", bus=18))
    fig = plots.import_profiles(summary)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), summary.p_grid_mw.sel(scenario="a"))
    fig = plots.voltage_envelope(summary)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), summary.v_pu.sel(scenario="a").min("bus"))


def test_storage_and_mess_figures(results, feeder33):
    sol, _, _, _ = results
    fig = plots.storage(sol)
    power, energy = fig.axes[0].get_lines(), fig.axes[1].get_lines()
    np.testing.assert_allclose(power[0].get_ydata(), sol.fess_p_dis_mw[:, 0] - sol.fess_p_ch_mw[:, 0])
    np.testing.assert_allclose(energy[1].get_ydata(), sol.mess_e_mwh[:, 0])
    fig = plots.mess_itinerary(sol)
    station = sol.mess_station[:, 0].values.astype(float)
    station[station < 0] = np.nan
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), station)
    fig = plots.mess_positions(sol, feeder33, 18)
    assert len(fig.axes[0].get_lines()) == feeder33.sizes["branch"]
    markers = fig.axes[0].collections[1].get_offsets()
    at = int(sol.mess_station[18, 0])
    assert (at < 0 and len(markers) == 0) or np.allclose(
        markers[0], [feeder33.x_coord.sel(bus=at), feeder33.y_coord.sel(bus=at)]
    )


def test_kpi_bars_equal_the_table(results):
    _, _, _, table = results
    fig = plots.kpi_comparison(table, ["energy_cost_usd", "ac_losses_mwh"])
    heights = [p.get_height() for p in fig.axes[1].patches]
    np.testing.assert_allclose(heights, table.ac_losses_mwh.to_numpy())


def test_fleet_histograms_match_the_configured_densities(feeder33, schema):
    from feederflex import study

    spec = study.validate_config({"fleets": {"f": {"vehicles_per_bus": 200}}}, schema)["fleets"]["f"]
    ev = fleet.sample_fleet(spec, feeder33, 24, 60)
    fig = plots.fleet_histograms(ev, spec)
    ax_d, ax_t = fig.axes
    bars = ax_t.patches
    density = np.array([b.get_height() for b in bars])
    centres = np.array([b.get_x() + b.get_width() / 2 for b in bars])
    curve = ax_t.get_lines()[0]
    expected = np.interp(centres, curve.get_xdata(), curve.get_ydata())
    busy = expected > 0.05
    np.testing.assert_allclose(density[busy], expected[busy], rtol=0.25)
    assert np.trapezoid(curve.get_ydata(), curve.get_xdata()) == pytest.approx(1.0, abs=0.01)
