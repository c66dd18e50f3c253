"""What a workflow job asks a scheduler for: memory (MB) and runtime (minutes), from its size.

Snakemake calls the methods of :class:`JobResources` as resource functions (``mem_mb=RESOURCES.solve_mem_mb``
in a rule): each takes the job's wildcards and the attempt number, and every estimate grows with
``attempt`` so that a job killed for memory or time is retried with more (``retries:`` in
workflow/profiles/slurm). The per-unit costs below are rounded up from the measurements in
benchmarks/README.md. Scenarios grouped into one Slurm job add up: Snakemake sums the memory of
group members that run side by side and the runtime of those that run one after the other, so
nothing here needs to know the group size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feederflex.model.size import model_scale
from feederflex.settings import Settings, as_settings

BASE_MEM_MB = 300  # Python with the scientific stack imported, rounded up
MB_PER_SCALE = 0.01  # solve jobs: MB per unit of model_scale
MB_PER_BUS_STEP_AC = 0.05  # AC checks: pandapower net and one result row per bus-step
AC_MIN_PER_BUS_STEP = 0.02 / 60  # one AC check of a bus-step, taken 3 times over
RESOLVE_MIN = 0.5 / 60  # one rolling re-solve of a step
PLOT_MB = 100  # matplotlib on top of the base stack


@dataclass(frozen=True)
class JobResources:
    """Resource functions of one validated study (``study``) and its scenarios (``scenarios``)
    on a feeder of ``buses`` buses."""

    study: Mapping[str, Any]
    scenarios: Mapping[str, Settings]
    buses: int

    def __post_init__(self) -> None:  # typed settings of every scenario, converted once
        object.__setattr__(self, "scenarios", {name: as_settings(s) for name, s in self.scenarios.items()})

    # --- sizes -------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return int(self.study["time"]["hours"] * 60 / self.study["time"]["step_minutes"])

    def fleet_vehicles(self, name: str) -> int:
        """Vehicles a fleet samples: per EV bus times its buses (empty = every bus)."""
        fleet = self.study["fleets"][name]
        return int(fleet["vehicles_per_bus"]) * (len(fleet["buses"]) or self.buses)

    def scenario_of(self, wildcards: Any) -> str:
        """The scenario a solve job works on: its own, or that of its front or compromise."""
        mo = self.study["multiobjective"]
        if getattr(wildcards, "front", None) is not None:
            return mo["fronts"][wildcards.front]["scenario"]
        if getattr(wildcards, "compromise", None) is not None:
            return mo["compromises"][wildcards.compromise]["scenario"]
        if getattr(wildcards, "case", None) is not None:
            from feederflex.hosting import expand_cases

            return expand_cases(self.study["hosting_capacity"])[wildcards.case].scenario
        return wildcards.scenario

    def model_scale(self, scenario: str) -> int:
        settings = self.scenarios[scenario]
        fleet = settings.ev_fleet
        return model_scale(
            settings,
            buses=self.buses,
            steps=self.steps,
            stations=len(self.study["transport"]["stations"]),
            ev_buses=(len(self.study["fleets"][fleet]["buses"]) or self.buses) if fleet else 0,
            vehicles=self.fleet_vehicles(fleet) if fleet else 0,
        )

    def ac_check_minutes(self) -> float:
        return 0.5 + self.buses * self.steps * AC_MIN_PER_BUS_STEP

    def _study_values(self) -> int:
        """Scenario x bus x step values the study-wide rules read (summary, study figures)."""
        return len(self.scenarios) * self.buses * self.steps

    # --- solve jobs --------------------------------------------------------------------------
    def solve_threads(self, wildcards: Any) -> int:
        return int(self.scenarios[self.scenario_of(wildcards)].solver.threads)

    def solve_mem_mb(self, wildcards: Any, attempt: int) -> int:
        return int((200 + MB_PER_SCALE * self.model_scale(self.scenario_of(wildcards))) * 2 ** (attempt - 1))

    def solve_runtime(self, wildcards: Any, attempt: int) -> int:
        """Minutes: the solver's time limit (twice with routed MESS: baseline, then routing, plus
        the unit-by-unit search), the AC correction's checks and re-solves (of the parked baseline
        too, with routed MESS), build and write overhead; twice that for a lexicographic front
        point or payoff row (two stages); x attempt on retries."""
        settings = self.scenarios[self.scenario_of(wildcards)]
        two_stage = getattr(wildcards, "front", None) is not None or getattr(wildcards, "objective", None) is not None
        stages = 2 if two_stage and self.study["multiobjective"]["lexicographic"] else 1
        limit_min = settings.solver.time_limit_s / 60
        solve_min = 1.2 * limit_min
        mess = settings.mess
        routed = bool(mess.units) and mess.routing == "optimised"
        if routed:
            search = mess.search
            solve_min += 1.2 * limit_min + search.rounds * len(mess.units) * search.unit_time_s / 60
        correction = settings.ac_correction
        iterations = correction.max_iterations if correction.enabled else 0
        # re-solves that keep the integers are LPs (a tenth of the limit is generous); else MILPs
        per_resolve = 0.1 * limit_min if correction.keep_integers else 1.2 * limit_min
        solve_min += (2 if routed else 1) * iterations * (self.ac_check_minutes() + per_resolve)
        return int((5 + stages * solve_min) * attempt)

    def hosting_runtime(self, wildcards: Any, attempt: int) -> int:
        """Minutes: the LinDistFlow solve and every AC trial (the search grows by 10 % steps, then
        bisects down to ``tolerance_mw``), each a solve within the time limit and an AC check."""
        section = self.study["hosting_capacity"]
        trials = 12 + math.ceil(math.log2(max(2.0, section["max_scale_mw"] / section["tolerance_mw"])))
        settings = self.scenarios[self.scenario_of(wildcards)]
        per_trial = 1.2 * settings.solver.time_limit_s / 60 + self.ac_check_minutes()
        return int((5 + (trials + 1) * per_trial) * attempt)

    def rolling_mem_mb(self, wildcards: Any, attempt: int) -> int:
        """A batch holds one realisation at a time: the solve's model plus its AC checks."""
        mb = 200 + MB_PER_SCALE * self.model_scale(wildcards.scenario) + MB_PER_BUS_STEP_AC * self.buses * self.steps
        return int(mb * 2 ** (attempt - 1))

    def rolling_runtime(self, wildcards: Any, attempt: int) -> int:
        """Minutes of a batch: per realisation the day-ahead plan and the plan on the actual day
        (each up to the time limit), a re-solve per step and three AC checks."""
        limit_min = self.scenarios[wildcards.scenario].solver.time_limit_s / 60
        per_realisation = 2 * 1.2 * limit_min + self.steps * RESOLVE_MIN + 3 * self.ac_check_minutes()
        uncertainty = self.study["uncertainty"]
        first = int(wildcards.batch) * uncertainty["batch_size"]
        realisations = max(0, min(uncertainty["realisations"], first + uncertainty["batch_size"]) - first)
        return int((5 + realisations * per_realisation) * attempt + 0.999)

    # --- everything else ---------------------------------------------------------------------
    def validate_mem_mb(self, wildcards: Any, attempt: int) -> int:
        return int((BASE_MEM_MB + MB_PER_BUS_STEP_AC * self.buses * self.steps) * 2 ** (attempt - 1))

    def validate_runtime(self, wildcards: Any, attempt: int) -> int:
        return int((1 + self.ac_check_minutes()) * attempt + 0.999)

    def fleet_mem_mb(self, wildcards: Any, attempt: int) -> int:
        """A handful of float arrays per vehicle and per vehicle-step (sampling, envelopes)."""
        return int((BASE_MEM_MB + 1e-4 * self.fleet_vehicles(wildcards.fleet) * self.steps) * 2 ** (attempt - 1))

    def fleet_runtime(self, wildcards: Any, attempt: int) -> int:
        return int((2 + self.fleet_vehicles(wildcards.fleet) / 1e5) * attempt)

    def small_mem_mb(self, wildcards: Any, attempt: int) -> int:
        """Rules whose size does not grow with the study (network, profiles, travel times)."""
        return BASE_MEM_MB * 2 ** (attempt - 1)

    def small_runtime(self, wildcards: Any, attempt: int) -> int:
        return 2 * attempt

    def summarize_mem_mb(self, wildcards: Any, attempt: int) -> int:
        """About 20 float variables per scenario-bus-step held at once, plus the KPI table."""
        return int((BASE_MEM_MB + 2e-4 * self._study_values()) * 2 ** (attempt - 1))

    def summarize_runtime(self, wildcards: Any, attempt: int) -> int:
        return int((2 + len(self.scenarios) * 0.01) * attempt + 0.999)

    def plot_mem_mb(self, wildcards: Any, attempt: int) -> int:
        """matplotlib over one scenario's (or one fleet's) data."""
        return int((BASE_MEM_MB + PLOT_MB + 2e-4 * self.buses * self.steps) * 2 ** (attempt - 1))

    def plot_study_mem_mb(self, wildcards: Any, attempt: int) -> int:
        """matplotlib over every scenario's voltages and KPIs."""
        return int((BASE_MEM_MB + PLOT_MB + 2e-4 * self._study_values()) * 2 ** (attempt - 1))

    def plot_runtime(self, wildcards: Any, attempt: int) -> int:
        return 2 * attempt

    def plot_study_runtime(self, wildcards: Any, attempt: int) -> int:
        return int((2 + len(self.scenarios) * 0.01) * attempt + 0.999)
