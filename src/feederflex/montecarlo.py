"""Monte Carlo over actual days: each realisation operated as the scenario says and AC-checked."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import xarray as xr

from feederflex.forecast import actual_day
from feederflex.operation import DayAheadPlan, plan_day, run_day
from feederflex.settings import Settings, as_settings

log = logging.getLogger(__name__)


@dataclass
class Realisation:
    """One Monte Carlo day of a scenario: realised and plan-on-actual schedules, their AC checks
    and KPI rows (one per operation)."""

    realisation: int
    realised: xr.Dataset
    realised_ac: xr.Dataset
    plan: xr.Dataset
    plan_ac: xr.Dataset
    kpis: list[dict]


def monte_carlo(
    feeder: xr.Dataset,
    forecast: xr.Dataset,
    settings: Settings | Mapping[str, Any],
    uncertainty: dict,
    realisations: Iterable[int],
    *,
    fleet: xr.Dataset | None = None,
    travel: xr.Dataset | None = None,
    solver_log: str | None = None,
) -> Iterator[Realisation]:
    """Operate the scenario on each realisation's actual day (``settings.operation``).

    ``uncertainty`` holds ``seed``, ``relative_sd`` and ``correlation`` (:func:`actual_day`).
    Yields one :class:`Realisation` at a time, so a batch of many realisations never holds more
    than one day in memory. KPI rows carry ``realisation``, ``operation`` (``plan_on_actual`` or the
    scenario's mode), the KPIs of :func:`feederflex.kpis.scenario_kpis`, re-solves and seconds.
    """
    from feederflex.acpf import ac_check, ac_network
    from feederflex.kpis import scenario_kpis

    settings = as_settings(settings)
    op = settings.operation
    net = ac_network(feeder, float(settings.grid.substation_v_pu))
    day_ahead: DayAheadPlan | None = None  # solved once, reset for every realisation
    for k in realisations:
        started = time.perf_counter()
        actual = actual_day(forecast, uncertainty, k)
        day_ahead = day_ahead or plan_day(feeder, forecast, settings, fleet=fleet, travel=travel, solver_log=solver_log)
        realised, plan = run_day(
            feeder,
            forecast,
            actual,
            settings,
            fleet=fleet,
            travel=travel,
            solver_log=solver_log,
            keep_integers=bool(op.keep_integers),
            mode=op.mode,
            lookahead_steps=op.lookahead_steps,
            plan=day_ahead,
        )
        tolerance = float(settings.ac_correction.tolerance_pu)
        realised.attrs["ac_tolerance_pu"] = plan.attrs["ac_tolerance_pu"] = tolerance
        plan_ac, realised_ac = ac_check(feeder, plan, tolerance, net), ac_check(feeder, realised, tolerance, net)
        seconds = time.perf_counter() - started
        rows = [
            {"realisation": int(k), "operation": "plan_on_actual", **scenario_kpis(plan, plan_ac), "resolves": 0},
            {
                "realisation": int(k),
                "operation": op.mode,
                **scenario_kpis(realised, realised_ac),
                "resolves": int(realised.attrs.get("rolling_resolves", 0)),
            },
        ]
        for row in rows:
            row["rolling_seconds"] = float(realised.attrs.get("rolling_seconds", math.nan))
            row["wall_seconds"] = seconds
        log.info(
            "realisation %d: %s, %d re-solves, energy cost %.2f (plan on actual %.2f), %.1f s",
            k,
            realised.attrs.get("rolling_status"),
            rows[1]["resolves"],
            rows[1]["energy_cost_usd"],
            rows[0]["energy_cost_usd"],
            seconds,
        )
        yield Realisation(int(k), realised, realised_ac, plan, plan_ac, rows)
