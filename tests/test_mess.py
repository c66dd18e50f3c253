"""Mobile storage on the time-space network: invariants, when moving pays, never worse than fixed."""

from __future__ import annotations

import json

import numpy as np
import pyomo.environ as pyo
import pytest

from feederflex import acpf, schedule
from feederflex.model.mess import Arc, allow_moves, departure_stride, forbid_moves
from feederflex.travel import build_travel

TRANSPORT = {
    "stations": [
        {"bus": 2, "x_km": 0.0, "y_km": 0.0, "p_max_mw": None},
        {"bus": 18, "x_km": 6.0, "y_km": 8.0, "p_max_mw": None},
        {"bus": 33, "x_km": 9.0, "y_km": 0.0, "p_max_mw": None},
    ],
    "distance_km": None,
    "detour_factor": 1.0,
    "speed_kmh": 20.0,
    "delay_h": [0.0] * 24,
    "install_h": 0.25,
}
# evening: heavy load (undervoltage at the feeder's end) and no PV
DAY = {
    "date": "2026-07-15",
    "load": {"shape": [0.6, 0.6, 0.7, 0.9, 1.2, 1.3, 1.3, 1.0], "bus_shapes": {}, "scale": 1.0},
    "pv": {"model": "typical", "sunrise_h": 0.0, "sunset_h": 1.0},
}


def unit(name="M1", station=2, **kw):
    return {"name": name, "p_mw": 1.0, "e_mwh": 4.0, "soc_init": 0.8, "initial_station": station, **kw}


def run(make_scenario, feeder33, units, routing="optimised", transfer=None, search=None, **solver):
    mess = {"units": units, "routing": routing}
    if transfer:
        mess["transfer"] = transfer
    if search:
        mess["search"] = search
    # routing compared with its fixed baseline: the AC correction (tested on its own) stays off
    base = {
        "pv": [],
        "mess": mess,
        "solver": {"time_limit_s": 60, "mip_gap": 1e-4, "threads": 1, **solver},
        "ac_correction": {"enabled": False},
    }
    settings, prof, cfg = make_scenario(base, day=DAY, hours=8, transport=TRANSPORT)
    travel = build_travel(cfg["transport"], list(range(1, 34)), 8, 60)
    return schedule.solve_scenario(feeder33, prof, settings, travel=travel), settings, travel


def check_invariants(ds, settings, travel):
    dt = ds.attrs["step_hours"]
    station = ds.mess_station.values
    for k, u in enumerate(settings["mess"]["units"]):
        moving = station[:, k] == -1
        assert (ds.mess_p_ch_mw.values[moving, k] < 1e-7).all() and (ds.mess_p_dis_mw.values[moving, k] < 1e-7).all()
        assert (np.abs(ds.mess_q_mvar.values[moving, k]) < 1e-7).all()
        # between two different stations at least the travel time on the road
        parked = [(t, s) for t, s in enumerate(station[:, k]) if s >= 0]
        last_t, last_s = -1, u["initial_station"]
        for t, s in parked:
            if s != last_s:
                depart = last_t + 1
                need = int(travel.travel_steps.sel(station=last_s, station_to=s).values[depart])
                assert t - depart >= need, f"{u['name']} reached {s} at {t} leaving {last_s} at {depart}"
            last_t, last_s = t, s
        ch, dis = ds.mess_p_ch_mw.values[:, k], ds.mess_p_dis_mw.values[:, k]
        e = u["soc_init"] * u["e_mwh"] + np.cumsum((u["eta_ch"] * ch - dis / u["eta_dis"]) * dt)
        np.testing.assert_allclose(ds.mess_e_mwh.values[:, k], e, atol=1e-6)
        assert e.min() >= u["soc_min"] * u["e_mwh"] - 1e-6 and e.max() <= u["soc_max"] * u["e_mwh"] + 1e-6
        assert (np.minimum(ch, dis) < 1e-7).all() and (ch + dis <= u["p_mw"] + 1e-7).all()


