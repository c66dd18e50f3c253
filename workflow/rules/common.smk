# Helpers: the validated study, the scenario table, target lists and resource functions.
import re

from feederflex.feeders import bus_numbers
from feederflex.model.objectives import CATALOGUE
from feederflex.multiobjective import fractions, payoff_objectives
from feederflex.study import load_study


def _config_sources():
    """The YAML files merged into config, in order (named in validation errors)."""
    files = ["config/config.yaml"]
    files += [str(f) for f in workflow.overwrite_configfiles if str(f) not in files]
    return files


def _study_config():
    """config with `scenarios` taken whole from the last file that sets it (no merging across files)."""
    from feederflex.study import load_yaml

    merged = dict(config)
    for source in reversed(_config_sources()):
        content = load_yaml(source)
        if "scenarios" in content:
            merged["scenarios"] = content["scenarios"]
            break
    return merged


STUDY, SCENARIOS = load_study(_study_config(), "config/schema.yaml", _config_sources())
STUDY_NAME = STUDY["study"]
N_BUSES = len(bus_numbers(STUDY["network"]["source"]))
MO = STUDY["multiobjective"]
PAYOFF_SCENARIOS = sorted(
    {
        item["scenario"]
        for kind in ("fronts", "compromises")
        for item in MO[kind].values()
    }
)
UNCERTAINTY = STUDY["uncertainty"]
# scenarios operated on actual days (operation.mode rolling or on_violation), in study order
OPERATED = [
    name for name, s in SCENARIOS.items() if s["operation"]["mode"] != "day_ahead"
]


wildcard_constraints:
    study=re.escape(STUDY_NAME),
    scenario="|".join(map(re.escape, SCENARIOS)),
    day="[A-Za-z0-9_.-]+",
    fleet="[A-Za-z0-9_.-]+",
    objective="|".join(CATALOGUE),
    front="|".join(map(re.escape, MO["fronts"])) or "no-fronts",
    compromise="|".join(map(re.escape, MO["compromises"])) or "no-compromises",
    fraction=r"[01]\.[0-9]{4}",
    batch="[0-9]+",


def scenario_settings(wildcards):
    return SCENARIOS[wildcards.scenario]


def day_settings(wildcards):
    return STUDY["days"][wildcards.day]


def fleet_settings(wildcards):
    return STUDY["fleets"][wildcards.fleet]


def inputs_of(study, scenario):
    """Prepared inputs of one scenario: network, its day's profiles, its EV fleet and MESS travel times if any."""
    settings = SCENARIOS[scenario]
    inputs = {
        "network": f"resources/{study}/network.nc",
        "profiles": f"resources/{study}/profiles/{settings['day']}.nc",
    }
    if settings["ev_fleet"] is not None:
        inputs["fleet"] = f"resources/{study}/fleets/{settings['ev_fleet']}.nc"
    if settings["mess"]["units"]:
        inputs["travel"] = f"resources/{study}/travel.nc"
    return inputs


def scenario_inputs(wildcards):
    return inputs_of(wildcards.study, wildcards.scenario)


def front_settings(wildcards):
    """The front's configuration without its points (adding points must not re-run finished ones)."""
    return {k: v for k, v in MO["fronts"][wildcards.front].items() if k != "points"}


def front_scenario_settings(wildcards):
    return SCENARIOS[MO["fronts"][wildcards.front]["scenario"]]


def compromise_settings(wildcards):
    return MO["compromises"][wildcards.compromise]


def compromise_scenario_settings(wildcards):
    return SCENARIOS[MO["compromises"][wildcards.compromise]["scenario"]]


def payoff_row_files(wildcards):
    return [
        f"results/{wildcards.study}/payoff/{wildcards.scenario}/{o}.nc"
        for o in payoff_objectives(MO, wildcards.scenario)
    ]


def payoff_row_names(wildcards):
    return payoff_objectives(MO, wildcards.scenario)


def front_point_inputs(wildcards):
    """A front point: its scenario's prepared inputs and the scenario's payoff table."""
    scenario = MO["fronts"][wildcards.front]["scenario"]
    inputs = inputs_of(wildcards.study, scenario)
    inputs["payoff"] = f"results/{wildcards.study}/payoff/{scenario}.nc"
    return inputs


def front_payoff_file(wildcards):
    return f"results/{wildcards.study}/payoff/{MO['fronts'][wildcards.front]['scenario']}.nc"


def front_fractions(wildcards):
    return fractions(MO["fronts"][wildcards.front]["points"])


def front_point_files(wildcards):
    return [
        f"results/{wildcards.study}/fronts/{wildcards.front}/{f}.nc"
        for f in front_fractions(wildcards)
    ]


