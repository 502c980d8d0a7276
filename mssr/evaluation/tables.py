"""Aggregate the per-spectrum metrics table: per-factor summaries and paired differences.

The metrics table has one row per (test set, method, factor, spectrum) and one column per
metric (see :data:`METRICS`), with the spectrum's ``protein``. Spectra of one protein are not
independent (projections and planes of one protein share its peaks), so every confidence
interval here is a **cluster bootstrap over proteins**: resample the proteins with
replacement, take all spectra of each drawn protein, recompute the statistic; the percentile
interval of the resampled statistics is the CI. With a single protein no interval can be given
(NaN). A table without a ``protein`` column falls back to spectra as independent units.

:func:`summarize` gives one row per (group..., metric): the group's value (the mean over
spectra; for ``peak_r2`` the R^2 pooled over all matched peaks of the group,
:func:`pooled_peak_r2`, because the per-spectrum value is unbounded below), its CI and the
numbers of spectra and proteins used. Metrics that are undefined for a spectrum (NaN, e.g.
``resolved_pairs`` of a spectrum without close pairs) are skipped, and ``n`` says how many
values remained.

:func:`paired` compares methods on the same spectra: for each learned method and each reference
(identity and the classical methods), per test set and factor, the mean over spectra of the
difference (learned minus reference), with its cluster-bootstrap CI and a verdict that says
"better" or "worse" only where the CI excludes zero.

:func:`write_tables` writes the summaries, the paired differences and the recomputed Table 1
as CSV and Markdown.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mssr import factors
from mssr.atomic import atomic_path, write_text
from mssr.evaluation.metrics import GLOBAL_METRICS, LINEWIDTH_COLUMNS, LOCAL_METRICS, PPM_METRIC

METRICS: tuple[str, ...] = GLOBAL_METRICS + LOCAL_METRICS
"""The nine metrics, in the order tables list them."""

SPECTROSCOPY_METRICS: tuple[str, ...] = ("resolved_pairs",) + LINEWIDTH_COLUMNS
"""What a spectroscopist reads: resolved close pairs and line widths (Hz, and ratios to the truth's)."""

SUMMARY_METRICS: tuple[str, ...] = METRICS + (PPM_METRIC,) + SPECTROSCOPY_METRICS
"""Metrics :func:`summarize` uses by default, where the table has them, in this order."""

HIGHER_IS_BETTER: frozenset[str] = frozenset({"r2", "peak_r2", "ssim", "resolved_pairs"})
"""Metrics where a larger value is better."""

LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"mse", "hallucination_ratio", "missed_peak_ratio", "peak_mse", "peak_intensity_diff", "peak_shift_diff",
     PPM_METRIC}
)
"""Metrics where a smaller value is better. Line widths have no direction (right is the truth's)."""

PAIRED_METRICS: tuple[str, ...] = METRICS + ("resolved_pairs",)
"""Metrics :func:`paired` compares by default, where the table has them."""

POOL_COLUMNS: tuple[str, ...] = ("n_pairs", "peak_ss_res", "peak_sum_true", "peak_sumsq_true")
"""Per-spectrum sums of :func:`mssr.evaluation.metrics.evaluate_many` from which ``peak_r2`` is pooled."""

LEARNED_METHODS: tuple[str, ...] = ("mssr", "baseline")
"""Learned methods; the other methods of a table are their references in :func:`paired`."""

METHOD_ORDER: tuple[str, ...] = ("mssr", "baseline", "identity", "richardson_lucy", "wiener")
"""Order in which methods are listed; other methods follow alphabetically."""

GROUP_COLUMNS: tuple[str, ...] = ("testset", "method", "factor", "steps", "repeats")
"""Columns of a metrics table that identify a group, where present (in this order)."""

SUMMARY_VALUE_COLUMNS: tuple[str, ...] = ("metric", "mean", "ci_low", "ci_high", "n")
"""Columns :func:`summarize` adds after the group columns: ``mean`` holds the group's value (the
mean over spectra, or the pooled R^2 for ``peak_r2``), ``n`` counts spectra."""

SUMMARY_DETAIL_COLUMNS: tuple[str, ...] = ("statistic", "n_proteins")
"""Columns ``summarize(..., details=True)`` adds: ``statistic`` is ``"mean"`` (over spectra) or
``"pooled"`` (over all matched peaks, ``peak_r2``); ``n_proteins`` counts the proteins
(clusters) the spectra come from."""

