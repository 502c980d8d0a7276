"""Sample a learned model on one test set for one factor."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

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
