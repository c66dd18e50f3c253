"""Start-up (issue 17): a job does not pay for imports it does not use.

Each check runs in a fresh interpreter (this one has imported everything) and reads
``sys.modules`` there: pandapower only where an AC power flow runs, matplotlib only in plot jobs,
Pyomo only where a model is built.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from feederflex.io import write_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
HEAVY = ("pandapower", "matplotlib", "pyomo", "scipy", "pvlib", "simbench")


def _loaded_after(code: str) -> list[str]:
    """Heavy top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    return [name for name in HEAVY if name in loaded]


def _imports_of(script: str) -> str:
    """The module-level import statements of a workflow script (what its job pays before main runs)."""
    tree = ast.parse((SCRIPTS / f"{script}.py").read_text())
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


# script -> heavy packages its imports must not load (the job either never needs them, or imports
# them where it uses them)
NOT_AT_IMPORT = {
    "solve_scenario": ("pandapower", "matplotlib", "scipy"),
    "solve_payoff_row": ("pandapower", "matplotlib", "scipy"),
    "solve_front_point": ("pandapower", "matplotlib", "scipy"),
    "solve_compromise": ("pandapower", "matplotlib", "scipy"),
    "solve_rolling": ("pandapower", "matplotlib", "scipy"),
    "validate_ac": ("pyomo", "matplotlib"),
    "summarize": ("pyomo", "pandapower", "matplotlib", "scipy"),
    "summarize_monte_carlo": ("pyomo", "pandapower", "matplotlib"),
    "payoff_table": ("pyomo", "pandapower", "matplotlib"),
    "gather_front": ("pyomo", "pandapower", "matplotlib"),
    "bills_table": ("pyomo", "pandapower", "matplotlib"),
    "hosting_case": ("matplotlib",),
    "plot_scenario": ("pyomo", "pandapower"),
    "plot_study": ("pyomo", "pandapower"),
}


@pytest.mark.parametrize(("script", "absent"), sorted(NOT_AT_IMPORT.items()))
def test_a_job_script_imports_no_heavy_package_it_does_not_use(script, absent):
    loaded = _loaded_after(_imports_of(script))
    assert not set(absent) & set(loaded), f"{script} imports {sorted(set(absent) & set(loaded))}"


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: a plot job's imports do load matplotlib."""
    assert "matplotlib" in _loaded_after(_imports_of("plot_scenario"))


def test_the_workflow_parses_without_pyomo_pandapower_or_matplotlib():
    """What rules/common.smk imports while the workflow is parsed (a dry run pays it once per
    Snakemake start, a cluster job once per job)."""
    smk = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    code = "\n".join(line for line in smk.splitlines() if line.startswith(("from feederflex", "import feederflex")))
    assert "from feederflex.study import" in code
    loaded = _loaded_after(code + "\nimport feederflex.kpis")
    assert not {"pyomo", "pandapower", "matplotlib", "scipy"} & set(loaded), loaded


def test_a_solve_job_without_ac_correction_loads_neither_pandapower_nor_matplotlib(tmp_path, make_scenario, feeder33):
    """The whole job (read inputs, build, solve, write), not only its imports. No scipy either:
    Pyomo resolves a scipy import with scipy.stats and more, which the hand-over does not need."""
    settings, prof, _ = make_scenario(
        {"ev_fleet": None, "fess": [], "ac_correction": {"enabled": False}, "solver": {"threads": 1}}, hours=4
    )
    write_dataset(feeder33, tmp_path / "network.nc")
    write_dataset(prof, tmp_path / "summer.nc")
    out = tmp_path / "solution.nc"
    code = textwrap.dedent(
        f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("solve_scenario", {str(SCRIPTS / "solve_scenario.py")!r})
        job = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(job)
        job.main({str(tmp_path / "network.nc")!r}, {str(tmp_path / "summer.nc")!r}, None, {settings!r}, "s",
                 {str(out)!r}, None, {str(tmp_path / "solver.log")!r})
        """
    )
    loaded = _loaded_after(code)
    assert out.exists() and "pyomo" in loaded
    assert "pandapower" not in loaded and "matplotlib" not in loaded, loaded
    assert "scipy" not in loaded, loaded
