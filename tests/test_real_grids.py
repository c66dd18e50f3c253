"""Real grids (issue 20): pandapower nets with transformers, switches, generators and storage, and
SimBench grids with their measured-year profiles."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
import xarray as xr

from feederflex import acpf, feeders, profiles
from feederflex.errors import FeederError, InputError
from feederflex.model.data import ScenarioData

LV = "simbench:1-LV-rural1--0-sw"
MV = "simbench:1-MV-semiurb--1-sw"
LINDISTFLOW_TOLERANCE_PU = 0.01  # LinDistFlow against AC at base load (measured: at most 0.0045 pu)


@pytest.fixture(scope="module")
def nets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            LV: feeders.load_pandapower(LV),
            MV: feeders.load_pandapower(MV),
            "cigre_lv": pn.create_cigre_network_lv(),
        }


def _base_case(net, feeder):
    """AC of the original net (its own loads, no generation) against the Feeder's round trip: the
    feeder's base loads applied as injections on the net it keeps."""
    original = pp.from_json_string(pp.to_json(net))
    original.sgen["in_service"] = False
    original.storage["in_service"] = False
    feeders.run_ac(original)
    v_ref = original.res_bus.vm_pu.to_numpy()[original.bus.index.get_indexer(feeder.bus.values - 1)]
    loss_ref = original.res_line.pl_mw.sum() + original.res_trafo.pl_mw.sum()
    ac = acpf.ac_network(feeder, float(original.ext_grid.vm_pu.iloc[0]))
    ac.set_injections(feeder.p_load_mw.values, feeder.q_load_mvar.values)
    feeders.run_ac(ac.net)
    v = ac.net.res_bus.vm_pu.to_numpy()[ac.bus_pos]
    return v, v_ref, ac.branch_results("pl_mw", feeder.sizes["branch"]).sum(), loss_ref


@pytest.mark.parametrize("name", [LV, MV, "cigre_lv"])
def test_real_nets_round_trip_to_the_ac_of_the_original_net(nets, name):
    net = nets[name]
    feeder = feeders.feeder_from_pandapower(net, name)
    assert (feeder.kind.values == "trafo").any()
    v, v_ref, loss, loss_ref = _base_case(net, feeder)
    np.testing.assert_allclose(v, v_ref, atol=1e-6)
    assert loss == pytest.approx(loss_ref, rel=1e-3)
    v_root = float(net.ext_grid.vm_pu.iloc[0])
    linear = feeders.lindistflow(feeder, feeder.p_load_mw.values, feeder.q_load_mvar.values, v_root)
    assert np.abs(linear - v).max() < LINDISTFLOW_TOLERANCE_PU
    assert np.abs(linear - v).max() > 1e-6  # a real comparison: LinDistFlow has no losses


def test_switches_merge_buses_and_parallel_transformers_are_one_branch(nets):
    feeder = feeders.feeder_from_pandapower(nets[MV], MV)
    assert feeder.sizes["pp_bus"] == 122 and feeder.sizes["bus"] == 120  # two closed bus-bus switches
    assert int(feeder.bus_of_pp_bus.sel(pp_bus=1)) == 1 and int(feeder.bus_of_pp_bus.sel(pp_bus=3)) == 3
    transformer = feeder.where(feeder.kind == "trafo", drop=True)
    assert transformer.sizes["branch"] == 1 and str(transformer.pp_elements.values[0]) == "trafo:0 trafo:1"
    assert float(transformer.s_max_mva[0]) == pytest.approx(80.0)  # two 40 MVA units
    single = 0.162 * 20.0**2 / 40.0  # vk_percent 16.2 on the 20 kV side
    assert abs(complex(float(transformer.r_ohm[0]), float(transformer.x_ohm[0]))) == pytest.approx(single / 2)
    assert feeder.sizes["gen"] == 123 and feeder.sizes["storage"] == 87
    assert set(feeder.gen_bus.values) <= set(feeder.bus.values) and set(feeder.storage_bus.values) <= set(
        feeder.bus.values
    )