def test_moving_pays_when_the_voltage_problem_is_elsewhere(make_scenario, feeder33):
    ds, settings, travel = run(make_scenario, feeder33, [unit()])
    assert ds.attrs["solver_status"] == "optimal"
    assert ds.mess_moves.values[0] >= 1 and ds.mess_km.values[0] > 0
    assert set(ds.mess_station.values[:, 0]) - {-1, 2}, "the unit leaves the substation end"
    check_invariants(ds, settings, travel)
    assert ds.attrs["solver_objective"] < ds.attrs["mess_fixed_objective"] - 1.0
    assert ds.attrs["objective_mess_transfer_cost_usd"] > 0
    ac = acpf.ac_check(feeder33, ds)
    np.testing.assert_allclose(ac.p_grid_ac_mw, ds.p_grid_mw - ds.loss_load_p_mw.sum("bus") + ac.loss_mw, atol=1e-6)


def test_a_prohibitive_transfer_cost_keeps_the_unit_parked(make_scenario, feeder33):
    ds, settings, travel = run(make_scenario, feeder33, [unit()], transfer={"cost_per_move_usd": 1e7})
    assert ds.mess_moves.values[0] == 0
    assert (ds.mess_station.values[:, 0] == 2).all()
    assert ds.attrs["solver_objective"] == pytest.approx(ds.attrs["mess_fixed_objective"], rel=1e-6)
    check_invariants(ds, settings, travel)


def test_fixed_routing_never_moves_and_reactive_power_obeys_the_power_factor(make_scenario, feeder33):
    units = [unit(power_factor=0.9, s_mva=1.2), unit("M2", 33, power_factor=0.9)]
    ds, settings, travel = run(make_scenario, feeder33, units, routing="fixed")
    assert (ds.mess_station.values == np.array([2, 33])).all()
    assert (ds.mess_moves.values == 0).all()
    tan = np.tan(np.arccos(0.9))
    p = ds.mess_p_dis_mw - ds.mess_p_ch_mw
    assert (np.abs(ds.mess_q_mvar) <= tan * np.abs(p) + 1e-6).all()
    assert (p**2 + ds.mess_q_mvar**2 <= np.array([1.2, 1.0]) ** 2 + 1e-6).all()
    assert float(np.abs(ds.mess_q_mvar).sum()) > 0.1, "reactive support is used against undervoltage"
    check_invariants(ds, settings, travel)


def test_routing_is_never_worse_than_fixed_even_when_time_runs_out(make_scenario, feeder33):
    units = [unit("M1", 2), unit("M2", 18, soc_init=0.3), unit("M3", 33, soc_init=0.5)]
    ds, settings, travel = run(make_scenario, feeder33, units, time_limit_s=0.3)
    assert ds.attrs["mess_fixed_status"] == "optimal"
    # optimal exactly when the proven gap closed in the time given, feasible with its gap otherwise
    assert (ds.attrs["solver_status"] == "optimal") == (ds.attrs["solver_mip_gap"] <= settings["solver"]["mip_gap"])
    assert ds.attrs["solver_status"] in ("optimal", "feasible")
    assert ds.attrs["solver_objective"] <= ds.attrs["mess_fixed_objective"] + 1e-6
    check_invariants(ds, settings, travel)


def test_identical_units_are_ordered_by_trips(make_scenario, feeder33):
    units = [unit("M1", 2, soc_init=0.5), unit("M2", 2, soc_init=0.5)]
    ds, settings, travel = run(make_scenario, feeder33, units)
    assert ds.mess_moves.values[0] >= ds.mess_moves.values[1]
    check_invariants(ds, settings, travel)


def test_initial_station_must_be_a_station(make_scenario, feeder33):
    from feederflex.study import ConfigError

    with pytest.raises(
        ConfigError, match=r"mess.units\[0\] \(M1\).initial_station = 5 is not one of transport.stations"
    ):
        run(make_scenario, feeder33, [unit(station=5)])


