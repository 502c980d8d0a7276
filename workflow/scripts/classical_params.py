"""Choose the classical methods' parameters on validation pairs built like one test set."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.predictions import classical_parameters

classical_parameters(
    snakemake.wildcards.testset,
    snakemake.input.val,
    snakemake.output[0],
    methods=snakemake.params.methods,
    factors=snakemake.params.factors,
    degrade=snakemake.params.degrade,
    data=snakemake.params.data,
    assignment=snakemake.input.assignment,
    manifest=snakemake.input.manifest,
    seed=snakemake.params.seed,
)
