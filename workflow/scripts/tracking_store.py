"""Create the MLflow store and experiment once, before jobs fan out."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.tracking import ensure_store_file

ensure_store_file(snakemake.params.tracking, snakemake.params.results, snakemake.output[0])
