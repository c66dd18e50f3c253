"""EV fleet scaling (issue 4), measured, not asserted: sampling and envelope time for 20,000
vehicles, and the aggregate-mode solve for 2,000 vs 20,000 vehicles on IEEE 33 (24 h, hourly).

Usage: python benchmarks/ev_scaling.py [--repeats 3]
Writes benchmarks/results/ev_scaling.json and prints a Markdown table (median, min, max).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from feederflex import feeders, fleet, profiles, schedule, study

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    schema = study.load_yaml(ROOT / "config/schema.yaml")
    feeder = feeders.build_feeder("case33bw")
    rows = []
    for n_per_bus in (62, 625):  # 1,984 and 20,000 vehicles on the 32 load buses
        cfg = study.validate_config(
            {
                "fleets": {"f": {"vehicles_per_bus": n_per_bus, "seed": 1}},
                "base": {"ev_fleet": "f", "ev_control": {"mode": "aggregate", "repair_iterations": 0}},
            },
            schema,
        )
        spec = cfg["fleets"]["f"]
        sample_s, ev = timed(lambda spec=spec: fleet.sample_fleet(spec, feeder, 24, 60), args.repeats)
        env_s, _ = timed(lambda ev=ev: fleet.envelopes(ev, [int(b) for b in feeder.bus.values], 24, 60), args.repeats)
        settings = study.expand_scenarios(cfg, schema)["base"]
        prof = profiles.build_profiles(feeder, cfg["days"]["summer"], 24, 60)
        solve_s, ds = timed(
            lambda ev=ev, prof=prof, settings=settings: schedule.solve_scenario(feeder, prof, settings, fleet=ev),
            args.repeats,
        )
        highs = [ds.attrs["solver_solve_seconds"]]
        rows.append(
            {
                "vehicles": int(ev.sizes["ev"]),
                "sample_s": statistics.median(sample_s),
                "envelope_s": statistics.median(env_s),
                "solve_job_s": statistics.median(solve_s),
                "solve_job_min_max": [min(solve_s), max(solve_s)],
                "highs_s_last": highs[0],
                "rows": ds.attrs["solver_rows"],
                "columns": ds.attrs["solver_columns"],
                "unmet_mwh_without_repair": ds.attrs["ev_unmet_mwh"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "benchmarks/results/ev_scaling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(
        "| vehicles | sample s | envelope s | solve job s (median [min, max]) | rows | columns | unmet MWh (no repair) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["solve_job_min_max"]
        print(
            f"| {r['vehicles']} | {r['sample_s']:.2f} | {r['envelope_s']:.2f} | {r['solve_job_s']:.2f} [{lo:.2f}, {hi:.2f}] | "
            f"{r['rows']} | {r['columns']} | {r['unmet_mwh_without_repair']:.3f} |"
        )


if __name__ == "__main__":
    main()
