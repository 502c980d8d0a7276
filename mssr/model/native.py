"""Training of the native-resolution model: patches on the working grid, continuous field conditioning.

The model is the same MSSR network (:mod:`mssr.model.network`, continuous conditioning on
``f = B_high / B_low``), fully convolutional, trained by :func:`mssr.model.train.train` on the
patch pairs of :mod:`mssr.data.patches` drawn from the training split's proteins (validation on
the validation split's). What inference needs to know about it is recorded in the model's
``config.json`` under ``extra['native']``: the working grid, the network's intensity unit, the
patch side and the sampler settings validated for it (the default of ``mssr enhance``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mssr.data import grid
from mssr.data.patches import NETWORK_HEADROOM, PatchConfig, PatchPairs
from mssr.model import anchor
from mssr.model.train_data import TrainingData

NATIVE_FORMAT_VERSION = 1


def split_proteins(split_json) -> dict[str, list[int]]:
    """BMRB ids per split (``train``, ``val``, ``test``) from a ``split.json``."""
    path = Path(split_json)
    try:
        record = json.loads(path.read_text())
        assignment = record["assignment"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a split record with an 'assignment' ({exc})") from None
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for protein, split in sorted(assignment.items()):
        name = str(protein)
        digits = name[4:] if name.startswith("bmrb") else name
        if not digits.isdigit():
            raise ValueError(f"{path}: protein {name!r} is not a BMRB id; patches need RefDB shifts")
        out.setdefault(split, []).append(int(digits))
    return out


def patch_training_data(split_json, patch_cfg: PatchConfig, *, length: int, val_length: int,
                        seed: int) -> TrainingData:
    """Training and validation patch sets from the proteins of a split.

    Parameters
    ----------
    split_json : path
        The run's ``split.json``: patches of training proteins for training, of validation
        proteins for validation; test proteins are never drawn.
    patch_cfg : PatchConfig
        What the pairs vary in.
    length, val_length : int
        Patches per epoch and validation patches.
    seed : int
        Base seed.
    """
    proteins = split_proteins(split_json)
    if not proteins["train"]:
        raise ValueError(f"{split_json}: no training proteins")
    val = proteins["val"] or proteins["train"]
    train_set = PatchPairs(proteins["train"], patch_cfg, length=length, seed=seed)
    val_set = PatchPairs(val, patch_cfg, length=val_length, seed=seed + 1)
    digest = hashlib.sha256(json.dumps({"proteins": proteins, "patches": patch_cfg.__dict__, "length": length,
                                        "val_length": val_length, "seed": seed}, sort_keys=True,
                                       default=list).encode()).hexdigest()
    return TrainingData(train_set, val_set, {"split": _sha256(split_json), "patches": digest})


def native_record(patch_cfg: PatchConfig, sample: dict) -> dict:
    """The ``extra['native']`` entry of a native model's ``config.json``."""
    return {
        "native": {
            "format_version": NATIVE_FORMAT_VERSION,
            "patch": patch_cfg.size,
            "headroom": NETWORK_HEADROOM,
            "narrowest_fwhm_hz": dict(grid.NARROWEST_FWHM_HZ),
            "points_per_fwhm": grid.POINTS_PER_FWHM,
            "nuclei": ["15N", "1H"],
            "high_mhz": list(patch_cfg.high_mhz),
            "low_min_mhz": patch_cfg.low_min_mhz,
            "max_factor": patch_cfg.max_factor,
            "factor": patch_cfg.factor,
            "sample": dict(sample),
            "anchor": {"balance": anchor.BALANCE, "measure_balances": list(anchor.MEASURE_BALANCES),
                       "measure_noise": anchor.MEASURE_NOISE,
                       "fit_measure_balance": anchor.FIT_MEASURE_BALANCE,
                       "iterations": anchor.ITERATIONS} if patch_cfg.anchor else None,
        }
    }


def _sha256(path) -> str:
    from mssr.provenance import sha256_file

    return sha256_file(path)


__all__ = ["NATIVE_FORMAT_VERSION", "native_record", "patch_training_data", "split_proteins"]
