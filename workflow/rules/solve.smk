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
