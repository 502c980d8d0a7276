"""Resize to S x S (anti-aliased) and normalize to [-1, 1]."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.data.preprocess import preprocess_file

preprocess_file(snakemake.input.planes, snakemake.output.samples, size=snakemake.params.size)
