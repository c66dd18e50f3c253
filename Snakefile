# feederflex: multi-scenario scheduling of distribution feeders. See README.md.
from snakemake.utils import min_version

min_version("9.5")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/solve.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/postprocess.smk"
include: "workflow/rules/hosting.smk"
include: "workflow/rules/regional.smk"


rule all:
    default_target: True
    input:
        all_targets,
