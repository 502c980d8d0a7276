"""Train the continuous-factor MSSR on the run's factors minus the held-out ones."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mssr.evaluation.heldout import train_continuous

train_continuous(
    # tracking is read here, not from params: a new MLflow server must not retrain the model
    {**snakemake.params.cfg, "tracking": snakemake.config["tracking"]},
    snakemake.input.train,
    snakemake.input.val,
    Path(snakemake.output.model).parent,
    factors=snakemake.params.factors,
    heldout=snakemake.params.heldout,
    epochs=snakemake.params.epochs,
    store_json=snakemake.input.store,
    threads=snakemake.threads,
)
