"""Train MSSR (all factors) or one factor's baseline."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.config import train_from_config

train_from_config(
    snakemake.params.cfg,
    snakemake.input.train,
    snakemake.input.val,
    Path(snakemake.output.model).parent,
    factor=snakemake.params.factor,
    factors=snakemake.params.factors,
    store_json=snakemake.input.store,
    threads=snakemake.threads,
)
