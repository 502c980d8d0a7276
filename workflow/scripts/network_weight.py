"""The network weight by field ratio chosen from the scan of the real validation planes."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.networkweight import record

record(snakemake.input.scan, model_dir=snakemake.params.model_dir, out_json=snakemake.output.record)
