from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from feederflex import __version__
from feederflex.io import json_attr, read_dataset, write_dataset


def _dataset() -> xr.Dataset:
    times = pd.date_range("2026-07-15", periods=4, freq="15min")
    return xr.Dataset(
        {"v_pu": (("time", "bus"), np.linspace(0.9, 1.1, 8).reshape(4, 2))},
        coords={"time": times, "bus": [1, 2]},
        attrs={"step_hours": 0.25},
    )


def test_round_trip_keeps_values_and_records_provenance(tmp_path):
    ds = _dataset()
    path = write_dataset(ds, tmp_path / "sub" / "x.nc", {"params": {"a": [1, 2]}, "seed": 3, "flag": True})
    back = read_dataset(path)
    xr.testing.assert_allclose(back.v_pu, ds.v_pu)
    assert back.attrs["step_hours"] == 0.25
    assert back.attrs["seed"] == 3 and back.attrs["flag"] == 1
    assert json_attr(back, "params") == {"a": [1, 2]}
    assert json_attr(back, "versions")["feederflex"] == __version__
    assert "pyomo" in json_attr(back, "versions")
    assert back.v_pu.encoding.get("zlib") is True


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "x.nc"
    write_dataset(_dataset(), target)
    before = read_dataset(target)
    bad = _dataset()
    bad.attrs["unwritable"] = object()  # becomes JSON via str(); writing still works
    write_dataset(bad, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
    xr.testing.assert_allclose(read_dataset(target).v_pu, before.v_pu)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "x.nc"
    write_dataset(_dataset(), target)

    def explode(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    try:
        write_dataset(_dataset() * 2, target)
    except RuntimeError:
        pass
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
    xr.testing.assert_allclose(read_dataset(target).v_pu, _dataset().v_pu)
