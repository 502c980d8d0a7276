"""Split samples into train/val/test by protein."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.data.split import split_file

split = snakemake.params.split
split_file(
    snakemake.input.samples,
    Path(snakemake.output.train).parent,
    fractions=(split["train"], split["val"], split["test"]),
    seed=split.get("seed", 0),
)
