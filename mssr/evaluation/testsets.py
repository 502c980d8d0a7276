"""Test sets: high-field truths and their low-field inputs, precomputed once for every factor.

Every method (MSSR, baselines, classical) is evaluated on the same stored inputs. A test-set file is a
sample set (:mod:`mssr.data.store`) whose ``x`` holds the high-field truths (N, S, S) and whose extra
array ``x_lr`` holds the low-field inputs (F, N, S, S), one plane per factor in ``attrs['factors']``.

Two kinds exist:

``blur``
    The test split degraded with the configured low-field model (:func:`mssr.degrade.precompute`),
    seeded per (spectrum, factor).
``physical``
    The test split's proteins rendered by the demo renderer at a high field and, for every factor, at
    ``high / factor`` MHz on the same ppm grid: physically true pairs, independent of the blur model.
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from mssr import degrade
from mssr.config import degrade_params
from mssr.data import preprocess, synthetic
from mssr.data.store import read_samples, write_samples
from mssr.factors import as_factor, factor_label

log = logging.getLogger(__name__)

PHYSICAL_HIGH_MHZ = 900.0
"""Field of the physically rendered truths, MHz (the top of the paper's Table 1)."""


def _factor_list(factors) -> list[Fraction]:
    if not factors:
        raise ValueError("factors must name at least one Table-1 factor")
    return [as_factor(f) for f in factors]


def build_blur(test_h5, out_h5, *, factors, model: str = "paper", seed: int = 0, **params) -> Path:
    """Precompute the low-field inputs of the test split with the configured degradation model.

    Parameters
    ----------
    test_h5, out_h5 : path
        The test split and the test-set file to write.
    factors : sequence
        Table-1 factors (values or labels).
    model : {'paper', 'physical'}
        Low-field simulation (see :func:`mssr.degrade.simulate`).
    seed : int
        Seed of the inputs; each (spectrum, factor) has its own stream.
    """
    fs = _factor_list(factors)
    test = read_samples(test_h5)
    x_lr = degrade.precompute(test.x, [float(f) for f in fs], model=model, seed=seed,
                              headers=test.headers, **params)
    attrs = {"testset": "blur", "factors": [factor_label(f) for f in fs], "degrade_model": model,
             "seed": seed, "params": params, "source": str(test_h5)}
    return write_samples(out_h5, test.x, test.headers, attrs=attrs, extra={"x_lr": x_lr.astype(np.float32)})


def build_physical(assignment_json, manifest_csv, out_h5, *, factors, size: int, seed: int = 0,
                   experiment: str = "hsqc_15n", high_mhz: float = PHYSICAL_HIGH_MHZ) -> Path:
    """Render the test proteins at ``high_mhz`` and at ``high_mhz / f`` for every factor ``f``.

    Both spectra of a pair share the ppm grid and peaks; linewidths and noise follow each field
    (:func:`mssr.data.synthetic.render_pair`). Both are preprocessed like training data (resized to
    ``size`` x ``size`` pixels, then divided by their own max |x|).

    Parameters
    ----------
    assignment_json : path
        ``split.json`` of the split stage (protein -> split).
    manifest_csv : path
        The demo manifest (identifies the rendered proteins).
    size : int
        S, pixels.
    """
    fs = _factor_list(factors)
    assignment = json.loads(Path(assignment_json).read_text())
    splits = assignment.get("assignment", assignment)
    test_proteins = sorted(p for p, s in splits.items() if s == "test")
    if not test_proteins:
        raise ValueError(f"{assignment_json}: no protein is assigned to the test split")
    refdb = synthetic.load_refdb()
    truths, headers, lows = [], [], []
    for i, protein in enumerate(test_proteins):
        table = synthetic.protein_table(refdb, protein)
        per_factor = []
        high_spec = None
        for k, f in enumerate(fs):
            rng = np.random.default_rng([seed, i, k])
            hi, lo = synthetic.render_pair(table, experiment, high_mhz, high_mhz / float(f), rng=rng)
            if high_spec is None:
                high_spec = preprocess.preprocess(hi, size=size)
            per_factor.append(preprocess.preprocess(lo, size=size).data)
        truths.append(high_spec.data)
        headers.append(high_spec.header())
        lows.append(per_factor)
    x = np.stack(truths).astype(np.float32)
    x_lr = np.stack(lows, axis=1).astype(np.float32)  # (F, N, S, S)
    attrs = {"testset": "physical", "factors": [factor_label(f) for f in fs], "experiment": experiment,
             "high_mhz": high_mhz, "seed": seed, "proteins": test_proteins, "manifest": str(manifest_csv)}
    log.info("physical test set: %d proteins x %d factors", len(test_proteins), len(fs))
    return write_samples(out_h5, x, headers, attrs=attrs, extra={"x_lr": x_lr})


def build_testset(kind: str, test_h5, out_h5, *, factors, degrade: dict, data: dict, assignment=None,
                  manifest=None) -> Path:
    """Build the test set ``kind`` ('blur' or 'physical') from the pipeline's config sections."""
    if kind == "blur":
        params = degrade_params(degrade)
        return build_blur(test_h5, out_h5, factors=factors, model=degrade.get("model", "paper"),
                          seed=degrade.get("test_seed", 0), **params)
    if kind == "physical":
        return build_physical(assignment, manifest, out_h5, factors=factors, size=data["size"],
                              seed=degrade.get("test_seed", 0))
    raise ValueError(f"testset must be 'blur' or 'physical', got {kind!r}")


def read_testset(path):
    """Load a test set: (truths (N,S,S), inputs (F,N,S,S), factor labels, SampleSet)."""
    s = read_samples(path)
    if "x_lr" not in s.extra or "factors" not in s.attrs:
        raise ValueError(f"{path}: not a test set (no 'x_lr' array or 'factors' attribute)")
    return s.x, s.extra["x_lr"], list(s.attrs["factors"]), s


def factor_inputs(path, factor):
    """Truths (N,S,S), the inputs of one factor (N,S,S) and the SampleSet of a test-set file."""
    x, x_lr, labels, s = read_testset(path)
    label = factor_label(as_factor(factor))
    if label not in labels:
        raise ValueError(f"{path}: factor {label} not in the test set (has {', '.join(labels)})")
    return x, x_lr[labels.index(label)], s


__all__ = ["build_blur", "build_physical", "build_testset", "read_testset", "factor_inputs"]