PAIRED_COLUMNS: tuple[str, ...] = (
    "testset", "factor", "method", "reference", "metric", "statistic", "method_value", "reference_value",
    "difference", "ci_low", "ci_high", "n_spectra", "n_proteins", "higher_is_better", "verdict",
)
"""Columns of :func:`paired` (``testset`` only where the metrics table has it)."""

VERDICTS: tuple[str, ...] = ("better", "worse", "no difference", "undetermined")
"""Verdicts of :func:`paired`: the CI of the difference excludes zero in the method's favour,
against it, contains zero, or could not be computed (fewer than two proteins)."""


# ---------------------------------------------------------------------------------------------
# validation


def _validate_frame(name: str, df) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    return df


def _validate_columns(name: str, df: pd.DataFrame, columns: Sequence[str], *, what: str) -> tuple[str, ...]:
    if isinstance(columns, str):
        raise TypeError(f"{what} must be a sequence of column names, not a single str {columns!r}")
    columns = tuple(columns)
    if not all(isinstance(c, str) for c in columns):
        raise TypeError(f"{what} must contain column names (str), got {columns!r}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks the {what} column(s) {missing}; it has {list(df.columns)}")
    return columns


def _validate_metrics(df: pd.DataFrame, metrics, by: tuple[str, ...]) -> tuple[str, ...]:
    if metrics is None:
        metrics = tuple(m for m in SUMMARY_METRICS if m in df.columns)
        if not metrics:
            raise ValueError(f"df has none of the metric columns {list(METRICS)}; it has {list(df.columns)}")
    metrics = _validate_columns("df", df, metrics, what="metrics")
    overlap = sorted(set(metrics) & set(by))
    if overlap:
        raise ValueError(f"metrics and by share the column(s) {overlap}")
    for m in metrics:
        if not (pd.api.types.is_numeric_dtype(df[m]) and not pd.api.types.is_bool_dtype(df[m])):
            raise TypeError(f"metric column {m!r} must be numeric, got dtype {df[m].dtype}")
    return metrics


def _validate_n_boot(n_boot) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise TypeError(f"n_boot must be an int, got {type(n_boot).__name__}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return int(n_boot)


def _validate_ci(ci) -> float:
    if isinstance(ci, bool) or not isinstance(ci, (int, float, np.floating)):
        raise TypeError(f"ci must be a float in (0, 1), got {type(ci).__name__}")
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    return float(ci)


def _validate_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


def _validate_summary(summary) -> pd.DataFrame:
    summary = _validate_frame("summary", summary)
    _validate_columns("summary", summary, ("metric", "mean", "ci_low", "ci_high", "n"), what="summary")
    return summary


def _validate_digits(digits) -> int:
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)):
        raise TypeError(f"digits must be an int, got {type(digits).__name__}")
    if not 1 <= digits <= 15:
        raise ValueError(f"digits must be in 1..15, got {digits}")
    return int(digits)


# ---------------------------------------------------------------------------------------------
# bootstrap


def _percentiles(boot: np.ndarray, ci: float) -> tuple[float, float]:
    alpha = (1.0 - ci) / 2.0
    # With infinite values (peak_r2's no-match fill) interpolation gives NaN; take order statistics.
    method = "linear" if np.isfinite(boot).all() else "inverted_cdf"
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], method=method)
    return float(low), float(high)


def _cluster_sums(values: np.ndarray, clusters) -> np.ndarray:
    """Per-cluster column sums (C, k) of ``values`` (n, k); every row its own cluster if None."""
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
    n_boot = _validate_n_boot(n_boot)
    ci = _validate_ci(ci)
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
        _validate_n_boot(n_boot), _validate_ci(ci)
        return float("nan"), float("nan"), float("nan"), 0, 0
    if n == 1 and clusters is None:
        _validate_n_boot(n_boot), _validate_ci(ci)
        return float(finite[0]), float(finite[0]), float(finite[0]), 1, 1
    sums = _cluster_sums(_mean_sums(finite), clusters)
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
    n_boot = _validate_n_boot(n_boot)
    ci = _validate_ci(ci)
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


def _group_rng(seed: int, key: tuple, metric: str) -> np.random.Generator:
    # Seeded from the group's own name, so a group's interval does not change when other groups
    # are added to or removed from the table (Python's hash() is salted per process; crc32 is not).
    tag = zlib.crc32(repr((tuple(_plain(k) for k in key), metric)).encode("utf-8"))
    return np.random.default_rng([seed, tag])


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return "nan"
    return value


