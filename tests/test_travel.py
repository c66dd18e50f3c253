from __future__ import annotations

import numpy as np
import pytest

from feederflex.travel import TravelError, build_travel

BUSES = list(range(1, 34))


def transport(**overrides):
    base = {
        "stations": [
            {"bus": 2, "x_km": 0.0, "y_km": 0.0, "p_max_mw": None},
            {"bus": 18, "x_km": 6.0, "y_km": 8.0, "p_max_mw": 1.0},
        ],
        "distance_km": None,
        "detour_factor": 1.0,
        "speed_kmh": 20.0,
        "delay_h": [0.0] * 7 + [0.5] + [0.0] * 16,
        "install_h": 0.25,
    }
    base.update(overrides)
    return base


def test_travel_time_follows_eq_16_in_whole_steps():
    ds = build_travel(transport(), BUSES, 24, 60)
    assert float(ds.distance_km.sel(station=2, station_to=18)) == pytest.approx(10.0)
    # 10 km / 20 km/h + 0.25 h install = 0.75 h -> one hourly step; at 7 h, + 0.5 h delay -> 2 steps
    steps = ds.travel_steps.sel(station=2, station_to=18).values
    assert steps[7] == 2 and (np.delete(steps, 7) == 1).all()
    assert ds.travel_h.sel(station=2, station_to=18).values[7] == pytest.approx(1.25)
    assert (ds.travel_steps.sel(station=2, station_to=2) == 0).all()
    assert np.isnan(ds.p_max_mw.sel(station=2)) and float(ds.p_max_mw.sel(station=18)) == 1.0


def test_quarter_hour_steps_round_up():
    ds = build_travel(transport(), BUSES, 24, 15)
    steps = ds.travel_steps.sel(station=18, station_to=2).values
    assert steps[0] == 3  # 0.75 h
    assert (steps[28:32] == 5).all()  # 1.25 h when leaving between 7:00 and 8:00


def test_distance_matrix_with_a_missing_road():
    ds = build_travel(
        transport(
            stations=[
                {"bus": 2, "x_km": None, "y_km": None, "p_max_mw": None},
                {"bus": 18, "x_km": None, "y_km": None, "p_max_mw": None},
                {"bus": 30, "x_km": None, "y_km": None, "p_max_mw": None},
            ],
            distance_km=[[0, 5, None], [5, 0, 8], [None, 8, 0]],
        ),
        BUSES,
        24,
        60,
    )
    assert ds.travel_steps.sel(station=2, station_to=30).values[0] == -1
    assert ds.travel_steps.sel(station=18, station_to=30).values[0] == 1


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"stations": [{"bus": 40, "x_km": 0, "y_km": 0, "p_max_mw": None}]}, r"stations\[0\].bus = 40 is not a bus"),
        ({"distance_km": [[0, None], [None, 0]]}, r"stations\[0\] \(bus 2\) cannot be reached"),
        ({"speed_kmh": 0.1}, r"cannot be reached from any other station within the 24 h horizon"),
        ({"delay_h": [1.0, 2.0]}, r"delay_h: expected 1 or 24 hourly values"),
        ({"distance_km": [[0, 1, 2]]}, r"expected a 2 x 2 matrix"),
    ],
)
def test_bad_transport_is_a_clear_error(overrides, pattern):
    with pytest.raises(TravelError, match=pattern):
        build_travel(transport(**overrides), BUSES, 24, 60)
