"""Draw the figures of the report."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.figures.pipeline import pipeline_figures

pipeline_figures(dict(snakemake.input.items()), dict(snakemake.output.items()), factors=snakemake.params.factors)
