"""The real workflow: lint, dry run of the default study, the tiny study end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feederflex.io import json_attr, read_dataset

pytestmark = pytest.mark.workflow
ROOT = Path(__file__).resolve().parents[1]
TINY = "config/studies/tiny.yaml"


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's job-stats table."""
    counts = {}
    table = output.split("Job stats:")[-1]
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the workflow in a temporary directory, so tests never touch results/ here."""
    target = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "Snakefile", target / "Snakefile")
    shutil.copytree(ROOT / "workflow", target / "workflow")
    shutil.copytree(ROOT / "config", target / "config")
    shutil.copytree(ROOT / "envs", target / "envs")
    return target


@pytest.fixture(scope="module")
def tiny_run(project) -> Path:
    snakemake(project, "--cores", "2", "--configfile", TINY)
    return project


def test_lint_passes(project):
    proc = snakemake(project, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_of_the_default_study_plans_every_scenario(project):
    proc = snakemake(project, "-n", "--cores", "2")
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {
        "prepare_network": 1,
        "build_profiles": 1,
        "sample_ev_fleet": 2,
        "solve_scenario": 6,
        "validate_ac": 6,
        "summarize": 1,
        "all": 1,
        "plot_study": 1,
        "plot_scenario": 6,
        "plot_storage": 3,
        "plot_fleet": 2,
    }


def test_tiny_study_kpis_list_every_scenario_with_its_status(tiny_run):
    kpis = pd.read_csv(tiny_run / "results/tiny/kpis.csv", index_col="scenario")
    assert list(kpis.index) == ["plain", "battery", "starved"]
    # plain is an LP (optimal); battery's binaries are kept by its AC re-solves, so it is feasible
    assert kpis.loc["plain", "status"] == "optimal" and kpis.loc["battery", "status"] == "feasible"
    assert kpis.loc["battery", "ac_correction_iterations"] >= 1 and np.isnan(kpis.loc["battery", "mip_gap"])
    assert kpis.loc["starved", "status"] == "infeasible"
    assert np.isnan(kpis.loc["starved", "energy_cost_usd"])
    assert kpis.loc["battery", "objective"] <= kpis.loc["plain", "objective"] + 1e-6
    assert kpis.loc["plain", "max_abs_v_error_pu"] < 0.01
    assert kpis.loc["plain", "ev_energy_mwh"] > 0


def test_tiny_study_files_hold_the_contract_and_provenance(tiny_run):
    sol = read_dataset(tiny_run / "results/tiny/solutions/battery.nc")
    for name in (
        "v_pu",
        "p_branch_mw",
        "q_branch_mvar",
        "p_grid_mw",
        "load_p_mw",
        "load_q_mvar",
        "pv_avail_mw",
        "pv_p_mw",
        "ev_p_mw",
        "fess_p_ch_mw",
        "fess_p_dis_mw",
        "fess_e_mwh",
        "price_usd_per_mwh",
    ):
        assert name in sol, name
    assert sol.sizes["time"] == 4 and sol.attrs["step_hours"] == 1.0
    assert list(sol.pv_bus.values) == [4, 15, 22, 29] and list(sol.fess_bus.values) == [18]
    assert json_attr(sol, "params")["fess"][0]["p_mw"] == 0.5
    assert sol.attrs["seed"] == 7 and sol.attrs["scenario"] == "battery"
    versions = json_attr(sol, "versions")
    assert {"feederflex", "pyomo", "highspy", "pandapower"} <= set(versions)
    for key in (
        "solver_status",
        "solver_termination",
        "solver_mip_gap",
        "build_seconds",
        "solver_solve_seconds",
        "solver_rows",
        "solver_columns",
        "solver_integers",
        "objective_energy_cost_usd",
    ):
        assert key in sol.attrs, key
    demand = (
        sol.load_p_mw.sum("bus") + sol.ev_p_mw.sum("bus") + sol.fess_p_ch_mw.sum("fess") - sol.fess_p_dis_mw.sum("fess")
    )
    losses = sol.loss_load_p_mw.sum("bus")
    np.testing.assert_allclose(sol.p_grid_mw, demand + losses - sol.pv_p_mw.sum("pv"), atol=1e-6)
    ac = read_dataset(tiny_run / "results/tiny/ac/battery.nc")
    np.testing.assert_allclose(ac.p_grid_ac_mw, sol.p_grid_mw - losses + ac.loss_mw, atol=1e-6)
    assert sol.attrs["ac_correction_status"] == "converged"
    summary = read_dataset(tiny_run / "results/tiny/summary.nc")
    assert list(summary.scenario.values) == ["plain", "battery", "starved"]
    assert list(summary.kpi_status.values) == ["optimal", "feasible", "infeasible"]
    assert json_attr(sol, "solver_stages")[0]["status"] == "optimal"  # the MILP itself was proven
    np.testing.assert_allclose(summary.v_pu.sel(scenario="battery"), sol.v_pu)
    assert "MIP has" in (tiny_run / "logs/tiny/solve_scenario/battery.solver.log").read_text()
    assert "HiGHS: optimal" in (tiny_run / "logs/tiny/solve_scenario/battery.python.log").read_text()


def test_a_second_run_does_nothing(tiny_run):
    proc = snakemake(tiny_run, "-n", "--cores", "2", "--configfile", TINY)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_scenario_reruns_only_it_and_what_depends_on_it(tiny_run, tmp_path):
    text = (tiny_run / TINY).read_text()
    edited = text.replace("p_mw: 0.5, e_mwh: 1.0", "p_mw: 0.4, e_mwh: 1.0")
    assert edited != text
    study = tiny_run / "config/studies/tiny_edited.yaml"
    study.write_text(edited)
    proc = snakemake(tiny_run, "-n", "--cores", "2", "--configfile", str(study.relative_to(tiny_run)))
    out = proc.stdout + proc.stderr
    assert job_counts(out) == {
        "solve_scenario": 1,
        "validate_ac": 1,
        "summarize": 1,
        "all": 1,
        "plot_scenario": 1,
        "plot_storage": 1,
        "plot_study": 1,
    }
    assert re.findall(r"Solving scenario (\S+) of study", out) == ["battery"]
    assert re.findall(r"AC power flow of every step of scenario (\S+)", out) == ["battery"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("study: bad\nbase: {grid: {vmin: 0.9}}\n", r"bad.yaml: base.grid: Additional properties.*'vmin'"),
        (
            "study: bad\nbase: {pv: [{name: a, bus: 99, p_mw: 1.0}]}\n",
            r"bad.yaml: .*bus = 99 is not a bus of the feeder",
        ),
        (
            "study: bad\nscenarios: {list: {x: {fess: [{name: b, bus: 3, p_mw: -1, e_mwh: 1}]}}}\n",
            r"scenario 'x'.*p_mw: -1 is less than the minimum",
        ),
        ("study: bad\nnetwork: {source: meshed.json}\n", r"meshed"),
        ("study: bad\nscenarios:\n  list:\n    a: {}\n    a: {pv: []}\n", r"bad.yaml: line 5: key 'a' appears twice"),
        ("study: ..\n", r"bad.yaml: study: '..' does not match"),
        ("study: bad\ntime: {hours: 5.5}\n", r"time.hours = 5.5 is not a whole number"),
    ],
)
def test_bad_study_fails_at_parse_time_naming_file_and_key(project, text, pattern):
    if "meshed.json" in text:
        import pandapower as pp
        import pandapower.networks as pn

        net = pn.case33bw()
        net.line["in_service"] = True
        pp.to_json(net, str(project / "meshed.json"))
    (project / "config/studies/bad.yaml").write_text(text)
    proc = snakemake(project, "-n", "--cores", "1", "--configfile", "config/studies/bad.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(pattern, out), out[-3000:]
    assert not (project / "results/bad").exists()


def test_figures_of_the_tiny_study_exist_and_the_report_lists_them(tiny_run):
    figures = sorted((tiny_run / "results/tiny/figures").rglob("*.png"))
    names = {str(p.relative_to(tiny_run / "results/tiny/figures")) for p in figures}
    assert names == {
        "voltage_envelope.png",
        "bus_voltage.png",
        "import.png",
        "kpis.png",
        "scenarios/plain/voltage_heatmap.png",
        "scenarios/battery/voltage_heatmap.png",
        "scenarios/starved/voltage_heatmap.png",
        "scenarios/battery/storage.png",
        "fleets/few.png",
    }
    for path in figures:
        assert path.stat().st_size > 5000, f"{path} looks empty"
    report = tiny_run / "results/tiny/report.html"
    snakemake(tiny_run, "--configfile", TINY, "--report", str(report.relative_to(tiny_run)))
    html = report.read_text()
    for name in names:
        assert Path(name).name in html, name
    assert "kpis.csv" in html
    shot = _screenshot(report)
    if shot is None:
        pytest.skip("Chromium is not installed: the report was built and checked, not rendered")
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.02, "the rendered report is blank"


def _screenshot(report: Path) -> Path | None:
    """Render the report in headless Chromium; None when Chromium is not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return None
    shot = report.with_suffix(".png")
    profile = report.parent / "chromium-profile"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return shot if shot.exists() else None