def _method_rank(method) -> tuple[int, str]:
    method = str(method)
    if method in METHOD_ORDER:
        return (METHOD_ORDER.index(method), "")
    return (len(METHOD_ORDER), method)


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name in ("method", "reference"):
        ranks = {m: i for i, m in enumerate(sorted(column.unique(), key=_method_rank))}
        return column.map(ranks)
    if column.name == "metric":
        known = {m: i for i, m in enumerate(SUMMARY_METRICS)}
        others = sorted(set(column.unique()) - set(known))
        ranks = {**known, **{m: len(SUMMARY_METRICS) + i for i, m in enumerate(others)}}
        return column.map(ranks)
    return column


def _resolve_cluster(df: pd.DataFrame, cluster) -> str | None:
    if cluster == "auto":
        return "protein" if "protein" in df.columns else None
    if cluster is None:
        return None
    if not isinstance(cluster, str):
        raise TypeError(f"cluster must be a column name, 'auto' or None, got {type(cluster).__name__}")
    if cluster not in df.columns:
        raise ValueError(f"df lacks the cluster column {cluster!r}; it has {list(df.columns)}")
    return cluster


def _pools(df: pd.DataFrame) -> bool:
    return all(c in df.columns for c in POOL_COLUMNS)


def _group_value(group: pd.DataFrame, metric: str, cluster: str | None, n_boot: int, ci: float, rng):
    """(statistic, value, low, high, n, n_clusters) of one metric of one group."""
    clusters = None if cluster is None else group[cluster].to_numpy(dtype=object)
    if metric == "peak_r2" and _pools(group):
        sums = _cluster_sums(group[list(POOL_COLUMNS)].to_numpy(dtype=float), clusters)
        value, low, high = cluster_bootstrap(sums, pooled_peak_r2, n_boot=n_boot, ci=ci, rng=rng)
        return ("pooled", value, low, high, len(group), len(sums))
    mean, low, high, n, n_clusters = cluster_bootstrap_mean_ci(
        group[metric].to_numpy(dtype=float), clusters, n_boot=n_boot, ci=ci, rng=rng
    )
    return ("mean", mean, low, high, n, n_clusters)


def summarize(
    df: pd.DataFrame,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    by: Sequence[str] = ("method", "factor"),
    metrics: Sequence[str] | None = None,
    cluster: str | None = "auto",
    details: bool = False,
) -> pd.DataFrame:
    """Per-group value of every metric with a cluster-bootstrap confidence interval.

    Parameters
    ----------
    df : DataFrame
        Metrics table, one row per (method, factor, spectrum), one numeric column per metric.
    n_boot : int
        Bootstrap resamples per (group, metric).
    ci : float
        Confidence level in (0, 1).
    seed : int
        Seed; each (group, metric) draws from its own stream derived from ``seed`` and the group's
        name, so the result is deterministic and independent of the other groups in ``df``.
    by : sequence of str
        Columns that define a group. Rows with NaN in a group column form their own group.
    metrics : sequence of str, optional
        Metric columns to summarize; by default those of :data:`SUMMARY_METRICS` present in ``df``.
    cluster : str or None, optional
        Column of the resampled clusters; ``"auto"``: ``protein`` where present, else every
        spectrum on its own (None).
    details : bool, optional
        Also give :data:`SUMMARY_DETAIL_COLUMNS` (kept out by default: figures treat every
        column beside the values as a group column).

    Returns
    -------
    DataFrame
        Long format: the ``by`` columns, then :data:`SUMMARY_VALUE_COLUMNS` (then
        :data:`SUMMARY_DETAIL_COLUMNS`). ``peak_r2`` is
        pooled over the group's matched peaks (``statistic == "pooled"``) where ``df`` has the
        :data:`POOL_COLUMNS`, else the mean of the per-spectrum values. Sorted by group (methods
        in :data:`METHOD_ORDER`, other columns ascending), then metric in :data:`SUMMARY_METRICS`
        order.

    Examples
    --------
    >>> df = pd.DataFrame({"method": ["mssr"] * 3, "factor": [2.25] * 3, "mse": [1.0, 2.0, 3.0]})
    >>> summarize(df, n_boot=200)[["metric", "mean", "n"]].to_dict("records")
    [{'metric': 'mse', 'mean': 2.0, 'n': 3}]
    """
    df = _validate_frame("df", df)
    by = _validate_columns("df", df, by, what="by")
    if not by:
        raise ValueError("by must name at least one column")
    metrics = _validate_metrics(df, metrics, by)
    n_boot = _validate_n_boot(n_boot)
    ci = _validate_ci(ci)
    seed = _validate_seed(seed)
    cluster = _resolve_cluster(df, cluster)

    rows = []
    for key, group in df.groupby(list(by), sort=False, dropna=False):
        for metric in metrics:
            rng = _group_rng(seed, key, metric)
            rows.append((*key, metric, *_group_value(group, metric, cluster, n_boot, ci, rng)))
    columns = [*by, "metric", "statistic", "mean", "ci_low", "ci_high", "n", "n_proteins"]
    summary = pd.DataFrame(rows, columns=columns)
    summary[["n", "n_proteins"]] = summary[["n", "n_proteins"]].astype("int64")
    summary = summary.sort_values([*by, "metric"], key=_sort_key, kind="stable", na_position="last")
    if not details:
        summary = summary.drop(columns=list(SUMMARY_DETAIL_COLUMNS))
    return summary.reset_index(drop=True)


