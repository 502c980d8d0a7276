"""Record the config, code version, packages, checksums and MLflow run ids behind the results."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.provenance import write_provenance

write_provenance(
    snakemake.output[0],
    config=snakemake.params.cfg,
    inputs=[snakemake.input.manifest, *snakemake.input.data, snakemake.input.metrics],
    model_configs=snakemake.input.models,
)
