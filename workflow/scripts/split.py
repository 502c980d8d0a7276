"""Split samples into train/val/test by protein."""
from mssr.joblog import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mssr.data.split import split_file

split = snakemake.params.split
split_file(
    snakemake.input.samples,
    Path(snakemake.output.train).parent,
    fractions=(split["train"], split["val"], split["test"]),
    seed=split.get("seed", 0),
)
