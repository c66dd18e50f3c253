"""Smoke test of the benchmark ladder: the smallest rung runs and reports consistent figures (no times asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ladder():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run

    return run


def test_smallest_rung_runs_and_reports_every_figure(ladder, tmp_path):
    extra = ["--linopy"] if importlib.util.find_spec("linopy") else []
    report = ladder.main(
        ["--rungs", "ieee33_lp", "--repeat", "1", "--time-limit", "30", "--out", str(tmp_path), *extra]
    )
    saved = json.loads(next(tmp_path.glob("ladder-*.json")).read_text())
    assert saved["rungs"][0]["rung"] == "ieee33_lp" and saved["repeat"] == 1
    run = saved["runs"][0]
    assert run["status"] == "optimal" and run["gap"] == pytest.approx(0.0, abs=1e-9) and run["integers"] == 0
    assert run["rows"] > 3000 and run["nonzeros"] > run["rows"]
    for key in ("build_s", "handover_s", "highs_s", "ac_s", "job_s", "peak_mb"):
        assert run[key] > 0, key
    assert run["job_s"] >= run["build_s"] + run["highs_s"]
    assert run["overhead"] == pytest.approx((run["build_s"] + run["handover_s"]) / run["highs_s"])
    summary = saved["rungs"][0]["highs_s"]
    assert summary["min"] <= summary["median"] <= summary["max"]
    assert "| ieee33_lp |" in (tmp_path / "ladder.md").read_text()
    if extra:  # the same LP written in linopy has the same optimum
        reference = saved["runs"][1]
        assert reference["rung"] == "ieee33_lp (linopy)"
        assert reference["objective"] == pytest.approx(run["objective"], rel=1e-7)
        assert reference["nonzeros"] == run["nonzeros"] - 96  # Pyomo writes PV availability as rows, linopy as bounds
    assert report["rungs"][0]["rows"]["median"] == run["rows"]


def test_every_rung_is_a_valid_study(ladder):
    for name in ladder.RUNGS:
        if ladder.available(name):
            valid, settings = ladder.load_rung(name, 10.0)
            assert settings["solver"]["time_limit_s"] == 10.0
    valid, settings = ladder.load_rung("ieee33x3_mess12", 10.0)
    assert (
        len(settings["mess"]["units"]) == 12 and len(valid["transport"]["stations"]) == 12 and len(settings["pv"]) == 12
    )
