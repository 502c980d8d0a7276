"""Percentile-bootstrap confidence intervals over clusters (proteins), and the pooled peak R^2.

Spectra of one protein are not independent (projections and planes of one protein share its
peaks), so the intervals of :mod:`mssr.evaluation.tables` come from a **cluster bootstrap over
proteins**: resample the proteins with replacement, take all spectra of each drawn protein,
recompute the statistic; the percentile interval of the resampled statistics is the CI. With a
single protein no interval can be given (NaN).

- :func:`cluster_sums` adds up per-spectrum quantities by cluster; :func:`cluster_bootstrap`
  resamples those sums for any statistic of their totals.
- :func:`cluster_bootstrap_mean_ci` gives the mean over spectra and its interval;
  :func:`bootstrap_mean_ci` the ordinary bootstrap of independent values.
- :func:`pooled_peak_r2` is the R^2 of peak heights pooled over all matched peaks of many
  spectra, from their sums :data:`POOL_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = [
    "POOL_COLUMNS",
    "bootstrap_mean_ci",
    "cluster_bootstrap",
    "cluster_bootstrap_mean_ci",
    "cluster_sums",
    "pooled_peak_r2",
    "validate_ci",
    "validate_n_boot",
]

POOL_COLUMNS: tuple[str, ...] = ("n_pairs", "peak_ss_res", "peak_sum_true", "peak_sumsq_true")
"""Per-spectrum sums of :func:`mssr.evaluation.metrics.evaluate_many` from which ``peak_r2`` is pooled."""


def validate_n_boot(n_boot) -> int:
    """The number of bootstrap resamples, an int >= 1 (TypeError, ValueError naming ``n_boot``)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise TypeError(f"n_boot must be an int, got {type(n_boot).__name__}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return int(n_boot)


def validate_ci(ci) -> float:
    """The confidence level, a float in (0, 1) (TypeError, ValueError naming ``ci``)."""
    if isinstance(ci, bool) or not isinstance(ci, (int, float, np.floating)):
        raise TypeError(f"ci must be a float in (0, 1), got {type(ci).__name__}")
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    return float(ci)


def _percentiles(boot: np.ndarray, ci: float) -> tuple[float, float]:
    alpha = (1.0 - ci) / 2.0
    # With infinite values (peak_r2's no-match fill) interpolation gives NaN; take order statistics.
    method = "linear" if np.isfinite(boot).all() else "inverted_cdf"
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], method=method)
    return float(low), float(high)


def cluster_sums(values: np.ndarray, clusters) -> np.ndarray:
    """Per-cluster column sums of per-spectrum quantities, the input of :func:`cluster_bootstrap`.

    Parameters
    ----------
    values : ndarray, shape (n, k)
        ``k`` quantities of each of ``n`` spectra.
    clusters : array_like, shape (n,), or None
        Cluster (protein) of each spectrum, any hashable labels (NaN is a label of its own);
        None: every spectrum is its own cluster.

    Returns
    -------
    ndarray, shape (C, k)
        Column sums over the spectra of each of the ``C`` clusters, in order of first
        appearance; ``values`` itself when ``clusters`` is None.
    """
    if clusters is None:
        return values
    codes, _ = pd.factorize(pd.Series(clusters), use_na_sentinel=False)
    sums = np.zeros((codes.max() + 1 if len(codes) else 0, values.shape[1]))
    np.add.at(sums, codes, values)
    return sums


def cluster_bootstrap(
    sums: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    rng=None,
) -> tuple[float, float, float]:
    """Percentile-bootstrap CI of a statistic of column totals, resampling clusters.

    Each resample draws ``C`` clusters (rows of ``sums``) with replacement and adds up their
    rows; ``statistic`` maps totals to the value. The mean over spectra is the statistic
    ``totals[..., 0] / totals[..., 1]`` of the per-cluster sums of ``(value, 1)``; a pooled R^2
    is a function of summed squares. Drawing whole clusters keeps every spectrum of a protein
    together, so the interval reflects the variation between proteins.

    Parameters
    ----------
    sums : ndarray, shape (C, k)
        Per-cluster sums of the ``k`` quantities the statistic needs.
    statistic : callable
        ``totals (..., k) -> values (...)``, vectorized over leading axes.
    n_boot : int
        Number of resamples.
    ci : float
        Confidence level in (0, 1).
    rng : numpy.random.Generator or int, optional
        Source of the resampling (an int seeds one).

    Returns
    -------
    value, ci_low, ci_high : float
        The statistic of all clusters and the ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of
        its resamples. The interval is NaN with fewer than two clusters.
    """
    n_boot = validate_n_boot(n_boot)
    ci = validate_ci(ci)
    sums = np.asarray(sums, dtype=float)
    if sums.ndim != 2:
        raise ValueError(f"sums must be 2-D (clusters, quantities), got shape {sums.shape}")
    if len(sums) == 0:
        return float("nan"), float("nan"), float("nan")
    value = float(statistic(sums.sum(axis=0)))
    if len(sums) < 2:
        return value, float("nan"), float("nan")
    rng = np.random.default_rng(rng)
    idx = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    # Column by column: memory n_boot x C, not n_boot x C x k. An infinite fill enters a total
    # only where its cluster is drawn.
    totals = np.stack([sums[:, k][idx].sum(axis=1) for k in range(sums.shape[1])], axis=-1)
    boot = np.asarray(statistic(totals), dtype=float)
    low, high = _percentiles(boot, ci)
    return value, low, high


