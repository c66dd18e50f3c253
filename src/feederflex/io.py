"""NetCDF input and output with provenance.

Every file passed between workflow rules is written here: atomically (temporary file in the
same folder, then rename), compressed, and stamped with the versions that made it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from feederflex import __version__

_VERSIONED_PACKAGES = ("pyomo", "highspy", "pandapower", "xarray", "numpy", "pandas", "pvlib")

# The lock of every dependency (envs/requirements-lock.txt, see docs/reproducibility.md); found beside
# the sources of a clone or an editable install, absent from a plain wheel install.
LOCK_FILE = Path(__file__).resolve().parents[2] / "envs" / "requirements-lock.txt"


def versions() -> dict[str, str]:
    """Versions of feederflex, Python and the libraries whose numbers enter a result."""
    found = {"feederflex": __version__, "python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def lock_pins(lock: str | Path = LOCK_FILE) -> dict[str, str]:
    """Package name -> pinned version of ``lock`` for this Python and platform (markers evaluated)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in Path(lock).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"{lock}: {line!r} pins no single version (a lock has name==version on every line)")
        pins[str(canonicalize_name(req.name))] = specs[0].version
    return pins


@functools.cache
def environment(lock: str | Path = LOCK_FILE) -> dict[str, Any]:
    """Which environment makes a result: the lock's sha256 and every installed package whose version
    differs from the lock (an empty list: installed from the lock). Packages of the lock that are not
    installed (extras not asked for) do not count."""
    lock = Path(lock)
    if not lock.is_file():
        return {"lock_sha256": "not found", "lock_mismatches": ["no lock beside the sources: " + str(lock)]}
    mismatches = []
    for name, pinned in sorted(lock_pins(lock).items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if installed != pinned:
            mismatches.append(f"{name} {installed} installed, {pinned} locked")
    return {"lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest(), "lock_mismatches": mismatches}


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
    attrs.update(environment())
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


def read_profiles(paths: str | Path | Sequence[str | Path]) -> xr.Dataset:
    """A scenario's profiles: one day's file, or the representative days of ``planning.days``
    (several files, in order) joined on one time axis (:func:`feederflex.profiles.join_days`)."""
    from feederflex.profiles import join_days

    if isinstance(paths, (str, Path)):
        return read_dataset(paths)
    return join_days([read_dataset(p) for p in paths])


def json_attr(ds: xr.Dataset, key: str) -> Any:
    """Decode an attribute that :func:`write_dataset` stored as JSON."""
    return json.loads(ds.attrs[key])
