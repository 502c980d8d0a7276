"""Run a non-learned method on one test set for every factor, with the parameters chosen on validation."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.predictions import classical_files

classical_files(
    snakemake.wildcards.classical,
    snakemake.input.testset,
    dict(zip(snakemake.params.factors, snakemake.output)),
    degrade=snakemake.params.degrade,
    params_json=snakemake.input.params,
)
