from __future__ import annotations

import numpy as np
import pytest

from feederflex import profiles

DAY = {
    "date": "2026-07-15",
    "load": {"shape": "rts_winter_weekday", "bus_shapes": {}, "scale": 1.0},
    "pv": {
        "model": "typical",
        "sunrise_h": 6.0,
        "sunset_h": 18.0,
        "latitude": 30.27,
        "longitude": 120.15,
        "timezone": "Asia/Shanghai",
    },
    "prices": "tong2021",
}


def test_hourly_day_matches_the_tong2021_price_table_and_rts_shape(feeder33):
    ds = profiles.build_profiles(feeder33, DAY, 24, 60)
    assert ds.sizes["time"] == 24 and ds.attrs["step_hours"] == 1.0
    price = ds.price_usd_per_mwh.values
    assert price[0] == 53.2 and price[8] == 72.4 and price[12] == 63.5 and price[18] == 81.2 and price[23] == 53.2
    total = ds.load_p_mw.sum("bus").values
    assert total.max() == pytest.approx(3.715)  # peak hour = base case
    assert total[3] == pytest.approx(3.715 * 59 / 100)
    np.testing.assert_allclose(ds.load_q_mvar.sum("bus").values / total, 2.3 / 3.715)


def test_quarter_hour_steps_hold_hourly_loads_and_pv_energy(feeder33):
    hourly = profiles.build_profiles(feeder33, DAY, 24, 60)
    quarter = profiles.build_profiles(feeder33, DAY, 24, 15)
    assert quarter.sizes["time"] == 96
    np.testing.assert_allclose(quarter.load_p_mw.values[::4], hourly.load_p_mw.values)
    # PV is a step average of the same curve: daily energy agrees closely
    assert quarter.pv_avail_pu.sum() * 0.25 == pytest.approx(float(hourly.pv_avail_pu.sum()), rel=2e-3)
    assert quarter.pv_avail_pu.sum() * 0.25 == pytest.approx(12 * 2 / np.pi, rel=2e-3)  # integral of a half-sine


def test_typical_pv_is_zero_at_night_and_peaks_at_noon():
    times = profiles.time_index("2026-07-15", 24, 60)
    pv = profiles.pv_typical(times, 1.0, 6.0, 18.0)
    assert (pv[:6] == 0).all() and (pv[18:] == 0).all()
    assert pv.argmax() in (11, 12) and 0.95 < pv.max() <= 1.0


def test_clearsky_pv_from_pvlib_follows_the_sun():
    times = profiles.time_index("2026-07-15", 24, 60)
    pv = profiles.pv_clearsky(times, 1.0, 30.27, 120.15, "Asia/Shanghai")
    assert (pv[:4] == 0).all() and (pv[21:] == 0).all()
    assert 10 <= pv.argmax() <= 13 and 0.8 < pv.max() <= 1.0


def test_price_table_with_a_gap_names_the_key_and_the_hour():
    times = profiles.time_index("2026-07-15", 24, 60)
    with pytest.raises(profiles.ProfileError, match=r"days.x.prices: .*08:00 is covered 0 times"):
        profiles.tou_price(times, [[0, 8, 50], [9, 24, 60]], "days.x.prices")


def test_bad_shapes_are_clear_errors(feeder33):
    times = profiles.time_index("2026-07-15", 24, 60)
    with pytest.raises(profiles.ProfileError, match="expected 24 hourly values or 24"):
        profiles.load_shape(times, [1, 2, 3])
    with pytest.raises(profiles.ProfileError, match="unknown load shape 'flat'"):
        profiles.load_shape(times, "flat")
    day = dict(DAY, load={"shape": "rts_winter_weekday", "bus_shapes": {40: [1] * 24}, "scale": 1.0})
    with pytest.raises(profiles.ProfileError, match="bus 40 is not a bus of the feeder"):
        profiles.build_profiles(feeder33, day, 24, 60, "x")
    with pytest.raises(profiles.ProfileError, match="not a whole number"):
        profiles.time_index("2026-07-15", 1.1, 60)
