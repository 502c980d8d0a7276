"""The model of ``mssr enhance``: loading it, the factor it is asked for, and its record for the sidecar."""

from __future__ import annotations

import json
import logging
import os
from fractions import Fraction
from pathlib import Path

from mssr.factors import as_factor, factor_label, table1

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
"""Model used when none is given: the shipped native-resolution model, installed with the package
(trained by ``configs/release.yaml``; see the README's "The shipped model")."""

WEIGHTS_FILE = "model.safetensors"  # as mssr.model.network.WEIGHTS_FILE
CONFIG_FILE = "config.json"  # as mssr.model.network.CONFIG_FILE


def model_dir_of(model_dir) -> Path:
    """The model directory (default :data:`DEFAULT_MODEL_DIR`), checked to hold both files; no torch import."""
    model_dir = DEFAULT_MODEL_DIR if model_dir is None else model_dir
    if isinstance(model_dir, (bytes, bytearray)) or not isinstance(model_dir, (str, os.PathLike)):
        raise TypeError(f"model_dir (--model) must be a path, got {type(model_dir).__name__}")
    model_dir = Path(model_dir)
    if model_dir.is_file():
        model_dir = model_dir.parent
    if not model_dir.exists():
        hint = (" (the shipped model is missing from this installation: reinstall mssr, or give --model DIR)"
                if model_dir == DEFAULT_MODEL_DIR else "")
        raise FileNotFoundError(f"model_dir (--model): {model_dir} does not exist{hint}")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (model_dir / name).is_file():
            raise ValueError(f"model_dir (--model {model_dir}): not a usable mssr model: {model_dir / name} "
                             "is missing")
    return model_dir


def load_enhancer(model_dir: Path, device: str):
    """:class:`mssr.model.sample.Enhancer` of ``model_dir`` on ``device`` (imports torch)."""
    from mssr.model.sample import Enhancer

    try:
        return Enhancer(model_dir, device=device)
    except ValueError as exc:
        raise ValueError(f"model_dir (--model {model_dir}): not a usable mssr model: {exc}") from exc


def check_steps(enhancer, sampler: str, steps: int) -> None:
    """Refuse a number of steps the model's schedule cannot take (more than T, ...)."""
    try:
        enhancer.diffusion.schedule_timesteps(sampler, steps)
    except ValueError as exc:
        raise ValueError(f"sampler/steps (--sampler {sampler} --steps {steps}): {exc}") from None


def trained_factors(enhancer) -> list[float]:
    """The factors the model was trained on, ascending."""
    return sorted(float(f) for f in enhancer.extra.get("factors") or [])


def _supported_pairs(enhancer) -> str:
    rows = [r for r in table1() if enhancer.supports(r["factor_value"])]
    if not rows:
        return "none of Table 1"
    return ", ".join(f"{r['low_mhz']}->{r['high_mhz']} ({r['label']})" for r in rows)


def resolve_factor(enhancer, from_mhz: float, to_mhz: float) -> tuple[float, str | None, list[str]]:
    """(factor for the model, exact Table-1 ratio or None, notes); refuses a factor the model lacks."""
    ratio = to_mhz / from_mhz
    conditioning = enhancer.predictor.conditioning
    try:
        exact: Fraction | None = as_factor(ratio)
    except ValueError:
        exact = None
    if conditioning == "continuous":
        trained = trained_factors(enhancer)
        notes = []
        if trained and not (trained[0] - 5e-4 <= ratio <= trained[-1] + 5e-4):
            notes.append(f"factor {ratio:.4f} lies outside the trained range {trained[0]:.3f}..{trained[-1]:.3f}: "
                         "the continuous conditioning extrapolates")
            log.warning("%s", notes[-1])
        value = float(exact) if exact is not None else ratio
        return value, (f"{exact.numerator}/{exact.denominator}" if exact is not None else None), notes
    if exact is None or not enhancer.supports(float(exact)):
        what = ("is not one of the 14 Table-1 factors" if exact is None
                else f"is factor {factor_label(exact)}, which this model was not trained for")
        raise ValueError(
            f"--from-mhz {from_mhz:g} --to-mhz {to_mhz:g}: f = {ratio:.4f} {what}; the model in {enhancer.model_dir} "
            f"({conditioning} conditioning) supports the field pairs low->high MHz (factor): "
            f"{_supported_pairs(enhancer)}"
        )
    return float(exact), f"{exact.numerator}/{exact.denominator}", []


def model_record(enhancer) -> dict:
    """What the sidecar says about the model: where, checksums, training run, conditioning, S, factors, T."""
    from mssr.provenance import sha256_file

    config_path = enhancer.model_dir / CONFIG_FILE
    document = json.loads(config_path.read_text(encoding="utf-8"))
    extra = enhancer.extra
    return {
        "dir": str(enhancer.model_dir.resolve()),
        "config_sha256": sha256_file(config_path),
        "weights_sha256": document["weights"]["sha256"],
        "mlflow_run_id": extra.get("mlflow_run_id"),
        "tracking_uri": extra.get("tracking_uri"),
        "git_commit": extra.get("git_commit"),
        "kind": extra.get("kind"),
        "conditioning": enhancer.predictor.conditioning,
        "sample_size": enhancer.size,
        "trained_factors": [factor_label(f) for f in trained_factors(enhancer)],
        "timesteps": enhancer.diffusion.timesteps,
    }


def native_sampling(enhancer, cfg, given: dict):
    """The sampler settings of a native-resolution model (None for a model on the paper's S x S grid).

    The model's own validated settings (``extra['native']['sample']``), with the options the user
    gave explicitly (``given``: any of sampler, steps, repeats, start_step; a key present overrides,
    also start_step None = pure noise) and the seed.
    """
    from mssr.enhance.native import default_sampling, is_native

    if not is_native(enhancer.extra):
        return None
    return default_sampling(enhancer.extra, seed=cfg.seed, **given)


def native_range_notes(enhancer, from_mhz: float, to_mhz: float) -> list[str]:
    """Notes (also logged) where the fields lie outside what a native model was trained on."""
    info = enhancer.extra["native"]
    notes = []
    high_lo, high_hi = info.get("high_mhz", [0, 1e9])
    if not high_lo - 1 <= to_mhz <= high_hi + 1:
        notes.append(f"--to-mhz {to_mhz:g} lies outside the trained target fields {high_lo:g}-{high_hi:g} MHz")
    if from_mhz < info.get("low_min_mhz", 0) - 1 or to_mhz / from_mhz > info.get("max_factor", 1e9) + 1e-6:
        notes.append(f"--from-mhz {from_mhz:g}: the model was trained from {info.get('low_min_mhz'):g} MHz and for "
                     f"factors up to {info.get('max_factor'):g}")
    single = info.get("factor")
    if single is not None and abs(to_mhz / from_mhz - single) > 1e-3 * single:
        notes.append(f"this is a single-factor baseline (f = {single:g}); --to-mhz / --from-mhz is "
                     f"{to_mhz / from_mhz:.4g}")
    for note in notes:
        log.warning("%s", note)
    return notes
