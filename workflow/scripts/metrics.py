"""Compute the nine metrics for every prediction."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.scoring import metrics_table

metrics_table(snakemake.input.testsets, snakemake.input.predictions, snakemake.output[0], metrics=snakemake.params.metrics)