def _every_solution(results: Path) -> list[Path]:
    """Every NetCDF a study wrote that carries a solver status (solutions, payoff rows, front points,
    compromises, realised days and their plans)."""
    found = []
    for path in sorted(results.rglob("*.nc")):
        if path.name.endswith(".ac.nc") or "/ac/" in str(path) or path.name in ("summary.nc", "monte_carlo.nc"):
            continue
        found.append(path)
    return found


def assert_labels_are_honest(results: Path) -> int:
    """The status rule on every solution a study wrote: optimal only with objective and bound within
    the MIP gap, a gap of 0 only when they agree, seconds the sum of the stages. Returns how many."""
    from tests.test_outcomes import label_is_honest

    checked = 0
    for path in _every_solution(results):
        ds = read_dataset(path)
        if "solver_status" not in ds.attrs or "solver_stages" not in ds.attrs:
            continue
        assert label_is_honest(dict(ds.attrs)), (
            path,
            ds.attrs["solver_status"],
            ds.attrs["solver_objective"],
            ds.attrs["solver_bound"],
            ds.attrs["solver_mip_gap"],
        )
        stages = json_attr(ds, "solver_stages")
        assert ds.attrs["solver_solve_seconds"] == pytest.approx(sum(s["highs_seconds"] for s in stages), abs=1e-6), (
            path
        )
        checked += 1
    return checked


