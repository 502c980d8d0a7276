"""Metrics vs sampling steps and repeats (Fig. 6)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

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
