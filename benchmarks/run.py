"""The size ladder (issue 9): model build, hand-over to HiGHS, HiGHS, AC check, memory, per rung.

Each rung is one scenario measured in a fresh Python process (so peak memory is its own), several
times, one after the other; every figure is reported as median [min, max]. Nothing here is a test:
the machine has 2 cores and is noisy, so compare ratios measured in one run.

Rungs (``--rungs``, default all that this installation can build):

- ``ieee33_lp``        IEEE 33, 24 hourly steps, four PV units, no storage: a linear program;
- ``ieee33_lp96``      the same at 96 quarter-hour steps;
- ``ieee33_mess6``     IEEE 33, 24 steps, peak EV load, 6 MESS on 8 stations (tong2021): a MILP;
- ``ieee33_mess6_96``  the same at 96 steps;
- ``ieee69_lp``        IEEE 69 (Baran-Wu), 24 steps, PV: an LP (skipped if case69 is not built in);
- ``ieee33x3_mess12``  three IEEE 33 feeders joined at the substation (97 buses), 12 PV, 12 MESS on
                       12 stations: issue 3's large case;
- ``simbench_mv96``    the real-grid rung (issue 20): SimBench 1-MV-semiurb--1-sw (120 buses, two
                       parallel 110/20 kV transformers, 123 generators, 87 batteries), its day of
                       highest generation in June-August from the measured year, 96 quarter-hour
                       steps, branch limits: a MILP (the batteries' charge/discharge binaries).

Per run: rows, columns, integers, non-zeros; ``build_s`` (Pyomo model construction),
``handover_s`` (Pyomo to HiGHS: compiling the model to matrices and ``passModel``, up to 2026-12-01
Pyomo's persistent ``set_instance``, plus what the solve call spends outside HiGHS),
``highs_s`` (HiGHS's own run time), ``gap``, ``ac_s`` (pandapower AC check of the schedule),
``job_s`` (the whole process: imports, prepared inputs, build, solve, AC check, NetCDF write) and
``peak_mb`` (peak resident memory). ``overhead`` = (build + hand-over) / HiGHS. MILP rungs solve
the full model once within ``--time-limit`` from no start (the workflow's fixed-baseline start and
unit search are measured in benchmarks/mess_levers.py).

``--linopy`` builds the ``ieee33_lp`` LP also with linopy (benchmark extra: pip install
feederflex[benchmark]) and hands it to HiGHS the same way, as a reference for the overhead;
``--workflow`` measures Snakemake: the default study with --cores 2 (and the seconds of each of its
solve and AC jobs from Snakemake's benchmark files), an LP study of ``--lp-scenarios`` scenarios
(200; solve jobs only, ``--until solve_scenario``: scenarios per minute), its no-op re-run, and
``snakemake -n`` of a 1,000-scenario study next to that of ``benchmarks/dry_run_floor.smk``, the
same DAG without feederflex (Snakemake's own floor).

Usage: python benchmarks/run.py [--rungs ieee33_lp ...] [--repeat 3] [--time-limit 60] [--linopy] [--workflow]
       [--lp-scenarios 200]
Writes benchmarks/results/ladder-<UTC time>.json and benchmarks/results/ladder.md (the table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STARTED = time.perf_counter()

TONG_STATIONS = [  # tong2021.yaml
    {"bus": 3, "x_km": -2.98, "y_km": 0.76},
    {"bus": 7, "x_km": -0.45, "y_km": 2.87},
    {"bus": 12, "x_km": 2.38, "y_km": 4.80},
    {"bus": 15, "x_km": 3.25, "y_km": 2.14},
    {"bus": 18, "x_km": 3.76, "y_km": -1.27},
    {"bus": 22, "x_km": 1.18, "y_km": 4.82},
    {"bus": 25, "x_km": -2.56, "y_km": -2.57},
    {"bus": 30, "x_km": -0.29, "y_km": -3.19},
]
DELAY = [0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0]
PV4 = [(4, 1.43), (15, 2.25), (22, 3.17), (29, 2.64)]


def _unit(name: str, station: int) -> dict:
    return {"name": name, "p_mw": 1.5, "e_mwh": 4.5, "soc_init": 0.5, "initial_station": station}


def rung_study(name: str, time_limit: float) -> dict:
    """The partial study (overlaying config/config.yaml) of a rung; its only scenario is ``base``."""
    solver = {"time_limit_s": time_limit, "mip_gap": 0.001, "threads": 1}
    study: dict = {
        "study": f"bench_{name}",
        "scenarios": {"list": {}, "axes": {}},
        "base": {"ev_fleet": None, "fess": [], "solver": solver, "ac_correction": {"enabled": False}},
    }
    steps = 15 if name.endswith("96") else 60
    study["time"] = {"hours": 24, "step_minutes": steps}
    if name.startswith("ieee33_mess6"):
        study["transport"] = {"stations": TONG_STATIONS, "detour_factor": 1.3, "speed_kmh": 30.0, "delay_h": DELAY}
        study["base"]["ev_fleet"] = "peak"
        study["base"]["mess"] = {"units": [_unit(f"MESS{k + 1}", s) for k, s in enumerate((7, 12, 18, 22, 25, 30))]}
    elif name == "ieee69_lp":
        study["network"] = {"source": "case69"}
    elif name == "ieee33x3_mess12":
        study["network"] = {"source": "case33bw_x3"}
        offsets = {"A": (0, 0.0), "B": (32, 12.0), "C": (64, -12.0)}
        stations, units, pv = [], [], []
        for feeder, (shift, dx) in offsets.items():
            for st in TONG_STATIONS:
                if st["bus"] in (7, 18, 25, 30):
                    stations.append({"bus": st["bus"] + shift, "x_km": st["x_km"] + dx, "y_km": st["y_km"]})
                    units.append(_unit(f"MESS{feeder}{st['bus']}", st["bus"] + shift))
            pv += [{"name": f"pv{bus + shift}", "bus": bus + shift, "p_mw": p} for bus, p in PV4]
        study["transport"] = {"stations": stations, "detour_factor": 1.3, "speed_kmh": 30.0, "delay_h": DELAY}
        study["base"]["mess"] = {"units": units}
        study["base"]["pv"] = pv
        study["plots"] = {"bus": 18}
    elif name == "simbench_mv96":
        study["network"] = {"source": "simbench:1-MV-semiurb--1-sw"}
        study["days"] = {"summer": {"source": "net", "pick": "max_generation", "months": [6, 7, 8]}}
        study["base"]["pv"] = []  # the grid's own generators and batteries come with it
        study["base"]["grid"] = {"substation_v_pu": 1.025, "v_min_pu": 0.95, "v_max_pu": 1.05}
        study["plots"] = {"bus": 26}
    return study


RUNGS = (
    "ieee33_lp",
    "ieee33_lp96",
    "ieee33_mess6",
    "ieee33_mess6_96",
    "ieee69_lp",
    "ieee33x3_mess12",
    "simbench_mv96",
)


def load_rung(name: str, time_limit: float) -> tuple[dict, dict]:
    """Validated study config and the settings of the rung's scenario."""
    from feederflex import study

    overlay = rung_study(name, time_limit)
    cfg = study.merge(study.load_yaml(ROOT / "config/config.yaml"), overlay)
    cfg["scenarios"] = overlay["scenarios"]
    valid, scenarios = study.load_study(cfg, ROOT / "config/schema.yaml", [ROOT / "config/config.yaml"])
    return valid, scenarios["base"]


