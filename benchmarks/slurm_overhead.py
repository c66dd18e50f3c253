"""Per-scenario overhead of running a study through Slurm instead of locally.

Runs benchmarks/slurm50.yaml (50 small scenarios) twice in fresh copies of the workflow: locally
(`--cores 2`) and through workflow/profiles/slurm (group jobs of 10 scenarios), and writes the wall
times to benchmarks/results/slurm_overhead.json. Needs a running Slurm and the plugin importable:

    sudo tests/cluster/localhost_slurm.sh start /tmp/slurm-state     # or a real cluster's login node
    pip install -e ".[slurm]"                                        # or PYTHONPATH to a --target install
    python benchmarks/slurm_overhead.py [--status-command squeue]
    sudo tests/cluster/localhost_slurm.sh stop /tmp/slurm-state
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = "benchmarks/slurm50.yaml"


def copy_project(target: Path) -> Path:
    target.mkdir()
    shutil.copy(ROOT / "Snakefile", target / "Snakefile")
    for name in ("workflow", "config", "envs"):
        shutil.copytree(ROOT / name, target / name)
    (target / "benchmarks").mkdir()
    shutil.copy(ROOT / STUDY, target / STUDY)
    return target


def timed_run(workdir: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", STUDY, *args], cwd=workdir, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{out[-4000:]}")
    return wall, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--status-command", default=None, help="--slurm-status-command (squeue without accounting)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/slurm_overhead.json"))
    args = parser.parse_args()
    slurm_args = ["--workflow-profile", "workflow/profiles/slurm"]
    if args.status_command:
        slurm_args += ["--slurm-status-command", args.status_command]
    with tempfile.TemporaryDirectory() as tmp:
        local_s, _ = timed_run(copy_project(Path(tmp) / "local"), "--cores", "2")
        slurm_s, out = timed_run(copy_project(Path(tmp) / "slurm"), *slurm_args)
    n = 50
    result = {
        "scenarios": n,
        "jobs": int(re.search(r"^total\s+(\d+)", out, re.M).group(1)),
        "slurm_jobs": len(re.findall(r"has been submitted with SLURM jobid", out)),
        "local_wall_s": round(local_s, 1),
        "slurm_wall_s": round(slurm_s, 1),
        "local_s_per_scenario": round(local_s / n, 2),
        "slurm_s_per_scenario": round(slurm_s / n, 2),
        "overhead_s_per_scenario": round((slurm_s - local_s) / n, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| run | Slurm jobs | wall s | s per scenario |\n|---|---|---|---|")
    print(f"| local, --cores 2 | - | {result['local_wall_s']} | {result['local_s_per_scenario']} |")
    print(f"| Slurm profile | {result['slurm_jobs']} | {result['slurm_wall_s']} | {result['slurm_s_per_scenario']} |")
    print(f"overhead per scenario: {result['overhead_s_per_scenario']} s")


if __name__ == "__main__":
    main()
