"""Regional microgrids (issue 19), measured, not asserted: the 96-step, 900-vehicle itinerary
optimum and 004's rule simulation of config/studies/regional2022.yaml, in one process.

Usage: python benchmarks/regional.py [--repeats 3] [--day sunny]
Writes benchmarks/results/regional.json and prints a Markdown table (median, min, max): model
build, HiGHS and wall seconds of solve_scenario, the model's size and the bill over the six
subareas.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

from feederflex import feeders, fleet, profiles, regional, schedule, study

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "config/config.yaml", ROOT / "config/studies/regional2022.yaml"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--day", default="sunny", choices=["sunny", "cloudy"])
    args = parser.parse_args()
    valid, scenarios = study.load_study(study.merge_study_files(FILES), ROOT / "config/schema.yaml", FILES)
    feeder = feeders.build_feeder("regional3")
    day = profiles.build_profiles(feeder, valid["days"][args.day], 24, 15, args.day)
    sample = fleet.sample_fleet(valid["fleets"]["commuters"], feeder, 24, 15, "commuters")
    rows = []
    for case in ("rules", "optimum"):
        name = f"{args.day}-{case}"
        settings = scenarios[name]
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ds = schedule.solve_scenario(feeder, day, settings, fleet=sample)
            wall = time.perf_counter() - start
            area = settings["regional"]
            bill = regional.bills(ds, area["subareas"], area["ev_discharge_price_per_mwh"]).set_index("subarea")
            runs.append(
                {
                    "wall_s": wall,
                    "build_s": float(ds.attrs["build_seconds"]),
                    "highs_s": float(ds.attrs["solver_solve_seconds"]),
                    "status": ds.attrs["solver_status"],
                    "rows": int(ds.attrs["solver_rows"]),
                    "columns": int(ds.attrs["solver_columns"]),
                    "bill": float(bill.loc["all", "bill"]),
                }
            )
        rows.append({"scenario": name, "vehicles": int(sample.attrs["vehicles"]), "runs": runs})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = ROOT / "benchmarks/results/regional.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "peak_rss_mb": peak_mb}, indent=2))
    print("| scenario | vehicles | status | rows x columns | build s | HiGHS s | wall s | bill (RMB/day) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        runs = row["runs"]

        def cell(key, runs=runs):
            values = [r[key] for r in runs]
            return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"

        first = runs[0]
        size = f"{first['rows']:,} x {first['columns']:,}"
        print(
            f"| {row['scenario']} | {row['vehicles']} | {first['status']} | {size} | {cell('build_s')} | "
            f"{cell('highs_s')} | {cell('wall_s')} | {first['bill']:,.0f} |"
        )
    print(f"peak memory of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
