"""Train the native-resolution model (patches on the working grid)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from pathlib import Path

from mssr.config import train_native_from_config

train_native_from_config(
    {**snakemake.params.cfg, "tracking": snakemake.config.get("tracking", {})},
    snakemake.input.split,
    Path(snakemake.output.model).parent,
    store_json=snakemake.input.store,
    threads=snakemake.threads,
    run_name=snakemake.params.get("run_name", "mssr_native"),
)
