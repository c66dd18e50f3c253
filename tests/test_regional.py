"""Regional microgrids with commuting EVs (seed paper 004): itineraries, the rules, the optimum, bills."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from feederflex import feeders, fleet, profiles, study
from feederflex.errors import ConfigError
from feederflex.fleet import connected_hours, route_counts
from feederflex.model.ev import stay_steps
from feederflex.regional import bills, bills_table
from feederflex.rules import pv_by_bus, simulate
from feederflex.schedule import solve_scenario
from feederflex.settings import as_settings

from .conftest import ROOT

STUDY_FILE = ROOT / "config" / "studies" / "regional2022.yaml"
FILES = [ROOT / "config" / "config.yaml", STUDY_FILE]


def _study(per_bus: int = 4, edit=None):
    config = study.merge_study_files(FILES)
    config["fleets"]["commuters"]["vehicles_per_bus"] = per_bus
    if edit is not None:
        edit(config)
    return study.load_study(config, ROOT / "config" / "schema.yaml", FILES)


@pytest.fixture(scope="module")
def regional():
    valid, scenarios = _study()
    feeder = feeders.build_feeder("regional3")
    days = {d: profiles.build_profiles(feeder, valid["days"][d], 24, 15, d) for d in ("sunny", "cloudy")}
    sample = fleet.sample_fleet(valid["fleets"]["commuters"], feeder, 24, 15, "commuters")
    return valid, scenarios, feeder, days, sample


@pytest.fixture(scope="module")
def solved(regional):
    _, scenarios, feeder, days, sample = regional
    out = {}
    for name in ("sunny-pv", "sunny-uncontrolled", "sunny-rules", "sunny-optimum", "cloudy-rules", "cloudy-optimum"):
        s = scenarios[name]
        out[name] = solve_scenario(feeder, days[s["day"]], s, fleet=sample if s["ev_fleet"] else None)
    return out


def test_routes_take_004s_counts_and_give_every_vehicle_a_stay_at_work_and_at_home(regional):
    valid = regional[0]
    spec = copy.deepcopy(valid["fleets"]["commuters"])
    routes = spec["distributions"]["commute"]["routes"]
    counts = route_counts(np.array([r["share"] for r in routes], float), 900)
    # 004: 288 within a microgrid, 276 A-B/B-A, 182 B-C/C-B, 154 C-A/A-C
    assert [counts[:3].sum(), counts[3:5].sum(), counts[5:7].sum(), counts[7:].sum()] == [288, 276, 182, 154]
    ev = regional[4]
    n = ev.attrs["vehicles"]
    assert n == 12 and ev.sizes["ev"] == 2 * n
    homes = {(r["home"], r["work"]): r for r in routes}
    home_table = dict(map(tuple, spec["distributions"]["commute"]["home_arrival_table"]))
    for v in range(n):
        stays = ev.isel(ev=np.flatnonzero(ev.ev_vehicle.values == v))
        work, home = (
            stays.isel(ev=int(np.argmin(stays.departure_soc_min.values))),
            stays.isel(ev=int(np.argmax(stays.departure_soc_min.values))),
        )
        route = homes[int(home.ev_bus), int(work.ev_bus)]
        trip = route["km"] * spec["vehicle"]["kwh_per_km"]
        assert float(work.energy_kwh) == pytest.approx(trip) and float(home.next_trip_kwh) == pytest.approx(trip)
        # the trips take the route's driving time between the stays
        assert float(home.arrival_h - work.departure_h) == pytest.approx(route["drive_h"])
        assert float(work.arrival_h + 24 - home.departure_h) == pytest.approx(route["drive_h"])
        assert float(home.arrival_h) in home_table


def _stay_checks(ds, sample, step_hours=0.25):
    """Power only while parked and at the stay's bus; energy carried across trips; departures met."""
    arrival, departure = fleet.charging_windows(sample)
    parked = connected_hours(arrival, departure, step_hours, ds.sizes["time"]).T  # (time, ev)
    p = ds.ev_vehicle_p_kw.values
    assert np.all(np.abs(p[parked < 1e-9]) < 1e-7), "a vehicle charged or discharged while on the road"
    into = sample.charger_kw.values[None, :] * parked / step_hours
    assert (p <= into + 1e-6).all()
    for bus in np.unique(sample.ev_bus.values):
        here = sample.ev_bus.values == bus
        eta = 0.9
        net_at_bus = ds.ev_p_mw.sel(bus=int(bus)).values * 1000
        dis = ds.ev_p_dis_mw.sel(bus=int(bus)).values * 1000
        # the bus's EV load is its own stays' power and nobody else's (into the car: charge - dis / eta)
        np.testing.assert_allclose(p[:, here].sum(axis=1), net_at_bus + dis - dis / eta, atol=1e-6)
    arrive, leave = ds.ev_arrival_kwh.values, ds.ev_departure_kwh.values
    delivered = p.sum(axis=0) * step_hours
    np.testing.assert_allclose(leave, arrive + delivered, atol=1e-6)
    for v in np.unique(sample.ev_vehicle.values):
        rows = np.flatnonzero(sample.ev_vehicle.values == v)
        rows = rows[np.argsort(sample.arrival_h.values[rows])]
        for a, b in zip(rows, np.roll(rows, -1), strict=True):
            assert arrive[b] == pytest.approx(leave[a] - float(sample.next_trip_kwh[a]), abs=1e-6)
        # over the day a vehicle takes in what its trips use
        assert delivered[rows].sum() == pytest.approx(float(sample.next_trip_kwh.values[rows].sum()), abs=1e-6)
    battery = sample.battery_kwh.values
    need = np.maximum(
        sample.departure_soc_min.values * battery, sample.next_trip_kwh.values + sample.reserve_soc.values * battery
    )
    assert (leave >= np.minimum(need, battery) - 1e-6).all()
    assert (arrive >= -1e-9).all() and (leave <= battery + 1e-9).all()