def test_every_solution_of_the_tiny_studies_is_labelled_honestly(tiny_run, tradeoffs_run, rolling_run):
    counted = sum(
        assert_labels_are_honest(folder)
        for folder in (tiny_run / "results/tiny", tradeoffs_run / "results/tiny_tradeoffs", rolling_run)
    )
    assert counted >= 20


def test_the_tiny_studies_give_the_reference_numbers(tiny_run, tradeoffs_run, rolling_run):
    """Every schedule of the tiny studies equals tests/data/tiny_reference.json (made before the
    modules moved, see tests/reference.py) within solver tolerance: status, objective, import,
    voltages and storage energy. The rolling run has the real-time scenario only."""
    from tests.reference import REFERENCE, collect

    reference = json.loads(REFERENCE.read_text())
    runs = {
        "tiny": tiny_run / "results/tiny",
        "tiny_tradeoffs": tradeoffs_run / "results/tiny_tradeoffs",
        "tiny_rolling": rolling_run,
    }
    compared = 0
    for study, folder in runs.items():
        fresh = collect(folder)
        for name, expected in reference[study].items():
            if name not in fresh:
                continue
            got, where = fresh[name], f"{study}/{name}"
            assert got["status"] == expected["status"], where
            assert got["objective"] == pytest.approx(expected["objective"], rel=1e-6, abs=1e-6, nan_ok=True), where
            assert set(got) == set(expected), where
            for key in set(expected) - {"status", "objective"}:
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=where)
            compared += 1
    assert compared >= 20


