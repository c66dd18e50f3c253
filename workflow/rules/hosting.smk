# PV hosting capacity (hosting_capacity section of the study): one job per case, then the table
# and the figure over all cases.


rule hosting_case:
    input:
        unpack(hosting_inputs),
    output:
        result="results/{study}/hosting/{case}.nc",
    log:
        python="logs/{study}/hosting/{case}.python.log",
    benchmark:
        "results/{study}/benchmarks/hosting/{case}.tsv"
    conda:
        "../../envs/feederflex.yaml"
    threads: RESOURCES.solve_threads
    resources:
        mem_mb=RESOURCES.solve_mem_mb,
        runtime=RESOURCES.hosting_runtime,
    params:
        settings=hosting_scenario_settings,
        case=hosting_case_spec,
        search=hosting_search,
    message:
        "PV hosting capacity of case {wildcards.case} of study {wildcards.study}"
    script:
        "../scripts/hosting_case.py"


rule hosting_table:
    input:
        results=hosting_files,
    output:
        table=report(
            "results/{study}/hosting.csv",
            caption="../report/hosting.rst",
            category="Hosting capacity",
        ),
        figure=report(
            "results/{study}/figures/hosting.png",
            caption="../report/hosting_figure.rst",
            category="Hosting capacity",
        ),
    log:
        "logs/{study}/hosting_table.log",
    conda:
        "../../envs/feederflex.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.summarize_mem_mb,
        runtime=RESOURCES.summarize_runtime,
    params:
        cases=list(HOSTING),
    message:
        "Hosting-capacity table of study {wildcards.study}"
    script:
        "../scripts/hosting_table.py"
