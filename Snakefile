# mssr: MSSR super-resolution of 2D protein NMR spectra, as a Snakemake workflow.
# Demo on a laptop:      snakemake -c 2
# Paper scale on SLURM:  snakemake --profile cluster

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/real.smk"
include: "workflow/rules/native.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
