"""Time one scenario's solve_scenario in one process: `python benchmarks/one_scenario.py [scenario]`.

Default: the default study's ev-peak_storage-fess (IEEE 33, 24 hourly steps). Prints the wall
seconds of the call, HiGHS's seconds, the AC correction iterations and the objective.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from feederflex import feeders, profiles, schedule, study
from feederflex import fleet as fleets

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", default="ev-peak_storage-fess")
    args = parser.parse_args()
    files = [ROOT / "config/config.yaml"]
    valid, scenarios = study.load_study(study.merge_study_files(files), ROOT / "config/schema.yaml", files)
    settings = scenarios[args.scenario]
    hours, step = valid["time"]["hours"], valid["time"]["step_minutes"]
    feeder = feeders.build_feeder(valid["network"]["source"])
    day = profiles.build_profiles(feeder, valid["days"][settings["day"]], hours, step, settings["day"])
    name = settings["ev_fleet"]
    fleet = fleets.sample_fleet(valid["fleets"][name], feeder, hours, step, name) if name else None
    started = time.perf_counter()
    ds = schedule.solve_scenario(feeder, day, settings, fleet=fleet)
    print(
        f"{args.scenario}: solve_scenario {time.perf_counter() - started:.2f} s, "
        f"HiGHS {ds.attrs['solver_solve_seconds']:.2f} s, {ds.attrs['ac_correction_iterations']} AC iterations, "
        f"objective {ds.attrs['solver_objective']:.9g}"
    )


if __name__ == "__main__":
    main()
