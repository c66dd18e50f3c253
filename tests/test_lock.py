"""The committed lock: it covers pyproject's ranges, this environment was installed from it, and every
result names it (docs/reproducibility.md)."""

from __future__ import annotations

import hashlib
import re
import tomllib
from importlib import metadata

import numpy as np
import pytest
import xarray as xr
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from feederflex import io
from tests.conftest import ROOT

LOCK = ROOT / "envs" / "requirements-lock.txt"


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_the_lock_pins_every_requirement_within_pyprojects_range():
    pins = io.lock_pins(LOCK)
    for req in _pyproject_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is missing from {LOCK.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {req.name} {pins[name]}, outside pyproject.toml's {req.specifier}"
        )


def _requirements_of(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution ``name`` (with ``extras``) needs here, transitively, from installed metadata."""
    seen: set[str] = set()
    todo = [(name, extras)]
    while todo:
        dist, wanted = todo.pop()
        for line in metadata.requires(dist) or []:
            req = Requirement(line)
            env_extras = wanted or {""}
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in env_extras):
                continue
            child = canonicalize_name(req.name)
            if child not in seen:
                seen.add(child)
                todo.append((child, frozenset(req.extras)))
    return seen


def test_this_environment_is_the_lock():
    """Fails in an environment that was not installed from the lock (benchmarks/drift.sh skips it)."""
    pins = io.lock_pins(LOCK)
    needed = _requirements_of("feederflex", frozenset({"test"}))
    assert {"highspy", "pyomo", "pandapower", "pytest"} <= needed
    unpinned = sorted(needed - set(pins))
    assert not unpinned, f"installed but not in {LOCK.name}: {unpinned}"
    differ = {n: (metadata.version(n), pins[n]) for n in needed if metadata.version(n) != pins[n]}
    assert not differ, f"installed (left) differs from {LOCK.name} (right): {differ}"
    assert io.environment(LOCK)["lock_mismatches"] == []


def test_results_name_the_lock_and_any_drift_from_it(tmp_path):
    path = io.write_dataset(xr.Dataset({"x": ("t", np.arange(3.0))}), tmp_path / "x.nc")
    back = io.read_dataset(path)
    assert back.attrs["lock_sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    # an installed package at another version than a lock pins is named with both versions
    other = tmp_path / "other-lock.txt"
    installed = metadata.version("highspy")
    other.write_text(
        f"highspy==0.0.1\n    # via feederflex\npyomo=={metadata.version('pyomo')}\n"
        "not-a-real-package-xyz==1.0\ncolorama==0.4.6 ; sys_platform == 'nonexistent'\n"
    )
    env = io.environment(other)
    assert env["lock_mismatches"] == [f"highspy {installed} installed, 0.0.1 locked"]
    assert env["lock_sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert io.environment(tmp_path / "missing.txt")["lock_sha256"] == "not found"


def test_the_install_commands_and_the_regeneration_command_use_the_lock():
    command = re.search(r"^#\s+(uv pip compile .*)$", LOCK.read_text(), re.MULTILINE)
    assert command, f"{LOCK.name} must start with the command that made it"
    assert command.group(1) in (ROOT / "docs" / "reproducibility.md").read_text()
    readme = (ROOT / "README.md").read_text().splitlines()
    first = [line for line in readme[:8] if "pip install" in line]
    assert len(first) == 2 and all("-c envs/requirements-lock.txt" in line for line in first)
    ci = (ROOT / ".ci" / "run").read_text()
    assert first[1].strip() in ci, ".ci/run must run exactly the README's test command"
    conda = (ROOT / "envs" / "feederflex.yaml").read_text()
    assert "-c requirements-lock.txt" in conda


@pytest.mark.parametrize("line", ["pyomo>=6", "pyomo==6.9 ; python_version < '3'"])
def test_lock_lines_that_pin_nothing_or_do_not_apply(tmp_path, line):
    lock = tmp_path / "lock.txt"
    lock.write_text(line + "\n")
    if ">=" in line:
        with pytest.raises(ValueError):
            io.lock_pins(lock)
    else:
        assert io.lock_pins(lock) == {}
