"""What a 96-step receding-horizon day costs against one day-ahead solve (issue 6), measured, not asserted.

IEEE 33, 96 quarter-hour steps, four PV units, one 1 MW / 4 MWh battery, forecast errors 25 %
(PV), 12.5 % (load), correlation 0.5. Reports: the day-ahead solve (build, hand-over and HiGHS as
the workflow's solve job does it), the rolling function as a whole (day-ahead plan, plan on the
actual day, 96 re-solves), HiGHS time of the re-solves, and what rebuilding a model for every
step would cost at least (96 x build + hand-over of one model).

Usage: python benchmarks/rolling.py [--repeat 3]; writes benchmarks/results/rolling.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from feederflex import feeders, operation, profiles, study
from feederflex.forecast import actual_day
from feederflex.model import ScenarioData, build_model
from feederflex.solve import Session

ROOT = Path(__file__).resolve().parents[1]
FESS = [{"name": "b18", "bus": 18, "p_mw": 1.0, "e_mwh": 4.0, "soc_init": 0.5, "end": "at_least_initial"}]


def once(feeder, settings, forecast, actual) -> dict:
    t = time.perf_counter()
    m = build_model(ScenarioData(feeder, forecast, settings))
    build = time.perf_counter() - t
    session = Session(m, settings["solver"])
    t = time.perf_counter()
    session.sync()  # the hand-over
    handover = time.perf_counter() - t
    result = session.solve("day-ahead plan", sync=False)
    day_ahead = build + handover + result.solve_seconds
    t = time.perf_counter()
    ds = operation.solve_rolling(feeder, forecast, actual, settings)
    whole = time.perf_counter() - t
    return {
        "day_ahead_s": day_ahead,
        "build_s": build,
        "handover_s": handover,
        "day_ahead_highs_s": result.solve_seconds,
        "rolling_s": whole,
        "rolling_resolves_s": float(ds.attrs["rolling_seconds"]),
        "rebuild_each_step_at_least_s": 96 * (build + handover),
        "ratio_rolling_to_day_ahead": whole / day_ahead,
        "objective_day_ahead": float(ds.attrs["day_ahead_objective"]),
        "objective_plan_on_actual": float(ds.attrs["plan_on_actual_objective"]),
        "objective_rolling": float(ds.attrs["solver_objective"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = study.load_yaml(ROOT / "config/schema.yaml")
    cfg = study.validate_config(
        {"time": {"hours": 24, "step_minutes": 15}, "base": {"fess": FESS, "ac_correction": {"enabled": False}}}, schema
    )
    settings = study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))["base"]
    feeder = feeders.build_feeder("case33bw")
    forecast = profiles.build_profiles(feeder, cfg["days"]["summer"], 24, 15, "summer")
    actual = actual_day(
        forecast, {"seed": 1, "relative_sd": {"pv": 0.25, "load": 0.125, "ev": 0.125}, "correlation": 0.5}, 0
    )
    runs = [once(feeder, settings, forecast, actual) for _ in range(args.repeat)]
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out = ROOT / "benchmarks/results/rolling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "median": summary}, indent=1))
    for key, value in summary.items():
        print(f"| {key} | {value:.3f} |")


if __name__ == "__main__":
    main()
