"""Metrics and time per spectrum of each sampler option against the sampling protocol."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

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