def _verdict(low: float, high: float, higher_is_better: bool) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undetermined"
    if low > 0:
        return "better" if higher_is_better else "worse"
    if high < 0:
        return "worse" if higher_is_better else "better"
    return "no difference"


def _pooled_difference(totals: np.ndarray) -> np.ndarray:
    k = len(POOL_COLUMNS)
    return pooled_peak_r2(totals[..., :k]) - pooled_peak_r2(totals[..., k:])


def paired(
    df: pd.DataFrame,
    *,
    learned: Sequence[str] = LEARNED_METHODS,
    references: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    cluster: str | None = "auto",
) -> pd.DataFrame:
    """Paired differences between each learned method and each reference, with CIs by protein.

    For every (test set, factor), learned method ``m`` and reference ``r``, the spectra scored
    by both are paired on ``sample`` (the spectrum's index in its test set). The difference is
    the mean over paired spectra of ``m - r`` (for ``peak_r2``: pooled R^2 of ``m`` minus pooled
    R^2 of ``r``, :func:`pooled_peak_r2`), with a percentile CI from a cluster bootstrap that
    draws the same proteins for both methods. A metric undefined for a spectrum (NaN in either
    method) leaves that spectrum out of its pairs.

    Verdict: ``"better"`` where the CI lies entirely on the method's good side of zero
    (:data:`HIGHER_IS_BETTER`, :data:`LOWER_IS_BETTER`), ``"worse"`` on the other, ``"no
    difference"`` where it contains zero, ``"undetermined"`` without an interval.

    Parameters
    ----------
    df : DataFrame
        Metrics table with ``method``, ``factor``, ``sample`` (and ``testset``, ``protein``).
    learned : sequence of str
        Learned methods (those present are compared).
    references : sequence of str, optional
        Reference methods; by default every other method of ``df``.
    metrics : sequence of str, optional
        Metrics; by default those of :data:`PAIRED_METRICS` present in ``df``.
    n_boot, ci, seed
        As in :func:`summarize`.
    cluster : str or None, optional
        Cluster column, as in :func:`summarize`.

    Returns
    -------
    DataFrame
        Columns :data:`PAIRED_COLUMNS` (``testset`` where ``df`` has it): ``method_value`` and
        ``reference_value`` are each method's value on the paired spectra, ``difference`` their
        difference, ``n_spectra`` / ``n_proteins`` the pairs and proteins used.
    """
    df = _validate_frame("df", df)
    _validate_columns("df", df, ("method", "factor", "sample"), what="required")
    if isinstance(learned, str) or (references is not None and isinstance(references, str)):
        raise TypeError("learned and references must be sequences of method names, not a str")
    if metrics is None:
        metrics = tuple(m for m in PAIRED_METRICS if m in df.columns)
    metrics = _validate_metrics(df, metrics, ("method", "factor", "sample"))
    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER and m not in LOWER_IS_BETTER]
    if unknown:
        raise ValueError(f"metrics {unknown} have no better direction (see HIGHER_IS_BETTER, LOWER_IS_BETTER)")
    n_boot, ci, seed = _validate_n_boot(n_boot), _validate_ci(ci), _validate_seed(seed)
    cluster = _resolve_cluster(df, cluster)
    present = list(dict.fromkeys(df["method"]))
    learned = [m for m in learned if m in present]
    references = [m for m in (references if references is not None else present) if m in present and m not in learned]
    by = [c for c in ("testset", "factor") if c in df.columns]
    pool = _pools(df)

    rows = []
    for key, group in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        per_method = {m: g.set_index("sample") for m, g in group.groupby("method", sort=False)}
        for m in learned:
            for r in references:
                if m not in per_method or r not in per_method:
                    continue
                a, b = per_method[m], per_method[r]
                common = a.index.intersection(b.index)
                a, b = a.loc[common], b.loc[common]
                clusters = None if cluster is None else a[cluster].to_numpy(dtype=object)
                for metric in metrics:
                    rng = _group_rng(seed, (*key, m, r), metric)
                    higher = metric in HIGHER_IS_BETTER
                    if metric == "peak_r2" and pool:
                        both = np.column_stack([a[list(POOL_COLUMNS)].to_numpy(float), b[list(POOL_COLUMNS)].to_numpy(float)])
                        sums = _cluster_sums(both, clusters)
                        diff, low, high = cluster_bootstrap(sums, _pooled_difference, n_boot=n_boot, ci=ci, rng=rng)
                        total = sums.sum(axis=0)
                        k = len(POOL_COLUMNS)
                        values = (float(pooled_peak_r2(total[:k])), float(pooled_peak_r2(total[k:])))
                        rows.append((*key, m, r, metric, "pooled", *values, diff, low, high, len(common), len(sums),
                                     higher, _verdict(low, high, higher)))
                        continue
                    va, vb = a[metric].to_numpy(float), b[metric].to_numpy(float)
                    ok = ~(np.isnan(va) | np.isnan(vb))
                    with np.errstate(invalid="ignore"):
                        d = va[ok] - vb[ok]
                    mean, low, high, n, n_clusters = cluster_bootstrap_mean_ci(
                        d, None if clusters is None else clusters[ok], n_boot=n_boot, ci=ci, rng=rng
                    )
                    if clusters is None and n == 1:  # one spectrum: no interval
                        low = high = float("nan")
                    values = (float(va[ok].mean()) if n else np.nan, float(vb[ok].mean()) if n else np.nan)
                    rows.append((*key, m, r, metric, "mean", *values, mean, low, high, n, n_clusters,
                                 higher, _verdict(low, high, higher)))
    columns = [c for c in PAIRED_COLUMNS if c not in ("testset", "factor") or c in by]
    out = pd.DataFrame(rows, columns=columns)
    out[["n_spectra", "n_proteins"]] = out[["n_spectra", "n_proteins"]].astype("int64")
    out = out.sort_values([*by, "method", "reference", "metric"], key=_sort_key, kind="stable")
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# formatting


