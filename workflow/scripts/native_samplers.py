"""The native model's sampler settings against the sampling protocol, on validation patches."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.nativesamplers import run_validation

run_validation(snakemake.input.model, snakemake.input.split, snakemake.output.table, snakemake.output.summary,
               validate=snakemake.params.validate, patches=snakemake.params.patches, threads=snakemake.threads)
