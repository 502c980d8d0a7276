"""Train MSSR (all factors) or one factor's baseline."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mssr.config import train_from_config

train_from_config(
    # tracking is read here, not from params: a new MLflow server must not retrain the model
    {**snakemake.params.cfg, "tracking": snakemake.config["tracking"]},
    snakemake.input.train,
    snakemake.input.val,
    Path(snakemake.output.model).parent,
    factor=snakemake.params.factor,
    factors=snakemake.params.factors,
    store_json=snakemake.input.store,
    threads=snakemake.threads,
)
