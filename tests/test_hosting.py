"""PV hosting capacity: the AC-confirmed value holds in a power flow run here independently, the next
scale up does not, storage raises it, and the cases and references are checked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from feederflex import hosting
from feederflex.errors import ConfigError, InputError

DAY = {
    "load": {"shape": [30, 35, 40, 45], "scale": 0.45},
    "pv": {"sunrise_h": 0.0, "sunset_h": 4.0},  # half-sine: 0.71, 1.0, 0.71, 0 (start of steps 0.5 h...)
    "prices": [[0, 2, 50.0], [2, 24, 80.0]],
}
TOLERANCE = 0.01


def _scenario(make_scenario, **base):
    settings, prof, _ = make_scenario({"pv": [], "solver": {"threads": 1}, **base}, day=DAY, hours=4)
    return settings, prof


@pytest.fixture(scope="module")
def plain(schema, feeder33):
    import copy

    from feederflex import profiles, study

    cfg = study.validate_config(
        {
            "base": {"pv": [], "solver": {"threads": 1}},
            "time": {"hours": 4, "step_minutes": 60},
            "days": {"summer": DAY},
        },
        schema,
    )
    settings = study.expand_scenarios(copy.deepcopy(cfg), schema, bus_numbers=feeder33.bus.values)["base"]
    prof = profiles.build_profiles(feeder33, cfg["days"]["summer"], 4, 60, "summer")
    case = hosting.Case("bus18", "base", (18,), (1.0,))
    ds = hosting.hosting_capacity(feeder33, prof, settings, case, max_scale_mw=10.0, tolerance_mw=TOLERANCE)
    return ds, prof, settings


def _max_ac_voltage(prof, pv_mw: float) -> float:
    """Highest voltage of the day with ``pv_mw`` of PV at bus 18, by pandapower on case33bw, built here."""
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.case33bw()
    net.load.drop(net.load.index, inplace=True)
    load_p, load_q = prof.load_p_mw.values, prof.load_q_mvar.values
    rows = pp.create_loads(net, np.arange(33), p_mw=0.0, q_mvar=0.0)
    sgen = pp.create_sgen(net, 17, p_mw=0.0)
    highest = 0.0
    for t in range(prof.sizes["time"]):
        net.load.loc[rows, "p_mw"] = load_p[t]
        net.load.loc[rows, "q_mvar"] = load_q[t]
        net.sgen.loc[sgen, "p_mw"] = pv_mw * float(prof.pv_avail_pu.values[t])
        pp.runpp(net, tolerance_mva=1e-10)
        highest = max(highest, float(net.res_bus.vm_pu.max()))
    return highest


def test_the_ac_capacity_holds_in_a_brute_force_scan_and_the_next_step_does_not(plain):
    ds, prof, _ = plain
    ac = float(ds.attrs["ac_capacity_mw"])
    ldf = float(ds.attrs["ldf_capacity_mw"])
    assert 0.5 < ldf < 10.0 and 0.5 < ac < 10.0 and ds.attrs["ldf_status"] == "optimal"
    v_max = float(ds.attrs["v_max_pu"])
    assert _max_ac_voltage(prof, ac) <= v_max + 1e-9  # the reported capacity keeps the band in AC
    assert _max_ac_voltage(prof, ac + 2 * TOLERANCE) > v_max  # and it is the largest to the tolerance
    scan = np.arange(0.0, ac + 1.0, 0.1)  # every scale below passes, none above: the search found the edge
    passing = [s for s in scan if _max_ac_voltage(prof, s) <= v_max]
    assert passing == [s for s in scan if s <= passing[-1]]
    assert abs(passing[-1] - ac) <= 0.1 + TOLERANCE
    assert ds.trial_passed.values[np.argmax(ds.trial_scale_mw.values == ac)] == 1
    assert np.all(ds.trial_scale_mw.values[ds.trial_passed.values == 0] > ac)


def test_the_binding_bus_and_step_sit_on_the_band(plain):
    ds, _, _ = plain
    t = int(np.flatnonzero(ds.time.dt.strftime("%Y-%m-%dT%H:%M").values == ds.attrs["ldf_binding_time"])[0])
    v = ds.v_ldf_pu.sel(bus=ds.attrs["ldf_binding_bus"]).values[t]
    assert v == pytest.approx(float(ds.attrs["v_max_pu"]), abs=1e-7)
    assert float(ds.v_ldf_pu.max()) <= float(ds.attrs["v_max_pu"]) + 1e-7
    assert ds.attrs["ac_binding_edge"] == "upper" and float(np.nanmax(ds.v_ac_pu)) <= float(ds.attrs["v_max_pu"])
    # one LinDistFlow stage and an LP per AC trial; HiGHS's seconds are part of the case's wall time
    assert ds.attrs["highs_stages"] >= 1 + ds.sizes["trial"]
    assert 0 < ds.attrs["highs_seconds"] <= ds.attrs["seconds"]


def test_storage_raises_the_hosting_capacity(plain, make_scenario, feeder33):
    ds, _, _ = plain
    battery = {"name": "b18", "bus": 18, "p_mw": 1.0, "e_mwh": 3.0, "soc_init": 0.2, "end": "free"}
    settings, prof = _scenario(make_scenario, fess=[battery])
    case = hosting.Case("bus18", "battery", (18,), (1.0,))
    stored = hosting.hosting_capacity(feeder33, prof, settings, case, max_scale_mw=10.0, tolerance_mw=TOLERANCE)
    assert stored.attrs["ac_capacity_mw"] > ds.attrs["ac_capacity_mw"] + 0.3
    assert stored.attrs["ldf_capacity_mw"] > ds.attrs["ldf_capacity_mw"] + 0.3


def test_a_feeder_that_fails_the_band_without_pv_has_no_capacity(make_scenario, feeder33):
    """The load alone pulls buses below a 0.99 pu floor: no PV scale is hostable with both edges."""
    settings, prof = _scenario(make_scenario, grid={"v_min_pu": 0.99})
    case = hosting.Case("low", "base", (18,), (1.0,))
    ds = hosting.hosting_capacity(feeder33, prof, settings, case, max_scale_mw=5.0, tolerance_mw=0.1)
    assert ds.attrs["ldf_status"] == "infeasible" and math.isnan(ds.attrs["ldf_capacity_mw"])
    assert math.isnan(ds.attrs["ac_capacity_mw"]) and ds.trial_passed.sum() == 0


def test_cases_expand_and_bad_cases_are_named():
    cases = hosting.expand_cases(
        {
            "cases": {
                "both": {"scenario": "s", "buses": [9, 28], "shares": [1, 3]},
                "one": {"scenario": "s", "buses": [9, 28], "mode": "each"},
            }
        }
    )
    assert list(cases) == ["both", "one-bus9", "one-bus28"]
    assert cases["both"].shares == (0.25, 0.75) and cases["one-bus28"].buses == (28,)
    assert cases["one-bus28"].clears == (9, 28) and cases["both"].clears == ()
    with pytest.raises(InputError, match=r"hosting_capacity.cases.x.shares has 1 values for 2 buses"):
        hosting.expand_cases({"cases": {"x": {"scenario": "s", "buses": [9, 28], "shares": [1]}}})


def test_a_case_naming_an_unknown_scenario_or_bus_fails_at_parse_time(make_config):
    from feederflex.checks import check_hosting

    cfg = make_config({"hosting_capacity": {"cases": {"c": {"scenario": "nope", "buses": [9]}}}})
    with pytest.raises(ConfigError, match=r"hosting_capacity.cases.c.scenario = 'nope' is not a scenario"):
        check_hosting(cfg, {"base": {}}, range(1, 34))
    cfg = make_config({"hosting_capacity": {"cases": {"c": {"scenario": "base", "buses": [99]}}}})
    with pytest.raises(ConfigError, match=r"hosting_capacity.cases.c.buses: \[99\] are not buses"):
        check_hosting(cfg, {"base": {}}, range(1, 34))


def test_a_case_at_a_bus_the_feeder_lacks_is_refused_naming_the_case(plain, feeder33):
    _, prof, settings = plain
    with pytest.raises(InputError, match=r"hosting_capacity.cases.far.buses: \[99\] are not buses"):
        hosting.hosting_capacity(feeder33, prof, settings, hosting.Case("far", "base", (99,), (1.0,)))
