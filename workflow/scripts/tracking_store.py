"""Create the MLflow store and experiment once, before jobs fan out."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.tracking import ensure_store_file

ensure_store_file(snakemake.params.tracking, snakemake.params.results, snakemake.output[0])
