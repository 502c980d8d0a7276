"""Compute every metric for every prediction, and the per-matched-peak table."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.scoring import metrics_table

metrics_table(snakemake.input.testsets, snakemake.input.predictions, snakemake.output.metrics,
              metrics=snakemake.params.metrics, peaks_csv=snakemake.output.peaks)
