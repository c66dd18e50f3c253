"""001's PSO-GSA against the MILP on the same siting-and-sizing problem (issue 18).

The problem is scene 3 of config/studies/feng2024.yaml: one fixed battery (0.5-1.0 MW) and one
mobile battery (0.4-0.9 MW) at any bus but the substation, each with its 24 h operation; objective
planning_cost / 365 + 1e6 x voltage offset (the study's weights).

- MILP: the scenario's model with the siting binaries and sizes free, solved by HiGHS to the
  study's gap (no AC correction, so both sides are judged on the same LinDistFlow model).
- PSO-GSA (001 section 4.3, eq. 25-34): 50 particles, 50 iterations, c1 = 0.5, c2 = 1.5 (001
  section 5.1); what 001 omits is PSOGSA's (Mirjalili and Hashim 2010): inertia w drawn in [0, 1]
  per update, G0 = 1, descent alpha = 23, epsilon = 1e-10, masses from the fitness as in GSA, the
  attracting set kbest shrinking linearly from all particles to one (001 eq. 29). A particle is
  (fixed bus, fixed MW, mobile bus, mobile MW) in the box, buses rounded down; its fitness is the
  optimum of the linear program of its fixed design (the model with the design fixed and the
  storage charge/discharge binaries relaxed), with the squared offset on the model's initial
  tangents (refining them per particle piles up cut rows over thousands of solves and made an
  evaluation several times slower) and the particle judged by the exact squares of that operation.
  The best design of each seed is then solved exactly (binaries back, tangents refined) for the
  reported objective.

Each side's design is checked by the AC power flow: bus-steps outside the band and the voltage
offset on the AC voltages. Usage: python benchmarks/metaheuristic.py [--seeds 5] [--particles 50]
[--iterations 50] [--first-seed 0] [--scenario scene3-3.5MW] (seeds may run in two processes side
by side on a 2-core machine: --seeds 3, then --first-seed 3 --seeds 2). Writes benchmarks/results/metaheuristic-<UTC>.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from pathlib import Path

import numpy as np
import pyomo.environ as pyo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def scenario(name: str = "scene3"):
    """Prepared inputs and settings of a feng2024 scenario (built here, nothing downloaded)."""
    from feederflex import feeders, profiles, study

    files = [ROOT / "config/config.yaml", ROOT / "config/studies/feng2024.yaml"]
    cfg, scenarios = study.load_study(study.merge_study_files(files), ROOT / "config/schema.yaml", files)
    settings = scenarios[name]
    settings["ac_correction"]["enabled"] = False
    feeder = feeders.build_feeder(cfg["network"]["source"])
    n = round(cfg["time"]["hours"] * 60 / cfg["time"]["step_minutes"])
    day = profiles.build_profiles(feeder, cfg["days"][settings["day"]], n, cfg["time"]["step_minutes"], "extreme")
    return feeder, day, settings


class Evaluator:
    """The LP of a fixed design, on one persistent model (only bounds change between particles)."""

    def __init__(self, feeder, day, settings, exact: bool = False):
        from feederflex.model import ScenarioData, build_model
        from feederflex.solve import Session

        self.data = ScenarioData(feeder, day, settings)
        self.m = build_model(self.data)
        if not exact:  # a linear program: storage modes relaxed, the design (fixed per particle) continuous
            for var in [*self.m.fess.charging.values(), *self.m.planning.built.values()]:
                var.domain = pyo.UnitInterval
        self.cands = self.data.candidates
        self.session = Session(self.m, self.data.settings.solver)
        self.evaluations = 0

    def design_vars(self):
        return [*self.m.planning.built.values(), *self.m.planning.p_mw.values()]

    def evaluate(self, fixed_bus: int, fixed_mw: float, mobile_bus: int, mobile_mw: float) -> float:
        """Exact objective of the design's best operation (inf if the LP has none)."""
        from feederflex.model.objectives import exact_score

        chosen = {("fixed", fixed_bus): fixed_mw, ("mobile", mobile_bus): mobile_mw}
        for c in self.cands:
            size = chosen.get((c.kind, c.bus))
            self.m.planning.built[c.name].set_value(0.0 if size is None else 1.0)
            self.m.planning.p_mw[c.name].set_value(0.0 if size is None else float(size))
        self.session.fix(self.design_vars())
        # the LP's squared offset as its tangents have it (no refinement: cuts added per particle would
        # pile up over thousands of solves), judged exactly below
        result = self.session.solve(f"design {self.evaluations}", sync=False, refine=False)
        self.evaluations += 1
        if self.evaluations % 500 == 0:
            print(f"  {self.evaluations} evaluations", flush=True)
        if not result.status.has_solution:
            return math.inf
        return float(exact_score(self.m)[1])


