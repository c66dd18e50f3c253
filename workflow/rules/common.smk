# Helpers: the validated study, the scenario table, target lists and resource functions.
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
PAYOFF_SCENARIOS = sorted({item["scenario"] for kind in ("fronts", "compromises") for item in MO[kind].values()})


wildcard_constraints:
    study=STUDY_NAME,
    scenario="|".join(SCENARIOS),
    day="[A-Za-z0-9_.-]+",
    fleet="[A-Za-z0-9_.-]+",
    objective="|".join(CATALOGUE),
    front="|".join(MO["fronts"]) or "no-fronts",
    compromise="|".join(MO["compromises"]) or "no-compromises",
    fraction=r"[01]\.[0-9]{4}",


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
    return [f"results/{wildcards.study}/payoff/{wildcards.scenario}/{o}.nc" for o in payoff_objectives(MO, wildcards.scenario)]


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
    return [f"results/{wildcards.study}/fronts/{wildcards.front}/{f}.nc" for f in front_fractions(wildcards)]


def compromise_inputs(wildcards):
    """A compromise: its scenario's prepared inputs, the payoff table if it needs one and the
    reference scenario's solution if the fuzzy memberships are measured from one."""
    comp = MO["compromises"][wildcards.compromise]
    inputs = inputs_of(wildcards.study, comp["scenario"])
    if comp["method"] == "fuzzy" or comp["normalise"]:
        inputs["payoff"] = f"results/{wildcards.study}/payoff/{comp['scenario']}.nc"
    if comp["method"] == "fuzzy" and comp["reference"] != "payoff":
        inputs["reference"] = f"results/{wildcards.study}/solutions/{comp['reference']}.nc"
    return inputs


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


def problem_size(wildcards):
    """Buses x steps x (1 + units) plus steps x MESS units x stations^2 (trip arcs): what model size scales with."""
    settings = SCENARIOS[_scenario_of(wildcards)]
    steps = STUDY["time"]["hours"] * 60 / STUDY["time"]["step_minutes"]
    stations = len(STUDY["transport"]["stations"])
    mess = len(settings["mess"]["units"]) * stations * stations
    return N_BUSES * steps * (1 + len(settings["pv"]) + len(settings["fess"])) + steps * mess


def solve_threads(wildcards):
    return SCENARIOS[_scenario_of(wildcards)]["solver"]["threads"]


def solve_mem_mb(wildcards, attempt):
    # Measured (results/default/benchmarks): IEEE 33 x 24 steps x 6 units = 4,752 bus-step-units
    # peaks at 146 MB RSS, about 100 MB of it imports, so ~10 kB per bus-step-unit; the estimate
    # below leaves a margin of 1.7 and doubles on each retry.
    return int((200 + 0.01 * problem_size(wildcards)) * 2 ** (attempt - 1))


def solve_runtime(wildcards, attempt):
    """Minutes: the solver's time limit (twice with routed MESS: baseline, then routing) plus
    build and write overhead, doubled on each retry."""
    settings = SCENARIOS[_scenario_of(wildcards)]
    solves = 2 if settings["mess"]["units"] and settings["mess"]["routing"] == "optimised" else 1
    if "front" in wildcards.keys() or "objective" in wildcards.keys():
        solves *= 2 if MO["lexicographic"] else 1
    limit_min = settings["solver"]["time_limit_s"] / 60
    return int((5 + 1.2 * solves * limit_min) * attempt)


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
    ]


def storage_scenarios():
    """Scenarios with fixed or mobile storage (they get a storage figure)."""
    return [n for n, s in SCENARIOS.items() if s["fess"] or s["mess"]["units"]]


def mess_scenarios():
    """Scenarios with mobile storage (they get itinerary and position figures)."""
    return [n for n, s in SCENARIOS.items() if s["mess"]["units"]]


def used_fleets():
    return sorted({s["ev_fleet"] for s in SCENARIOS.values() if s["ev_fleet"] is not None})


def figure_targets():
    """Every figure of the study."""
    figures = [f"results/{STUDY_NAME}/figures/{name}.png" for name in ("voltage_envelope", "bus_voltage", "import", "kpis")]
    figures += [f"results/{STUDY_NAME}/figures/scenarios/{n}/voltage_heatmap.png" for n in SCENARIOS]
    figures += [f"results/{STUDY_NAME}/figures/scenarios/{n}/storage.png" for n in storage_scenarios()]
    figures += [f"results/{STUDY_NAME}/figures/scenarios/{n}/{f}.png" for n in mess_scenarios() for f in ("mess_itinerary", "mess_positions")]
    figures += [f"results/{STUDY_NAME}/figures/fleets/{f}.png" for f in used_fleets()]
    return figures
