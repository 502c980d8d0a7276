"""Record the config, code version, packages, checksums and MLflow run ids behind the results."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from mssr.provenance import write_provenance

write_provenance(
    snakemake.output[0],
    config=snakemake.params.cfg,
    inputs=[snakemake.input.manifest, *snakemake.input.data, snakemake.input.metrics],
    model_configs=snakemake.input.models,
)
