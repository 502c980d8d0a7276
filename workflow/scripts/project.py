"""Project every raw 2D/3D/4D spectrum onto 2D planes."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.data.project import project_manifest

project_manifest(snakemake.input.manifest, snakemake.output.planes, method=snakemake.params.method)
