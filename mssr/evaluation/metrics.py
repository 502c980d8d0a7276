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
- ``K = M = 0``: both ratios 0 (nothing to find, nothing found). ``M = 0 < K`` gives missed 1
  and ``K = 0 < M`` hallucination 1 by their formulas; the other ratio is then ``0 / 0`` and
  takes its worst value 1 like every no-match fill below, so predicting nothing never scores a
  perfect hallucination ratio (nor an empty truth a perfect missed ratio).
- ``P = 0`` (no pair to compare), with ``no_match="worst"`` (default): if ``K = M = 0`` the peak
  metrics take their perfect values (``peak_mse`` 0, ``peak_r2`` 1, intensity and shift 0: there
  was nothing to find and nothing was found); otherwise the worst value of each metric's range
  (:data:`NO_MATCH_WORST`: ``peak_mse`` 4 = data range squared, ``peak_r2`` -inf,
  ``peak_intensity_diff`` 1, ``peak_shift_diff`` 1 = every pair as far as the tolerance,
  ``peak_shift_ppm`` the tolerance in ppm along the coarser axis), so a spectrum where nothing
  matches can never score better than one where something does. With ``no_match="nan"`` they
  are NaN whenever ``P = 0``, for averages over matched spectra only (``nanmean``).
- ``peak_r2`` of one spectrum is unbounded below (a few matched peaks of nearly equal height
  give values like -600) and its fill is -inf: do not average it to rank methods. Rank with the
  pooled peak R^2 over all matched peaks of a group instead
  (:func:`mssr.evaluation.bootstrap.pooled_peak_r2`), from the sums :func:`evaluate_many` reports.
- Constant ``hr`` or ``sr`` (std 0) has no peaks.

What a spectroscopist reads (:func:`evaluate_many`, per spectrum; axis 0 is the indirect ``x``
nucleus, 15N or 13C, axis 1 the directly detected 1H):

==========================  ==========================================================
``fwhm_1h_hz``              median over matched pairs of the predicted peak's FWHM along
``fwhm_x_hz``               the 1H / x axis (:func:`mssr.evaluation.peaks.linewidths`), Hz
``true_fwhm_1h_hz``, ...    the same for the true peaks of the matched pairs, Hz
``fwhm_1h_ratio``, ...      median over matched pairs of predicted / true FWHM (1 = right)
``n_close_pairs``           true peak pairs closer than the low-field line width
                            (:func:`mssr.evaluation.peaks.close_pairs`)
``resolved_pairs``          fraction of those that the prediction shows as two maxima with a
                            dip between them (:func:`mssr.evaluation.peaks.resolved`), [0, 1]
==========================  ==========================================================

Line widths are NaN where no matched pair has a measurable width (they describe matched
peaks; an unmatched spectrum is already scored by the peak metrics). ``resolved_pairs`` is NaN
where the truth has no close pair (nothing to resolve); a prediction that shows none of them
scores 0, the worst value.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import ndimage

from mssr.evaluation.peaks import (
    DEFAULT_OPTIONS,
    Peaks,
    PeakOptions,
    Sign,
    close_pairs,
    detect_stack,
    linewidths,
    match,
    resolved,
    validate_spectra,
)

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
"""Value of the peak metrics when no peak pair matched: the worst values, or NaN."""

SsimWindow = Literal["uniform", "gaussian"]
"""SSIM window: skimage's default 7 x 7 uniform, or Wang et al.'s Gaussian (sigma 1.5 px, 11 taps)."""

DEFAULT_SSIM_WINDOW: SsimWindow = "uniform"
"""Default SSIM window (skimage's)."""

NO_MATCH_WORST: dict[str, float] = {
    "hallucination_ratio": 1.0,
    "missed_peak_ratio": 1.0,
    "peak_mse": DATA_RANGE**2,
    "peak_r2": -np.inf,
    "peak_intensity_diff": 1.0,
    "peak_shift_diff": 1.0,
}
"""Value of each peak metric when no pair matched but peaks exist: its worst value (the two
ratios take it where they are ``0 / 0``; their formulas give it otherwise)."""

