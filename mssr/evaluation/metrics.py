"""The nine evaluation metrics of a predicted high-field spectrum against the true one.

All metrics take ``hr`` (the true high-field spectrum) and ``sr`` (the prediction) on the
normalized scale [-1, 1], whose data range is 2. Pixel metrics use every pixel; peak metrics use
the peaks of :func:`mssr.evaluation.peaks.detect` on each spectrum and their optimal one-to-one matching
(:func:`mssr.evaluation.peaks.match`). Let ``K`` be the number of true peaks (in ``hr``), ``M`` the number of
predicted peaks (in ``sr``), ``P`` the number of matched pairs, ``a_t`` / ``a_p`` the amplitudes of a
matched pair read from the unsmoothed ``hr`` / ``sr`` at each peak's own position, and ``d`` its
distance in pixels.

==========================  ==========================================================  ============
name                        definition                                                  range
==========================  ==========================================================  ============
``mse``                     mean over pixels of ``(sr - hr)**2``                        [0, 4]
``r2``                      ``1 - SS_res / SS_tot``, ``SS_res = sum((hr - sr)**2)``,    (-inf, 1]
                            ``SS_tot = sum((hr - mean(hr))**2)``
``hallucination_ratio``     ``(M - P) / M``: predicted peaks with no true partner       [0, 1]
``missed_peak_ratio``       ``(K - P) / K``: true peaks with no predicted partner       [0, 1]
``peak_mse``                mean over pairs of ``(a_t - a_p)**2``                       [0, 4]
``peak_r2``                 R^2 of ``a_p`` against ``a_t`` over pairs, as ``r2``        (-inf, 1]
``peak_intensity_diff``     mean over pairs of ``|a_t - a_p|`` / 2 (2 = data range)     [0, 1]
``peak_shift_diff``         mean over pairs of ``d`` / ``threshold_px``                 [0, 1]
``ssim``                    mean structural similarity, data range 2 (see :func:`ssim`) [-1, 1]
==========================  ==========================================================  ============

Ranges hold for spectra inside [-1, 1]. Lower is better except for ``r2``, ``peak_r2`` and
``ssim``.

Edge cases (no metric is NaN unless ``no_match="nan"`` is asked for):

- R^2 with ``SS_tot = 0`` (constant ``hr``; for ``peak_r2``: one pair, or all ``a_t`` equal) is 1
  when ``SS_res = 0`` (exact prediction) and 0 otherwise -- the convention of scikit-learn's
  ``r2_score(force_finite=True)``.
- ``M = 0``: hallucination ratio 0. ``K = 0``: missed peak ratio 0. So ``K = M = 0`` gives both
  ratios 0, ``M = 0 < K`` gives missed 1, ``K = 0 < M`` gives hallucination 1.
- ``P = 0`` (no pair to compare), with ``no_match="worst"`` (default): if ``K = M = 0`` the peak
  metrics take their perfect values (``peak_mse`` 0, ``peak_r2`` 1, intensity and shift 0: there
  was nothing to find and nothing was found); otherwise their worst values on the stated scale
  (``peak_mse`` 4 = data range squared, ``peak_r2`` 0, ``peak_intensity_diff`` 1,
  ``peak_shift_diff`` 1 = every pair as far as the tolerance), so a spectrum where nothing matches
  cannot improve an average. With ``no_match="nan"`` they are NaN whenever ``P = 0``, for
  averages over matched spectra only (``nanmean``).
- Constant ``hr`` or ``sr`` (std 0) has no peaks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import ndimage

from mssr.evaluation.peaks import Peaks, PeakOptions, Sign, _detect_stack, _validate_spectra, match

METRIC_NAMES: tuple[str, ...] = (
    "mse",
    "r2",
    "hallucination_ratio",
    "missed_peak_ratio",
    "peak_mse",
    "peak_r2",
    "peak_intensity_diff",
    "peak_shift_diff",
    "ssim",
)
"""The nine metric names, in table column order."""

GLOBAL_METRICS: tuple[str, ...] = ("mse", "r2", "ssim")
"""Metrics computed on the whole spectrum."""

LOCAL_METRICS: tuple[str, ...] = tuple(m for m in METRIC_NAMES if m not in GLOBAL_METRICS)
"""Metrics computed on detected and matched peaks."""

PPM_METRIC = "peak_shift_ppm"
"""Extra metric reported only when ``ppm_per_px`` is given: mean matched distance, ppm."""

DATA_RANGE = 2.0
"""Width of the normalized intensity scale [-1, 1]."""

NoMatch = Literal["worst", "nan"]
"""Value of the four pair-based peak metrics when no peak pair matched."""

SsimWindow = Literal["uniform", "gaussian"]
"""SSIM window: skimage's default 7 x 7 uniform, or Wang et al.'s Gaussian (sigma 1.5 px, 11 taps)."""

_PEAK_PAIR_METRICS = ("peak_mse", "peak_r2", "peak_intensity_diff", "peak_shift_diff")
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def _validate_choice(value, name: str, choices) -> None:
    if value not in get_args(choices):
        raise ValueError(f"{name} must be one of {get_args(choices)}, got {value!r}")


def _validate_pair(hr, sr, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    hr = _validate_spectra(hr, "hr", ndim)
    sr = _validate_spectra(sr, "sr", ndim)
    if hr.shape != sr.shape:
        raise ValueError(f"hr and sr must have the same shape, got {hr.shape} and {sr.shape}")
    return hr, sr


def _validate_ppm_per_px(ppm_per_px, count: int) -> np.ndarray | None:
    """Return ppm per pixel as an array (count, 2), or None when not given."""
    if ppm_per_px is None:
        return None
    values = np.asarray(ppm_per_px, dtype=np.float64)
    if values.shape == (2,):
        values = np.broadcast_to(values, (count, 2))
    if values.shape != (count, 2):
        raise ValueError(f"ppm_per_px must have shape (2,) or ({count}, 2), got {values.shape}")
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("ppm_per_px must be finite and > 0")
    return values


def _validate_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _r2(ss_res: np.ndarray, ss_tot: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """``1 - ss_res / ss_tot``; where the reference is constant: 1 if exact else 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 1.0 - ss_res / ss_tot
    return np.where(constant, np.where(ss_res == 0, 1.0, 0.0), value)


