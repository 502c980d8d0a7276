"""Sample a learned model on one test set for one factor."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.model.sample import predict_file

predict_file(
    snakemake.input.model,
    snakemake.input.testset,
    snakemake.wildcards.factor,
    snakemake.output[0],
    sample=snakemake.params.sample,
    method=snakemake.wildcards.learned,
    threads=snakemake.threads,
)