NO_PEAKS_PERFECT: dict[str, float] = {"peak_mse": 0.0, "peak_r2": 1.0, "peak_intensity_diff": 0.0, "peak_shift_diff": 0.0}
"""Value of each pair-based peak metric when neither spectrum has a peak (nothing to find)."""

DEFAULT_RESOLVE_DIP = 0.9
"""Default ``dip`` of :func:`mssr.evaluation.peaks.resolved`: a 10% fall between two maxima."""

POOL_COLUMNS: tuple[str, ...] = (
    "n_true_peaks", "n_pred_peaks", "n_pairs", "peak_ss_res", "peak_sum_true", "peak_sumsq_true",
)
"""Per-spectrum counts and sums over matched pairs (``sum (a_t - a_p)**2``, ``sum a_t``,
``sum a_t**2``) from which R^2 pooled over the pairs of many spectra is computed."""

LINEWIDTH_COLUMNS: tuple[str, ...] = (
    "fwhm_1h_hz", "fwhm_x_hz", "true_fwhm_1h_hz", "true_fwhm_x_hz", "fwhm_1h_ratio", "fwhm_x_ratio",
)
"""Per-spectrum medians of the matched peaks' line widths, Hz, and of their ratios to the truth's."""

RESOLUTION_COLUMNS: tuple[str, ...] = ("n_close_pairs", "resolved_pairs")
"""Close true pairs and the fraction of them the prediction resolves."""

EVALUATION_COLUMNS: tuple[str, ...] = METRIC_NAMES + (PPM_METRIC,) + POOL_COLUMNS + LINEWIDTH_COLUMNS + RESOLUTION_COLUMNS
"""Columns of the per-spectrum table of :func:`evaluate_many`, in order."""

PEAK_COLUMNS: tuple[str, ...] = (
    "sample", "sign", "true_row", "true_col", "pred_row", "pred_col", "true_amplitude", "pred_amplitude",
    "true_fwhm_1h_hz", "true_fwhm_x_hz", "fwhm_1h_hz", "fwhm_x_hz", "fwhm_1h_ratio", "fwhm_x_ratio",
)
"""Columns of the per-matched-peak table of :func:`evaluate_many` (positions in pixels)."""

_PEAK_PAIR_METRICS = ("peak_mse", "peak_r2", "peak_intensity_diff", "peak_shift_diff")
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def _validate_choice(value, name: str, choices) -> None:
    if value not in get_args(choices):
        raise ValueError(f"{name} must be one of {get_args(choices)}, got {value!r}")


