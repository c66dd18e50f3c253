# Data preparation: network, profiles per day, EV fleets. Built once per study and shared by scenarios.


rule prepare_network:
    message:
        "Preparing the feeder {params.source} for study {wildcards.study}"
    params:
        source=STUDY["network"]["source"],
    output:
        network="resources/{study}/network.nc",
    log:
        "logs/{study}/prepare_network.log",
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=small_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/prepare_network.py"


rule build_profiles:
    message:
        "Building load, PV and price profiles of day {wildcards.day}"
    input:
        network=rules.prepare_network.output.network,
    params:
        day=day_settings,
        hours=STUDY["time"]["hours"],
        step_minutes=STUDY["time"]["step_minutes"],
    output:
        profiles="resources/{study}/profiles/{day}.nc",
    log:
        "logs/{study}/build_profiles/{day}.log",
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=small_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/build_profiles.py"


rule sample_ev_fleet:
    message:
        "Sampling EV fleet {wildcards.fleet}"
    input:
        network=rules.prepare_network.output.network,
    params:
        fleet=fleet_settings,
        hours=STUDY["time"]["hours"],
        step_minutes=STUDY["time"]["step_minutes"],
    output:
        fleet="resources/{study}/fleets/{fleet}.nc",
    log:
        "logs/{study}/sample_ev_fleet/{fleet}.log",
    benchmark:
        "results/{study}/benchmarks/sample_ev_fleet/{fleet}.tsv"
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=fleet_mem_mb,
        runtime=fleet_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/sample_ev_fleet.py"


rule build_travel:
    message:
        "Building MESS travel times between {params.n_stations} stations"
    input:
        network=rules.prepare_network.output.network,
    params:
        transport=STUDY["transport"],
        n_stations=len(STUDY["transport"]["stations"]),
        hours=STUDY["time"]["hours"],
        step_minutes=STUDY["time"]["step_minutes"],
    output:
        travel="resources/{study}/travel.nc",
    log:
        "logs/{study}/build_travel.log",
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=small_runtime,
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/build_travel.py"
