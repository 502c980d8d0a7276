"""The real test set: measured spectra broadened physically, every method scored."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.realstudy import study

real = snakemake.params.real
study(
    model_dir=snakemake.params.model_dir,
    out_csv=snakemake.output.table,
    out_figure=snakemake.output.figure,
    low_mhz=real.get("low_mhz", [600, 400]),
    planes=real.get("planes"),
    seed=real.get("seed", 1234),
    methods=real.get("methods", ["identity", "wiener", "richardson_lucy", "lorentz_gauss", "mssr"]),
    threads=snakemake.threads,
)