def _ratio(totals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals[..., 0] / totals[..., 1]


def _mean_sums(values: np.ndarray) -> np.ndarray:
    # An infinite value (a fill) must not turn its protein's count into NaN: inf * 0 is avoided.
    return np.column_stack([values, np.ones_like(values)])


def cluster_bootstrap_mean_ci(
    values, clusters=None, *, n_boot: int = 1000, ci: float = 0.95, rng=None
) -> tuple[float, float, float, int, int]:
    """Mean of ``values`` and its cluster-bootstrap confidence interval, NaN skipped.

    Parameters
    ----------
    values : array_like, shape (n,)
        One value per spectrum; NaN marks an undefined value and is skipped.
    clusters : array_like, shape (n,), optional
        Cluster (protein) of each value; None: every value is its own cluster (the ordinary
        bootstrap of independent values).
    n_boot, ci, rng
        As in :func:`cluster_bootstrap`.

    Returns
    -------
    mean, ci_low, ci_high : float
        Mean over the finite values (each spectrum weighs the same) and its percentile interval
        (resampled proteins, all their spectra). NaN when no value is left; with one value (no
        ``clusters``) the interval collapses onto it; with one cluster of several values it is NaN.
    n : int
        Number of values used.
    n_clusters : int
        Number of clusters they come from.

    Examples
    --------
    >>> cluster_bootstrap_mean_ci([1.0, 1.2, 3.0, 3.1], ["a", "a", "b", "b"], rng=0)[:3]
    (2.075, 1.1, 3.05)
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    keep = ~np.isnan(values)
    if clusters is not None:
        clusters = np.asarray(clusters, dtype=object)
        if clusters.shape != values.shape:
            raise ValueError(f"clusters must have the shape of values {values.shape}, got {clusters.shape}")
        clusters = clusters[keep]
    finite = values[keep]
    n = int(finite.size)
    if n == 0:
        validate_n_boot(n_boot), validate_ci(ci)
        return float("nan"), float("nan"), float("nan"), 0, 0
    if n == 1 and clusters is None:
        validate_n_boot(n_boot), validate_ci(ci)
        return float(finite[0]), float(finite[0]), float(finite[0]), 1, 1
    sums = cluster_sums(_mean_sums(finite), clusters)
    mean, low, high = cluster_bootstrap(sums, _ratio, n_boot=n_boot, ci=ci, rng=rng)
    return float(finite.mean()), low, high, n, len(sums)


def bootstrap_mean_ci(values, *, n_boot: int = 1000, ci: float = 0.95, rng=None) -> tuple[float, float, float, int]:
    """Mean of independent ``values`` and its percentile-bootstrap confidence interval, NaN skipped.

    The ordinary bootstrap (every value its own cluster) of :func:`cluster_bootstrap_mean_ci`;
    use that one, with the proteins as clusters, for spectra.

    Parameters
    ----------
    values : array_like, shape (n,)
        Per-sample values of one metric; NaN marks an undefined value and is skipped.
    n_boot : int
        Number of bootstrap resamples.
    ci : float
        Confidence level in (0, 1), e.g. 0.95.
    rng : numpy.random.Generator or int, optional
        Source of the resampling indices (an int is used as a seed).

    Returns
    -------
    mean, ci_low, ci_high : float
        Mean of the finite values and the ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of the
        bootstrap means. All three are NaN when no finite value is left; with a single value the
        interval collapses onto it.
    n : int
        Number of finite values used.
    """
    n_boot = validate_n_boot(n_boot)
    ci = validate_ci(ci)
    mean, low, high, n, _ = cluster_bootstrap_mean_ci(values, None, n_boot=n_boot, ci=ci, rng=rng)
    return mean, low, high, n


def pooled_peak_r2(totals) -> np.ndarray:
    """R^2 of predicted against true peak heights pooled over all matched pairs of many spectra.

    ``R^2 = 1 - SS_res / SS_tot`` with ``SS_res = sum (a_t - a_p)**2`` and
    ``SS_tot = sum a_t**2 - (sum a_t)**2 / P`` over all ``P`` matched pairs, from the per-spectrum
    sums :data:`POOL_COLUMNS`. ``SS_tot`` grows with every spectrum, so the pooled value stays
    in a useful range where one spectrum's R^2 over a few pairs of similar heights reaches -600.
    A spectrum without a matched pair adds nothing (its misses count in ``missed_peak_ratio``).
    ``SS_tot = 0`` follows :mod:`mssr.evaluation.metrics` (1 if exact, else 0); no pair: NaN.

    Parameters
    ----------
    totals : array_like, shape (..., 4)
        Totals of ``n_pairs, peak_ss_res, peak_sum_true, peak_sumsq_true``.

    Returns
    -------
    ndarray, shape (...)
    """
    totals = np.asarray(totals, dtype=float)
    n, ss_res, total, total_sq = (totals[..., k] for k in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        ss_tot = total_sq - np.square(total) / n
        # Relative rounding floor: an SS_tot that is zero up to cancellation is treated as zero.
        constant = ss_tot <= 1e-12 * np.maximum(total_sq, 1e-300)
        value = 1.0 - ss_res / ss_tot
    value = np.where(constant, np.where(ss_res == 0, 1.0, 0.0), value)
    return np.where(n > 0, value, np.nan)
