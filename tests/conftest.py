"""Shared fixtures: the repository, the schema, the IEEE 33 feeder and a scenario factory."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from feederflex import feeders, profiles, study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def schema() -> dict:
    return study.load_yaml(ROOT / "config" / "schema.yaml")


@pytest.fixture(scope="session")
def feeder33():
    return feeders.build_feeder("case33bw")


@pytest.fixture
def make_config(schema):
    """A validated study config from a partial one (defaults filled)."""

    def make(partial: dict | None = None) -> dict:
        return study.validate_config(copy.deepcopy(partial or {}), schema)

    return make


@pytest.fixture
def make_scenario(schema, feeder33):
    """Effective settings and profiles of one scenario from partial study and base settings."""

    def make(
        base: dict | None = None,
        day: dict | None = None,
        hours: float = 24,
        step_minutes: int = 60,
        transport: dict | None = None,
        fleets: dict | None = None,
    ):
        cfg = {"base": copy.deepcopy(base or {}), "time": {"hours": hours, "step_minutes": step_minutes}}
        if transport is not None:
            cfg["transport"] = copy.deepcopy(transport)
        if fleets is not None:
            cfg["fleets"] = copy.deepcopy(fleets)
        if day is not None:
            cfg["days"] = {"summer": day}
        cfg = study.validate_config(cfg, schema)
        settings = study.expand_scenarios(cfg, schema, bus_numbers=feeder33.bus.values)["base"]
        prof = profiles.build_profiles(feeder33, cfg["days"]["summer"], hours, step_minutes, "summer")
        return settings, prof, cfg

    return make


def assert_proven_then_corrected(ds) -> None:
    """A MILP scenario whose first solve is proven optimal and whose AC correction re-solved around its
    kept integers: written feasible, with no gap of its own (the status rule of feederflex.solve)."""
    import json
    import math

    stages = json.loads(ds.attrs["solver_stages"])
    assert stages[0]["kind"] == "MILP" and stages[0]["status"] == "optimal", stages[0]
    assert ds.attrs["ac_correction_iterations"] >= 1 and stages[-1]["kind"] == "LP"
    assert ds.attrs["solver_status"] == "feasible" and math.isnan(ds.attrs["solver_mip_gap"])
