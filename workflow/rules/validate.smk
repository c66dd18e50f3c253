# AC power flow (pandapower) of every solved schedule.


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
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.validate_mem_mb,
        runtime=RESOURCES.validate_runtime,
    message:
        "AC power flow of every step of scenario {wildcards.scenario}"
    script:
        "../scripts/validate_ac.py"
