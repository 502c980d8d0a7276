"""Prediction files, and the non-learned methods applied to test-set files.

A prediction file is a sample set (:mod:`mssr.data.store`): ``x`` holds the prediction (N, S, S)
in the normalized scale, the extra array ``std`` the per-pixel standard deviation across sampler
repeats (zeros for deterministic methods), and ``attrs`` names the method, factor and test set with
the settings and wall time that produced it. This module imports no deep-learning code, so the
classical methods start fast.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from mssr import degrade
from mssr.evaluation import classical
from mssr.data.store import write_samples
from mssr.factors import as_factor, factor_label
from mssr.evaluation.testsets import factor_inputs

log = logging.getLogger(__name__)


def write_prediction(path, mean: np.ndarray, std: np.ndarray, headers, **attrs) -> Path:
    """Write a prediction file atomically (``attrs``: method, factor, testset, settings)."""
    return write_samples(path, np.asarray(mean, np.float32), headers, attrs=attrs,
                         extra={"std": np.asarray(std, np.float32)})


def deconvolution_kernel(factor: float, shape, degrade_cfg: dict) -> np.ndarray:
    """The configured low-field model's blur kernel, cut to an odd size no larger than ``shape``.

    For the ``physical`` model the kernel depends on each spectrum's axes; the deconvolution then
    uses the paper model's kernel, the only one known without them.
    """
    model = degrade_cfg.get("model", "paper")
    if model != "paper":
        log.warning("deconvolution uses the paper model's Gaussian kernel (sigma = 1/f px)")
    full = degrade.psf(factor, model="paper").shape
    cut = tuple(min(k, n if n % 2 else n - 1) for k, n in zip(full, shape))
    return degrade.psf(factor, model="paper", shape=cut)


def classical_files(method: str, testset_h5, outputs: dict, *, degrade: dict) -> list[Path]:
    """Apply a non-learned method to the inputs of every factor of a test set.

    Parameters
    ----------
    method : {'identity', 'richardson_lucy', 'wiener'}
        ``identity`` returns the low-field input (the honest floor); the others deconvolve with
        the known kernel (:func:`deconvolution_kernel`).
    testset_h5 : path
        Test set (:mod:`mssr.evaluation.testsets`).
    outputs : dict
        Factor label -> prediction file to write.
    degrade : dict
        The ``degrade`` config section.
    """
    written = []
    for label, out in outputs.items():
        f = as_factor(label)
        _, x_lr, s = factor_inputs(testset_h5, f)
        start = time.perf_counter()
        if method == "identity":
            pred = x_lr.copy()
        else:
            pred = classical.enhance_many(x_lr, deconvolution_kernel(float(f), x_lr.shape[-2:], degrade), method=method)
        seconds = time.perf_counter() - start
        written.append(write_prediction(out, pred, np.zeros_like(pred), s.headers, method=method,
                                        factor=factor_label(f), testset=s.attrs.get("testset"), seconds=seconds))
    return written