def decode(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[int, float, int, float]:
    p = lo + np.clip(x, 0.0, 1.0) * (hi - lo)
    return int(min(33, math.floor(p[0]))), float(p[1]), int(min(33, math.floor(p[2]))), float(p[3])


def pso_gsa(evaluate, seed: int, particles: int, iterations: int) -> dict:
    """001's PSO-GSA on the unit box (module docstring); returns the best design and its history."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([2.0, 0.5, 2.0, 0.4]), np.array([33.999, 1.0, 33.999, 0.9])
    dim = 4
    x = rng.random((particles, dim))
    v = np.zeros((particles, dim))
    g_best, g_fit = x[0].copy(), math.inf
    history = []
    for it in range(iterations):
        fit = np.array([evaluate(*decode(xi, lo, hi)) for xi in x])
        finite = np.where(np.isfinite(fit), fit, np.nanmax(np.where(np.isfinite(fit), fit, np.nan)) * 10 + 1)
        k = int(np.argmin(finite))
        if finite[k] < g_fit:
            g_fit, g_best = float(finite[k]), x[k].copy()
        history.append(g_fit)
        best, worst = finite.min(), finite.max()
        mass = (finite - worst) / (best - worst) if best != worst else np.ones(particles)
        mass = mass / mass.sum()
        grav = 1.0 * math.exp(-23.0 * it / iterations)
        kbest = max(1, round(particles - (particles - 1) * it / max(1, iterations - 1)))
        attract = np.argsort(finite)[:kbest]
        acc = np.zeros_like(x)
        for i in range(particles):
            for j in attract:
                if j == i:
                    continue
                dist = float(np.linalg.norm(x[i] - x[j]))
                # eq. 27/30: F_ij / M_i = G M_j (x_j - x_i) / (R_ij + eps), each with its own rand (eq. 29)
                acc[i] += rng.random(dim) * grav * mass[j] * (x[j] - x[i]) / (dist + 1e-10)
        w = rng.random()
        v = w * v + 0.5 * rng.random((particles, dim)) * acc + 1.5 * rng.random((particles, dim)) * (g_best - x)
        x = np.clip(x + v, 0.0, 1.0)
    return {"x": g_best, "fitness": g_fit, "history": history, "design": decode(g_best, lo, hi)}


def ac_check(feeder, ds) -> dict:
    from feederflex import acpf, kpis

    ac = acpf.ac_check(feeder, ds, tolerance_pu=0.0)
    return {
        "ac_bus_steps_outside_band": int(ac.attrs["ac_violation_bus_steps"]),
        "voltage_offset_ac": kpis.voltage_offset(ac.v_ac_pu.values, 0.95, 1.05, float(ds.attrs["step_hours"])),
    }


def exact_design(feeder, day, settings, design) -> tuple[float, dict]:
    """The design solved with the storage binaries (the exact objective), and its AC check."""
    from feederflex.model.objectives import exact_score
    from feederflex.solution import solution_dataset

    ev = Evaluator(feeder, day, settings, exact=True)
    ev.evaluate(*design)
    result = ev.session.solve("exact design", sync=False)
    ds = solution_dataset(ev.m, ev.data, result)
    return float(exact_score(ev.m)[1]), ac_check(feeder, ds)


def milp(feeder, day, settings) -> dict:
    from feederflex import schedule

    started = time.perf_counter()
    ds = schedule.solve_scenario(feeder, day, settings)
    seconds = time.perf_counter() - started
    built = ds.plan_built.values > 0.5
    sites = [
        (str(k), int(b), float(p))
        for k, b, p in zip(
            ds.candidate_kind.values[built], ds.candidate_bus.values[built], ds.plan_p_mw.values[built], strict=True
        )
    ]
    return {
        "objective": float(ds.attrs["solver_objective"]),
        "status": ds.attrs["solver_status"],
        "mip_gap": float(ds.attrs["solver_mip_gap"]),
        "seconds": seconds,
        "sites": sites,
        **ac_check(feeder, ds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--particles", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--scenario", default="scene3", help="a feng2024 scenario with one fixed and one mobile unit")
    args = parser.parse_args()
    feeder, day, settings = scenario(args.scenario)
    out = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "args": vars(args)}
    out["milp"] = milp(feeder, day, settings)
    print("MILP", json.dumps(out["milp"]), flush=True)
    out["pso_gsa"] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        ev = Evaluator(feeder, day, settings)
        started = time.perf_counter()
        run = pso_gsa(ev.evaluate, seed, args.particles, args.iterations)
        seconds = time.perf_counter() - started
        exact, ac = exact_design(feeder, day, settings, run["design"])
        row = {
            "seed": seed,
            "design": run["design"],
            "lp_fitness": run["fitness"],
            "objective": exact,
            "seconds": seconds,
            "evaluations": ev.evaluations,
            "history": run["history"],
            **ac,
        }
        out["pso_gsa"].append(row)
        print("PSO-GSA", json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"metaheuristic-{stamp}.json").write_text(json.dumps(out, indent=1))
    m = out["milp"]
    print("\n| method | objective | vs MILP | AC bus-steps outside band | AC voltage offset | seconds |")
    print("|---|---|---|---|---|---|")
    print(
        f"| MILP ({m['status']}, gap {m['mip_gap']:.2g}) | {m['objective']:.2f} | 0 % | {m['ac_bus_steps_outside_band']} | {m['voltage_offset_ac']:.5f} | {m['seconds']:.1f} |"
    )
    for r in out["pso_gsa"]:
        rel = 100 * (r["objective"] - m["objective"]) / abs(m["objective"])
        print(
            f"| PSO-GSA seed {r['seed']} {r['design']} | {r['objective']:.2f} | {rel:+.2f} % | {r['ac_bus_steps_outside_band']} | {r['voltage_offset_ac']:.5f} | {r['seconds']:.1f} |"
        )


if __name__ == "__main__":
    main()
