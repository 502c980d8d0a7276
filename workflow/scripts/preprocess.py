"""Resize to S x S (anti-aliased) and normalize to [-1, 1]."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.data.preprocess import preprocess_file

preprocess_file(snakemake.input.planes, snakemake.output.samples, size=snakemake.params.size)