def shrink(study: dict, hours: float, step_minutes: int | None = None) -> dict:
    """A shipped study cut to a few steps and scenarios, for CI: ``hours`` of its day at its own step,
    the first level of each axis but the last (two of that), the first two listed scenarios plus those
    the multi-objective and hosting sections name and the first rules and itinerary scenarios (baselines
    kept only where their scenario is), its first front (two points) and first compromise
    without a lexicographic stage, its first two hosting cases (0.1 MW bisection), one mobile unit,
    two realisations, short time limits."""
    import copy

    from feederflex.study import scenario_overrides

    out = copy.deepcopy(study)
    out["study"] = f"{study['study']}_shrunk"
    out.setdefault("time", {})["hours"] = hours
    if step_minutes is not None:
        out["time"]["step_minutes"] = step_minutes
    scenarios = out.get("scenarios", {})
    mo = out.get("multiobjective", {})
    named = {item.get("scenario") for kind in ("fronts", "compromises") for item in list(mo.get(kind, {}).values())[:1]}
    named |= {item.get("reference") for item in list(mo.get("compromises", {}).values())[:1]}
    hosting = out.setdefault("hosting_capacity", {})
    hosting["cases"] = dict(list(hosting.get("cases", {}).items())[:2])  # two cases, a coarse bisection
    named |= {case["scenario"] for case in hosting["cases"].values()}
    if hosting["cases"]:
        hosting["tolerance_mw"] = 0.1
    listed = scenarios.get("list", {})
    # and the first scenario of each regional kind (004's rules and the itinerary optimum) with its baselines
    for marker in (("operation", "mode", "rules"), ("ev_control", "mode", "itinerary")):
        first = next((k for k, v in listed.items() if v.get(marker[0], {}).get(marker[1]) == marker[2]), None)
        named |= {first} if first else set()
    scenarios["list"] = {k: v for n, (k, v) in enumerate(listed.items()) if n < 2 or k in named}
    bills = out.setdefault("bills", {}).setdefault("baselines", {})
    for label in list(bills):
        bills[label] = [n for n in bills[label] if n in scenarios["list"]]
    axes = scenarios.get("axes", {})
    for n, axis in enumerate(list(axes)):
        keep = 2 if n == len(axes) - 1 else 1
        axes[axis] = dict(list(axes[axis].items())[:keep])
    for kind in ("fronts", "compromises"):  # the first of each, with two front points, one stage each
        if mo.get(kind):
            mo[kind] = dict(list(mo[kind].items())[:1])
    for front in mo.get("fronts", {}).values():
        front["points"] = 2
    if mo:
        mo["lexicographic"] = False
    _first_mess_unit_only(out)
    if "uncertainty" in out:
        out["uncertainty"].update(realisations=2, batch_size=2)
    base = out.setdefault("base", {})
    base["solver"] = {
        **base.get("solver", {}),
        "time_limit_s": min(float(base.get("solver", {}).get("time_limit_s", 2)), 2.0),
    }
    base["ac_correction"] = {**base.get("ac_correction", {}), "max_iterations": 1}
    base["mess"] = {
        **base.get("mess", {}),
        "search": {**base.get("mess", {}).get("search", {}), "rounds": 1, "unit_time_s": 0.5, "time_s": 1.0},
    }
    for fleet in out.get("fleets", {}).values():
        fleet["vehicles_per_bus"] = min(int(fleet.get("vehicles_per_bus", 20)), 20)
    plots = out.setdefault("plots", {})
    plots["mess_step"] = 0
    kept = set(scenario_overrides({"scenarios": {"list": scenarios.get("list", {}), "axes": axes}}))
    if plots.get("scenarios"):
        plots["scenarios"] = [name for name in plots["scenarios"] if name in kept]
    return out


