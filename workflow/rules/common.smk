# Helpers: the validated study, the scenario table, target lists and resource functions.
import re

from feederflex.feeders import bus_numbers
from feederflex.hosting import expand_cases
from feederflex.model.catalogue import CATALOGUE
from feederflex.multiobjective import fractions, payoff_objectives
from feederflex.resources import JobResources
from feederflex.study import parse_study, read_yaml


def _config_sources():
    """The YAML files merged into config, in order (named in validation errors)."""
    files = ["config/config.yaml"]
    files += [str(f) for f in workflow.overwrite_configfiles if str(f) not in files]
    return files


def _study_config():
    """config with `scenarios` taken whole from the last file that sets it (no merging across files)."""
    merged = dict(config)
    for source in reversed(_config_sources()):
        content = read_yaml(source)
        if "scenarios" in content:
            merged["scenarios"] = content["scenarios"]
            break
    return merged


# SCENARIOS: plain settings (what params hand to scripts); TYPED: the same as Settings, built once
STUDY, SCENARIOS, TYPED = parse_study(
    _study_config(), "config/schema.yaml", _config_sources()
)
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
HOSTING = expand_cases(STUDY["hosting_capacity"])
# scenarios operated on actual days (operation.mode rolling or on_violation), in study order
OPERATED = [
    name
    for name, s in SCENARIOS.items()
    if s["operation"]["mode"] in ("rolling", "on_violation")
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
    case="|".join(map(re.escape, HOSTING)) or "no-cases",


def scenario_settings(wildcards):
    return SCENARIOS[wildcards.scenario]


def day_settings(wildcards):
    return STUDY["days"][wildcards.day]


def fleet_settings(wildcards):
    return STUDY["fleets"][wildcards.fleet]


def inputs_of(study, scenario):
    """Prepared inputs of one scenario: network, its day's profiles, its EV fleet and MESS travel times if any."""
    settings = SCENARIOS[scenario]
    days = (
        [d["day"] for d in settings["planning"]["days"]]
        if settings["planning"]["enabled"]
        else []
    )
    inputs = {
        "network": f"resources/{study}/network.nc",
        # representative days of a planning scenario: one file each, joined by the solve
        "profiles": [f"resources/{study}/profiles/{d}.nc" for d in days]
        or f"resources/{study}/profiles/{settings['day']}.nc",
    }
    if settings["ev_fleet"] is not None:
        inputs["fleet"] = f"resources/{study}/fleets/{settings['ev_fleet']}.nc"
    plan = settings["planning"]
    moving = (
        plan["enabled"] and plan["mobile"]["moving"] and plan["mobile"]["max_units"]
    )
    if settings["mess"]["units"] or moving:
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


# Job groups: on a cluster, every job of one group that Snakemake can put together runs as one
# batch job (one sbatch, one Snakemake start inside it), so many short jobs do not each pay the
# scheduler's start-up. The groups are assigned in workflow/profiles/slurm (`groups:`, one line per
# rule), not in the rules: a local run then has none, and Snakemake's scheduler does not pay for
# them on every job (benchmarks/README.md). How many independent pieces one batch job takes is set
# per group there too (`group-components`).
#   prepare   network, profiles, fleets, travel times (one connected piece: one job)
#   scenario  everything of one scenario: solve, AC check, its figures (later Monte Carlo draws
#             of a scenario join here: jobs that hang off one scenario)
#   front     multi-objective work of one scenario: payoff rows and table, front points, the
#             gathered front and its figure, compromises (connected through the payoff table)
#   montecarlo  solve_rolling batches: each already runs batch_size realisations (uncertainty), so a
#             Slurm job takes a few batches (group-components), not one per realisation
#   study     summary, KPIs, study and fleet figures, Monte Carlo summary

# Resources of the rules (mem_mb, runtime, solve threads) come from feederflex.resources, sized by the
# model-size formula of the model package; rules name them as RESOURCES.<rule kind>_<resource>.
RESOURCES = JobResources(STUDY, TYPED, N_BUSES)


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
        *hosting_targets(),
        *regional_targets(),
    ]


# scenarios with metered subareas (base.regional.subareas, 004), in study order
REGIONAL = [name for name, s in SCENARIOS.items() if s["regional"]["subareas"]]


def regional_targets():
    if not REGIONAL:
        return []
    return [f"results/{STUDY_NAME}/bills.csv"] + [
        f"results/{STUDY_NAME}/figures/scenarios/{n}/subareas.png" for n in REGIONAL
    ]


def regional_solution_files(wildcards):
    return [f"results/{wildcards.study}/solutions/{name}.nc" for name in REGIONAL]


def regional_settings(wildcards):
    return {
        n: {"day": SCENARIOS[n]["day"], "regional": SCENARIOS[n]["regional"]}
        for n in REGIONAL
    }


def hosting_targets():
    if not HOSTING:
        return []
    return [
        f"results/{STUDY_NAME}/hosting.csv",
        f"results/{STUDY_NAME}/figures/hosting.png",
    ]


def hosting_inputs(wildcards):
    return inputs_of(wildcards.study, HOSTING[wildcards.case].scenario)


def hosting_scenario_settings(wildcards):
    return SCENARIOS[HOSTING[wildcards.case].scenario]


def hosting_case_spec(wildcards):
    case = HOSTING[wildcards.case]
    return {
        "name": case.name,
        "scenario": case.scenario,
        "buses": list(case.buses),
        "shares": list(case.shares),
        "edges": case.edges,
        "clears": list(case.clears),
    }


def hosting_search(wildcards):
    section = STUDY["hosting_capacity"]
    return {k: section[k] for k in ("max_scale_mw", "tolerance_mw", "v_tolerance_pu")}


def hosting_files(wildcards):
    return [f"results/{wildcards.study}/hosting/{name}.nc" for name in HOSTING]


def storage_scenarios():
    """Scenarios with fixed or mobile storage (they get a storage figure)."""
    return [
        n
        for n, s in SCENARIOS.items()
        if s["fess"] or s["mess"]["units"] or s["planning"]["enabled"]
    ]


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
