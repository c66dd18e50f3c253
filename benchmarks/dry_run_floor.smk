# The dry-run floor: the thousand study's DAG shape (3,005 jobs: network, profiles, 1,000 solves,
# 1,000 AC checks, 1,000 heatmaps, summary, study figures) with no feederflex at all.
import re

SCENARIOS = {f"s{k:04d}": {"grid": {"v_min_pu": 0.9}} for k in range(1000)}


wildcard_constraints:
    study="thousand",
    scenario="|".join(map(re.escape, SCENARIOS)),


def settings(wildcards):
    return SCENARIOS[wildcards.scenario]


def inputs(wildcards):
    return {
        "network": f"resources/{wildcards.study}/network.nc",
        "profiles": f"resources/{wildcards.study}/profiles/summer.nc",
    }


def mem(wildcards, attempt):
    return 300 * attempt


def runtime(wildcards, attempt):
    return 10 * attempt


def threads(wildcards):
    return 1


rule all:
    input:
        "results/thousand/summary.nc",
        "results/thousand/figures/kpis.png",
        expand(
            "results/thousand/figures/scenarios/{s}/voltage_heatmap.png", s=SCENARIOS
        ),


rule prepare_network:
    output:
        network="resources/{study}/network.nc",
    log:
        "logs/{study}/prepare_network.log",
    message:
        "Preparing {wildcards.study}"
    shell:
        "touch {output}"


rule build_profiles:
    input:
        network=rules.prepare_network.output.network,
    output:
        profiles="resources/{study}/profiles/summer.nc",
    log:
        "logs/{study}/build_profiles.log",
    message:
        "Profiles"
    shell:
        "touch {output}"


rule solve_scenario:
    input:
        unpack(inputs),
    output:
        solution="results/{study}/solutions/{scenario}.nc",
    log:
        python="logs/{study}/solve_scenario/{scenario}.python.log",
        solver="logs/{study}/solve_scenario/{scenario}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_scenario/{scenario}.tsv"
    threads: threads
    resources:
        mem_mb=mem,
        runtime=runtime,
    params:
        settings=settings,
    message:
        "Solving scenario {wildcards.scenario} of study {wildcards.study}"
    shell:
        "touch {output}"


rule validate_ac:
    input:
        network=rules.prepare_network.output.network,
        solution=rules.solve_scenario.output.solution,
    output:
        ac="results/{study}/ac/{scenario}.nc",
    log:
        "logs/{study}/validate_ac/{scenario}.log",
    benchmark:
        "results/{study}/benchmarks/validate_ac/{scenario}.tsv"
    resources:
        mem_mb=mem,
        runtime=runtime,
    message:
        "AC power flow of every step of scenario {wildcards.scenario}"
    shell:
        "touch {output}"


rule plot_scenario:
    input:
        solution=rules.solve_scenario.output.solution,
        ac=rules.validate_ac.output.ac,
    output:
        heatmap="results/{study}/figures/scenarios/{scenario}/voltage_heatmap.png",
    log:
        "logs/{study}/plot_scenario/{scenario}.log",
    resources:
        mem_mb=mem,
        runtime=runtime,
    message:
        "Heatmap {wildcards.scenario}"
    shell:
        "touch {output}"


rule summarize:
    input:
        solutions=expand("results/{{study}}/solutions/{s}.nc", s=SCENARIOS),
        ac=expand("results/{{study}}/ac/{s}.nc", s=SCENARIOS),
    output:
        summary="results/{study}/summary.nc",
    log:
        "logs/{study}/summarize.log",
    resources:
        mem_mb=mem,
        runtime=runtime,
    message:
        "Summarising"
    shell:
        "touch {output}"


rule plot_study:
    input:
        summary=rules.summarize.output.summary,
    output:
        kpis="results/{study}/figures/kpis.png",
    log:
        "logs/{study}/plot_study.log",
    message:
        "Study figures"
    shell:
        "touch {output}"
