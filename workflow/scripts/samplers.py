"""Metrics and time per spectrum of each sampler option against the sampling protocol."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.evaluation.samplers import write_samplers

write_samplers(
    snakemake.input.model,
    snakemake.input.testset,
    snakemake.output.table,
    snakemake.output.figure,
    samplers=snakemake.params.samplers,
    sample=snakemake.params.sample,
    metrics=snakemake.params.metrics,
    factors=snakemake.params.factors,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
