"""Draw the figures of the report."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.figures.pipeline import pipeline_figures

pipeline_figures(dict(snakemake.input.items()), dict(snakemake.output.items()), factors=snakemake.params.factors)