def _pixel_metrics(hr: np.ndarray, sr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSE and R^2 of each spectrum of float64 stacks (N, H, W)."""
    ss_res = np.square(hr - sr).sum(axis=(1, 2))
    ss_tot = np.square(hr - hr.mean(axis=(1, 2), keepdims=True)).sum(axis=(1, 2))
    constant = hr.max(axis=(1, 2)) == hr.min(axis=(1, 2))
    return ss_res / (hr.shape[1] * hr.shape[2]), _r2(ss_res, ss_tot, constant)


def _ssim_stack(hr: np.ndarray, sr: np.ndarray, window: SsimWindow) -> np.ndarray:
    """Mean SSIM of each pair of float64 stacks (N, H, W), skimage's definition, batched."""
    if window == "uniform":
        size = 7

        def local_mean(a):
            return ndimage.uniform_filter(a, size=(1, size, size))
    else:
        sigma, truncate = 1.5, 3.5
        size = 2 * int(truncate * sigma + 0.5) + 1

        def local_mean(a):
            return ndimage.gaussian_filter(a, sigma=(0.0, sigma, sigma), truncate=truncate)

    if min(hr.shape[1:]) < size:
        raise ValueError(f"hr and sr must be at least {size} x {size} pixels for SSIM, got {hr.shape[1:]}")
    # Sample (not population) covariance, as skimage's default use_sample_covariance=True.
    cov_norm = size**2 / (size**2 - 1)
    mu_x, mu_y = local_mean(hr), local_mean(sr)
    var_x = cov_norm * (local_mean(hr * hr) - mu_x * mu_x)
    var_y = cov_norm * (local_mean(sr * sr) - mu_y * mu_y)
    cov_xy = cov_norm * (local_mean(hr * sr) - mu_x * mu_y)
    c1, c2 = (_SSIM_K1 * DATA_RANGE) ** 2, (_SSIM_K2 * DATA_RANGE) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = (size - 1) // 2  # the filter's border strip is left out, as in skimage
    return ssim_map[:, pad:-pad, pad:-pad].mean(axis=(1, 2))


def ssim(hr: np.ndarray, sr: np.ndarray, *, window: SsimWindow = "uniform") -> float:
    """Mean structural similarity of two spectra on the [-1, 1] scale (data range 2).

    Same value as ``skimage.metrics.structural_similarity(hr, sr, data_range=2)`` (with
    ``gaussian_weights=True, sigma=1.5`` for ``window="gaussian"``): local means, variances and
    covariance (sample normalization) in the window, ``K1 = 0.01``, ``K2 = 0.03``,
    ``SSIM = (2 mu_x mu_y + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2))``
    with ``C = (K * 2)^2``, averaged over the pixels at least half a window from the border.
    Computed in float64.

    Parameters
    ----------
    hr, sr : ndarray, shape (H, W)
        True and predicted spectra; ``H, W >= 7`` (11 for ``"gaussian"``).
    window : {"uniform", "gaussian"}, optional
        7 x 7 uniform window (skimage's default) or Gaussian, sigma 1.5 px, 11 x 11.

    Returns
    -------
    float
        Mean SSIM in [-1, 1]; 1 for identical spectra.
    """
    hr, sr = _validate_pair(hr, sr, 2)
    _validate_choice(window, "window", SsimWindow)
    return float(_ssim_stack(hr[None].astype(np.float64), sr[None].astype(np.float64), window)[0])


def peak_metrics(
    true: Peaks,
    pred: Peaks,
    *,
    threshold_px: float = 3.0,
    no_match: NoMatch = "worst",
    ppm_per_px: tuple[float, float] | None = None,
) -> dict[str, float]:
    """The six peak metrics of one pair of detected peak sets.

    Peaks are matched one-to-one with :func:`mssr.evaluation.peaks.match`, separately for each sign (a
    positive peak never matches a negative one). Definitions and edge cases are in the module
    docstring.

    Parameters
    ----------
    true : Peaks
        Peaks of the true high-field spectrum ``hr``.
    pred : Peaks
        Peaks of the prediction ``sr``.
    threshold_px : float, optional
        Largest matching distance, pixels.
    no_match : {"worst", "nan"}, optional
        Value of the four pair-based metrics when no pair matched.
    ppm_per_px : (float, float), optional
        ppm per pixel along (axis 0, axis 1). When given, ``peak_shift_ppm`` is added: the mean
        matched distance in ppm, ``sqrt((dy * drow)**2 + (dx * dcol)**2)``; its worst value is
        ``threshold_px * max(dy, dx)``. The Euclidean ppm distance mixes nuclei (1H and 15N
        ppm are not comparable): prefer ``peak_shift_diff`` for ranking.

    Returns
    -------
    dict
        ``hallucination_ratio``, ``missed_peak_ratio``, ``peak_mse``, ``peak_r2``,
        ``peak_intensity_diff``, ``peak_shift_diff`` (and ``peak_shift_ppm``), as floats.
    """
    options = PeakOptions(threshold_px=threshold_px)
    _validate_choice(no_match, "no_match", NoMatch)
    ppm = None if ppm_per_px is None else _validate_ppm_per_px(ppm_per_px, 1)[0]
    return _peak_metrics(true, pred, options.threshold_px, no_match, ppm)


def _peak_metrics(
    true: Peaks, pred: Peaks, threshold_px: float, no_match: NoMatch, ppm: np.ndarray | None
) -> dict[str, float]:
    i_true, i_pred, dist = [], [], []
    for sign in np.union1d(true.signs, pred.signs):
        t, p = np.flatnonzero(true.signs == sign), np.flatnonzero(pred.signs == sign)
        it, ip, d = match(true.coords[t], pred.coords[p], threshold_px=threshold_px)
        i_true.append(t[it])
        i_pred.append(p[ip])
        dist.append(d)
    i_true = np.concatenate(i_true) if i_true else np.empty(0, np.intp)
    i_pred = np.concatenate(i_pred) if i_pred else np.empty(0, np.intp)
    dist = np.concatenate(dist) if dist else np.empty(0)
    n_true, n_pred, n_pairs = len(true.coords), len(pred.coords), len(dist)

    out = {
        "hallucination_ratio": (n_pred - n_pairs) / n_pred if n_pred else 0.0,
        "missed_peak_ratio": (n_true - n_pairs) / n_true if n_true else 0.0,
    }
    if n_pairs == 0:
        if no_match == "nan":
            pair_values = dict.fromkeys(_PEAK_PAIR_METRICS, np.nan)
            shift_ppm = np.nan
        elif n_true == 0 and n_pred == 0:
            pair_values = {"peak_mse": 0.0, "peak_r2": 1.0, "peak_intensity_diff": 0.0, "peak_shift_diff": 0.0}
            shift_ppm = 0.0
        else:
            pair_values = {
                "peak_mse": DATA_RANGE**2,
                "peak_r2": 0.0,
                "peak_intensity_diff": 1.0,
                "peak_shift_diff": 1.0,
            }
            shift_ppm = threshold_px * float(ppm.max()) if ppm is not None else np.nan
    else:
        a_true = true.amplitudes[i_true].astype(np.float64)
        a_pred = pred.amplitudes[i_pred].astype(np.float64)
        error = a_true - a_pred
        ss_res = np.square(error).sum()
        ss_tot = np.square(a_true - a_true.mean()).sum()
        pair_values = {
            "peak_mse": float(np.square(error).mean()),
            "peak_r2": float(_r2(ss_res, ss_tot, a_true.max() == a_true.min())),
            "peak_intensity_diff": float(np.abs(error).mean() / DATA_RANGE),
            # threshold 0 admits only exact coincidences, whose shift is 0.
            "peak_shift_diff": float(dist.mean() / threshold_px) if threshold_px > 0 else 0.0,
        }
        if ppm is not None:
            step = (true.coords[i_true] - pred.coords[i_pred]) * ppm
            shift_ppm = float(np.hypot(step[:, 0], step[:, 1]).mean())
    out.update(pair_values)
    if ppm is not None:
        out[PPM_METRIC] = float(shift_ppm)
    return out


def _metrics_stack(
    hr: np.ndarray,
    sr: np.ndarray,
    options: PeakOptions,
    ssim_window: SsimWindow,
    no_match: NoMatch,
    ppm: np.ndarray | None,
) -> np.ndarray:
    """Metric rows (N, 9 or 10) for validated stacks, columns in METRIC_NAMES order (+ ppm)."""
    hr64, sr64 = hr.astype(np.float64), sr.astype(np.float64)
    mse, r2 = _pixel_metrics(hr64, sr64)
    ssim_values = _ssim_stack(hr64, sr64, ssim_window)
    true_peaks = _detect_stack(hr, options)
    pred_peaks = _detect_stack(sr, options)
    names = METRIC_NAMES + ((PPM_METRIC,) if ppm is not None else ())
    rows = np.empty((len(hr), len(names)))
    for i in range(len(hr)):
        values = _peak_metrics(
            true_peaks[i], pred_peaks[i], options.threshold_px, no_match, None if ppm is None else ppm[i]
        )
        values.update(mse=mse[i], r2=r2[i], ssim=ssim_values[i])
        rows[i] = [values[name] for name in names]
    return rows


def compute(
    hr: np.ndarray,
    sr: np.ndarray,
    *,
    sigma: float = 1.0,
    window: int = 3,
    alpha: float = 3.0,
    threshold_px: float = 3.0,
    sign: Sign = "positive",
    ssim_window: SsimWindow = "uniform",
    no_match: NoMatch = "worst",
    ppm_per_px: tuple[float, float] | None = None,
) -> dict[str, float]:
    """The nine metrics of one predicted spectrum against the true one.

    Definitions, ranges and edge cases are in the module docstring.

    Parameters
    ----------
    hr : ndarray, shape (H, W)
        True high-field spectrum, normalized to [-1, 1].
    sr : ndarray, shape (H, W)
        Predicted (super-resolved) spectrum, same scale.
    sigma : float, optional
        Peak detection: Gaussian smoothing, pixels.
    window : int, optional
        Peak detection: maximum-filter side, pixels (odd).
    alpha : float, optional
        Peak detection: threshold ``mean + alpha * std`` of the smoothed spectrum.
    threshold_px : float, optional
        Peak matching: largest distance of a matched pair, pixels.
    sign : {"positive", "both"}, optional
        Positive peaks only (the paper) or also negative peaks.
    ssim_window : {"uniform", "gaussian"}, optional
        SSIM window, see :func:`ssim`.
    no_match : {"worst", "nan"}, optional
        Value of the four pair-based peak metrics when no peak pair matched.
    ppm_per_px : (float, float), optional
        ppm per pixel along (axis 0, axis 1); when given, the result also has ``peak_shift_ppm``
        (see :func:`peak_metrics`). Without it the result has exactly the nine keys.

    Returns
    -------
    dict
        ``{name: float}`` for ``name`` in :data:`METRIC_NAMES` (then ``peak_shift_ppm``).

    Examples
    --------
    >>> x = np.zeros((32, 32), np.float32); x[10, 12] = 1.0
    >>> m = compute(x, x)
    >>> m["mse"], m["missed_peak_ratio"], m["ssim"]
    (0.0, 0.0, 1.0)
    """
    hr, sr = _validate_pair(hr, sr, 2)
    row = compute_many(
        hr[None],
        sr[None],
        sigma=sigma,
        window=window,
        alpha=alpha,
        threshold_px=threshold_px,
        sign=sign,
        ssim_window=ssim_window,
        no_match=no_match,
        ppm_per_px=ppm_per_px,
    ).iloc[0]
    return {name: float(value) for name, value in row.items()}


def compute_many(
    hr: np.ndarray,
    sr: np.ndarray,
    *,
    sigma: float = 1.0,
    window: int = 3,
    alpha: float = 3.0,
    threshold_px: float = 3.0,
    sign: Sign = "positive",
    ssim_window: SsimWindow = "uniform",
    no_match: NoMatch = "worst",
    ppm_per_px=None,
    chunk_size: int = 64,
    workers: int = 1,
) -> pd.DataFrame:
    """The nine metrics of each pair in two stacks of spectra, batched.

    Equal to calling :func:`compute` on every pair; smoothing, maximum and SSIM filters run on
    ``chunk_size`` spectra at a time (no filter crosses the stack axis) and only the matching
    loops over pairs.

    Parameters
    ----------
    hr, sr : ndarray, shape (N, H, W)
        True and predicted spectra on the [-1, 1] scale.
    sigma, window, alpha, threshold_px, sign, ssim_window, no_match
        As in :func:`compute`.
    ppm_per_px : array_like, shape (2,) or (N, 2), optional
        ppm per pixel along (axis 0, axis 1), shared or per pair; adds ``peak_shift_ppm``.
    chunk_size : int, optional
        Spectra per batch; memory peaks at about 20 float64 arrays of ``chunk_size x H x W``
        per worker.
    workers : int, optional
        Threads working on separate chunks (scipy's filters release the GIL); the result does
        not depend on it.

    Returns
    -------
    pandas.DataFrame
        N rows (index 0..N-1), columns :data:`METRIC_NAMES` (then ``peak_shift_ppm``), float64.
    """
    hr, sr = _validate_pair(hr, sr, 3)
    options = PeakOptions(sigma=sigma, window=window, alpha=alpha, threshold_px=threshold_px, sign=sign)
    _validate_choice(ssim_window, "ssim_window", SsimWindow)
    _validate_choice(no_match, "no_match", NoMatch)
    ppm = _validate_ppm_per_px(ppm_per_px, len(hr))
    _validate_positive_int(chunk_size, "chunk_size")
    _validate_positive_int(workers, "workers")
    names = METRIC_NAMES + ((PPM_METRIC,) if ppm is not None else ())

    def chunk_rows(start: int) -> np.ndarray:
        stop = start + chunk_size
        chunk_ppm = None if ppm is None else ppm[start:stop]
        return _metrics_stack(hr[start:stop], sr[start:stop], options, ssim_window, no_match, chunk_ppm)

    starts = range(0, len(hr), chunk_size)
    if workers == 1:
        rows = [chunk_rows(start) for start in starts]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(chunk_rows, starts))
    return pd.DataFrame(np.concatenate([np.empty((0, len(names)))] + rows), columns=list(names))