def test_an_off_nominal_tap_moves_lindistflow_as_it_moves_ac(nets):
    net = pp.from_json_string(pp.to_json(nets[LV]))
    net.trafo["tap_changer_type"] = "Ratio"
    base = feeders.feeder_from_pandapower(net, LV)
    net.trafo["tap_pos"] = 2  # +5 % on the high-voltage side: the low-voltage side drops about 5 %
    tapped = feeders.feeder_from_pandapower(net, LV)
    assert float(tapped.ratio_pu.values[0]) == pytest.approx(1.05)

    def both(feeder):
        ac = acpf.ac_network(feeder, 1.025)
        ac.set_injections(feeder.p_load_mw.values, feeder.q_load_mvar.values)
        feeders.run_ac(ac.net)
        v = ac.net.res_bus.vm_pu.to_numpy()[ac.bus_pos]
        return v, feeders.lindistflow(feeder, feeder.p_load_mw.values, feeder.q_load_mvar.values, 1.025)

    (v0, l0), (v1, l1) = both(base), both(tapped)
    below = base.bus.values != base.attrs["root_bus"]
    assert (v1 - v0)[below].max() < -0.04  # every bus below the transformer moved
    np.testing.assert_allclose(l1 - l0, v1 - v0, atol=2e-4)


def test_refused_networks_name_the_element():
    ring = pn.simple_mv_open_ring_net()
    ring.switch["closed"] = True
    with pytest.raises(FeederError, match=r"meshed: line \d+ .* closes a loop"):
        feeders.feeder_from_pandapower(ring, "ring")
    two = pn.simple_mv_open_ring_net()
    pp.create_ext_grid(two, 3, vm_pu=1.0, name="second")
    with pytest.raises(FeederError, match=r"found 2 \(ext_grid 0 at bus 0, ext_grid 1 at bus 3\)"):
        feeders.feeder_from_pandapower(two, "two")
    three = pn.simple_mv_open_ring_net()
    lv = pp.create_bus(three, 0.4)
    pp.create_transformer3w(three, 1, 2, lv, std_type="63/25/38 MVA 110/20/10 kV", name="T3")
    with pytest.raises(FeederError, match=r"trafo3w 0 \(T3\) is in service; three-winding"):
        feeders.feeder_from_pandapower(three, "three")


def test_a_day_of_the_measured_year_by_rule_keeps_its_energy(nets):
    net = nets[LV]
    feeder = feeders.feeder_from_pandapower(net, LV)
    day = {
        "source": "net",
        "pick": "max_generation",
        "months": [6, 7, 8],
        "date": "2016-01-01",
        "load": {"scale": 1.0},
        "pv": {"model": "typical", "sunrise_h": 6.0, "sunset_h": 18.0},
        "prices": "tong2021",
    }
    hourly = profiles.build_profiles(feeder, day, 24, 60, "gen", net)
    quarter = profiles.build_profiles(feeder, day, 24, 15, "gen", net)
    assert hourly.attrs["date"] == quarter.attrs["date"] and hourly.attrs["date"][5:7] in ("06", "07", "08")
    # the energy of the day is the same at either step; the profiles file states the rule
    assert float(hourly.load_p_mw.sum()) == pytest.approx(float(quarter.load_p_mw.sum()) / 4, rel=1e-9)
    assert float(hourly.unit_avail_pu.sum()) == pytest.approx(float(quarter.unit_avail_pu.sum()) / 4, rel=1e-9)
    year = profiles.net_year(net, "days.gen")
    sgen_day = year.sgen_p[year.times.normalize() == hourly.attrs["date"]].sum(axis=1).sum() / 4
    generation = float((hourly.unit_avail_pu * feeder.gen_p_mw.values).sum())
    assert generation == pytest.approx(sgen_day, rel=1e-9)
    summer = year.sgen_p.groupby(year.times.normalize()).sum().sum(axis=1)
    assert str(summer[summer.index.month.isin([6, 7, 8])].idxmax().date()) == hourly.attrs["date"]
    assert hourly.attrs["picked_by"] == "max_generation"


def test_the_nets_units_join_the_scenario_unless_switched_off(nets, make_scenario):
    feeder = feeders.feeder_from_pandapower(nets[LV], LV)
    settings, _, cfg = make_scenario({"pv": []})
    prof = profiles.build_profiles(feeder, cfg["days"]["summer"], 24, 60, "summer")
    data = ScenarioData(feeder, prof, settings)
    assert [u.name for u in data.settings.pv] == [str(n) for n in feeder.gen_name.values]
    assert [u.bus for u in data.settings.pv] == feeder.gen_bus.values.tolist()
    np.testing.assert_allclose(data.pv_availability[:, 0], prof.pv_avail_pu.values)  # shapes day: the PV curve
    off, _, _ = make_scenario({"pv": [], "network_units": {"generation": False}})
    assert ScenarioData(feeder, prof, off).settings.pv == ()


