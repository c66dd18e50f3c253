# Study summary over all scenarios and the KPI table.


rule summarize:
    message:
        "Summarising {params.n_scenarios} scenarios of study {wildcards.study}"
    input:
        solutions=solution_files,
        ac=ac_files,
    params:
        n_scenarios=len(SCENARIOS),
        scenarios=list(SCENARIOS),
    output:
        summary="results/{study}/summary.nc",
        kpis=report("results/{study}/kpis.csv", caption="../report/kpis.rst", category="Summary"),
    log:
        "logs/{study}/summarize.log",
    conda:
        "../../envs/feederflex.yaml"
    script:
        "../scripts/summarize.py"