def _group_columns(summary: pd.DataFrame) -> list[str]:
    return [c for c in summary.columns if c not in SUMMARY_VALUE_COLUMNS]


def _format_number(value: float, digits: int) -> str:
    if pd.isna(value):
        return "n/a"
    return f"{value:.{digits}g}"


def _format_cell(mean: float, low: float, high: float, n: int, n_row: int, digits: int) -> str:
    if n == 0:
        return "n/a (n=0)"
    text = f"{_format_number(mean, digits)} [{_format_number(low, digits)}, {_format_number(high, digits)}]"
    # A metric undefined for some samples rests on fewer values than the row's other metrics.
    if n < n_row:
        text += f" (n={n})"
    return text


def to_wide(summary: pd.DataFrame, *, digits: int = 4, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per group, one column per metric, cells ``'mean [ci_low, ci_high]'``.

    Parameters
    ----------
    summary : DataFrame
        Output of :func:`summarize`.
    digits : int
        Significant digits of every number.
    metrics : sequence of str, optional
        Metrics (columns) to keep, in this order; by default all, in the summary's order.

    Returns
    -------
    DataFrame
        Indexed by the group columns (e.g. method x factor, in the summary's order). The first
        column ``n`` is the largest sample count over all metrics of the group; a cell whose
        metric used fewer samples (NaN skipped) ends with ``(n=k)``.
    """
    summary = _validate_summary(summary)
    digits = _validate_digits(digits)
    groups = _group_columns(summary)
    if not groups:
        raise ValueError("summary has no group columns (expected e.g. 'method' and 'factor')")
    if metrics is None:
        metrics = list(dict.fromkeys(summary["metric"]))
    else:
        metrics = list(metrics)
        unknown = sorted(set(metrics) - set(summary["metric"]))
        if unknown:
            raise ValueError(f"metrics {unknown} are not in the summary")
    records = []
    index = []
    for key, group in summary.groupby(groups, sort=False, dropna=False):
        # The row's n counts over all its metrics, so a table of peak metrics alone still shows
        # how many spectra the group has.
        n_row = int(group["n"].max())
        record = {"n": n_row}
        for row in group[group["metric"].isin(metrics)].itertuples(index=False):
            record[row.metric] = _format_cell(row.mean, row.ci_low, row.ci_high, int(row.n), n_row, digits)
        records.append(record)
        index.append(key)
    wide = pd.DataFrame.from_records(records, columns=["n", *metrics])
    wide.index = pd.MultiIndex.from_tuples(index, names=groups) if len(groups) > 1 else pd.Index(
        [k[0] for k in index], name=groups[0]
    )
    return wide.fillna("n/a")


def _markdown_cell(value) -> str:
    return str(value).replace("|", r"\|").replace("\n", " ")


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence], *, align_right: Sequence[bool]) -> str:
    rule = ["---:" if right else ":---" for right in align_right]
    lines = ["| " + " | ".join(_markdown_cell(h) for h in header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _format_group_value(column: str, value) -> str:
    if pd.isna(value):
        return "-"
    if column == "factor":
        return f"{float(value):.3f}"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def to_markdown(summary: pd.DataFrame, *, digits: int = 4, metrics: Sequence[str] | None = None) -> str:
    """The summary as a Markdown (pipe) table: a row per group, a column per metric.

    Parameters
    ----------
    summary : DataFrame
        Output of :func:`summarize`.
    digits : int
        Significant digits of every number.
    metrics : sequence of str, optional
        Metrics to show, in this order; by default all.

    Returns
    -------
    str
        Markdown table; cells read ``mean [ci_low, ci_high]`` (see :func:`to_wide`), factors are
        printed with three decimals.
    """
    wide = to_wide(summary, digits=digits, metrics=metrics)
    groups = list(wide.index.names)
    rows = []
    for key, record in zip(wide.index, wide.itertuples(index=False)):
        key = key if isinstance(key, tuple) else (key,)
        rows.append([*(_format_group_value(c, v) for c, v in zip(groups, key)), *record])
    header = [*groups, *wide.columns]
    align = [c in ("factor", "steps", "repeats") for c in groups] + [True] * len(wide.columns)
    return _markdown_table(header, rows, align_right=align)


# ---------------------------------------------------------------------------------------------
# files


def _table1_frame() -> pd.DataFrame:
    return pd.DataFrame(factors.table1())


def _table1_markdown() -> str:
    rows = [
        [r["high_mhz"], r["low_mhz"], f"{r['factor_value']:.3f}", r["factor"], r["class_index"],
         r["paper_printed"] or "-"]
        for r in factors.table1()
    ]
    header = ["high MHz", "low MHz", "factor", "exact", "class", "paper prints"]
    return (
        "# Table 1: spectrometer field pairs and upscaling factors\n\n"
        + _markdown_table(header, rows, align_right=[True] * 5 + [False])
        + f"\n{len(factors.FIELD_PAIRS)} field pairs, {len(factors.FACTORS)} unique factors "
        "(900/600 and 600/400 both give 3/2). 'paper prints' lists a value the paper prints "
        "where it differs from the exact ratio.\n"
    )


def _summary_markdown(summary: pd.DataFrame, *, digits: int, n_boot: int, ci: float, seed: int,
                      proteins: dict | None = None) -> str:
    unit = "proteins (cluster bootstrap: all spectra of each drawn protein)" if proteins else "spectra"
    parts = [
        "# Metrics per method and upscaling factor\n",
        f"Cells: mean [{ci:.0%} CI] over test spectra; percentile bootstrap resampling {unit} "
        f"({n_boot} resamples, seed {seed}). `peak_r2` is the R^2 pooled over all matched peaks of the row "
        "(one spectrum's R^2 is unbounded below). `n` is the number of test spectra of the row; a metric "
        "undefined for some spectra (NaN, e.g. `resolved_pairs` of a spectrum without close peak pairs, line "
        "widths of a spectrum without matched peaks) is averaged over fewer, marked `(n=k)`. Overlapping "
        "intervals of two methods do not mean they are alike, nor do separate ones prove a difference on the "
        "same spectra: which method is better is read from the paired differences (`paired.md`).\n",
    ]
    testsets = list(dict.fromkeys(summary["testset"])) if "testset" in summary.columns else [None]
    present = list(dict.fromkeys(summary["metric"]))
    sections = [
        ("Global metrics", [m for m in present if m in GLOBAL_METRICS]),
        ("Local (peak) metrics", [m for m in present if m in LOCAL_METRICS]),
        ("What a spectroscopist reads", [m for m in present if m in SPECTROSCOPY_METRICS]),
        ("Other metrics", [m for m in present if m not in METRICS and m not in SPECTROSCOPY_METRICS]),
    ]
    if proteins:
        counts = ", ".join(f"{k}: {v}" for k, v in proteins.items())
        parts.append(f"Test proteins (clusters) per test set: {counts}.\n")
    for testset in testsets:
        part = summary if testset is None else summary[summary["testset"] == testset].drop(columns="testset")
        for title, metrics in sections:
            if not metrics:
                continue
            heading = title if testset is None else f"{title}, test set '{testset}'"
            parts.append(f"## {heading}\n")
            parts.append(to_markdown(part, digits=digits, metrics=metrics))
    return "\n".join(parts)


def _paired_markdown(table: pd.DataFrame, *, digits: int, n_boot: int, ci: float, seed: int) -> str:
    parts = [
        "# Paired differences: each learned method minus each reference\n",
        f"Per test set and factor, the mean over the same test spectra of (method - reference) "
        f"[{ci:.0%} CI, cluster bootstrap over proteins, {n_boot} resamples, seed {seed}]; `peak_r2`: "
        "pooled R^2 of the method minus that of the reference. A method is called better or worse "
        "only where the interval excludes zero; otherwise there is no difference these test "
        "proteins can show.\n",
    ]
    if table.empty:
        return "\n".join(parts + ["No pair of a learned method and a reference was scored.\n"])
    counts = table.groupby(["method", "reference", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=list(VERDICTS), fill_value=0)
    header = ["method", "reference", *VERDICTS]
    rows = [[m, r, *(int(v) for v in row)] for (m, r), row in zip(counts.index, counts.to_numpy())]
    parts.append("## Verdicts over all (test set, factor, metric)\n")
    parts.append(_markdown_table(header, rows, align_right=[False, False] + [True] * len(VERDICTS)))
    groups = [c for c in ("testset", "factor") if c in table.columns]
    header = [*groups, "method", "reference", "metric", "difference [CI]", "proteins", "verdict"]
    rows = []
    for row in table.itertuples(index=False):
        record = row._asdict()
        cell = (f"{_format_number(record['difference'], digits)} [{_format_number(record['ci_low'], digits)}, "
                f"{_format_number(record['ci_high'], digits)}]")
        rows.append([*(_format_group_value(c, record[c]) for c in groups), record["method"], record["reference"],
                     record["metric"], cell, record["n_proteins"], record["verdict"]])
    parts.append("## All differences\n")
    parts.append(_markdown_table(header, rows, align_right=[c == "factor" for c in groups]
                                 + [False, False, False, True, True, False]))
    return "\n".join(parts)


def write_tables(
    df_metrics,
    out_dir,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    digits: int = 4,
    learned: Sequence[str] = LEARNED_METHODS,
) -> list[Path]:
    """Write the metric summaries, the paired differences and Table 1, each file atomically.

    Groups are the columns of :data:`GROUP_COLUMNS` present in the metrics table
    (``testset``, ``method``, ``factor``, and ``steps``/``repeats`` for a sampler sweep).

    Parameters
    ----------
    df_metrics : DataFrame or path-like
        Metrics table (or the path of its CSV file); needs ``method``, ``factor`` and at least
        one metric column; ``sample`` for the paired differences.
    out_dir : path-like
        Directory for the files; created if missing.
    n_boot, ci, seed : int, float, int
        Bootstrap settings, see :func:`summarize`.
    digits : int
        Significant digits in the Markdown tables (the CSV keeps full precision).
    learned : sequence of str
        Learned methods; every other method is a reference of :func:`paired`.

    Returns
    -------
    list of Path
        ``summary.csv`` (long format of :func:`summarize`), ``summary.md``, ``table1.csv``,
        ``table1.md``, ``paired.csv`` (:func:`paired`), ``paired.md``, in this order.
    """
    if isinstance(df_metrics, (str, Path)):
        path = Path(df_metrics)
        if not path.is_file():
            raise ValueError(f"df_metrics: metrics table {str(path)!r} does not exist")
        df_metrics = pd.read_csv(path)
    df_metrics = _validate_frame("df_metrics", df_metrics)
    _validate_columns("df_metrics", df_metrics, ("method", "factor"), what="required")
    if not isinstance(out_dir, (str, Path)):
        raise TypeError(f"out_dir must be a str or Path, got {type(out_dir).__name__}")
    digits = _validate_digits(digits)
    out_dir = Path(out_dir)

    by = tuple(c for c in GROUP_COLUMNS if c in df_metrics.columns)
    summary = summarize(df_metrics, n_boot=n_boot, ci=ci, seed=seed, by=by)
    proteins = None
    if "protein" in df_metrics.columns:
        key = df_metrics["testset"] if "testset" in df_metrics.columns else pd.Series("all", index=df_metrics.index)
        proteins = {str(k): int(v) for k, v in df_metrics.groupby(key)["protein"].nunique().items()}
    if "sample" in df_metrics.columns:
        differences = paired(df_metrics, learned=learned, n_boot=n_boot, ci=ci, seed=seed)
    else:
        differences = pd.DataFrame(columns=list(PAIRED_COLUMNS))

    names = ("summary.csv", "summary.md", "table1.csv", "table1.md", "paired.csv", "paired.md")
    paths = [out_dir / name for name in names]
    with atomic_path(paths[0]) as tmp:
        summary.to_csv(tmp, index=False)
    write_text(paths[1], _summary_markdown(summary, digits=digits, n_boot=n_boot, ci=ci, seed=seed, proteins=proteins))
    with atomic_path(paths[2]) as tmp:
        _table1_frame().to_csv(tmp, index=False)
    write_text(paths[3], _table1_markdown())
    with atomic_path(paths[4]) as tmp:
        differences.to_csv(tmp, index=False)
    write_text(paths[5], _paired_markdown(differences, digits=digits, n_boot=n_boot, ci=ci, seed=seed))
    return paths


def write_evaluation(
    df_metrics,
    out_dir,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    learned: Sequence[str] = LEARNED_METHODS,
    tracking=None,
    fallback_dir=None,
    params: dict | None = None,
) -> tuple[list[Path], str | None]:
    """:func:`write_tables`, then log the evaluation to MLflow (:func:`mssr.tracking.log_evaluation`).

    The tables are written first and tracking never raises, so a tracking failure cannot lose
    them.

    Parameters
    ----------
    df_metrics, out_dir, n_boot, ci, seed, learned
        As in :func:`write_tables`.
    tracking : mssr.tracking.TrackingConfig, optional
        Experiment and URI; None: no tracking.
    fallback_dir : path, optional
        Home of the fallback store and JSON-lines record; default ``out_dir``.
    params : dict, optional
        Evaluation settings to log as params (e.g. the ``metrics`` config section).

    Returns
    -------
    paths : list of Path
        The files of :func:`write_tables`.
    run_id : str or None
        The evaluation's MLflow run id (None without tracking or if tracking failed).
    """
    if isinstance(df_metrics, (str, Path)):
        path = Path(df_metrics)
        if not path.is_file():
            raise ValueError(f"df_metrics: metrics table {str(path)!r} does not exist")
        df_metrics = pd.read_csv(path)
    paths = write_tables(df_metrics, out_dir, n_boot=n_boot, ci=ci, seed=seed, learned=learned)
    if tracking is None:
        return paths, None
    from mssr import tracking as _tracking

    run_id = _tracking.log_evaluation(
        pd.read_csv(paths[0]),
        metrics_table=df_metrics,
        artifacts=paths,
        params={**(params or {}), "bootstrap": n_boot, "ci": ci, "seed": seed, "learned": list(learned)},
        experiment=tracking.experiment,
        uri=tracking.uri,
        fallback_dir=Path(fallback_dir) if fallback_dir is not None else Path(out_dir),
        run_name=tracking.run_name or "evaluation",
    )
    return paths, run_id
