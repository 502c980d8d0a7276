"""Evaluation on files: the long metrics table of every prediction, and the steps x repeats sweep."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mssr.evaluation import metrics as _metrics
from mssr.atomic import atomic_path
from mssr.config import set_threads
from mssr.data.store import read_samples
from mssr.evaluation.peaks import DEFAULT_OPTIONS, PeakOptions
from mssr.factors import FACTOR_LABELS, as_factor, factor_label
from mssr.model.sample import Enhancer, SampleConfig
from mssr.evaluation.testsets import factor_inputs, read_testset

log = logging.getLogger(__name__)

ID_COLUMNS = ("testset", "method", "factor", "sample", "protein", "experiment")

METRICS_COLUMNS: tuple[str, ...] = ID_COLUMNS + _metrics.EVALUATION_COLUMNS + ("mlflow_run_id",)
"""Columns of ``metrics.csv`` (:func:`metrics_table`), in order."""

PEAKS_COLUMNS: tuple[str, ...] = (
    ("testset", "method", "factor", "protein") + _metrics.PEAK_COLUMNS
    + ("true_x_ppm", "true_1h_ppm", "pred_x_ppm", "pred_1h_ppm")
)
"""Columns of the per-matched-peak table (:func:`metrics_table`'s ``peaks_csv``), in order."""

SIGN_AUTO = "auto"
"""``metrics.peak_sign`` value: negative peaks are scored where the spectrum's projection keeps them."""

SIGNED_PROJECTIONS = frozenset({"signed_max"})
"""Projection methods (``meta['method']`` of a plane) that keep the sign of opposite-sign peaks."""


def metric_options(cfg: dict) -> dict:
    """Options of the scoring functions from the ``metrics`` config section.

    Missing keys take the defaults of :data:`mssr.evaluation.peaks.DEFAULT_OPTIONS` (the one
    place they are defined) and :data:`mssr.evaluation.metrics.DEFAULT_RESOLVE_DIP`. Pairs without
    any matched peak get the worst value of each peak metric (``no_match='worst'``); see
    :mod:`mssr.evaluation.metrics` for every edge case.

    Returns
    -------
    dict
        ``sigma, window, alpha, threshold_px`` (pixels), ``sign`` (``"positive"``, ``"both"`` or
        ``"auto"``: decided per spectrum by :func:`peak_sign`), ``resolve_dip``, ``no_match``.
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"metrics config must be a mapping, got {type(cfg).__name__}")
    sign = cfg.get("peak_sign", SIGN_AUTO)
    if sign not in ("positive", "both", SIGN_AUTO):
        raise ValueError(f"metrics.peak_sign must be 'positive', 'both' or 'auto', got {sign!r}")
    return {
        "sigma": float(cfg.get("peak_sigma", DEFAULT_OPTIONS.sigma)),
        "window": int(cfg.get("peak_window", DEFAULT_OPTIONS.window)),
        "alpha": float(cfg.get("peak_alpha", DEFAULT_OPTIONS.alpha)),
        "threshold_px": float(cfg.get("match_threshold_px", DEFAULT_OPTIONS.threshold_px)),
        "sign": sign,
        "resolve_dip": float(cfg.get("resolve_dip", _metrics.DEFAULT_RESOLVE_DIP)),
        "no_match": "worst",
    }


def peak_sign(header: dict, configured: str = SIGN_AUTO) -> str:
    """Which peaks are scored in one spectrum: ``"both"`` signs where its projection kept them.

    With ``configured="auto"``, a plane projected with a sign-keeping method
    (:data:`SIGNED_PROJECTIONS`: ``signed_max`` keeps the max ``|x|`` with its sign, e.g. the
    opposite-sign C-beta peaks of an HNCACB) is scored with ``"both"``; every other spectrum with
    ``"positive"`` (a ``max`` projection has lost its negative peaks, and spectra rendered or
    recorded without them would only add noise minima). ``"positive"`` or ``"both"`` apply as given.
    """
    if configured != SIGN_AUTO:
        return configured
    method = (header.get("meta") or {}).get("method")
    return "both" if method in SIGNED_PROJECTIONS else "positive"


def _axis_scales(headers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per spectrum and axis: ppm per px, Hz per px, and the ppm of point 0 (each (N, 2))."""
    ppm = np.array([[a["sw_hz"] / a["obs_mhz"] / a["size"] for a in h["axes"]] for h in headers], dtype=float)
    hz = np.array([[a["sw_hz"] / a["size"] for a in h["axes"]] for h in headers], dtype=float)
    first = np.array([[a["ppm_first"] for a in h["axes"]] for h in headers], dtype=float)
    return ppm.reshape(-1, 2), hz.reshape(-1, 2), first.reshape(-1, 2)


def _ppm_per_px(headers) -> np.ndarray:
    return _axis_scales(headers)[0]


def _ids(headers) -> pd.DataFrame:
    return pd.DataFrame({
        "sample": np.arange(len(headers)),
        "protein": [h.get("meta", {}).get("protein", "") for h in headers],
        "experiment": [h.get("meta", {}).get("experiment", "") for h in headers],
    })


def _peak_options(options: dict, sign: str) -> PeakOptions:
    return PeakOptions(sigma=options["sigma"], window=options["window"], alpha=options["alpha"],
                       threshold_px=options["threshold_px"], sign=sign)


def evaluate(truth: np.ndarray, prediction: np.ndarray, headers, options: dict, *,
             inputs: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every metric of every (truth, prediction) pair and a row per matched peak.

    Parameters
    ----------
    truth, prediction : ndarray, shape (N, H, W)
        High-field truths and predictions, normalized scale.
    headers : list of dict
        The truths' sample headers (axes with ``sw_hz``, ``obs_mhz``, ``size``, ``ppm_first``;
        ``meta`` with ``protein``, ``experiment``, ``method``).
    options : dict
        :func:`metric_options`.
    inputs : ndarray, shape (N, H, W), optional
        The low-field inputs the predictions came from: their median peak FWHM sets which true
        pairs are close (``resolved_pairs``); None: ``resolved_pairs`` is NaN.

    Returns
    -------
    spectra : DataFrame
        ``sample, protein, experiment`` and :data:`mssr.evaluation.metrics.EVALUATION_COLUMNS`.
    peaks : DataFrame
        ``protein``, :data:`mssr.evaluation.metrics.PEAK_COLUMNS` and the peak positions in ppm
        (``true_x_ppm``, ``true_1h_ppm``, ``pred_x_ppm``, ``pred_1h_ppm``; x = axis 0).
    """
    if len(headers) != len(truth):
        raise ValueError(f"headers must have one entry per spectrum ({len(truth)}), got {len(headers)}")
    ppm, hz, first = _axis_scales(headers)
    signs = np.array([peak_sign(h, options.get("sign", SIGN_AUTO)) for h in headers])
    ids = _ids(headers)
    spectra = pd.DataFrame(index=range(len(truth)), columns=list(_metrics.EVALUATION_COLUMNS), dtype=float)
    peak_parts = []
    for sign in np.unique(signs):
        rows = np.flatnonzero(signs == sign)
        peak_options = _peak_options(options, str(sign))
        lowfield = None
        if inputs is not None:
            lowfield = _metrics.median_linewidth_px(inputs[rows], peak_options)
        values, peaks = _metrics.evaluate_many(
            truth[rows], prediction[rows], hz_per_px=hz[rows], ppm_per_px=ppm[rows], lowfield_fwhm_px=lowfield,
            options=peak_options, resolve_dip=options.get("resolve_dip", _metrics.DEFAULT_RESOLVE_DIP),
        )
        spectra.iloc[rows] = values.to_numpy()
        peaks["sample"] = rows[peaks["sample"].to_numpy()]
        peak_parts.append(peaks)
    spectra = pd.concat([ids, spectra.astype(float)], axis=1)
    peaks = pd.concat(peak_parts, ignore_index=True) if peak_parts else pd.DataFrame(columns=list(_metrics.PEAK_COLUMNS))
    i = peaks["sample"].to_numpy(dtype=np.intp)
    for who in ("true", "pred"):
        # ppm falls with the index (point 0 is the highest shift).
        peaks[f"{who}_x_ppm"] = first[i, 0] - peaks[f"{who}_row"].to_numpy(float) * ppm[i, 0]
        peaks[f"{who}_1h_ppm"] = first[i, 1] - peaks[f"{who}_col"].to_numpy(float) * ppm[i, 1]
    peaks.insert(0, "protein", ids["protein"].to_numpy()[i])
    peaks = peaks.sort_values(["sample", "true_row", "true_col"], kind="stable").reset_index(drop=True)
    return spectra, peaks


def score(truth: np.ndarray, prediction: np.ndarray, headers, options: dict, *,
          inputs: np.ndarray | None = None) -> pd.DataFrame:
    """The per-spectrum table of :func:`evaluate`: ids, the nine metrics, ``peak_shift_ppm``,
    pooling sums, line widths in Hz and ``resolved_pairs`` (NaN without ``inputs``)."""
    return evaluate(truth, prediction, headers, options, inputs=inputs)[0]


def metrics_table(testsets, predictions, out_csv, *, metrics: dict, peaks_csv=None) -> Path:
    """Compute the metrics of every prediction file against its test set's truths.

    Parameters
    ----------
    testsets : sequence of path
        Test-set files; matched to predictions through their ``testset`` attribute.
    predictions : sequence of path
        Prediction files (:mod:`mssr.evaluation.predictions`).
    out_csv : path
        The long table: one row per (testset, method, factor, sample), columns
        :data:`METRICS_COLUMNS`: ids (with the spectrum's ``protein``), the nine metrics,
        ``peak_shift_ppm``, pooling sums, line widths (``fwhm_1h_hz``, ...), ``n_close_pairs``,
        ``resolved_pairs`` and the MLflow run id of the model that made the prediction (empty
        for non-learned methods).
    metrics : dict
        The ``metrics`` config section.
    peaks_csv : path, optional
        Where to write the per-matched-peak table (:data:`PEAKS_COLUMNS`; gzip when it ends in
        ``.gz``).
    """
    options = metric_options(metrics)
    truths = {}
    for path in testsets:
        x, x_lr, labels, s = read_testset(path)
        truths[s.attrs["testset"]] = (x, x_lr, list(labels), s.headers)
    parts, peak_parts = [], []
    for path in predictions:
        p = read_samples(path)
        kind = p.attrs.get("testset")
        if kind not in truths:
            raise ValueError(f"{path}: test set {kind!r} is not among the given test sets {sorted(truths)}")
        x, x_lr, labels, headers = truths[kind]
        if p.x.shape != x.shape:
            raise ValueError(f"{path}: predictions {p.x.shape} do not match the test set's {x.shape}")
        label = factor_label(as_factor(p.attrs["factor"]))
        inputs = x_lr[labels.index(label)] if label in labels else None
        table, peaks = evaluate(x, p.x, headers, options, inputs=inputs)
        for frame in (table, peaks):
            frame.insert(0, "factor", float(as_factor(p.attrs["factor"])))
            frame.insert(0, "method", p.attrs["method"])
            frame.insert(0, "testset", kind)
        table["mlflow_run_id"] = p.attrs.get("mlflow_run_id") or ""
        parts.append(table)
        peak_parts.append(peaks)
    df = pd.concat(parts, ignore_index=True)
    df = df[list(METRICS_COLUMNS)].sort_values(["testset", "method", "factor", "sample"], kind="stable")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    if peaks_csv is not None:
        peaks = pd.concat(peak_parts, ignore_index=True)[list(PEAKS_COLUMNS)]
        peaks = peaks.sort_values(["testset", "method", "factor", "sample"], kind="stable")
        with atomic_path(peaks_csv) as tmp:
            peaks.to_csv(tmp, index=False, compression="gzip" if str(peaks_csv).endswith(".gz") else None)
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
                table = score(x, mean, headers, options, inputs=x_lr)
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
