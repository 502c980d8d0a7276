"""The native study's table and per-factor summary."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.nativestudy import summarize

summarize(snakemake.input.tables, snakemake.output.table, snakemake.output.summary)
