"""Train the continuous-factor MSSR on the run's factors minus the held-out ones."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.evaluation.heldout import train_continuous

train_continuous(
    snakemake.params.cfg,
    snakemake.input.train,
    snakemake.input.val,
    Path(snakemake.output.model).parent,
    factors=snakemake.params.factors,
    heldout=snakemake.params.heldout,
    epochs=snakemake.params.epochs,
    store_json=snakemake.input.store,
    threads=snakemake.threads,
)