def test_the_optimum_moves_energy_only_while_parked_and_carries_it_across_trips(solved, regional):
    ds = solved["sunny-optimum"]
    assert ds.attrs["solver_status"] == "optimal" and float(ds.ev_unmet_kwh.sum()) == 0.0
    _stay_checks(ds, regional[4])
    assert float(ds.ev_p_dis_mw.sum()) > 0  # V2G is used where it pays


def test_the_rules_move_energy_only_while_parked_and_carry_it_across_trips(solved, regional):
    ds = solved["sunny-rules"]
    assert ds.attrs["solver_status"] == "rules" and "not an optimum" in ds.attrs["solver_status_note"]
    _stay_checks(ds, regional[4])
    assert ds.attrs["rules_periodic_residual_mwh"] < 1e-6


def test_the_rules_never_import_while_pv_surplus_is_left_with_a_vehicle_that_could_take_it(regional):
    _, scenarios, feeder, days, sample = regional
    for day in ("sunny", "cloudy"):
        settings = as_settings(scenarios[f"{day}-rules"])
        from feederflex.model import ScenarioData

        data = ScenarioData(feeder, days[day], settings)
        pv = pv_by_bus(settings, data.pv_availability, data.buses)
        rule = simulate(feeder, days[day], settings, sample, pv)
        dt = 0.25
        order, hours = stay_steps(sample, dt, 96)
        parked = hours.T / dt
        after = np.full((96, sample.sizes["ev"]), np.nan)  # energy in the car at the end of each parked step
        for s, steps in enumerate(order):
            e = rule.arrival_mwh[s]
            for t in steps:
                e += (rule.ch_mw[t, s] - rule.dis_mw[t, s] / 0.9) * dt
                after[t, s] = e
        battery = sample.battery_kwh.values / 1000
        for k, area in enumerate(settings.regional.subareas):
            here = np.flatnonzero(sample.ev_bus.values == area.bus)
            surplus = rule.surplus_left_mw[:, k] + rule.transfer_mw[:, k]
            assert surplus.max() > 0 or area.kind == "commercial"  # the residential subareas have a surplus
            for t in np.flatnonzero(surplus > 1e-9):
                assert rule.import_mw[t, k] < 1e-9, f"{area.name} imports at step {t} with PV surplus left"
                # every vehicle there charges at its charger's power or ends the step full (SOC_stop = 1)
                present = here[parked[t, here] > 1e-9]
                cap = sample.charger_kw.values[present] / 1000 * parked[t, present]
                at_cap = rule.ch_mw[t, present] >= cap - 1e-9
                full = after[t, present] >= battery[present] - 1e-9
                assert np.all(at_cap | full), (area.name, t)


