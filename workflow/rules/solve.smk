# Per-scenario optimisation: LinDistFlow MILP solved by HiGHS.


rule solve_scenario:
    message:
        "Solving scenario {wildcards.scenario} of study {wildcards.study}"
    input:
        unpack(scenario_inputs),
    params:
        settings=scenario_settings,
    output:
        solution="results/{study}/solutions/{scenario}.nc",
    log:
        python="logs/{study}/solve_scenario/{scenario}.python.log",
        solver="logs/{study}/solve_scenario/{scenario}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_scenario/{scenario}.tsv"
    group:
        "scenario"
    threads: solve_threads
    resources:
        mem_mb=solve_mem_mb,
        runtime=solve_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/solve_scenario.py"


# Day-ahead vs real-time (operation.mode rolling or on_violation): a batch of realisations of the
# actual day per job (uncertainty.batch_size), each realised (actual profiles), operated on the
# persistent model, AC-checked and turned into KPI rows. Schedules go to the batch's folder:
# r{k}.nc (realised), r{k}.plan.nc (the day-ahead plan on the actual day) and their .ac.nc checks.


rule solve_rolling:
    message:
        "Operating scenario {wildcards.scenario} of study {wildcards.study} on actual days, batch {wildcards.batch}"
    input:
        unpack(scenario_inputs),
    params:
        settings=scenario_settings,
        uncertainty=uncertainty_spec,
        realisations=batch_realisations,
    output:
        schedules=directory("results/{study}/rolling/{scenario}/batch{batch}"),
        kpis="results/{study}/rolling/{scenario}/batch{batch}.csv",
    log:
        python="logs/{study}/solve_rolling/{scenario}/batch{batch}.python.log",
        solver="logs/{study}/solve_rolling/{scenario}/batch{batch}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_rolling/{scenario}/batch{batch}.tsv"
    group:
        "montecarlo"
    threads: solve_threads
    resources:
        mem_mb=rolling_mem_mb,
        runtime=rolling_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/solve_rolling.py"


# Multi-objective trade-offs (multiobjective section of the study): payoff rows, then fronts and
# compromises that depend on the payoff table. Each point is its own cached job.


rule solve_payoff_row:
    message:
        "Payoff row of {wildcards.objective} for scenario {wildcards.scenario} of study {wildcards.study}"
    input:
        unpack(scenario_inputs),
    params:
        settings=scenario_settings,
        penalties=MO["penalties"],
        lexicographic=MO["lexicographic"],
    output:
        solution="results/{study}/payoff/{scenario}/{objective}.nc",
    log:
        python="logs/{study}/solve_payoff_row/{scenario}/{objective}.python.log",
        solver="logs/{study}/solve_payoff_row/{scenario}/{objective}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_payoff_row/{scenario}/{objective}.tsv"
    group:
        "front"
    threads: solve_threads
    resources:
        mem_mb=solve_mem_mb,
        runtime=solve_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/solve_payoff_row.py"


rule payoff_table:
    message:
        "Payoff table of scenario {wildcards.scenario} of study {wildcards.study}"
    input:
        rows=payoff_row_files,
    params:
        objectives=payoff_row_names,
    output:
        table="results/{study}/payoff/{scenario}.nc",
        csv=report("results/{study}/payoff/{scenario}.csv", caption="../report/payoff.rst", category="Trade-offs"),
    log:
        "logs/{study}/payoff_table/{scenario}.log",
    group:
        "front"
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=small_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/payoff_table.py"


rule solve_front_point:
    message:
        "Front {wildcards.front}, point {wildcards.fraction} of study {wildcards.study}"
    input:
        unpack(front_point_inputs),
    params:
        settings=front_scenario_settings,
        front=front_settings,
        penalties=MO["penalties"],
        lexicographic=MO["lexicographic"],
    output:
        solution="results/{study}/fronts/{front}/{fraction}.nc",
    log:
        python="logs/{study}/solve_front_point/{front}/{fraction}.python.log",
        solver="logs/{study}/solve_front_point/{front}/{fraction}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_front_point/{front}/{fraction}.tsv"
    group:
        "front"
    threads: solve_threads
    resources:
        mem_mb=solve_mem_mb,
        runtime=solve_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/solve_front_point.py"


rule gather_front:
    message:
        "Gathering front {wildcards.front} of study {wildcards.study}"
    input:
        points=front_point_files,
        payoff=front_payoff_file,
    params:
        fractions=front_fractions,
        front=front_settings,
    output:
        table="results/{study}/fronts/{front}.nc",
        csv=report("results/{study}/fronts/{front}.csv", caption="../report/front_table.rst", category="Trade-offs"),
    log:
        "logs/{study}/gather_front/{front}.log",
    group:
        "front"
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=small_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/gather_front.py"


rule solve_compromise:
    message:
        "Compromise {wildcards.compromise} of study {wildcards.study}"
    input:
        unpack(compromise_inputs),
    params:
        settings=compromise_scenario_settings,
        compromise=compromise_settings,
        penalties=MO["penalties"],
    output:
        solution="results/{study}/compromises/{compromise}.nc",
    log:
        python="logs/{study}/solve_compromise/{compromise}.python.log",
        solver="logs/{study}/solve_compromise/{compromise}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_compromise/{compromise}.tsv"
    group:
        "front"
    threads: solve_threads
    resources:
        mem_mb=solve_mem_mb,
        runtime=solve_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/solve_compromise.py"
