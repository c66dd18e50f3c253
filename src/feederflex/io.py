"""NetCDF input and output with provenance.

Every file passed between workflow rules is written here: atomically (temporary file in the
same folder, then rename), compressed, and stamped with the versions that made it.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from feederflex import __version__

_VERSIONED_PACKAGES = ("pyomo", "highspy", "pandapower", "xarray", "numpy", "pandas", "pvlib")


def versions() -> dict[str, str]:
    """Versions of feederflex, Python and the libraries whose numbers enter a result."""
    found = {"feederflex": __version__, "python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _attr_value(value: Any) -> Any:
    """NetCDF attributes hold str, numbers and 1-D arrays; everything else becomes JSON."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.integer | np.floating):
        return value
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, default=str)


def write_dataset(ds: xr.Dataset, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``ds`` to ``path`` as compressed NetCDF4, atomically.

    Parameters
    ----------
    ds
        Dataset to write; it is not modified.
    path
        Target file; parent folders are created.
    provenance
        Extra attributes (parameters, seed, ...) recorded next to the package versions.
        Dicts and lists are stored as JSON strings.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy()
    attrs = dict(out.attrs)
    attrs.update(provenance or {})
    attrs["versions"] = versions()
    out.attrs = {key: _attr_value(value) for key, value in attrs.items()}
    for name in list(out.data_vars) + list(out.coords):
        out[name].attrs = {key: _attr_value(value) for key, value in out[name].attrs.items()}
    encoding = {
        name: {"zlib": True, "complevel": 4}
        for name, var in out.data_vars.items()
        if var.dtype.kind in "fiub" and var.ndim > 0
    }
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        out.to_netcdf(tmp_name, engine="netcdf4", encoding=encoding)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_dataset(path: str | Path) -> xr.Dataset:
    """Read a dataset fully into memory and close the file."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def json_attr(ds: xr.Dataset, key: str) -> Any:
    """Decode an attribute that :func:`write_dataset` stored as JSON."""
    return json.loads(ds.attrs[key])
