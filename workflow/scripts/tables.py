"""Summaries with CIs by protein, paired differences and Table 1; the evaluation logged to MLflow."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.config import tracking_config
from mssr.evaluation.tables import write_evaluation

write_evaluation(
    snakemake.input.metrics,
    Path(snakemake.output.summary).parent,
    n_boot=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    learned=snakemake.params.learned,
    tracking=tracking_config({"tracking": snakemake.params.tracking}, snakemake.input.store),
    fallback_dir=Path(snakemake.input.store).parent,
    params={"metrics": snakemake.params.metrics},
    budgets=snakemake.params.budgets,
)