def test_the_optimum_bill_is_never_above_the_rules_on_the_same_day(solved, regional):
    scenarios = regional[1]
    for day in ("sunny", "cloudy"):
        total = {}
        for case in ("rules", "optimum"):
            name = f"{day}-{case}"
            regional_settings = scenarios[name]["regional"]
            table = bills(solved[name], regional_settings["subareas"], regional_settings["ev_discharge_price_per_mwh"])
            total[case] = float(table.set_index("subarea").loc["all", "bill"])
        assert total["optimum"] <= total["rules"] + 1e-6, (day, total)
        # the optimum's objective is its bill: import cost plus what the owners are paid
        ds = solved[f"{day}-optimum"]
        assert total["optimum"] == pytest.approx(float(ds.attrs["solver_objective"]), rel=1e-6)


def test_bills_add_up_and_reductions_are_against_the_same_day(solved, regional):
    scenarios = regional[1]
    ds = solved["sunny-rules"]
    area = scenarios["sunny-rules"]["regional"]
    table = bills(ds, area["subareas"], area["ev_discharge_price_per_mwh"]).set_index("subarea")
    dt = 0.25
    # every subarea's import adds up to the substation's (lossless model; nothing exported)
    assert table.loc["all", "import_mwh"] == pytest.approx(float(ds.p_grid_mw.sum()) * dt, rel=1e-6)
    cost = float((ds.p_grid_mw * ds.price_usd_per_mwh).sum()) * dt
    payment = 600.0 * float(ds.ev_p_dis_mw.sum()) * dt
    assert table.loc["all", "bill"] == pytest.approx(cost + payment, rel=1e-6)
    assert table.loc["microgrid:A", "bill"] == pytest.approx(table.loc["A_res", "bill"] + table.loc["A_com", "bill"])
    names = ["sunny-pv", "sunny-rules"]
    settings = {n: {"day": scenarios[n]["day"], "regional": scenarios[n]["regional"]} for n in names}
    out = bills_table({n: solved[n] for n in names}, settings, {"pv_only": ["sunny-pv"]}).set_index(
        ["scenario", "subarea"]
    )
    base, rule = out.loc[("sunny-pv", "A_res"), "bill"], out.loc[("sunny-rules", "A_res"), "bill"]
    assert out.loc[("sunny-rules", "A_res"), "vs_pv_only_pct"] == pytest.approx(100 * (rule - base) / base)
    assert out.loc[("sunny-pv", "all"), "vs_pv_only_pct"] == pytest.approx(0.0)


def test_nothing_is_exported_past_a_no_backfeed_bus(solved, regional):
    feeder = regional[2]
    into = {int(t): int(b) for b, t in zip(feeder.branch.values, feeder.to_bus.values, strict=True)}
    for name, ds in solved.items():
        for bus in (2, 4, 5, 7, 8, 10):
            assert ds.p_branch_mw.sel(branch=into[bus]).min() >= -1e-7, (name, bus)
        assert float(ds.p_grid_mw.min()) >= -1e-7


