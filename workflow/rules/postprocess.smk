# Study summary over all scenarios and the KPI table.


rule summarize:
    input:
        solutions=solution_files,
        ac=ac_files,
    output:
        summary="results/{study}/summary.nc",
        kpis=report(
            "results/{study}/kpis.csv",
            caption="../report/kpis.rst",
            category="Summary",
        ),
    log:
        "logs/{study}/summarize.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.summarize_mem_mb,
        runtime=RESOURCES.summarize_runtime,
    params:
        n_scenarios=len(SCENARIOS),
        scenarios=list(SCENARIOS),
    message:
        "Summarising {params.n_scenarios} scenarios of study {wildcards.study}"
    script:
        "../scripts/summarize.py"


rule summarize_monte_carlo:
    input:
        batches=monte_carlo_batch_files,
    output:
        table=report(
            "results/{study}/monte_carlo.csv",
            caption="../report/monte_carlo.rst",
            category="Summary",
        ),
        realisations="results/{study}/monte_carlo_realisations.csv",
        dataset="results/{study}/monte_carlo.nc",
    log:
        "logs/{study}/summarize_monte_carlo.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.summarize_mem_mb,
        runtime=RESOURCES.summarize_runtime,
    params:
        n_scenarios=len(OPERATED),
    message:
        "Monte Carlo summary of {params.n_scenarios} operated scenarios of study {wildcards.study}"
    script:
        "../scripts/summarize_monte_carlo.py"


rule plot_study:
    input:
        summary=rules.summarize.output.summary,
        kpis=rules.summarize.output.kpis,
    output:
        envelope=report(
            "results/{study}/figures/voltage_envelope.png",
            caption="../report/voltage_envelope.rst",
            category="Study",
            labels={"figure": "voltage envelope"},
        ),
        bus_voltage=report(
            "results/{study}/figures/bus_voltage.png",
            caption="../report/bus_voltage.rst",
            category="Study",
            labels={"figure": "voltage at one bus"},
        ),
        imports=report(
            "results/{study}/figures/import.png",
            caption="../report/import.rst",
            category="Study",
            labels={"figure": "substation import"},
        ),
        kpis=report(
            "results/{study}/figures/kpis.png",
            caption="../report/kpi_figure.rst",
            category="Study",
            labels={"figure": "KPI comparison"},
        ),
    log:
        "logs/{study}/plot_study.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_study_mem_mb,
        runtime=RESOURCES.plot_study_runtime,
    params:
        plots=STUDY["plots"],
    message:
        "Drawing the study figures of {wildcards.study}"
    script:
        "../scripts/plot_study.py"


rule plot_scenario:
    input:
        solution=rules.solve_scenario.output.solution,
        ac=rules.validate_ac.output.ac,
    output:
        heatmap=report(
            "results/{study}/figures/scenarios/{scenario}/voltage_heatmap.png",
            caption="../report/voltage_heatmap.rst",
            category="Scenarios",
            subcategory="{scenario}",
            labels={"scenario": "{scenario}", "figure": "voltage heatmap"},
        ),
    log:
        "logs/{study}/plot_scenario/{scenario}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_mem_mb,
        runtime=RESOURCES.plot_runtime,
    message:
        "Drawing the voltage heatmap of scenario {wildcards.scenario}"
    script:
        "../scripts/plot_scenario.py"


rule plot_storage:
    input:
        solution=rules.solve_scenario.output.solution,
    output:
        storage=report(
            "results/{study}/figures/scenarios/{scenario}/storage.png",
            caption="../report/storage.rst",
            category="Scenarios",
            subcategory="{scenario}",
            labels={"scenario": "{scenario}", "figure": "storage"},
        ),
    log:
        "logs/{study}/plot_storage/{scenario}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_mem_mb,
        runtime=RESOURCES.plot_runtime,
    message:
        "Drawing storage power and energy of scenario {wildcards.scenario}"
    script:
        "../scripts/plot_storage.py"


rule plot_mess:
    input:
        solution=rules.solve_scenario.output.solution,
        network=rules.prepare_network.output.network,
    output:
        itinerary=report(
            "results/{study}/figures/scenarios/{scenario}/mess_itinerary.png",
            caption="../report/mess_itinerary.rst",
            category="Scenarios",
            subcategory="{scenario}",
            labels={"scenario": "{scenario}", "figure": "MESS itinerary"},
        ),
        positions=report(
            "results/{study}/figures/scenarios/{scenario}/mess_positions.png",
            caption="../report/mess_positions.rst",
            category="Scenarios",
            subcategory="{scenario}",
            labels={"scenario": "{scenario}", "figure": "MESS positions"},
        ),
    log:
        "logs/{study}/plot_mess/{scenario}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_mem_mb,
        runtime=RESOURCES.plot_runtime,
    params:
        step=STUDY["plots"]["mess_step"],
    message:
        "Drawing MESS itineraries and positions of scenario {wildcards.scenario}"
    script:
        "../scripts/plot_mess.py"


rule plot_fleet:
    input:
        fleet=rules.sample_ev_fleet.output.fleet,
    output:
        histograms=report(
            "results/{study}/figures/fleets/{fleet}.png",
            caption="../report/fleet.rst",
            category="EV fleets",
            labels={"fleet": "{fleet}", "figure": "fleet histograms"},
        ),
    log:
        "logs/{study}/plot_fleet/{fleet}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_mem_mb,
        runtime=RESOURCES.plot_runtime,
    params:
        fleet=fleet_settings,
    message:
        "Drawing the sampled EV fleet {wildcards.fleet} against its distributions"
    script:
        "../scripts/plot_fleet.py"


rule plot_front:
    input:
        front=rules.gather_front.output.table,
    output:
        figure=report(
            "results/{study}/figures/fronts/{front}.png",
            caption="../report/front.rst",
            category="Trade-offs",
            labels={"front": "{front}"},
        ),
    log:
        "logs/{study}/plot_front/{front}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_mem_mb,
        runtime=RESOURCES.plot_runtime,
    message:
        "Drawing front {wildcards.front} of study {wildcards.study}"
    script:
        "../scripts/plot_front.py"
