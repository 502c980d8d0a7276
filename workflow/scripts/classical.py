"""Run a non-learned method on one test set for one factor."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.infer import classical_file

classical_file(
    snakemake.wildcards.classical,
    snakemake.input.testset,
    snakemake.wildcards.factor,
    snakemake.output[0],
    degrade=snakemake.params.degrade,
)