def compromise_inputs(wildcards):
    """A compromise: its scenario's prepared inputs, the payoff table if it needs one and the
    reference scenario's solution if the fuzzy memberships are measured from one."""
    comp = MO["compromises"][wildcards.compromise]
    inputs = inputs_of(wildcards.study, comp["scenario"])
    if comp["method"] == "fuzzy" or comp["normalise"]:
        inputs["payoff"] = f"results/{wildcards.study}/payoff/{comp['scenario']}.nc"
    if comp["method"] == "fuzzy" and comp["reference"] != "payoff":
        inputs["reference"] = (
            f"results/{wildcards.study}/solutions/{comp['reference']}.nc"
        )
    return inputs


def n_batches():
    """Jobs per operated scenario: ceil(realisations / batch_size)."""
    return -(-UNCERTAINTY["realisations"] // UNCERTAINTY["batch_size"])


def batch_realisations(wildcards):
    """Realisation numbers of one batch: batch b holds b*N .. min(K, (b+1)*N) - 1."""
    size = UNCERTAINTY["batch_size"]
    first = int(wildcards.batch) * size
    return list(range(first, min(UNCERTAINTY["realisations"], first + size)))


def uncertainty_spec(wildcards):
    """What an actual day depends on: seed, error levels, correlation (not K or the batch size, so
    adding realisations re-runs only the batches that change)."""
    return {key: UNCERTAINTY[key] for key in ("seed", "relative_sd", "correlation")}


def monte_carlo_batch_files(wildcards):
    """KPI rows of every batch of every operated scenario."""
    return [
        f"results/{wildcards.study}/rolling/{name}/batch{b}.csv"
        for name in OPERATED
        for b in range(n_batches())
    ]


def monte_carlo_targets():
    if not OPERATED:
        return []
    return [
        f"results/{STUDY_NAME}/monte_carlo.csv",
        f"results/{STUDY_NAME}/monte_carlo.nc",
    ]


def tradeoff_targets():
    """Payoff tables, fronts (with figures) and compromises of the study's multiobjective section."""
    study = STUDY_NAME
    targets = [f"results/{study}/payoff/{s}.csv" for s in PAYOFF_SCENARIOS]
    targets += [f"results/{study}/fronts/{f}.nc" for f in MO["fronts"]]
    targets += [f"results/{study}/figures/fronts/{f}.png" for f in MO["fronts"]]
    targets += [f"results/{study}/compromises/{c}.nc" for c in MO["compromises"]]
    return targets


def _scenario_of(wildcards):
    """The scenario a solve job works on: its own, or that of its front or compromise."""
    if "front" in wildcards.keys():
        return MO["fronts"][wildcards.front]["scenario"]
    if "compromise" in wildcards.keys():
        return MO["compromises"][wildcards.compromise]["scenario"]
    return wildcards.scenario


# Job groups: on a cluster, every job of one group that Snakemake can put together runs as one
# batch job (one sbatch, one Snakemake start inside it), so many short jobs do not each pay the
# scheduler's start-up. Rules join a group by naming it (`group: "scenario"`); how many
# independent pieces one batch job takes is set per group in workflow/profiles/slurm
# (`group-components`). Local runs ignore groups.
#   prepare   network, profiles, fleets, travel times (one connected piece: one job)
#   scenario  everything of one scenario: solve, AC check, its figures (later Monte Carlo draws
#             of a scenario join here: jobs that hang off one scenario)
#   front     multi-objective work of one scenario: payoff rows and table, front points, the
#             gathered front and its figure, compromises (connected through the payoff table)
#   montecarlo  solve_rolling batches: each already runs batch_size realisations (uncertainty), so a
#             Slurm job takes a few batches (group-components), not one per realisation
#   study     summary, KPIs, study and fleet figures, Monte Carlo summary

# Resources of every rule: mem_mb (MB) and runtime (minutes) from the size of what the job does,
# grown with `attempt` so that a job killed for memory or time is retried with more (`retries:` in
# workflow/profiles/slurm). Measured anchors (benchmarks/README.md, IEEE 33 x 24 steps): importing
# feederflex with Pyomo, pandapower and xarray costs ~100-200 MB; a solve job peaks at 146 MB, an
# AC check at 229 MB (5.8 s for 24 power flows). Scenarios grouped into one Slurm job (group
# "scenario") add up: Snakemake sums the memory of group members that run side by side and the
# runtime of those that run one after the other, so nothing here needs to know the group size.
BASE_MEM_MB = 300  # Python with the scientific stack imported, rounded up


def n_steps():
    return int(STUDY["time"]["hours"] * 60 / STUDY["time"]["step_minutes"])


def fleet_vehicles(name):
    """Vehicles a fleet samples: per EV bus times its buses (empty = every bus)."""
    fleet = STUDY["fleets"][name]
    return fleet["vehicles_per_bus"] * (len(fleet["buses"]) or N_BUSES)


def problem_size(wildcards):
    """Buses x steps x (1 + units), plus steps x MESS units x stations^2 (trip arcs), plus the EV
    part: pools of (bus, leaving step) x steps in aggregate mode, vehicles x steps per vehicle (and
    in the aggregate repair, which models short vehicles one by one): what model size scales with.
    """
    settings = SCENARIOS[_scenario_of(wildcards)]
    steps = n_steps()
    stations = len(STUDY["transport"]["stations"])
    mess = len(settings["mess"]["units"]) * stations * stations
    size = (
        N_BUSES * steps * (1 + len(settings["pv"]) + len(settings["fess"]))
        + steps * mess
    )
    if (
        settings["ev_fleet"] is not None
        and settings["ev_control"]["mode"] != "uncontrolled"
    ):
        fleet = STUDY["fleets"][settings["ev_fleet"]]
        ev_buses = len(fleet["buses"]) or N_BUSES
        size += ev_buses * steps * steps + fleet_vehicles(settings["ev_fleet"]) * steps
    return size


def solve_threads(wildcards):
    return SCENARIOS[_scenario_of(wildcards)]["solver"]["threads"]


def solve_mem_mb(wildcards, attempt):
    # Measured (results/default/benchmarks): IEEE 33 x 24 steps x 6 units = 4,752 bus-step-units
    # peaks at 146 MB RSS, about 100 MB of it imports, so ~10 kB per bus-step-unit; the estimate
    # below leaves a margin of 1.7 and doubles on each retry.
    return int((200 + 0.01 * problem_size(wildcards)) * 2 ** (attempt - 1))


def ac_check_minutes():
    """One AC check of a schedule: ~7 ms per bus-step measured, taken 3 times over, plus start-up."""
    return 0.5 + N_BUSES * n_steps() * 0.02 / 60


def solve_runtime(wildcards, attempt):
    """Minutes: the solver's time limit (tangent refinement rounds share it; twice with routed MESS:
    baseline, then routing, plus the unit-by-unit search), the AC correction's AC checks and
    re-solves (of the parked baseline too, with routed MESS), build and write overhead;
    twice that for a lexicographic front point or payoff row (two stages); x attempt on retries.
    """
    settings = SCENARIOS[_scenario_of(wildcards)]
    stages = (
        2
        if ("front" in wildcards.keys() or "objective" in wildcards.keys())
        and MO["lexicographic"]
        else 1
    )
    limit_min = settings["solver"]["time_limit_s"] / 60
    solve_min = 1.2 * limit_min
    mess = settings["mess"]
    if mess["units"] and mess["routing"] == "optimised":
        search_s = (
            mess["search"]["rounds"]
            * len(mess["units"])
            * mess["search"]["unit_time_s"]
        )
        solve_min += 1.2 * limit_min + search_s / 60
    correction = settings["ac_correction"]
    iterations = correction["max_iterations"] if correction["enabled"] else 0
    # routed MESS: the parked baseline goes through the correction too (never worse than parked)
    corrections = 2 if mess["units"] and mess["routing"] == "optimised" else 1
    # re-solves keep the integers (LPs): a tenth of the MIP's limit each is generous; without
    # keep_integers each re-solve is a MILP with the whole limit
    per_resolve = 0.1 * limit_min if correction["keep_integers"] else 1.2 * limit_min
    solve_min += corrections * iterations * (ac_check_minutes() + per_resolve)
    return int((5 + stages * solve_min) * attempt)


def rolling_mem_mb(wildcards, attempt):
    """A batch holds one realisation at a time: the solve's model plus its AC checks."""
    return int(
        (200 + 0.01 * problem_size(wildcards) + 0.05 * N_BUSES * n_steps())
        * 2 ** (attempt - 1)
    )


def rolling_runtime(wildcards, attempt):
    """Minutes of a batch: per realisation the day-ahead plan and the plan on the actual day (each
    up to the time limit), a re-solve per step (measured 0.01-0.02 s at 96 steps; 0.5 s allowed)
    and three AC checks (plan, realised, on_violation's step checks); x attempt on retries.
    """
    settings = SCENARIOS[wildcards.scenario]
    limit_min = settings["solver"]["time_limit_s"] / 60
    per_realisation = (
        2 * 1.2 * limit_min + n_steps() * 0.5 / 60 + 3 * ac_check_minutes()
    )
    return int(
        (5 + len(batch_realisations(wildcards)) * per_realisation) * attempt + 0.999
    )


def validate_mem_mb(wildcards, attempt):
    """pandapower net and one result row per bus-step: ~50 kB per bus-step over the imports
    (229 MB measured for 33 x 24), doubled on each retry."""
    return int((BASE_MEM_MB + 0.05 * N_BUSES * n_steps()) * 2 ** (attempt - 1))


def validate_runtime(wildcards, attempt):
    return int((1 + ac_check_minutes()) * attempt + 0.999)


def fleet_mem_mb(wildcards, attempt):
    """A handful of float arrays per vehicle and per vehicle-step (sampling, envelopes)."""
    vehicles = fleet_vehicles(wildcards.fleet)
    return int((BASE_MEM_MB + 1e-4 * vehicles * n_steps()) * 2 ** (attempt - 1))


def fleet_runtime(wildcards, attempt):
    """20,000 vehicles sample in 0.13 s (benchmarks): start-up dominates."""
    return int((2 + fleet_vehicles(wildcards.fleet) / 1e5) * attempt)


def small_mem_mb(wildcards, attempt):
    """Rules whose size does not grow with the study (network, profiles, travel times)."""
    return BASE_MEM_MB * 2 ** (attempt - 1)


def small_runtime(wildcards, attempt):
    return 2 * attempt


def study_size():
    """Scenario x bus x step values the study-wide rules read (summary, study figures)."""
    return len(SCENARIOS) * N_BUSES * n_steps()


def summarize_mem_mb(wildcards, attempt):
    """~20 float variables per scenario-bus-step held at once, plus the KPI table."""
    return int((BASE_MEM_MB + 2e-4 * study_size()) * 2 ** (attempt - 1))


def summarize_runtime(wildcards, attempt):
    """Opening two NetCDF files per scenario (~0.1 s each) and the KPIs."""
    return int((2 + len(SCENARIOS) * 0.01) * attempt + 0.999)


def plot_mem_mb(wildcards, attempt):
    """matplotlib (~100 MB) over one scenario's (or one fleet's) data."""
    return int((BASE_MEM_MB + 100 + 2e-4 * N_BUSES * n_steps()) * 2 ** (attempt - 1))


def plot_study_mem_mb(wildcards, attempt):
    """matplotlib over every scenario's voltages and KPIs."""
    return int((BASE_MEM_MB + 100 + 2e-4 * study_size()) * 2 ** (attempt - 1))


def plot_runtime(wildcards, attempt):
    return 2 * attempt


def plot_study_runtime(wildcards, attempt):
    return int((2 + len(SCENARIOS) * 0.01) * attempt + 0.999)


def solution_files(wildcards):
    """Solution of every scenario, in the order of SCENARIOS."""
    return [f"results/{wildcards.study}/solutions/{name}.nc" for name in SCENARIOS]


def ac_files(wildcards):
    """AC check of every scenario, in the order of SCENARIOS."""
    return [f"results/{wildcards.study}/ac/{name}.nc" for name in SCENARIOS]


def all_targets(wildcards):
    return [
        f"results/{STUDY_NAME}/summary.nc",
        f"results/{STUDY_NAME}/kpis.csv",
        *figure_targets(),
        *tradeoff_targets(),
        *monte_carlo_targets(),
    ]


def storage_scenarios():
    """Scenarios with fixed or mobile storage (they get a storage figure)."""
    return [n for n, s in SCENARIOS.items() if s["fess"] or s["mess"]["units"]]


def mess_scenarios():
    """Scenarios with mobile storage (they get itinerary and position figures)."""
    return [n for n, s in SCENARIOS.items() if s["mess"]["units"]]


def used_fleets():
    return sorted(
        {s["ev_fleet"] for s in SCENARIOS.values() if s["ev_fleet"] is not None}
    )


def figure_targets():
    """Every figure of the study."""
    figures = [
        f"results/{STUDY_NAME}/figures/{name}.png"
        for name in ("voltage_envelope", "bus_voltage", "import", "kpis")
    ]
    figures += [
        f"results/{STUDY_NAME}/figures/scenarios/{n}/voltage_heatmap.png"
        for n in SCENARIOS
    ]
    figures += [
        f"results/{STUDY_NAME}/figures/scenarios/{n}/storage.png"
        for n in storage_scenarios()
    ]
    figures += [
        f"results/{STUDY_NAME}/figures/scenarios/{n}/{f}.png"
        for n in mess_scenarios()
        for f in ("mess_itinerary", "mess_positions")
    ]
    figures += [f"results/{STUDY_NAME}/figures/fleets/{f}.png" for f in used_fleets()]
    return figures
