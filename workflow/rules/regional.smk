# Regional microgrids (base.regional.subareas, paper 004): the bills of every scenario with
# subareas, and a figure of each one's subarea curves.


rule bills_table:
    input:
        solutions=regional_solution_files,
    output:
        table=report(
            "results/{study}/bills.csv",
            caption="../report/bills.rst",
            category="Regional microgrids",
        ),
    log:
        "logs/{study}/bills_table.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.summarize_mem_mb,
        runtime=RESOURCES.summarize_runtime,
    params:
        scenarios=REGIONAL,
        settings=regional_settings,
        baselines=STUDY["bills"]["baselines"],
    message:
        "Bills of the subareas of study {wildcards.study}"
    script:
        "../scripts/bills_table.py"


rule plot_subareas:
    input:
        solution=rules.solve_scenario.output.solution,
    output:
        figure=report(
            "results/{study}/figures/scenarios/{scenario}/subareas.png",
            caption="../report/subareas.rst",
            category="Scenarios",
            subcategory="{scenario}",
            labels={"scenario": "{scenario}", "figure": "subareas"},
        ),
    log:
        "logs/{study}/plot_subareas/{scenario}.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.plot_mem_mb,
        runtime=RESOURCES.plot_runtime,
    params:
        subareas=lambda wildcards: SCENARIOS[wildcards.scenario]["regional"]["subareas"],
    message:
        "Drawing the subarea curves of scenario {wildcards.scenario}"
    script:
        "../scripts/plot_subareas.py"
