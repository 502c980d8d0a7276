"""One factor of the native study: MSSR, the factor's baseline and the classical methods on measured planes."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.evaluation.nativestudy import evaluate_factor

study = snakemake.params.study
evaluate_factor(
    snakemake.wildcards.factor,
    model_dir=Path(snakemake.input.model).parent,
    baseline_dir=Path(snakemake.input.baseline).parent,
    out_csv=snakemake.output.table,
    out_figure=snakemake.output.figure,
    planes=study["planes"],
    methods=study["methods"],
    seed=study["seed"],
    cache=snakemake.params.cache,
    threads=snakemake.threads,
)
