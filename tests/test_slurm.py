"""The tiny study through a real one-node Slurm on localhost (workflow/profiles/slurm).

Root on Linux only: tests/cluster/localhost_slurm.sh installs Debian's slurm-wlm and munge when
missing, writes /etc/slurm/slurm.conf and starts munged, slurmctld and slurmd; the test stops them
(by pid) whatever happens. Anywhere else, or when Slurm cannot be installed, the test skips.

One Slurm run doubles as the failure case: the battery scenario's solve sleeps past an impossible
one-minute limit, Slurm kills it (TIMEOUT), Snakemake reports it with its log and finishes the other
scenarios; the re-run redoes only the battery scenario and what depends on it. The results are then
compared number by number with a local run of the same study.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from feederflex.io import read_dataset

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests/cluster/localhost_slurm.sh"
TINY = "config/studies/tiny.yaml"
SCENARIOS = ["plain", "battery", "starved"]
# Through Slurm: no accounting on this test cluster, so job states come from squeue; query early.
SLURM_ARGS = [
    "--workflow-profile",
    "workflow/profiles/slurm",
    "--configfile",
    TINY,
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "3",
    "--slurm-no-account",
]
# Test only, in the copy that runs through Slurm: the battery solve sleeps while a flag file exists.
# A flag rather than editing the script between runs: an edited script makes every scenario re-run.
SLEEP_PATCH = (
    "import os, time\n"
    "if snakemake.wildcards.scenario == 'battery' and os.path.exists('slow_battery'):\n"
    "    time.sleep(600)\n"
)


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "Slurm test runs on Linux only"
    if os.geteuid() != 0:
        return "Slurm test needs root (it installs and starts slurmctld, slurmd, munged)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "Slurm is not installed and apt-get is not available"
    return None


def copy_project(target: Path) -> Path:
    target.mkdir()
    shutil.copy(ROOT / "Snakefile", target / "Snakefile")
    for name in ("workflow", "config", "envs"):
        shutil.copytree(ROOT / name, target / name)
    return target


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True, timeout=900, env=env
    )


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm-state")
    proc = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True, timeout=900)
    try:
        if proc.returncode == 3:
            pytest.skip(f"no Slurm here: {proc.stderr.strip()}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield state
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def plugin_env(slurm, tmp_path_factory) -> dict:
    """The environment with the `slurm` extra's plugin importable.

    Installed with --target and put on PYTHONPATH for the Snakemake processes of this test only (Slurm
    jobs inherit it): installed into this venv, the plugin would make every later Snakemake start of
    the test suite wait 10 s for a controller once the daemons are stopped.
    """
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["slurm"]
    target = tmp_path_factory.mktemp("slurm-plugin")
    # --no-deps: everything else the plugin needs is in this venv already (snakemake's dependencies)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            *extra,
            "snakemake-executor-plugin-slurm-jobstep>=0.6,<0.7",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.skip(f"the Slurm plugin could not be installed: {proc.stderr[-500:]}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [env.get("PYTHONPATH")])])
    return env


def test_tiny_study_through_slurm_fails_resumes_and_equals_a_local_run(slurm, plugin_env, tmp_path):
    local = copy_project(tmp_path / "local")
    # the local reference runs meanwhile: the Slurm run below mostly waits for its time-limit kill
    local_run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", TINY],
        cwd=local,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    cluster = copy_project(tmp_path / "cluster")
    solve_script = cluster / "workflow/scripts/solve_scenario.py"
    solve_script.write_text(SLEEP_PATCH + solve_script.read_text())
    slow = cluster / "slow_battery"
    slow.touch()
    # An impossible limit: one minute for a solve that sleeps ten. One scenario per Slurm job (and one
    # CPU each, so all start at once), so the kill takes only the battery scenario; a group job's
    # limit is the sum of its jobs' runtimes, hence the zeros.
    proc = snakemake(
        cluster,
        *SLURM_ARGS,
        "--retries",
        "0",
        "--group-components",
        "scenario=1",
        "--cores",
        "1",
        "--set-resources",
        "solve_scenario:runtime=1",
        "validate_ac:runtime=0",
        "plot_scenario:runtime=0",
        "plot_storage:runtime=0",
        env=plugin_env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Error in group scenario" in out and "DUE TO TIME LIMIT" in out, out[-3000:]
    logs = [Path(p) for p in re.findall(r"Error in group scenario\s+log: (\S+/logs/slurm/\S+\.log)", out)]
    assert logs and all(p.exists() for p in logs), (
        f"the failed job's Slurm log is not named or not kept:\n{out[-3000:]}"
    )
    assert any("DUE TO TIME LIMIT" in p.read_text() for p in logs)
    assert not (cluster / "results/tiny/solutions/battery.nc").exists()
    done = {
        f"{kind}/{n}": (cluster / f"results/tiny/{kind}/{n}.nc").stat().st_mtime
        for kind in ("solutions", "ac")
        for n in ("plain", "starved")
    }

    slow.unlink()
    plan = snakemake(cluster, *SLURM_ARGS, "-n", env=plugin_env)
    assert re.findall(r"Solving scenario (\S+) of study", plan.stdout + plan.stderr) == ["battery"]
    proc = snakemake(cluster, *SLURM_ARGS, env=plugin_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert len(re.findall(r"Finished jobid: \d+ \(Rule: solve_scenario\)", out)) == 1
    assert {key: (cluster / f"results/tiny/{key}.nc").stat().st_mtime for key in done} == done

    local_out, _ = local_run.communicate(timeout=900)
    assert local_run.returncode == 0, local_out[-3000:]
    _assert_same_results(local, cluster)


def _assert_same_results(local: Path, cluster: Path) -> None:
    for kind in ("solutions", "ac"):
        for name in SCENARIOS:
            a = read_dataset(local / f"results/tiny/{kind}/{name}.nc")
            b = read_dataset(cluster / f"results/tiny/{kind}/{name}.nc")
            assert set(a.data_vars) == set(b.data_vars)
            xr.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
            for key in ("solver_status", "ac_correction_status"):
                assert a.attrs.get(key) == b.attrs.get(key), (kind, name, key)
            for key in (k for k in a.attrs if k.startswith("objective_")):
                if isinstance(a.attrs[key], str):  # the objective's description
                    assert a.attrs[key] == b.attrs[key], (kind, name, key)
                else:
                    assert a.attrs[key] == pytest.approx(b.attrs[key], rel=1e-6, nan_ok=True), (kind, name, key)
    a = pd.read_csv(local / "results/tiny/kpis.csv", index_col="scenario")
    b = pd.read_csv(cluster / "results/tiny/kpis.csv", index_col="scenario")
    assert list(a.index) == list(b.index) == SCENARIOS
    timing = [c for c in a.columns if c.endswith("_seconds")]
    numbers = a.drop(columns=timing).select_dtypes("number").columns
    np.testing.assert_allclose(a[numbers].to_numpy(float), b[numbers].to_numpy(float), rtol=1e-6, atol=1e-9)
    text = a.drop(columns=timing).select_dtypes(exclude="number").columns
    assert a[text].equals(b[text])
