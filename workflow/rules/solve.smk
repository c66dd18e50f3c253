# Per-scenario optimisation: LinDistFlow MILP solved by HiGHS.


rule solve_scenario:
    input:
        unpack(scenario_inputs),
    output:
        solution="results/{study}/solutions/{scenario}.nc",
    log:
        python="logs/{study}/solve_scenario/{scenario}.python.log",
        solver="logs/{study}/solve_scenario/{scenario}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_scenario/{scenario}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: RESOURCES.solve_threads
    resources:
        mem_mb=RESOURCES.solve_mem_mb,
        runtime=RESOURCES.solve_runtime,
    params:
        settings=scenario_settings,
    message:
        "Solving scenario {wildcards.scenario} of study {wildcards.study}"
    script:
        "../scripts/solve_scenario.py"


# Day-ahead vs real-time (operation.mode rolling or on_violation): a batch of realisations of the
# actual day per job (uncertainty.batch_size), each realised (actual profiles), operated on the
# persistent model, AC-checked and turned into KPI rows. Schedules go to the batch's folder:
# r{k}.nc (realised), r{k}.plan.nc (the day-ahead plan on the actual day) and their .ac.nc checks.


rule solve_rolling:
    input:
        unpack(scenario_inputs),
    output:
        schedules=directory("results/{study}/rolling/{scenario}/batch{batch}"),
        kpis="results/{study}/rolling/{scenario}/batch{batch}.csv",
    log:
        python="logs/{study}/solve_rolling/{scenario}/batch{batch}.python.log",
        solver="logs/{study}/solve_rolling/{scenario}/batch{batch}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_rolling/{scenario}/batch{batch}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: RESOURCES.solve_threads
    resources:
        mem_mb=RESOURCES.rolling_mem_mb,
        runtime=RESOURCES.rolling_runtime,
    params:
        settings=scenario_settings,
        uncertainty=uncertainty_spec,
        realisations=batch_realisations,
    message:
        "Operating scenario {wildcards.scenario} of study {wildcards.study} on actual days, batch {wildcards.batch}"
    script:
        "../scripts/solve_rolling.py"


# Multi-objective trade-offs (multiobjective section of the study): payoff rows, then fronts and
# compromises that depend on the payoff table. Each point is its own cached job.


rule solve_payoff_row:
    input:
        unpack(scenario_inputs),
    output:
        solution="results/{study}/payoff/{scenario}/{objective}.nc",
    log:
        python="logs/{study}/solve_payoff_row/{scenario}/{objective}.python.log",
        solver="logs/{study}/solve_payoff_row/{scenario}/{objective}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_payoff_row/{scenario}/{objective}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: RESOURCES.solve_threads
    resources:
        mem_mb=RESOURCES.solve_mem_mb,
        runtime=RESOURCES.solve_runtime,
    params:
        settings=scenario_settings,
        penalties=MO["penalties"],
        lexicographic=MO["lexicographic"],
    message:
        "Payoff row of {wildcards.objective} for scenario {wildcards.scenario} of study {wildcards.study}"
    script:
        "../scripts/solve_payoff_row.py"


rule payoff_table:
    input:
        rows=payoff_row_files,
    output:
        table="results/{study}/payoff/{scenario}.nc",
        csv=report(
            "results/{study}/payoff/{scenario}.csv",
            caption="../report/payoff.rst",
            category="Trade-offs",
        ),
    log:
        "logs/{study}/payoff_table/{scenario}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.small_mem_mb,
        runtime=RESOURCES.small_runtime,
    params:
        objectives=payoff_row_names,
    message:
        "Payoff table of scenario {wildcards.scenario} of study {wildcards.study}"
    script:
        "../scripts/payoff_table.py"


rule solve_front_point:
    input:
        unpack(front_point_inputs),
    output:
        solution="results/{study}/fronts/{front}/{fraction}.nc",
    log:
        python="logs/{study}/solve_front_point/{front}/{fraction}.python.log",
        solver="logs/{study}/solve_front_point/{front}/{fraction}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_front_point/{front}/{fraction}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: RESOURCES.solve_threads
    resources:
        mem_mb=RESOURCES.solve_mem_mb,
        runtime=RESOURCES.solve_runtime,
    params:
        settings=front_scenario_settings,
        front=front_settings,
        penalties=MO["penalties"],
        lexicographic=MO["lexicographic"],
    message:
        "Front {wildcards.front}, point {wildcards.fraction} of study {wildcards.study}"
    script:
        "../scripts/solve_front_point.py"


rule gather_front:
    input:
        points=front_point_files,
        payoff=front_payoff_file,
    output:
        table="results/{study}/fronts/{front}.nc",
        csv=report(
            "results/{study}/fronts/{front}.csv",
            caption="../report/front_table.rst",
            category="Trade-offs",
        ),
    log:
        "logs/{study}/gather_front/{front}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.small_mem_mb,
        runtime=RESOURCES.small_runtime,
    params:
        fractions=front_fractions,
        front=front_settings,
    message:
        "Gathering front {wildcards.front} of study {wildcards.study}"
    script:
        "../scripts/gather_front.py"


rule solve_compromise:
    input:
        unpack(compromise_inputs),
    output:
        solution="results/{study}/compromises/{compromise}.nc",
    log:
        python="logs/{study}/solve_compromise/{compromise}.python.log",
        solver="logs/{study}/solve_compromise/{compromise}.solver.log",
    benchmark:
        "results/{study}/benchmarks/solve_compromise/{compromise}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: RESOURCES.solve_threads
    resources:
        mem_mb=RESOURCES.solve_mem_mb,
        runtime=RESOURCES.solve_runtime,
    params:
        settings=compromise_scenario_settings,
        compromise=compromise_settings,
        penalties=MO["penalties"],
    message:
        "Compromise {wildcards.compromise} of study {wildcards.study}"
    script:
        "../scripts/solve_compromise.py"
