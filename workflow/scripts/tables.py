"""Aggregate the metrics per method and factor with bootstrap confidence intervals."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.evaluation.tables import write_tables

write_tables(
    snakemake.input.metrics,
    Path(snakemake.output.summary).parent,
    n_boot=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
)
