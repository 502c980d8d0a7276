"""The native model's estimate with every network weight, scored on real validation planes."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

from mssr.evaluation.networkweight import measure

real = snakemake.params.real
calibration = real.get("calibration") or {}
measure(
    model_dir=snakemake.params.model_dir,
    out_csv=snakemake.output.table,
    low_mhz=real.get("low_mhz", [600, 400]),
    seed=real.get("seed", 1234),
    threads=snakemake.threads,
    **{key: calibration[key] for key in ("planes", "weights") if key in calibration},
)
