"""Score the continuous-factor MSSR on factors it never saw, beside MSSR, baselines and classical methods."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.evaluation.heldout import write_heldout

write_heldout(
    snakemake.input.testset,
    snakemake.input.test,
    snakemake.output.table,
    snakemake.output.figure,
    continuous_model=snakemake.input.continuous,
    class_model=snakemake.input.mssr,
    baseline_models=snakemake.input.baselines,
    continuous=snakemake.params.continuous,
    sample=snakemake.params.sample,
    degrade=snakemake.params.degrade,
    metrics=snakemake.params.metrics,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