def _validate_pair(hr, sr, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    hr = validate_spectra(hr, "hr", ndim)
    sr = validate_spectra(sr, "sr", ndim)
    if hr.shape != sr.shape:
        raise ValueError(f"hr and sr must have the same shape, got {hr.shape} and {sr.shape}")
    return hr, sr


def _validate_per_axis(value, count: int, name: str, *, allow_nan: bool = False) -> np.ndarray | None:
    """Return a per-axis quantity as an array (count, 2), or None when not given; finite and > 0
    (or NaN, meaning unknown, where ``allow_nan``)."""
    if value is None:
        return None
    values = np.asarray(value, dtype=np.float64)
    if values.shape == (2,):
        values = np.broadcast_to(values, (count, 2))
    if values.shape != (count, 2):
        raise ValueError(f"{name} must have shape (2,) or ({count}, 2), got {values.shape}")
    known = values[~np.isnan(values)] if allow_nan else values
    if not (np.isfinite(known).all() and (known > 0).all()):
        raise ValueError(f"{name} must be finite and > 0" + (" (or NaN: unknown)" if allow_nan else ""))
    return values


def _validate_ppm_per_px(ppm_per_px, count: int) -> np.ndarray | None:
    return _validate_per_axis(ppm_per_px, count, "ppm_per_px")


def _validate_dip(dip) -> float:
    if isinstance(dip, bool) or not isinstance(dip, (int, float, np.floating)):
        raise TypeError(f"resolve_dip must be a number, got {type(dip).__name__}")
    if not 0.0 < float(dip) < 1.0:
        raise ValueError(f"resolve_dip must be in (0, 1), got {dip}")
    return float(dip)


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


def ssim(hr: np.ndarray, sr: np.ndarray, *, window: SsimWindow = DEFAULT_SSIM_WINDOW) -> float:
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
    threshold_px: float = DEFAULT_OPTIONS.threshold_px,
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
        Value of the peak metrics when no pair matched (the four pair-based ones, and a
        ratio that is 0 / 0): the worst values, or NaN.
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
    pairs = match_peaks(true, pred, threshold_px=options.threshold_px)
    values, _ = _peak_metrics(true, pred, pairs, options.threshold_px, no_match, ppm)
    return values


def match_peaks(true: Peaks, pred: Peaks, *, threshold_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of two peak sets, each sign on its own.

    Parameters
    ----------
    true, pred : Peaks
        True and predicted peaks.
    threshold_px : float
        Largest matching distance, pixels.

    Returns
    -------
    i_true, i_pred : ndarray of intp, shape (P,)
        Indices of the matched pairs into ``true`` and ``pred``.
    dist : ndarray of float64, shape (P,)
        Their distances, pixels.
    """
    i_true, i_pred, dist = [np.empty(0, np.intp)], [np.empty(0, np.intp)], [np.empty(0)]
    for sign in np.union1d(true.signs, pred.signs):
        t, p = np.flatnonzero(true.signs == sign), np.flatnonzero(pred.signs == sign)
        it, ip, d = match(true.coords[t], pred.coords[p], threshold_px=threshold_px)
        i_true.append(t[it])
        i_pred.append(p[ip])
        dist.append(d)
    return np.concatenate(i_true), np.concatenate(i_pred), np.concatenate(dist)


def _peak_metrics(
    true: Peaks, pred: Peaks, pairs, threshold_px: float, no_match: NoMatch, ppm: np.ndarray | None
) -> tuple[dict[str, float], dict[str, float]]:
    """The peak metrics of one spectrum and its pooling sums (:data:`POOL_COLUMNS`)."""
    i_true, i_pred, dist = pairs
    n_true, n_pred, n_pairs = len(true.coords), len(pred.coords), len(dist)
    out = {
        # 0 / 0 is perfect only when neither spectrum has a peak; otherwise it is a no-match fill.
        "hallucination_ratio": (n_pred - n_pairs) / n_pred if n_pred else (0.0 if n_true == 0 else 1.0),
        "missed_peak_ratio": (n_true - n_pairs) / n_true if n_true else (0.0 if n_pred == 0 else 1.0),
    }
    if no_match == "nan" and n_pairs == 0 and n_true + n_pred > 0:
        out["hallucination_ratio" if n_pred == 0 else "missed_peak_ratio"] = np.nan
    a_true = true.amplitudes[i_true].astype(np.float64)
    a_pred = pred.amplitudes[i_pred].astype(np.float64)
    error = a_true - a_pred
    pool = {
        "n_true_peaks": float(n_true),
        "n_pred_peaks": float(n_pred),
        "n_pairs": float(n_pairs),
        "peak_ss_res": float(np.square(error).sum()),
        "peak_sum_true": float(a_true.sum()),
        "peak_sumsq_true": float(np.square(a_true).sum()),
    }
    if n_pairs == 0:
        if no_match == "nan":
            pair_values = dict.fromkeys(_PEAK_PAIR_METRICS, np.nan)
            shift_ppm = np.nan
        elif n_true == 0 and n_pred == 0:
            pair_values = dict(NO_PEAKS_PERFECT)
            shift_ppm = 0.0
        else:
            pair_values = {k: NO_MATCH_WORST[k] for k in _PEAK_PAIR_METRICS}
            shift_ppm = threshold_px * float(ppm.max()) if ppm is not None else np.nan
    else:
        ss_tot = np.square(a_true - a_true.mean()).sum()
        pair_values = {
            "peak_mse": float(np.square(error).mean()),
            "peak_r2": float(_r2(pool["peak_ss_res"], ss_tot, a_true.max() == a_true.min())),
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
    return out, pool


def _nanmedian(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _spectrum_evaluation(hr_i, sr_i, true: Peaks, pred: Peaks, pairs, hz, lowfield, dip) -> tuple[dict, np.ndarray]:
    """Line widths, resolved pairs and the per-peak rows of one spectrum (matched pairs given)."""
    i_true, i_pred, _ = pairs
    widths_true = linewidths(hr_i, true)[i_true] * hz  # (P, 2): axis 0 (x), axis 1 (1H), Hz
    widths_pred = linewidths(sr_i, pred)[i_pred] * hz
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = widths_pred / widths_true
    values = {
        "fwhm_1h_hz": _nanmedian(widths_pred[:, 1]),
        "fwhm_x_hz": _nanmedian(widths_pred[:, 0]),
        "true_fwhm_1h_hz": _nanmedian(widths_true[:, 1]),
        "true_fwhm_x_hz": _nanmedian(widths_true[:, 0]),
        "fwhm_1h_ratio": _nanmedian(ratio[:, 1]),
        "fwhm_x_ratio": _nanmedian(ratio[:, 0]),
        "n_close_pairs": float("nan"),
        "resolved_pairs": float("nan"),
    }
    if lowfield is not None and np.isfinite(lowfield).all():
        i, j = close_pairs(true, lowfield)
        values["n_close_pairs"] = float(len(i))
        if len(i):
            shown = resolved(sr_i, true.coords[i], true.coords[j], true.signs[i], dip=dip)
            values["resolved_pairs"] = float(shown.mean())
    rows = np.column_stack([
        true.signs[i_true].astype(np.float64),
        true.coords[i_true],
        pred.coords[i_pred],
        true.amplitudes[i_true].astype(np.float64),
        pred.amplitudes[i_pred].astype(np.float64),
        widths_true[:, 1], widths_true[:, 0], widths_pred[:, 1], widths_pred[:, 0], ratio[:, 1], ratio[:, 0],
    ]) if len(i_true) else np.empty((0, len(PEAK_COLUMNS) - 1))
    return values, rows


def _metrics_stack(
    hr: np.ndarray,
    sr: np.ndarray,
    options: PeakOptions,
    ssim_window: SsimWindow,
    no_match: NoMatch,
    ppm: np.ndarray | None,
    hz: np.ndarray | None = None,
    lowfield: np.ndarray | None = None,
    dip: float = DEFAULT_RESOLVE_DIP,
) -> tuple[list[dict], list[np.ndarray]]:
    """Per-spectrum values and per-peak rows of validated stacks; line widths only with ``hz``."""
    hr64, sr64 = hr.astype(np.float64), sr.astype(np.float64)
    mse, r2 = _pixel_metrics(hr64, sr64)
    ssim_values = _ssim_stack(hr64, sr64, ssim_window)
    true_peaks = detect_stack(hr, options)
    pred_peaks = detect_stack(sr, options)
    values, peak_rows = [], []
    for i in range(len(hr)):
        pairs = match_peaks(true_peaks[i], pred_peaks[i], threshold_px=options.threshold_px)
        row, pool = _peak_metrics(
            true_peaks[i], pred_peaks[i], pairs, options.threshold_px, no_match, None if ppm is None else ppm[i]
        )
        row.update(mse=mse[i], r2=r2[i], ssim=ssim_values[i], **pool)
        if hz is not None:
            extra, rows = _spectrum_evaluation(
                hr[i], sr[i], true_peaks[i], pred_peaks[i], pairs, hz[i],
                None if lowfield is None else lowfield[i], dip,
            )
            row.update(extra)
            peak_rows.append(rows)
        values.append(row)
    return values, peak_rows


def _run_chunks(count: int, chunk_size: int, workers: int, fn) -> list:
    starts = range(0, count, chunk_size)
    if workers == 1:
        return [fn(start, start + chunk_size) for start in starts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda start: fn(start, start + chunk_size), starts))


def compute(
    hr: np.ndarray,
    sr: np.ndarray,
    *,
    sigma: float = DEFAULT_OPTIONS.sigma,
    window: int = DEFAULT_OPTIONS.window,
    alpha: float = DEFAULT_OPTIONS.alpha,
    threshold_px: float = DEFAULT_OPTIONS.threshold_px,
    sign: Sign = DEFAULT_OPTIONS.sign,
    ssim_window: SsimWindow = DEFAULT_SSIM_WINDOW,
    no_match: NoMatch = "worst",
    ppm_per_px: tuple[float, float] | None = None,
) -> dict[str, float]:
    """The nine metrics of one predicted spectrum against the true one.

    Definitions, ranges and edge cases are in the module docstring. The peak options default to
    :data:`mssr.evaluation.peaks.DEFAULT_OPTIONS`.

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
        Value of the peak metrics when no peak pair matched (the four pair-based ones, and a
        ratio that is 0 / 0): the worst values, or NaN.
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
    sigma: float = DEFAULT_OPTIONS.sigma,
    window: int = DEFAULT_OPTIONS.window,
    alpha: float = DEFAULT_OPTIONS.alpha,
    threshold_px: float = DEFAULT_OPTIONS.threshold_px,
    sign: Sign = DEFAULT_OPTIONS.sign,
    ssim_window: SsimWindow = DEFAULT_SSIM_WINDOW,
    no_match: NoMatch = "worst",
    ppm_per_px=None,
    chunk_size: int = 64,
    workers: int = 1,
) -> pd.DataFrame:
    """The nine metrics of each pair in two stacks of spectra, batched.

    Equal to calling :func:`compute` on every pair; smoothing, maximum and SSIM filters run on
    ``chunk_size`` spectra at a time (no filter crosses the stack axis) and only the matching
    loops over pairs. :func:`evaluate_many` adds line widths, resolved pairs and per-peak rows.

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

    def chunk(start: int, stop: int) -> list[dict]:
        return _metrics_stack(hr[start:stop], sr[start:stop], options, ssim_window, no_match,
                              None if ppm is None else ppm[start:stop])[0]

    rows = [row for part in _run_chunks(len(hr), chunk_size, workers, chunk) for row in part]
    return pd.DataFrame([[row[n] for n in names] for row in rows], columns=list(names), dtype=np.float64)


def evaluate_many(
    hr: np.ndarray,
    sr: np.ndarray,
    *,
    hz_per_px,
    ppm_per_px,
    lowfield_fwhm_px=None,
    options: PeakOptions = DEFAULT_OPTIONS,
    resolve_dip: float = DEFAULT_RESOLVE_DIP,
    ssim_window: SsimWindow = DEFAULT_SSIM_WINDOW,
    chunk_size: int = 64,
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every metric of each pair of spectra, and a row per matched peak pair.

    The nine metrics (no-match fills: the worst values, :data:`NO_MATCH_WORST`),
    ``peak_shift_ppm``, the pooling sums, line widths in Hz and resolved pairs (module docstring).

    Parameters
    ----------
    hr, sr : ndarray, shape (N, H, W)
        True and predicted spectra on the [-1, 1] scale.
    hz_per_px : array_like, shape (2,) or (N, 2)
        Hz per pixel along (axis 0, axis 1): ppm per pixel times that axis' spectrometer
        frequency, MHz (``sw_hz / size`` of the axis).
    ppm_per_px : array_like, shape (2,) or (N, 2)
        ppm per pixel along (axis 0, axis 1).
    lowfield_fwhm_px : array_like, shape (2,) or (N, 2), optional
        Line width (FWHM) of the low-field input along (axis 0, axis 1), pixels: true pairs
        closer than it are the close pairs of ``resolved_pairs``. None (or NaN for a spectrum):
        unknown, ``resolved_pairs`` NaN.
    options : PeakOptions, optional
        Peak detection and matching.
    resolve_dip : float, optional
        ``dip`` of :func:`mssr.evaluation.peaks.resolved`, in (0, 1).
    ssim_window : {"uniform", "gaussian"}, optional
        SSIM window.
    chunk_size, workers : int, optional
        As in :func:`compute_many`.

    Returns
    -------
    spectra : DataFrame
        N rows, columns :data:`EVALUATION_COLUMNS`, float64.
    peaks : DataFrame
        One row per matched pair, columns :data:`PEAK_COLUMNS` (``sample`` is the row of the
        pair's spectrum in the stack; positions in pixels, widths in Hz).
    """
    hr, sr = _validate_pair(hr, sr, 3)
    if not isinstance(options, PeakOptions):
        raise TypeError(f"options must be a PeakOptions, got {type(options).__name__}")
    hz = _validate_per_axis(hz_per_px, len(hr), "hz_per_px")
    if hz is None:
        raise ValueError("hz_per_px is required")
    ppm = _validate_per_axis(ppm_per_px, len(hr), "ppm_per_px")
    if ppm is None:
        raise ValueError("ppm_per_px is required")
    lowfield = _validate_per_axis(lowfield_fwhm_px, len(hr), "lowfield_fwhm_px", allow_nan=True)
    dip = _validate_dip(resolve_dip)
    _validate_choice(ssim_window, "ssim_window", SsimWindow)
    _validate_positive_int(chunk_size, "chunk_size")
    _validate_positive_int(workers, "workers")

    def chunk(start: int, stop: int):
        return _metrics_stack(hr[start:stop], sr[start:stop], options, ssim_window, "worst", ppm[start:stop],
                              hz[start:stop], None if lowfield is None else lowfield[start:stop], dip)

    rows, peak_rows = [], []
    for start, (values, peaks) in zip(range(0, len(hr), chunk_size), _run_chunks(len(hr), chunk_size, workers, chunk)):
        rows.extend(values)
        for k, table in enumerate(peaks):
            peak_rows.append(np.column_stack([np.full(len(table), start + k, np.float64), table]))
    spectra = pd.DataFrame([[row[n] for n in EVALUATION_COLUMNS] for row in rows],
                           columns=list(EVALUATION_COLUMNS), dtype=np.float64)
    peaks = pd.DataFrame(np.concatenate([np.empty((0, len(PEAK_COLUMNS)))] + peak_rows),
                         columns=list(PEAK_COLUMNS))
    peaks[["sample", "sign"]] = peaks[["sample", "sign"]].astype(np.int64)
    return spectra, peaks


def median_linewidth_px(x: np.ndarray, options: PeakOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Median FWHM of the detected peaks of each spectrum, along (axis 0, axis 1), pixels.

    Used on the low-field inputs to set the distance below which true peaks count as a close
    pair (:func:`evaluate_many`).

    Parameters
    ----------
    x : ndarray, shape (N, H, W)
        Spectra.
    options : PeakOptions, optional
        Peak detection.

    Returns
    -------
    ndarray of float64, shape (N, 2)
        NaN for a spectrum without a measurable peak.
    """
    x = validate_spectra(x, "x", 3)
    found = detect_stack(x, options)
    out = np.full((len(x), 2), np.nan)
    for i, peaks in enumerate(found):
        widths = linewidths(x[i], peaks)
        for axis in range(2):
            out[i, axis] = _nanmedian(widths[:, axis])
    return out
