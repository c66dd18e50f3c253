"""What each formulation lever buys on the MESS routing MILP (issue 3), measured, not asserted.

Runs the tong2021 study's `ev-peak_energy-e50_routing-optimised` scenario (IEEE 33, 6 units,
8 stations) at 24 hourly and 96 quarter-hour steps with HiGHS under a time limit, once per
variant, one after the other (the machine has 2 cores: never run this next to other work):

- ``plain``: the straightforward form: separate p_ch <= P parked and p_dis <= P parked, parking
  declared binary, no starting solution;
- ``combined``: p_ch + p_dis <= P parked (one row instead of two);
- ``continuous``: + parking continuous (integral through flow conservation);
- ``start``: + the fixed-parking schedule as HiGHS's starting solution;
- ``search``: + unit-by-unit neighbourhood search (``mess.search.method: unit_milp``) from that start before the full solve (what
  feederflex does; its time is in ``baseline_s``/``search_s``, the full solve's in ``highs_s``);
  the search's trips leave on the hour (``mess.search.departure_every_minutes: 60``), which on
  quarter-hour steps is hourly routing refined to quarter hours by the full solve;
- ``lp_moves``: ``start`` + the relocation search (``mess.search.method: lp_moves``,
  :mod:`feederflex.relocation`): one-unit relocations ranked by the nodal prices of the
  incumbent's LP, evaluated as LPs with the routes and modes fixed, then the full solve;
- ``search_every_step``: the same search with trips leaving at every step (only differs from
  ``search`` below hourly steps);
- ``energy_flow``: ``search`` on a lifted model where each unit's energy travels with it on the
  time-space network (energy per station and per trip, bounded by the parking and trip variables),
  a tighter LP relaxation with bigger node LPs.

One lever acts on every variant: ``--threads 2`` (HiGHS's parallel tree search, switched on by
feederflex whenever a MIP gets more than one thread). Fixed variables are always HiGHS columns
with equal bounds; the ``--fixed-as-params`` rows of benchmarks/README.md (Pyomo's default
hand-over, which re-added every row of a fixed variable when it was freed) were measured before
feederflex compiled its own hand-over (2026-12-06), which has no such mode.

``search_objective`` is the best schedule any search solve found (before the full model);
``target_s`` is the time (baseline and search included, build excluded) at the end of the first
HiGHS run whose schedule is within 0.2 % of the best known 24-step objective (-1267.3 $, tong2021
only; NaN if never); a run inside the full solve counts at its end, so it is an upper bound there.

Usage: python benchmarks/mess_levers.py [--time-limit 60] [--steps 24 96] [--variants ...] [--case tong2021]
       [--mip-gap 0.005] [--threads 1] [--search-time 30] [--out mess_levers.json]
Writes benchmarks/results/mess_levers.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import pyomo.environ as pyo

from feederflex import study
from feederflex.model import ScenarioData, build_model
from feederflex.model.mess import allow_moves, forbid_moves
from feederflex.solve import Session, snapshot

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from run import load_rung, prepare  # noqa: E402  (the ladder's rungs and input preparation)

SCENARIO = "ev-peak_energy-e50_routing-optimised"
BEST_KNOWN_24 = -1267.3  # $, the best schedule known at 24 steps (benchmarks/README.md)


def load_tong2021(step_minutes: int) -> tuple[dict, dict]:
    cfg = study.merge_study_files([ROOT / "config/config.yaml", ROOT / "config/studies/tong2021.yaml"])
    cfg["time"]["step_minutes"] = step_minutes
    valid, scenarios = study.load_study(cfg, ROOT / "config/schema.yaml", [ROOT / "config/config.yaml"])
    return valid, scenarios[SCENARIO]


def build(valid: dict, settings: dict, variant: str) -> pyo.ConcreteModel:
    feeder, prof, ev, trav = prepare(valid, settings)
    data = ScenarioData(
        feeder, prof, settings, None if ev is None else ev.ev_p_mw.transpose("time", "bus").values, trav, ev
    )
    m = build_model(data)
    mess = m.mess
    if variant == "plain":
        mess.power_parked.deactivate()
        rating = {u["name"]: u["p_mw"] for u in settings["mess"]["units"]}
        mess.ch_parked = pyo.Constraint(
            mess.U, mess.S, mess.T, rule=lambda b, u, s, t: b.p_ch_mw[u, s, t] <= rating[u] * b.parked[u, s, t]
        )
        mess.dis_parked = pyo.Constraint(
            mess.U, mess.S, mess.T, rule=lambda b, u, s, t: b.p_dis_mw[u, s, t] <= rating[u] * b.parked[u, s, t]
        )
    if variant in ("plain", "combined"):
        for var in mess.parked.values():
            var.domain = pyo.Binary
    if variant == "energy_flow":
        add_energy_flow(m, settings["mess"]["units"], data.step_hours)
    return m


def add_energy_flow(m: pyo.ConcreteModel, units_cfg: list[dict], step_hours: float) -> None:
    """Energy that travels with each unit: E[u, s, t] while parked at s, G[u, a] on trip a.

    soc_min E parked <= E <= soc_max E parked and the same for G with depart: the LP relaxation can
    no longer let a fraction of a truck spend energy another fraction holds elsewhere."""
    b = m.mess
    units = {u["name"]: u for u in units_cfg}
    leaving, arriving, on_road = {}, {}, {}
    for a, arc in enumerate(b.arc_list):
        leaving.setdefault((arc.origin, arc.depart), []).append(a)
        arriving.setdefault((arc.dest, arc.arrive), []).append(a)
        for t in range(arc.depart, arc.arrive):
            on_road.setdefault(t, []).append(a)
    lo = {u: units[u]["soc_min"] * units[u]["e_mwh"] for u in units}
    hi = {u: units[u]["soc_max"] * units[u]["e_mwh"] for u in units}
    b.E = pyo.Var(b.U, b.S, b.T, within=pyo.NonNegativeReals)
    b.G = pyo.Var(b.U, b.A, within=pyo.NonNegativeReals)
    b.E_lo = pyo.Constraint(b.U, b.S, b.T, rule=lambda b, u, s, t: b.E[u, s, t] >= lo[u] * b.parked[u, s, t])
    b.E_hi = pyo.Constraint(b.U, b.S, b.T, rule=lambda b, u, s, t: b.E[u, s, t] <= hi[u] * b.parked[u, s, t])
    b.G_lo = pyo.Constraint(b.U, b.A, rule=lambda b, u, a: b.G[u, a] >= lo[u] * b.depart[u, a])
    b.G_hi = pyo.Constraint(b.U, b.A, rule=lambda b, u, a: b.G[u, a] <= hi[u] * b.depart[u, a])

    def balance(b, u, s, t):
        unit = units[u]
        if t == b.T.first():
            before = unit["soc_init"] * unit["e_mwh"] if s == unit["initial_station"] else 0.0
        else:
            before = b.E[u, s, t - 1]
        return (
            b.E[u, s, t]
            == before
            - sum(b.G[u, a] for a in leaving.get((s, t), []))
            + sum(b.G[u, a] for a in arriving.get((s, t), []))
            + (unit["eta_ch"] * b.p_ch_mw[u, s, t] - b.p_dis_mw[u, s, t] / unit["eta_dis"]) * step_hours
        )

    b.E_balance = pyo.Constraint(b.U, b.S, b.T, rule=balance)
    b.E_total = pyo.Constraint(
        b.U,
        b.T,
        rule=lambda b, u, t: (
            b.e_mwh[u, t] == sum(b.E[u, s, t] for s in b.S) + sum(b.G[u, a] for a in on_road.get(t, []))
        ),
    )


def run(valid: dict, settings: dict, variant: str, time_limit: float, mip_gap: float = 0.005) -> dict:
    started = time.perf_counter()
    m = build(valid, settings, variant)
    build_s = time.perf_counter() - started
    solver = dict(settings["solver"], time_limit_s=time_limit, mip_gap=mip_gap)
    session = Session(m, solver)
    start = None
    baseline_s = 0.0
    if variant == "start":
        forbid_moves(m)
        base = session.solve("parked")
        baseline_s = base.solve_seconds
        allow_moves(m)
        start = snapshot(m)
    search_s = 0.0
    if variant == "search_every_step":
        settings["mess"]["search"]["departure_every_minutes"] = None
    settings["mess"]["search"]["method"] = "lp_moves" if variant == "lp_moves" else "unit_milp"
    if variant in ("search", "search_every_step", "energy_flow", "lp_moves"):
        from feederflex.routing import solve_routing
        from feederflex.settings import as_settings

        clock = time.perf_counter()
        result, parked = solve_routing(m, as_settings(dict(settings, solver=solver)), session)
        baseline_s = parked.result.solve_seconds
        search_s = time.perf_counter() - clock - baseline_s - result.solve_seconds
    else:
        result = session.solve("full", start=start)
    searched = [
        s.objective
        for s in session.stages
        if s.name.startswith(("MESS search", "MESS moves")) and math.isfinite(s.objective)
    ]
    target = BEST_KNOWN_24 + 0.002 * abs(BEST_KNOWN_24)
    clock, target_s = 0.0, float("nan")
    for stage in session.stages:
        clock += stage.wall_seconds
        if stage.objective <= target:
            target_s = clock
            break
    return {
        "variant": variant,
        "steps": len(m.mess.T),
        "rows": result.rows,
        "columns": result.columns,
        "integers": result.integers,
        "build_s": round(build_s, 2),
        "baseline_s": round(baseline_s, 2),
        "search_s": round(search_s, 1),
        "highs_s": round(result.solve_seconds, 1),
        "search_objective": round(min(searched, default=float("nan")), 1),  # best schedule a search solve found
        "total_s": round(time.perf_counter() - started, 1),
        "target_s": round(target_s, 1) if len(m.mess.T) == 24 else float("nan"),
        "status": result.status.value,
        "objective": round(result.objective, 1),
        "bound": round(result.bound, 1),
        "gap_pct": round(100 * result.mip_gap, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--steps", type=int, nargs="+", default=[24, 96])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["plain", "combined", "continuous", "start", "search", "search_every_step", "energy_flow"],
    )
    parser.add_argument("--out", default="mess_levers.json", help="file name in benchmarks/results/")
    parser.add_argument(
        "--case",
        default="tong2021",
        choices=["tong2021", "ieee33x3_mess12"],
        help="tong2021's peak scenario, or the ladder's 97-bus, 12-unit rung (its own steps)",
    )
    parser.add_argument("--mip-gap", type=float, default=0.005, help="relative gap at which HiGHS stops")
    parser.add_argument("--threads", type=int, default=1, help="HiGHS threads (2 or more: parallel tree search)")
    parser.add_argument(
        "--unit-time", type=float, default=None, help="override mess.search.unit_time_s (s per one-unit solve)"
    )
    parser.add_argument(
        "--search-time", type=float, default=None, help="override mess.search.time_s (lp_moves: s for the whole search)"
    )
    args = parser.parse_args()
    rows = []
    cases = (
        [load_tong2021(24 * 60 // steps) for steps in args.steps]
        if args.case == "tong2021"
        else [load_rung(args.case, args.time_limit)]
    )
    for valid, settings in cases:
        for variant in args.variants:
            settings = copy.deepcopy(settings)
            settings["solver"]["threads"] = args.threads
            if args.unit_time is not None:
                settings["mess"]["search"]["unit_time_s"] = args.unit_time
            if args.search_time is not None:
                settings["mess"]["search"]["time_s"] = args.search_time
            row = run(valid, settings, variant, args.time_limit, args.mip_gap)
            row = {
                "case": args.case,
                "threads": args.threads,
                "unit_s": settings["mess"]["search"]["unit_time_s"],
                "fixed_as": "bounds",
                **row,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    out = ROOT / "benchmarks/results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"time_limit_s": args.time_limit, "rows": rows}, indent=1))
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