def _first_mess_unit_only(node) -> None:
    """Every list of mobile units in a study cut to its first unit."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "mess" and isinstance(value, dict) and isinstance(value.get("units"), list):
                value["units"] = value["units"][:1]
            _first_mess_unit_only(value)
    elif isinstance(node, list):
        for item in node:
            _first_mess_unit_only(item)


FULL_STUDIES = sorted(p.name for p in (ROOT / "config/studies").glob("*.yaml") if not p.name.startswith("tiny"))


@pytest.mark.parametrize("study", FULL_STUDIES)
def test_every_shipped_study_runs_shrunk_to_a_few_steps(project, study):
    """Each shipped paper study through the real workflow, shrunk (its full runs: benchmarks/README.md)."""
    import yaml

    raw = (project / "config/studies" / study).read_text()
    text = yaml.safe_load(raw)
    # coordinated (aggregate, itinerary) EV charging needs the whole periodic day: keep 24 h, in hourly steps
    # (itineraries at their own step: 004's rules need every 15-minute trip to cross a step boundary)
    small = (
        shrink(text, 24.0, 60)
        if "aggregate" in raw
        else shrink(text, 24.0)
        if "itinerary" in raw
        else shrink(text, 4.0)
    )
    path = project / "config/studies" / f"shrunk_{study}"
    path.write_text(yaml.safe_dump(small, sort_keys=False))
    snakemake(project, "--cores", "2", "--configfile", str(path.relative_to(project)))
    results = project / "results" / small["study"]
    kpis = pd.read_csv(results / "kpis.csv", index_col="scenario")
    assert len(kpis) >= 2 and kpis.status.isin(["optimal", "feasible", "rules", "infeasible", "time_limit"]).all()
    assert assert_labels_are_honest(results) >= len(kpis)
    if study.startswith("simbench"):  # real grids: every schedule holds in AC on the original net
        assert kpis.status.isin(["optimal", "feasible"]).all()
        assert (kpis.ac_unexpected_violation_bus_steps == 0).all() and (kpis.ac_nonconverged_steps == 0).all()
        assert kpis.max_loading_pct.notna().all()
    if small["bills"]["baselines"]:  # the regional study: rules and optimum, each with bills that add up
        bills = pd.read_csv(results / "bills.csv").set_index(["scenario", "subarea"])
        modes = {n: s for n, s in small["scenarios"]["list"].items()}
        assert {"rules"} <= set(kpis.status) and any(
            s.get("ev_control", {}).get("mode") == "itinerary" for s in modes.values()
        )
        for name in kpis.index:
            total = bills.loc[(name, "all"), "bill"]
            parts = bills.loc[name].drop(index=[i for i in bills.loc[name].index if ":" in i or i == "all"]).bill.sum()
            assert total == pytest.approx(parts)
        assert (results / "figures/scenarios" / kpis.index[0] / "subareas.png").stat().st_size > 10_000
    if small["hosting_capacity"]["cases"]:  # every case has a row with an AC capacity that passed
        hosting = pd.read_csv(results / "hosting.csv", index_col="case")
        assert list(hosting.index) == list(small["hosting_capacity"]["cases"])
        assert hosting.ac_capacity_mw.notna().all()


@pytest.mark.parametrize("study", sorted(p.name for p in (ROOT / "config/studies").glob("*.yaml")))
def test_every_shipped_study_parses_and_plans(project, study):
    proc = snakemake(project, "-n", "--forceall", "--cores", "2", "--configfile", f"config/studies/{study}")
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["solve_scenario"] >= 2 and counts["validate_ac"] == counts["solve_scenario"]


TRADEOFFS = "config/studies/tiny_tradeoffs.yaml"


@pytest.fixture(scope="module")
def tradeoffs_run(project) -> Path:
    snakemake(project, "--cores", "2", "--configfile", TRADEOFFS)
    return project


def test_tradeoff_study_front_payoff_and_compromises(tradeoffs_run):
    from feederflex.multiobjective import dominated, memberships

    out = tradeoffs_run / "results/tiny_tradeoffs"
    payoff = read_dataset(out / "payoff/battery.nc")
    assert list(payoff.optimised.values) == [
        "pv_curtailed_mwh",
        "energy_cost_usd",
        "load_variance_mw2",
        "power_deviation_mw2",
    ]
    table = pd.read_csv(out / "payoff/battery.csv", index_col=0)
    assert list(table.index[-2:]) == ["best", "worst"]
    # each row's MILP is proven; AC re-solves keep the battery modes, so a row that needed one is
    # feasible and a row whose first schedule held in AC stays optimal (which rows need one depends
    # on HiGHS's choice among alternative optima)
    for objective, status in table.status.iloc[:-2].items():
        row = read_dataset(out / f"payoff/battery/{objective}.nc")
        assert status == ("feasible" if row.attrs["ac_correction_iterations"] >= 1 else "optimal"), objective
        assert status == row.attrs["solver_status"], objective
    front = read_dataset(out / "fronts/cost_vs_variance.nc")
    assert list(front.point.values) == ["0.0000", "0.5000", "1.0000"]
    pair = front.value.sel(objective=["energy_cost_usd", "load_variance_mw2"]).values
    assert not dominated(pair, ["min", "min"], 1e-4).any() and not front.dominated.values.any()
    assert pair[0, 0] > pair[-1, 0] and pair[0, 1] < pair[-1, 1]  # cheaper costs variance
    point = read_dataset(tradeoffs_run / str(front.solution_file.values[1]))
    np.testing.assert_allclose(point.p_grid_mw, front.p_grid_mw.isel(point=1))
    # one non-zero weight: the single-objective solve of energy cost
    only = read_dataset(out / "compromises/cost_only.nc")
    assert only.attrs["objective_energy_cost_usd"] == pytest.approx(
        float(payoff.best.sel(objective="energy_cost_usd")), rel=1e-3
    )
    # fuzzy: largest membership no larger than that of any single-objective solution
    fuzzy = read_dataset(out / "compromises/fuzzy4.nc")
    chosen = json_attr(fuzzy, "params")["objective"]["fuzzy"]
    for row in payoff.optimised.values:
        solution = read_dataset(out / f"payoff/battery/{row}.nc")
        assert fuzzy.attrs["membership_max"] <= max(memberships(solution, chosen).values()) + 1e-6, row
    reference = read_dataset(out / "solutions/idle.nc")
    versus_idle = read_dataset(out / "compromises/fuzzy_vs_idle.nc")
    for name, (_, ref) in json_attr(versus_idle, "params")["objective"]["fuzzy"].items():
        assert ref == pytest.approx(reference.attrs[f"objective_{name}"])
    assert (out / "figures/fronts/cost_vs_variance.png").stat().st_size > 5000


def test_more_front_points_solve_only_the_new_ones(tradeoffs_run):
    text = (tradeoffs_run / TRADEOFFS).read_text()
    edited = text.replace("points: 3", "points: 5")
    assert edited != text
    study = tradeoffs_run / "config/studies/tiny_tradeoffs_more.yaml"
    study.write_text(edited)
    proc = snakemake(tradeoffs_run, "-n", "--cores", "2", "--configfile", str(study.relative_to(tradeoffs_run)))
    out = proc.stdout + proc.stderr
    assert job_counts(out) == {"solve_front_point": 2, "gather_front": 1, "plot_front": 1, "all": 1}
    assert sorted(re.findall(r"Front cost_vs_variance, point (\S+) of study", out)) == ["0.2500", "0.7500"]


ROLLING = "config/studies/tiny_rolling.yaml"


def _rolling_study(project: Path, name: str, **replace: str) -> str:
    """tiny_rolling with the real-time scenario only (and text replacements), as a study file."""
    text = (project / ROLLING).read_text().replace("study: tiny_rolling", f"study: {name}")
    text = text.replace("    watch: {operation: {mode: on_violation}}\n", "")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = project / f"config/studies/{name}.yaml"
    path.write_text(text)
    return str(path.relative_to(project))


@pytest.fixture(scope="module")
def rolling_run(project) -> Path:
    snakemake(project, "--cores", "2", "--configfile", _rolling_study(project, "mc"))
    return project / "results/mc"


def test_monte_carlo_summary_is_the_statistics_of_the_realisations(rolling_run):
    rows = pd.read_csv(rolling_run / "monte_carlo_realisations.csv")
    summary = pd.read_csv(rolling_run / "monte_carlo.csv", index_col=["scenario", "operation", "statistic"])
    assert sorted(set(rows.operation)) == ["plan_on_actual", "rolling"]  # side by side
    # the plan's battery modes are kept by the plan on the actual day and by every re-solve: feasible
    assert sorted(rows.realisation[rows.operation == "rolling"]) == [0, 1, 2] and (rows.status == "feasible").all()
    assert (summary["used"] == 3).all() and (summary["left_out"] == 0).all()
    checked = 0
    for operation in ("plan_on_actual", "rolling"):
        values = rows[rows.operation == operation]
        assert summary.loc[("realtime", operation, "mean"), "realisations"] == 3
        for column in (
            "energy_cost_usd",
            "objective",
            "ac_losses_mwh",
            "peak_import_mw",
            "voltage_deviation_pu2",
            "pv_curtailed_mwh",
            "v_ac_min_pu",
        ):
            sample = values[column].to_numpy()
            assert summary.loc[("realtime", operation, "mean"), column] == pytest.approx(np.mean(sample), rel=1e-9)
            assert summary.loc[("realtime", operation, "p5"), column] == pytest.approx(
                np.percentile(sample, 5), rel=1e-9
            )
            assert summary.loc[("realtime", operation, "p95"), column] == pytest.approx(
                np.percentile(sample, 95), rel=1e-9
            )
            checked += 1
    assert checked == 14
    # the realisations differ, and the two operations of one realisation differ
    assert rows[rows.operation == "rolling"].energy_cost_usd.nunique() == 3
    paired = rows.pivot(index="realisation", columns="operation", values="objective")
    assert not np.allclose(paired["rolling"], paired["plan_on_actual"])
    mc = read_dataset(rolling_run / "monte_carlo.nc")
    np.testing.assert_allclose(
        mc.kpi_energy_cost_usd.sel(scenario="realtime", operation="rolling"),
        rows[rows.operation == "rolling"].sort_values("realisation").energy_cost_usd,
    )


def test_realised_schedules_hold_the_contract_physics_and_provenance(rolling_run, project):
    from feederflex.forecast import actual_day

    profiles = read_dataset(project / "resources/mc/profiles/sunny.nc")
    for k, batch in ((0, 0), (1, 0), (2, 1)):
        folder = rolling_run / f"rolling/realtime/batch{batch}"
        sol, plan = read_dataset(folder / f"r{k:04d}.nc"), read_dataset(folder / f"r{k:04d}.plan.nc")
        assert (folder / f"r{k:04d}.ac.nc").exists() and (folder / f"r{k:04d}.plan.ac.nc").exists()
        assert sol.attrs["solver_status"] == "feasible" and sol.attrs["rolling_status"] == "completed"
        assert "day-ahead plan (integers)" in sol.attrs["solver_gap_note"]
        assert (
            sol.attrs["realisation"] == k
            and sol.attrs["forecast_seed"] == 11
            and plan.attrs["operation"] == "plan_on_actual"
        )
        assert json_attr(sol, "uncertainty")["relative_sd"]["pv"] == 0.25 and "pyomo" in json_attr(sol, "versions")
        assert (sol.rolling_resolved == 1).all() and (sol.rolling_status == "optimal").all()
        # the realised day is the realisation's actual day, recomputed from the seed
        actual = actual_day(profiles, json_attr(sol, "uncertainty"), k)
        np.testing.assert_allclose(sol.load_p_mw, actual.load_p_mw)
        np.testing.assert_allclose(sol.pv_avail_mw.sum("pv"), actual.pv_avail_pu * 9.49, rtol=1e-9)
        for ds in (sol, plan):
            demand = ds.load_p_mw.sum("bus") + ds.fess_p_ch_mw.sum("fess") - ds.fess_p_dis_mw.sum("fess")
            np.testing.assert_allclose(ds.p_grid_mw, demand - ds.pv_p_mw.sum("pv"), atol=1e-6)
            assert (ds.pv_p_mw <= ds.pv_avail_mw + 1e-7).all()
            e = np.concatenate([ds.fess_e_init_mwh.values, ds.fess_e_mwh.values[:, 0]])
            np.testing.assert_allclose(
                np.diff(e), 0.95 * ds.fess_p_ch_mw.values[:, 0] - ds.fess_p_dis_mw.values[:, 0] / 0.95, atol=1e-6
            )
            assert e[-1] >= e[0] - 1e-6 and (ds.fess_e_mwh >= 0.1 - 1e-9).all() and (ds.fess_e_mwh <= 0.9 + 1e-9).all()


def test_realisations_are_batched_into_ceil_k_over_n_jobs(project):
    study = _rolling_study(project, "mc_plan", **{"realisations: 3": "realisations: 5"})
    proc = snakemake(project, "-n", "--cores", "2", "--configfile", study)
    out = proc.stdout + proc.stderr
    assert job_counts(out)["solve_rolling"] == 3  # ceil(5 / 2)
    assert sorted(re.findall(r"on actual days, batch (\d+)", out)) == ["0", "1", "2"]
    many = _rolling_study(
        project, "mc_many", **{"realisations: 3": "realisations: 1000", "batch_size: 2": "batch_size: 40"}
    )
    assert job_counts(snakemake(project, "-n", "--cores", "2", "--configfile", many).stdout)["solve_rolling"] == 25
