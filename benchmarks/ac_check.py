"""Time the AC check of one schedule in one process: `python benchmarks/ac_check.py [scenario] [--repeat N]`.

Default: the default study's ev-peak_storage-fess (IEEE 33, 24 hourly steps). The schedule is
solved once (``solve_scenario``, not timed); then ``ac_network`` (the feeder's pandapower net made
ready) and ``ac_check`` (the power flow of every step) are timed separately, ``--repeat`` times
each, each ``ac_check`` on a fresh net (as a correction's first check) and again on the same net
(as its later checks). Prints median [min, max] in seconds. ``--profile`` prints a cProfile of one
first check instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from pathlib import Path

from feederflex import acpf, feeders, profiles, schedule, study
from feederflex import fleet as fleets

ROOT = Path(__file__).resolve().parents[1]


def solved(scenario: str):
    """The feeder and the solved schedule of ``scenario`` of the default study."""
    files = [ROOT / "config/config.yaml"]
    valid, scenarios = study.load_study(study.merge_study_files(files), ROOT / "config/schema.yaml", files)
    settings = scenarios[scenario]
    hours, step = valid["time"]["hours"], valid["time"]["step_minutes"]
    feeder = feeders.build_feeder(valid["network"]["source"])
    day = profiles.build_profiles(feeder, valid["days"][settings["day"]], hours, step, settings["day"])
    name = settings["ev_fleet"]
    fleet = fleets.sample_fleet(valid["fleets"][name], feeder, hours, step, name) if name else None
    return feeder, schedule.solve_scenario(feeder, day, settings, fleet=fleet)


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} [{min(values):.4f}, {max(values):.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", default="ev-peak_storage-fess")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    feeder, ds = solved(args.scenario)
    v_slack = float(ds.attrs["substation_v_pu"])
    acpf.ac_check(feeder, ds, net=acpf.ac_network(feeder, v_slack))  # imports and first-call costs, not timed
    if args.profile:
        net = acpf.ac_network(feeder, v_slack)
        profiler = cProfile.Profile()
        profiler.enable()
        acpf.ac_check(feeder, ds, net=net)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return
    build, first, again = [], [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        net = acpf.ac_network(feeder, v_slack)
        build.append(time.perf_counter() - started)
        started = time.perf_counter()
        acpf.ac_check(feeder, ds, net=net)
        first.append(time.perf_counter() - started)
        started = time.perf_counter()
        ac = acpf.ac_check(feeder, ds, net=net)
        again.append(time.perf_counter() - started)
    steps = ds.sizes["time"]
    print(f"{args.scenario}: {steps} steps, {int(ac.attrs['steps_converged'])} converged, {args.repeat} runs")
    print(f"ac_network s: {_summary(build)}")
    print(f"ac_check s, fresh net: {_summary(first)} (per step {statistics.median(first) / steps * 1e3:.2f} ms)")
    print(f"ac_check s, same net: {_summary(again)} (per step {statistics.median(again) / steps * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
