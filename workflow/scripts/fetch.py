"""Fetch raw spectra (ARTINA, a local copy, or the rendered demo set) and write their manifest."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.data.fetch import fetch

fetch(snakemake.params.source, Path(snakemake.output.manifest).parent)
