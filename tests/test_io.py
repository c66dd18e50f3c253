from __future__ import annotations

from pathlib import Path

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


def test_write_goes_to_a_temporary_file_and_replaces_the_old_one_at_once(tmp_path, monkeypatch):
    """While the new file is being written, the target still holds the old, complete file."""
    target = tmp_path / "x.nc"
    write_dataset(_dataset(), target)
    real = xr.Dataset.to_netcdf
    seen = {}

    def spy(self, path, *args, **kwargs):
        seen["tmp"] = str(path)
        seen["during"] = read_dataset(target).v_pu.values.copy()  # the old file, readable mid-write
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", spy)
    write_dataset(_dataset() * 2, target)
    monkeypatch.undo()
    assert seen["tmp"] != str(target) and Path(seen["tmp"]).parent == tmp_path
    np.testing.assert_allclose(seen["during"], _dataset().v_pu.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
    xr.testing.assert_allclose(read_dataset(target).v_pu, 2 * _dataset().v_pu)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "x.nc"
    write_dataset(_dataset(), target)

    def explode(self, path, *args, **kwargs):  # half a file written, then the disk fills up
        Path(path).write_bytes(Path(target).read_bytes()[:100])
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    try:
        write_dataset(_dataset() * 2, target)
    except RuntimeError:
        pass
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
    xr.testing.assert_allclose(read_dataset(target).v_pu, _dataset().v_pu)
