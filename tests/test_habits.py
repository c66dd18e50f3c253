"""The house rules that tools do not check: short functions, the linters in CI and pre-commit, py.typed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LONG = 80  # lines of code (docstring left out) a function may have without a stated reason


def _long_functions() -> list[str]:
    out = []
    for path in sorted((ROOT / "src" / "feederflex").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                lines = node.end_lineno - body[0].lineno + 1 if body else 0
                if lines > LONG and "Long by design" not in (ast.get_docstring(node) or ""):
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_is_long_without_a_stated_reason():
    assert _long_functions() == []


def test_ci_runs_the_linters_before_the_tests_and_pre_commit_runs_the_same_tools():
    lint = (ROOT / ".ci" / "lint").read_text()
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("bash .ci/lint") < run.index("-m pytest")
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    tools = {re.match(r"\.venv/bin/(\w+(?: check| format)?)", hook["entry"]).group(1) for hook in hooks}
    assert tools == {"ruff check", "ruff format", "snakefmt", "mypy"}
    for tool in tools:
        exe, _, sub = tool.partition(" ")
        assert f'"$bin/{exe}" {sub}'.strip() in lint, f"{tool} runs in pre-commit but not in .ci/lint"


def test_the_package_ships_its_type_marker():
    assert (ROOT / "src" / "feederflex" / "py.typed").exists()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


def test_every_error_is_a_feederflex_error_defined_in_one_module():
    from feederflex import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) >= 9 and all(issubclass(c, errors.FeederflexError) for c in classes)
    elsewhere = []
    for path in sorted((ROOT / "src" / "feederflex").rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            bases = [getattr(b, "id", getattr(b, "attr", "")) for b in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and any(b.endswith(("Error", "Exception")) for b in bases):
                elsewhere.append(f"{path.name}: {node.name}")
    assert elsewhere == []
    err = errors.ConfigError.at("study.yaml", "grid.v_min_pu", 2, "expected a number below grid.v_max_pu")
    assert str(err) == "study.yaml: grid.v_min_pu = 2: expected a number below grid.v_max_pu"


def test_the_slurm_profile_puts_every_rule_in_a_job_group():
    """Groups live in the profile (local runs have none); a rule without a line there would be
    one Slurm job per run of it."""
    rules = {
        name
        for path in (ROOT / "workflow" / "rules").glob("*.smk")
        for name in re.findall(r"^rule (\w+):", path.read_text(), re.MULTILINE)
    }
    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    grouped = dict(line.split("=") for line in profile["groups"])
    assert set(grouped) == rules
    assert set(grouped.values()) == set(profile["group-components"])
    assert not any("group:" in path.read_text() for path in (ROOT / "workflow" / "rules").glob("*.smk"))
