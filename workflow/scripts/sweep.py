"""Metrics vs sampling steps and repeats (Fig. 6)."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.evaluation.scoring import sweep

sweep(
    snakemake.input.model,
    snakemake.input.testset,
    snakemake.output[0],
    sample=snakemake.params.sample,
    sweep=snakemake.params.sweep,
    metrics=snakemake.params.metrics,
    factors=snakemake.params.factors,
    threads=snakemake.threads,
)
