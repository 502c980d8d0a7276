"""Evaluation on files: the long metrics table of every prediction, and the steps x repeats sweep."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mssr.evaluation import metrics as _metrics
from mssr.atomic import atomic_path
from mssr.config import set_threads
from mssr.data.store import read_samples
from mssr.factors import FACTOR_LABELS, as_factor, factor_label
from mssr.model.sample import Enhancer, SampleConfig
from mssr.evaluation.testsets import factor_inputs, read_testset

log = logging.getLogger(__name__)

ID_COLUMNS = ("testset", "method", "factor", "sample", "protein", "experiment")


def metric_options(cfg: dict) -> dict:
    """Keyword options of :func:`mssr.evaluation.metrics.compute_many` from the ``metrics`` config section.

    Pairs without any matched peak get the worst value of each peak metric (``no_match='worst'``),
    so no metric is NaN; see :mod:`mssr.evaluation.metrics` for every edge case.
    """
    return {
        "sigma": float(cfg.get("peak_sigma", 1.0)),
        "window": int(cfg.get("peak_window", 3)),
        "alpha": float(cfg.get("peak_alpha", 3.0)),
        "threshold_px": float(cfg.get("match_threshold_px", 3.0)),
        "no_match": "worst",
    }


def _ppm_per_px(headers) -> np.ndarray:
    return np.array([[a["sw_hz"] / a["obs_mhz"] / a["size"] for a in h["axes"]] for h in headers])


def _ids(headers) -> pd.DataFrame:
    return pd.DataFrame({
        "sample": np.arange(len(headers)),
        "protein": [h.get("meta", {}).get("protein", "") for h in headers],
        "experiment": [h.get("meta", {}).get("experiment", "") for h in headers],
    })


def score(truth: np.ndarray, prediction: np.ndarray, headers, options: dict) -> pd.DataFrame:
    """The nine metrics (plus the mean peak shift in ppm) of every (truth, prediction) pair."""
    table = _metrics.compute_many(truth, prediction, ppm_per_px=_ppm_per_px(headers), **options)
    return pd.concat([_ids(headers), table.reset_index(drop=True)], axis=1)


def metrics_table(testsets, predictions, out_csv, *, metrics: dict) -> Path:
    """Compute the metrics of every prediction file against its test set's truths.

    Parameters
    ----------
    testsets : sequence of path
        Test-set files; matched to predictions through their ``testset`` attribute.
    predictions : sequence of path
        Prediction files (:mod:`mssr.model.sample`).
    out_csv : path
        The long table: one row per (testset, method, factor, sample), columns
        ``testset, method, factor, sample, protein, experiment``, the nine metrics and
        ``peak_shift_ppm``.
    metrics : dict
        The ``metrics`` config section.
    """
    options = metric_options(metrics)
    truths = {}
    for path in testsets:
        x, _, _, s = read_testset(path)
        truths[s.attrs["testset"]] = (x, s.headers)
    parts = []
    for path in predictions:
        p = read_samples(path)
        kind = p.attrs.get("testset")
        if kind not in truths:
            raise ValueError(f"{path}: test set {kind!r} is not among the given test sets {sorted(truths)}")
        x, headers = truths[kind]
        if p.x.shape != x.shape:
            raise ValueError(f"{path}: predictions {p.x.shape} do not match the test set's {x.shape}")
        table = score(x, p.x, headers, options)
        table.insert(0, "factor", float(as_factor(p.attrs["factor"])))
        table.insert(0, "method", p.attrs["method"])
        table.insert(0, "testset", kind)
        parts.append(table)
    df = pd.concat(parts, ignore_index=True)
    columns = ["testset", "method", "factor", "sample"] + list(_metrics.METRIC_NAMES) + ["peak_shift_ppm", "protein", "experiment"]
    df = df[columns].sort_values(["testset", "method", "factor", "sample"], kind="stable")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    log.info("metrics of %d predictions (%d rows) -> %s", len(predictions), len(df), out_csv)
    return Path(out_csv)


def sweep_factors(factors, count: int) -> list[str]:
    """Up to ``count`` factor labels spread evenly over ``factors`` (smallest and largest first)."""
    labels = [factor_label(as_factor(f)) for f in factors] or list(FACTOR_LABELS)
    if count >= len(labels):
        return labels
    idx = np.unique(np.round(np.linspace(0, len(labels) - 1, count)).astype(int))
    return [labels[i] for i in idx]


def sweep(model_path, testset_h5, out_csv, *, sample: dict, sweep: dict, metrics: dict, factors,
          threads: int | None = None) -> Path:
    """Metrics of a model versus sampling steps, for several repeat counts (the paper's Fig. 6).

    Every (steps, repeats) point samples the same ``n_samples`` test spectra per factor with the
    configured sampler and seed. Columns: ``steps, repeats, factor, sample, seconds``, the nine
    metrics and the ids of :func:`score`.
    """
    set_threads(threads)
    base = SampleConfig.from_dict(dict(sample))
    enhancer = Enhancer(model_path, device=base.device)
    options = metric_options(metrics)
    n = int(sweep.get("n_samples", 8))
    rows = []
    for label in sweep_factors(factors, int(sweep.get("factors", 2))):
        x, x_lr, s = factor_inputs(testset_h5, label)
        x, x_lr, headers = x[:n], x_lr[:n], s.headers[:n]
        for repeats in sweep["repeats"]:
            for steps in sweep["steps"]:
                cfg = SampleConfig(**{**base.__dict__, "steps": int(steps), "repeats": int(repeats)})
                start = time.perf_counter()
                mean, _ = enhancer.sample(x_lr, float(as_factor(label)), cfg, progress=False)
                seconds = time.perf_counter() - start
                table = score(x, mean, headers, options)
                table.insert(0, "seconds", seconds / len(x))
                table.insert(0, "factor", float(as_factor(label)))
                table.insert(0, "repeats", int(repeats))
                table.insert(0, "steps", int(steps))
                rows.append(table)
                log.info("sweep factor %s: %d steps x %d repeats: mse %.5f (%.2f s/spectrum)", label, steps,
                         repeats, table["mse"].mean(), seconds / len(x))
    df = pd.concat(rows, ignore_index=True)
    df.insert(0, "method", "mssr")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return Path(out_csv)