def prepare(valid: dict, settings: dict):
    """Prepared inputs as the workflow's prepare rules make them."""
    from feederflex import feeders, fleet, profiles, travel

    hours, step = valid["time"]["hours"], valid["time"]["step_minutes"]
    net = feeders.load_pandapower(valid["network"]["source"])
    feeder = feeders.feeder_from_pandapower(net, valid["network"]["source"])
    day_cfg = valid["days"][settings["day"]]
    day = profiles.build_profiles(feeder, day_cfg, hours, step, settings["day"], net)
    ev = None
    if settings["ev_fleet"]:
        ev = fleet.sample_fleet(valid["fleets"][settings["ev_fleet"]], feeder, hours, step, settings["ev_fleet"])
    trips = None
    if settings["mess"]["units"]:
        trips = travel.build_travel(valid["transport"], [int(b) for b in feeder.bus.values], hours, step)
    return feeder, day, ev, trips


def measure(name: str, time_limit: float) -> dict:
    """One run of one rung in this process (call in a fresh process for its own peak memory)."""
    from feederflex.acpf import ac_check
    from feederflex.io import write_dataset
    from feederflex.model import ScenarioData, build_model
    from feederflex.solution import solution_dataset
    from feederflex.solve import Session

    out: dict = {"rung": name}
    valid, settings = load_rung(name, time_limit)
    t = time.perf_counter()
    feeder, day, ev, trips = prepare(valid, settings)
    out["prepare_s"] = time.perf_counter() - t
    data = ScenarioData(
        feeder, day, settings, None if ev is None else ev.ev_p_mw.transpose("time", "bus").values, trips, ev
    )
    t = time.perf_counter()
    model = build_model(data)
    out["build_s"] = time.perf_counter() - t
    session = Session(model, settings["solver"])
    session.sync()  # the hand-over, booked to the wall time of the stage that follows it
    result = session.solve("rung", sync=False)
    out["highs_s"] = float(result.solve_seconds)
    out["handover_s"] = max(0.0, result.wall_seconds - out["highs_s"])
    out.update(
        {
            "rows": result.rows,
            "columns": result.columns,
            "integers": result.integers,
            "nonzeros": result.nonzeros,
            "status": result.status.value,
            "gap": result.mip_gap,
            "objective": result.objective,
        }
    )
    out["overhead"] = (out["build_s"] + out["handover_s"]) / max(out["highs_s"], 1e-9)
    solution = solution_dataset(model, data, result)
    t = time.perf_counter()
    if result.status.has_solution:
        ac_check(feeder, solution)
    out["ac_s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(solution, Path(tmp) / "solution.nc")
    out["job_s"] = time.perf_counter() - STARTED
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def measure_linopy(time_limit: float) -> dict:
    """The ieee33_lp rung built with linopy (benchmarks/linopy_lp.py) and handed to HiGHS."""
    sys.path.insert(0, str(Path(__file__).parent))
    from feederflex.model import ScenarioData
    from linopy_lp import build_linopy

    valid, settings = load_rung("ieee33_lp", time_limit)
    feeder, day, _, _ = prepare(valid, settings)
    data = ScenarioData(feeder, day, settings)
    t = time.perf_counter()
    model = build_linopy(data)
    out = {"rung": "ieee33_lp (linopy)", "build_s": time.perf_counter() - t}
    t = time.perf_counter()
    h = model.to_highspy()
    out["handover_s"] = time.perf_counter() - t
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.run()
    out["highs_s"] = float(h.getRunTime())
    out.update(
        {
            "rows": int(h.getNumRow()),
            "columns": int(h.getNumCol()),
            "integers": 0,
            "nonzeros": int(h.getNumNz()),
            "status": h.modelStatusToString(h.getModelStatus()),
            "gap": 0.0,
            "objective": float(h.getInfo().objective_function_value) + float(model.objective.expression.const),
        }
    )
    out["overhead"] = (out["build_s"] + out["handover_s"]) / max(out["highs_s"], 1e-9)
    out["job_s"] = time.perf_counter() - STARTED
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def available(name: str) -> bool:
    import importlib.util

    from feederflex.feeders import BUILTIN_FEEDERS

    if name == "simbench_mv96":
        return importlib.util.find_spec("simbench") is not None
    return name != "ieee69_lp" or "case69" in BUILTIN_FEEDERS


def _child(name: str, time_limit: float) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, "--time-limit", str(time_limit)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rung {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """Median [min, max] of every number over the runs; text fields from the first run."""
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [float(r[key]) for r in runs]
            out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        else:
            out[key] = value
    return out


def _fmt(cell, digits: int = 2) -> str:
    if isinstance(cell, dict):
        return f"{cell['median']:.{digits}f} [{cell['min']:.{digits}f}, {cell['max']:.{digits}f}]"
    return str(cell)


def table(rungs: list[dict]) -> str:
    head = (
        "| rung | rows | columns | integers | non-zeros | build s | hand-over s | HiGHS s | gap | (build + hand-over) / HiGHS "
        "| AC check s | job s | peak MB |\n|" + "---|" * 13
    )
    lines = [head]
    for r in rungs:
        gap = r["gap"]["median"] if isinstance(r["gap"], dict) else r["gap"]
        lines.append(
            f"| {r['rung']} | {r['rows']['median']:,.0f} | {r['columns']['median']:,.0f} | {r['integers']['median']:,.0f} "
            f"| {r['nonzeros']['median']:,.0f} | {_fmt(r['build_s'])} | {_fmt(r['handover_s'])} | {_fmt(r['highs_s'])} "
            f"| {100 * gap:.2f} % ({r['status']}) | {_fmt(r['overhead'])} | {_fmt(r.get('ac_s', '-'))} | {_fmt(r['job_s'])} "
            f"| {_fmt(r['peak_mb'], 0)} |"
        )
    return "\n".join(lines)


def _snakemake(workdir: Path, *args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


def _job_seconds(work: Path, study: str, rule: str) -> list[float]:
    """Wall seconds of every job of ``rule`` from Snakemake's benchmark files (``s`` column)."""
    seconds = []
    for tsv in sorted((work / "results" / study / "benchmarks" / rule).glob("*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        seconds.append(float(values.split("\t")[header.split("\t").index("s")]))
    return seconds


def workflow_figures(lp_scenarios: int = 200) -> dict:
    """Snakemake wall times in a scratch copy of the workflow (never this checkout's results/):
    the default study (with each solve and AC job's own seconds), ``lp_scenarios`` LP scenarios
    (solve jobs only), its no-op re-run, and the dry run of 1,000 scenarios."""
    import yaml

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for item in ("Snakefile", "workflow", "config", "envs"):
            src = ROOT / item
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
        out["default_study_s"] = _snakemake(work, "--cores", "2")
        for rule in ("solve_scenario", "validate_ac"):
            jobs = _job_seconds(work, "default", rule)
            out[f"default_{rule}_job_s"] = {"median": statistics.median(jobs), "min": min(jobs), "max": max(jobs)}
        many = {
            "study": "many",
            "scenarios": {
                "list": {f"s{k:03d}": {"grid": {"v_min_pu": round(0.90 + 0.0002 * k, 4)}} for k in range(lp_scenarios)}
            },
            "base": {"ev_fleet": None, "fess": [], "ac_correction": {"enabled": False}},
        }
        (work / "config/studies/many.yaml").write_text(yaml.safe_dump(many))
        # solves only (--until): scenarios per minute of the optimisation itself, AC checks excluded
        target = "--until", "solve_scenario"
        seconds = _snakemake(work, "--cores", "2", "--configfile", "config/studies/many.yaml", *target)
        out["lp_scenarios"] = lp_scenarios
        out["lp_s"] = seconds
        out["lp_scenarios_per_min"] = lp_scenarios / (seconds / 60)
        jobs = _job_seconds(work, "many", "solve_scenario")
        out["lp_solve_job_s"] = {"median": statistics.median(jobs), "min": min(jobs), "max": max(jobs)}
        out["lp_noop_s"] = _snakemake(work, "--cores", "2", "--configfile", "config/studies/many.yaml", *target)
        thousand = dict(
            many,
            study="thousand",
            scenarios={
                "list": {f"s{k:04d}": {"grid": {"v_min_pu": round(0.90 + 0.00002 * k, 5)}} for k in range(1000)}
            },
        )
        (work / "config/studies/thousand.yaml").write_text(yaml.safe_dump(thousand))
        out["dry_run_1000_s"] = _snakemake(work, "-n", "--cores", "2", "--configfile", "config/studies/thousand.yaml")
        # Snakemake's own floor: the same 3,005-job DAG (callable inputs, params and resources) without feederflex
        floor = work / "floor"
        floor.mkdir()
        out["dry_run_1000_floor_s"] = _snakemake(
            floor, "-n", "--cores", "2", "--snakefile", str(ROOT / "benchmarks" / "dry_run_floor.smk")
        )
    return out


def machine() -> dict:
    from feederflex.io import versions

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "versions": versions(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rungs", nargs="+", default=None, choices=RUNGS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--linopy", action="store_true")
    parser.add_argument("--workflow", action="store_true")
    parser.add_argument("--no-rungs", action="store_true", help="only the workflow figures (with --workflow)")
    parser.add_argument("--lp-scenarios", type=int, default=200, help="size of the LP study (with --workflow)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = measure_linopy(args.time_limit) if args.child == "linopy" else measure(args.child, args.time_limit)
        print(json.dumps(result))
        return result
    names = [] if args.no_rungs else [n for n in (args.rungs or RUNGS) if available(n)]
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "repeat": args.repeat,
        "time_limit_s": args.time_limit,
        "rungs": [],
        "runs": [],
    }
    for name in names + (["linopy"] if args.linopy and not args.no_rungs else []):
        runs = [_child(name, args.time_limit) for _ in range(args.repeat)]
        report["runs"] += runs
        report["rungs"].append(summarise(runs))
        print(f"{name}: done", file=sys.stderr)
    if args.workflow:
        report["workflow"] = workflow_figures(args.lp_scenarios)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = report["when"].replace(":", "").replace("-", "")[:15]
    (args.out / f"ladder-{stamp}.json").write_text(json.dumps(report, indent=1))
    text = table(report["rungs"])
    if "workflow" in report:
        text += "\n\n| workflow | figure |\n|---|---|\n" + "\n".join(
            f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in report["workflow"].items()
        )
    (args.out / "ladder.md").write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