def test_the_search_can_route_on_the_hour_only():
    """allow_moves(every=k) frees only trips leaving at multiples of k steps and pins the others at 0."""
    m = pyo.ConcreteModel()
    m.mess = pyo.Block()
    m.mess.arc_list = [Arc(2, 18, t, t + 2, 1.0, 0.5) for t in range(8)]
    m.mess.depart = pyo.Var(["M1", "M2"], range(8), within=pyo.Binary)
    forbid_moves(m)
    allow_moves(m, "M1", every=departure_stride(60, 15))
    free = [a for a in range(8) if not m.mess.depart["M1", a].fixed]
    assert free == [0, 4]
    assert all(m.mess.depart["M1", a].value == 0 for a in range(8) if a not in free)
    assert all(m.mess.depart["M2", a].fixed for a in range(8))
    allow_moves(m)
    assert not any(var.fixed for var in m.mess.depart.values())
    assert departure_stride(None, 15) == 1 and departure_stride(60, 60) == 1 and departure_stride(30, 60) == 1


def test_routing_with_an_hourly_search_on_half_hour_steps_keeps_the_invariants(make_scenario, feeder33):
    mess = {"units": [unit()], "routing": "optimised", "search": {"departure_every_minutes": 60}}
    base = {
        "pv": [],
        "mess": mess,
        "solver": {"time_limit_s": 60, "mip_gap": 1e-4, "threads": 1},
        "ac_correction": {"enabled": False},
    }
    shape = [x for x in DAY["load"]["shape"] for _ in range(2)]
    day = {**DAY, "load": {**DAY["load"], "shape": shape}}
    settings, prof, cfg = make_scenario(base, day=day, hours=8, step_minutes=30, transport=TRANSPORT)
    travel = build_travel(cfg["transport"], list(range(1, 34)), 8, 30)
    ds = schedule.solve_scenario(feeder33, prof, settings, travel=travel)
    assert ds.attrs["solver_objective"] < ds.attrs["mess_fixed_objective"] - 1.0
    check_invariants(ds, settings, travel)


def search_stages(ds):
    return [s for s in json.loads(ds.attrs["solver_stages"]) if s["name"].startswith("MESS moves")]


@pytest.mark.parametrize("method", ["lp_moves", "unit_milp"])
def test_the_search_is_never_worse_than_parked_even_when_time_runs_out(make_scenario, feeder33, method):
    units = [unit("M1", 2), unit("M2", 18, soc_init=0.3), unit("M3", 33, soc_init=0.5)]
    search = {"method": method, "time_s": 0.5, "unit_time_s": 0.2}
    ds, settings, travel = run(make_scenario, feeder33, units, search=search, time_limit_s=0.3)
    assert ds.attrs["solver_status"] in ("optimal", "feasible")
    assert (ds.attrs["solver_status"] == "optimal") == (ds.attrs["solver_mip_gap"] <= settings["solver"]["mip_gap"])
    assert ds.attrs["solver_objective"] <= ds.attrs["mess_fixed_objective"] + 1e-6
    check_invariants(ds, settings, travel)  # no power on the road, travel times, energy


def test_the_relocation_search_alone_reaches_the_full_models_optimum(make_scenario, feeder33):
    """One unit leaving the substation end for the evening: the search's best schedule (LPs with
    the routes and modes fixed) is the MILP's proven optimum within its gap, before the full model
    runs. (With three units on this feeder it is not: the search stops at 21,563 $ against 1,399 $
    and the full model finds the rest, benchmarks/README.md.)"""
    ds, settings, travel = run(make_scenario, feeder33, [unit()], search={"method": "lp_moves"}, mip_gap=1e-3)
    assert ds.attrs["solver_status"] == "optimal"
    optimum = ds.attrs["solver_objective"]
    stages = search_stages(ds)
    assert any(s["kind"] == "LP" for s in stages), "moves are judged as LPs"
    found = min(s["objective"] for s in stages if s["status"] in ("optimal", "feasible"))
    assert found <= optimum + 1e-3 * abs(optimum)
    assert found < ds.attrs["mess_fixed_objective"] - 1.0
    assert (ds.mess_moves.values >= 0).all() and ds.mess_moves.values.sum() >= 1
    check_invariants(ds, settings, travel)
