"""Timed sampling and scoring shared by the studies (:mod:`mssr.evaluation.heldout`, :mod:`mssr.evaluation.samplers`).

Every method is timed per spectrum (wall time, s) on the same inputs it is scored on; the first
network call of a process pays for lazy initialization, so learned models are warmed up first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from mssr import _validate
from mssr.atomic import atomic_path
from mssr.evaluation import classical
from mssr.evaluation.predictions import deconvolution_kernel
from mssr.evaluation.scoring import score
from mssr.model.sample import Enhancer, SampleConfig

log = logging.getLogger(__name__)


def load_enhancer(name: str, path, device: str) -> Enhancer:
    """The model at ``path`` (folder or weights file) ready to sample; ``name`` names it in errors."""
    return Enhancer(_validate.path(name, path, exists=True), device=device)


def warm_up(enhancer: Enhancer, x_lr: np.ndarray, factor: float, cfg: SampleConfig) -> None:
    """One cheap call (1 DDPM step, 1 repeat, one spectrum) that keeps lazy initialization out of the timings."""
    enhancer.sample(x_lr[:1], factor, replace(cfg, sampler="ddpm", steps=1, repeats=1, start_step=None),
                    progress=False)


def sample_timed(enhancer: Enhancer, x_lr: np.ndarray, factor: float, cfg: SampleConfig) -> tuple[np.ndarray, float]:
    """Mean estimate of ``x_lr`` (N, H, W) at ``factor`` and the wall time per spectrum, s."""
    start = time.perf_counter()
    mean, _ = enhancer.sample(x_lr, factor, cfg, progress=False)
    return mean, (time.perf_counter() - start) / len(x_lr)


def classical_timed(method: str, x_lr: np.ndarray, factor: float, degrade: dict) -> tuple[np.ndarray, float]:
    """``'identity'`` (the input itself) or a classical method with the factor's known kernel, and its time per spectrum, s."""
    start = time.perf_counter()
    if method == "identity":
        pred = x_lr.copy()
    else:
        pred = classical.enhance_many(x_lr, deconvolution_kernel(factor, x_lr.shape[-2:], degrade), method=method)
    return pred, (time.perf_counter() - start) / len(x_lr)


def scored(x, pred, headers, options, **columns) -> pd.DataFrame:
    """:func:`mssr.evaluation.scoring.score` with ``columns`` (name=value) inserted first, in order."""
    table = score(x, pred, headers, options)
    for i, (name, value) in enumerate(columns.items()):
        table.insert(i, name, value)
    return table


def write_table(df: pd.DataFrame, out_csv) -> Path:
    """Write ``df`` as CSV (no index) atomically; returns ``out_csv`` as a Path."""
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    log.info("%d rows -> %s", len(df), out_csv)
    return Path(out_csv)