def test_home_only_itinerary_equals_the_aggregate_envelope(make_scenario, feeder33):
    fleets = {"f": {"sampler": "tong2021", "seed": 5, "vehicles_per_bus": 3, "buses": [6, 18, 25]}}
    cost = {}
    for mode in ("aggregate", "itinerary"):
        settings, prof, cfg = make_scenario(
            {"ev_fleet": "f", "ev_control": {"mode": mode}, "ac_correction": {"enabled": False}}, fleets=fleets
        )
        sample = fleet.sample_fleet(cfg["fleets"]["f"], feeder33, 24, 60, "f")
        ds = solve_scenario(feeder33, prof, settings, fleet=sample)
        assert ds.attrs["solver_status"] == "optimal" and float(ds.ev_unmet_kwh.sum()) == 0.0
        cost[mode] = float(ds.attrs["solver_objective"])
        np.testing.assert_allclose(ds.ev_delivered_kwh, sample.energy_kwh, atol=1e-4)
    # one stay per vehicle: the same charging problem, so the same optimum
    assert cost["itinerary"] == pytest.approx(cost["aggregate"], rel=1e-7)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            lambda c: c["base"]["regional"]["subareas"][0].update(surplus_to="Z_com"),
            r"regional.subareas\[0\] \(A_res\).surplus_to = 'Z_com' is not another subarea",
        ),
        (lambda c: c["base"]["grid"].update(no_backfeed_buses=[99]), r"grid.no_backfeed_buses: \[99\]"),
        (
            lambda c: c["scenarios"]["list"]["sunny-rules"].update(
                fess=[{"name": "b", "bus": 3, "p_mw": 0.1, "e_mwh": 0.2}]
            ),
            r"operation.mode = rules operates PV and EVs only",
        ),
        (
            lambda c: c["bills"]["baselines"].update(pv_only=["sunny-pv", "sunny-none"]),
            r"bills.baselines.pv_only: more than one scenario on day \['sunny'\]",
        ),
        (lambda c: c["bills"]["baselines"].update(x=["nope"]), r"bills.baselines.x: \['nope'\] are not scenarios"),
        (
            lambda c: c["fleets"]["commuters"]["distributions"]["commute"]["routes"][0].update(work=40),
            r"fleets.commuters.distributions.commute.routes\[0\].work = 40 is not a bus of the feeder",
        ),
    ],
)
def test_bad_regional_settings_fail_at_parse_time_naming_the_key(edit, pattern):
    with pytest.raises(ConfigError, match=pattern):
        _study(edit=edit)


@pytest.mark.parametrize("mode", ["aggregate", "per_vehicle", "uncontrolled"])
def test_every_ev_mode_accepts_itineraries_and_serves_every_stay(regional, mode):
    """The other modes let each stay put back the trip before it: every car is served at home and at work."""
    _, scenarios, feeder, days, sample = regional
    settings = copy.deepcopy(scenarios["sunny-uncontrolled"])
    settings["ev_control"]["mode"] = mode
    ds = solve_scenario(feeder, days["sunny"], settings, fleet=sample)
    assert ds.attrs["solver_status"] in ("optimal", "feasible")
    if mode == "uncontrolled":  # the sampled load: each stay refills on arrival, at its own bus
        for bus in np.unique(sample.ev_bus.values):
            here = sample.ev_bus.values == bus
            energy = float(ds.ev_p_mw.sel(bus=int(bus)).sum()) * 0.25 * 1000
            assert energy == pytest.approx(float(sample.energy_kwh.values[here].sum()), rel=1e-9)
        return
    assert float(ds.ev_unmet_kwh.sum()) == 0.0
    np.testing.assert_allclose(ds.ev_delivered_kwh, sample.energy_kwh, atol=1e-3)
    arrival, departure = fleet.charging_windows(sample)
    parked = connected_hours(arrival, departure, 0.25, 96).T
    assert np.all(np.abs(ds.ev_vehicle_p_kw.values[parked < 1e-9]) < 1e-7)
    assert set(np.unique(ds.ev_vehicle.values)) == set(range(sample.attrs["vehicles"]))


def test_the_rules_refuse_a_trip_inside_one_step(regional):
    """Hourly steps put a 15-minute trip inside one step: the rules say so instead of booking it wrong."""
    from feederflex.errors import InputError
    from feederflex.rules import check_rules

    _, scenarios, feeder, _, sample = regional
    settings = as_settings(scenarios["sunny-rules"])
    check_rules(settings, sample, [int(b) for b in feeder.bus.values], 0.25)
    short = (sample.ev_bus.values == 3) | (sample.ev_bus.values == 4)  # A-A commutes: 2.5 km, one quarter hour
    assert short.any()
    with pytest.raises(InputError, match=r"inside one step of 60 min; .* use shorter steps"):
        check_rules(settings, sample, [int(b) for b in feeder.bus.values], 1.0)
