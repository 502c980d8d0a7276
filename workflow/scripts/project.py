"""Project every raw 2D/3D/4D spectrum onto 2D planes."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.data.project import project_manifest

project_manifest(snakemake.input.manifest, snakemake.output.planes, method=snakemake.params.method)
