# Data preparation: network, profiles per day, EV fleets. Built once per study and shared by scenarios.


rule prepare_network:
    output:
        network="resources/{study}/network.nc",
    log:
        "logs/{study}/prepare_network.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.small_mem_mb,
        runtime=RESOURCES.small_runtime,
    params:
        source=STUDY["network"]["source"],
    message:
        "Preparing the feeder {params.source} for study {wildcards.study}"
    script:
        "../scripts/prepare_network.py"


rule build_profiles:
    input:
        network=rules.prepare_network.output.network,
    output:
        profiles="resources/{study}/profiles/{day}.nc",
    log:
        "logs/{study}/build_profiles/{day}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.small_mem_mb,
        runtime=RESOURCES.small_runtime,
    params:
        day=day_settings,
        hours=STUDY["time"]["hours"],
        step_minutes=STUDY["time"]["step_minutes"],
    message:
        "Building load, PV and price profiles of day {wildcards.day}"
    script:
        "../scripts/build_profiles.py"


rule sample_ev_fleet:
    input:
        network=rules.prepare_network.output.network,
    output:
        fleet="resources/{study}/fleets/{fleet}.nc",
    log:
        "logs/{study}/sample_ev_fleet/{fleet}.log",
    benchmark:
        "results/{study}/benchmarks/sample_ev_fleet/{fleet}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.fleet_mem_mb,
        runtime=RESOURCES.fleet_runtime,
    params:
        fleet=fleet_settings,
        hours=STUDY["time"]["hours"],
        step_minutes=STUDY["time"]["step_minutes"],
    message:
        "Sampling EV fleet {wildcards.fleet}"
    script:
        "../scripts/sample_ev_fleet.py"


rule build_travel:
    input:
        network=rules.prepare_network.output.network,
    output:
        travel="resources/{study}/travel.nc",
    log:
        "logs/{study}/build_travel.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.small_mem_mb,
        runtime=RESOURCES.small_runtime,
    params:
        transport=STUDY["transport"],
        n_stations=len(STUDY["transport"]["stations"]),
        hours=STUDY["time"]["hours"],
        step_minutes=STUDY["time"]["step_minutes"],
    message:
        "Building MESS travel times between {params.n_stations} stations"
    script:
        "../scripts/build_travel.py"
