"""Precompute the low-field inputs of one test set for every factor."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.testsets import build_testset

build_testset(
    snakemake.wildcards.testset,
    snakemake.input.test,
    snakemake.output[0],
    factors=snakemake.params.factors,
    degrade=snakemake.params.degrade,
    data=snakemake.params.data,
    assignment=snakemake.input.assignment,
    manifest=snakemake.input.manifest,
)
