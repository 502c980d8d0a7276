"""Fetch raw spectra (ARTINA, a local copy, or the rendered demo set) and write their manifest."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mssr.data.fetch import fetch

fetch(snakemake.params.source, Path(snakemake.output.manifest).parent)