def _day(**keys):
    day = {
        "source": "file",
        "date": "2026-07-15",
        "start_h": 0,
        "file_values": "absolute",
        "load": {"shape": "rts_winter_weekday", "bus_shapes": {}, "scale": 1.0},
        "pv": {"model": "typical", "sunrise_h": 6.0, "sunset_h": 18.0},
        "prices": "tong2021",
    }
    return {**day, **keys}


def test_a_one_step_noon_study_from_a_measured_file(tmp_path, feeder33):
    """The new user's case: one step at noon with 95 % PV availability, no 3-hour "day" needed."""
    path = tmp_path / "noon.csv"
    path.write_text("time,avail:pv,p_mw:18\n2026-07-15 12:00,0.95,0.2\n")
    prof = profiles.build_profiles(feeder33, _day(file=str(path), start_h=12), 1, 60, "noon")
    assert list(prof.time.values.astype("datetime64[h]").astype(str)) == ["2026-07-15T12"]
    assert float(prof.pv_avail_pu[0]) == pytest.approx(0.95)
    assert float(prof.load_p_mw.sel(bus=18)[0]) == pytest.approx(0.2)
    base = feeder33.sel(bus=18)
    assert float(prof.load_q_mvar.sel(bus=18)[0]) == pytest.approx(0.2 * float(base.q_load_mvar / base.p_load_mw))
    assert float(prof.price_usd_per_mwh[0]) == pytest.approx(63.5)  # noon's price, not midnight's


def test_a_measured_file_is_resampled_keeping_its_energy_and_checked(tmp_path, feeder33):
    times = pd.date_range("2026-07-15", periods=96, freq="15min")
    rng = np.random.default_rng(7)
    series = xr.Dataset(
        {"p_mw:5": ("time", rng.uniform(0.0, 0.1, 96)), "avail:pv29": ("time", rng.uniform(0, 1, 96))},
        coords={"time": times},
    )
    path = tmp_path / "day.nc"
    series.to_netcdf(path)
    hourly = profiles.build_profiles(feeder33, _day(file=str(path)), 24, 60, "m")
    assert float(hourly.load_p_mw.sel(bus=5).sum()) == pytest.approx(float(series["p_mw:5"].sum()) / 4)
    assert "pv29" in [str(g) for g in hourly.gen.values]  # a study unit's own availability
    np.testing.assert_allclose(hourly.unit_avail_pu.sel(gen="pv29"), series["avail:pv29"].values.reshape(24, 4).mean(1))
    per_unit = profiles.build_profiles(feeder33, _day(file=str(path), file_values="per_unit"), 24, 60, "m")
    np.testing.assert_allclose(
        per_unit.load_p_mw.sel(bus=5), hourly.load_p_mw.sel(bus=5) * float(feeder33.p_load_mw.sel(bus=5))
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("time,p_mw:99\n2026-07-15 00:00,0.1\n")
    with pytest.raises(profiles.ProfileError, match=r"days.m.file .*bad.csv.*'p_mw:99' names no bus"):
        profiles.build_profiles(feeder33, _day(file=str(bad)), 24, 60, "m")
    late = tmp_path / "late.csv"
    late.write_text("time,p_mw:5\n2026-07-15 06:00,0.1\n")
    with pytest.raises(profiles.ProfileError, match="starts at 2026-07-15 06:00:00, after the day's first step"):
        profiles.build_profiles(feeder33, _day(file=str(late)), 24, 60, "m")


def _lv_summer(schema, net, feeder, base: dict):
    from feederflex import study

    cfg = {
        "network": {"source": LV},
        "days": {"d": {"source": "net", "pick": "max_generation", "months": [6, 7, 8]}},
        "base": {"day": "d", "pv": [], "grid": {"substation_v_pu": 1.025}, **base},
    }
    cfg = study.validate_config(cfg, schema)
    settings = study.expand_scenarios(cfg, schema, bus_numbers=feeder.bus.values)["base"]
    return settings, profiles.build_profiles(feeder, cfg["days"]["d"], 24, 60, "d", net)


def test_the_transformer_rating_holds_in_the_model_and_in_ac(nets, schema):
    from feederflex.schedule import solve_scenario

    net = pp.from_json_string(pp.to_json(nets[LV]))
    net.trafo["sn_mva"] = 0.045  # 45 kVA: the evening import fits, the noon PV export (60 kW) does not
    feeder = feeders.feeder_from_pandapower(net, LV)
    limited, prof = _lv_summer(schema, net, feeder, {})
    sol = solve_scenario(feeder, prof, limited)
    assert sol.attrs["solver_status"] in ("optimal", "feasible")
    trafo = int(feeder.branch.values[feeder.kind.values == "trafo"][0])
    flow = np.hypot(sol.p_branch_mw.sel(branch=trafo), sol.q_branch_mvar.sel(branch=trafo))
    assert float(flow.max()) <= 0.045 + 1e-7 and float(sol.branch_overload_mva.sum()) == pytest.approx(0, abs=1e-9)
    assert float((sol.pv_avail_mw - sol.pv_p_mw).sum()) > 0.01  # curtailed to keep the rating
    ac = acpf.ac_check(feeder, sol)
    loading = ac.loading_pct.sel(branch=trafo)
    assert 90 < float(loading.max()) < 101  # AC confirms: at the rating, not beyond (losses and voltage)
    unlimited, _ = _lv_summer(schema, net, feeder, {"grid": {"substation_v_pu": 1.025, "branch_limits": False}})
    free = acpf.ac_check(feeder, solve_scenario(feeder, prof, unlimited))
    assert float(free.loading_pct.sel(branch=trafo).max()) > 120  # without the limit the transformer overloads


def test_measured_days_are_checked_when_the_study_is_parsed(make_config, schema, tmp_path):
    from feederflex import study
    from feederflex.checks import check_study_settings
    from feederflex.errors import ConfigError

    missing = make_config({"days": {"m": {"source": "file", "file": str(tmp_path / "none.csv")}}})
    with pytest.raises(ConfigError, match=r"days.m.file = .*none.csv.*needs an existing CSV or NetCDF"):
        check_study_settings(missing)
    stray = make_config({"days": {"m": {"file": "x.csv"}}})
    with pytest.raises(ConfigError, match=r"days.m.file = 'x.csv' is given, but days.m.source is 'shapes'"):
        check_study_settings(stray)
    noon = make_config({"days": {"m": {"start_h": 12}}, "fleets": {"low": {}}, "base": {"day": "m", "ev_fleet": "low"}})
    with pytest.raises(ConfigError, match=r"days.m.start_h = 12, but the scenario has an EV fleet"):
        study.expand_scenarios(noon, schema, bus_numbers=range(1, 34))


def test_joining_the_nets_units_twice_changes_nothing(nets, make_scenario):
    from feederflex.model.data import with_network_units

    feeder = feeders.feeder_from_pandapower(nets[LV], LV)
    settings, _, cfg = make_scenario({"pv": []})
    prof = profiles.build_profiles(feeder, cfg["days"]["summer"], 24, 60, "summer")
    once = ScenarioData(feeder, prof, settings).settings
    assert with_network_units(once, feeder) == once
    clash, _, _ = make_scenario({"pv": [{"name": "sgen0", "bus": 4, "p_mw": 0.1}]})
    with pytest.raises(InputError, match=r"unit names \['sgen0'\] are those of the network's own units"):
        ScenarioData(feeder, prof, clash)


def test_a_simbench_grid_is_converted_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDERFLEX_CACHE", str(tmp_path))
    first = feeders.load_pandapower(LV)
    (cached,) = (tmp_path / "simbench").glob("1-LV-rural1--0-sw-simbench*.pickle")
    again = feeders.load_pandapower(LV)
    assert again is not first and len(again.profiles["load"]) == 35136
    one, two = feeders.feeder_from_pandapower(first, LV), feeders.feeder_from_pandapower(again, LV)
    assert one.identical(two)
    with pytest.raises(FeederError, match=r"simbench:1-XX-nowhere--0-sw is not a SimBench grid"):
        feeders.load_pandapower("simbench:1-XX-nowhere--0-sw")


def _full_run(ac, n_branch):
    """One plain pandapower power flow of the net's current injections, as the AC check ran each
    step before issue 17: pandapower's own Newton-Raphson from a flat start, results from its tables."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(ac.net, numba=False, lightsim2grid=False, tolerance_mva=feeders.AC_TOLERANCE_MVA, max_iteration=50)
    assert not ac.net["_options"]["lightsim2grid"]
    branch = {}
    for column, how in (("pl_mw", np.add), ("ql_mvar", np.add), ("loading_percent", np.maximum)):
        out = np.zeros(n_branch) if how is np.add else np.full(n_branch, -np.inf)
        for table, (rows, cols) in ac.elements.items():
            how.at(out, cols, ac.net[f"res_{table}"][column].to_numpy(float)[rows])
        branch[column] = out
    v = ac.net.res_bus.vm_pu.to_numpy(float)[ac.bus_pos]
    return v, branch, float(ac.net.res_ext_grid.p_mw.sum())


def _schedule_of(feeder, steps: int, v_slack_pu: float, band: tuple[float, float]) -> xr.Dataset:
    """A solved schedule's frame for the AC check (the tests patch its injections in)."""
    zeros = np.zeros((steps, feeder.sizes["bus"]))
    return xr.Dataset(
        {name: (("time", "bus"), zeros) for name in ("v_pu", "v_under_pu", "v_over_pu")},
        coords={"time": np.arange(steps), "bus": feeder.bus.values},
        attrs={
            "solver_status": "optimal",
            "substation_v_pu": v_slack_pu,
            "v_min_pu": band[0],
            "v_max_pu": band[1],
            "step_hours": 1.0,
        },
    )


@pytest.mark.parametrize("name", ["case33bw", LV])
def test_recycled_power_flows_give_the_numbers_of_full_runs(nets, feeder33, name, monkeypatch):
    """The AC check recycles pandapower's case between steps, solves Newton-Raphson in lightsim2grid
    and reads the results from pandapower's internal case instead of its tables; each step's
    voltages (pu), branch losses and import (MW, Mvar) and loadings (per unit of the rating) equal a
    plain full pandapower power flow to 1e-9, also after a step that diverges (NaN there, counted,
    and the next step from a full run)."""
    feeder = feeder33 if name == "case33bw" else feeders.feeder_from_pandapower(nets[LV], LV)
    rng = np.random.default_rng(3)
    factors = rng.uniform(0.3, 1.6, size=24)
    factors[10] = 60.0  # no power flow carries this: the step diverges
    p = np.outer(factors, feeder.p_load_mw.values)
    q = np.outer(factors, feeder.q_load_mvar.values)
    solution = _schedule_of(feeder, len(factors), 1.02, (0.95, 1.05))
    monkeypatch.setattr(acpf, "net_injections", lambda _: (p, q))
    net = acpf.ac_network(feeder, 1.02)
    ac = acpf.ac_check(feeder, solution, net=net)
    assert net.net["_options"]["lightsim2grid"]  # pandapower used lightsim2grid's Newton-Raphson
    assert net.net["_options"]["recycle"]["bus_pq"]  # and recycled its case

    n = feeder.sizes["branch"]
    plain = acpf.ac_network(feeder, 1.02)
    for t in range(24):
        plain.set_injections(p[t], q[t])
        if t == 10:
            with pytest.raises(Exception):  # noqa: B017 (pandapower's own error class)
                _full_run(plain, n)
            assert int(ac.converged[t]) == 0 and np.isnan(ac.v_ac_pu[t]).all()
            assert np.isnan(ac.loss_branch_mw[t]).all() and np.isnan(ac.p_grid_ac_mw[t])
            continue
        v, branch, p_grid = _full_run(plain, n)
        assert int(ac.converged[t]) == 1
        np.testing.assert_allclose(ac.v_ac_pu.values[t], v, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ac.loss_branch_mw.values[t], branch["pl_mw"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(ac.loss_branch_mvar.values[t], branch["ql_mvar"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(ac.loading_pct.values[t] / 100, branch["loading_percent"] / 100, rtol=0, atol=1e-9)
        assert float(ac.p_grid_ac_mw[t]) == pytest.approx(p_grid, rel=0, abs=1e-9)
    assert ac.attrs["ac_nonconverged_steps"] == 1 and ac.attrs["steps_converged"] == 23
    assert np.isnan(ac.attrs["loss_mwh"])


def test_branches_that_cannot_reach_their_rating_get_no_limit_rows_and_nothing_changes(nets, schema, monkeypatch):
    from feederflex.model import network
    from feederflex.schedule import solve_scenario

    net = pp.from_json_string(pp.to_json(nets[LV]))
    net.trafo["sn_mva"] = 0.045  # the transformer binds (see above); the lines do not
    feeder = feeders.feeder_from_pandapower(net, LV)
    settings, prof = _lv_summer(schema, net, feeder, {"ac_correction": {"enabled": False}})
    data = ScenarioData(feeder, prof, settings)
    kept, bound = network.limited_branches(data), network.flow_bounds_mva(data)
    trafo = int(feeder.branch.values[feeder.kind.values == "trafo"][0])
    assert trafo in kept and len(kept) < feeder.sizes["branch"]
    pruned = solve_scenario(feeder, prof, settings)
    monkeypatch.setattr(network, "LOSS_ALLOWANCE", float("inf"))  # every rated branch limited
    assert len(network.limited_branches(data)) == feeder.sizes["branch"]
    full = solve_scenario(feeder, prof, settings)
    assert pruned.attrs["solver_rows"] < full.attrs["solver_rows"]
    assert float(pruned.attrs["solver_objective"]) == pytest.approx(float(full.attrs["solver_objective"]), rel=1e-7)
    for sol in (pruned, full):  # a branch left out stays below its bound, and so inside its rating
        flow = np.hypot(sol.p_branch_mw, sol.q_branch_mvar).max("time")
        for br in set(feeder.branch.values.astype(int)) - set(kept):
            assert float(flow.sel(branch=br)) <= bound[br] + 1e-9 < float(feeder.s_max_mva.sel(branch=br))


def test_the_feeder_file_does_not_depend_on_the_column_order_of_the_net(nets):
    """SimBench's converter orders table columns differently in each process; the kept net is
    written with sorted columns, so the same grid gives the same Feeder file."""
    net = nets[LV]
    shuffled = pp.from_json_string(pp.to_json(net))
    for table in ("bus", "line", "load", "sgen", "trafo"):
        shuffled[table] = shuffled[table][list(reversed(shuffled[table].columns))]
    assert feeders.feeder_from_pandapower(shuffled, LV).identical(feeders.feeder_from_pandapower(net, LV))


def test_a_feeder_that_cannot_reach_the_tight_tolerance_is_checked_at_the_fallback_one(monkeypatch):
    """On IEEE 69 (12.66 kV) Newton-Raphson cannot reach AC_TOLERANCE_MVA in double precision, in
    pandapower's solver or lightsim2grid's: the AC check then holds each step to the fallback
    tolerance (that of every check before) instead of counting the steps as diverged, and its
    voltages equal a plain pandapower run at that tolerance."""
    feeder = feeders.build_feeder("case69")
    probe = acpf.ac_network(feeder, 1.0)
    probe.set_injections(feeder.p_load_mw.values, feeder.q_load_mvar.values)
    with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017 (pandapower's own error class)
        warnings.simplefilter("ignore")
        pp.runpp(probe.net, numba=False, tolerance_mva=feeders.AC_TOLERANCE_MVA, max_iteration=50)
    factors = np.linspace(0.4, 1.2, 6)
    p = np.outer(factors, feeder.p_load_mw.values)
    q = np.outer(factors, feeder.q_load_mvar.values)
    solution = _schedule_of(feeder, len(factors), 1.0, (0.9, 1.1))
    monkeypatch.setattr(acpf, "net_injections", lambda _: (p, q))
    ac = acpf.ac_check(feeder, solution)
    assert ac.attrs["ac_nonconverged_steps"] == 0 and int(ac.converged.sum()) == 6
    plain = acpf.ac_network(feeder, 1.0)
    for t in range(6):
        plain.set_injections(p[t], q[t])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(plain.net, numba=False, tolerance_mva=feeders.AC_FALLBACK_TOLERANCE_MVA, max_iteration=50)
        v = plain.net.res_bus.vm_pu.to_numpy(float)[plain.bus_pos]
        np.testing.assert_allclose(ac.v_ac_pu.values[t], v, rtol=0, atol=1e-8)
