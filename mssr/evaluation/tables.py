"""Aggregate the per-spectrum metrics table: per-factor summaries and paired differences.

The metrics table has one row per (test set, method, factor, spectrum) and one column per
metric (see :data:`METRICS`), with the spectrum's ``protein``. Spectra of one protein are not
independent (projections and planes of one protein share its peaks), so every confidence
interval here is a **cluster bootstrap over proteins**: resample the proteins with replacement,
take all spectra of each drawn protein, recompute the statistic; the percentile interval of the
resampled statistics is the CI (:mod:`mssr.evaluation.bootstrap`). With a single protein no
interval can be given (NaN). A table without a ``protein`` column falls back to spectra as
independent units.

:func:`summarize` gives one row per (group..., metric): the group's value (the mean over
spectra; for ``peak_r2`` the R^2 pooled over all matched peaks of the group,
:func:`mssr.evaluation.bootstrap.pooled_peak_r2`, because the per-spectrum value is unbounded
below), its CI and the numbers of spectra and proteins used. Metrics that are undefined for a
spectrum (NaN, e.g. ``resolved_pairs`` of a spectrum without close pairs) are skipped, and
``n`` says how many values remained.

:func:`paired` compares methods on the same spectra: for each learned method and each reference
(identity and the classical methods), per test set and factor, the mean over spectra of the
difference (learned minus reference), with its cluster-bootstrap CI and a verdict that says
"better" or "worse" only where the CI excludes zero.

:func:`write_tables` writes the summaries, the paired differences and the recomputed Table 1
as CSV and Markdown.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mssr import factors
from mssr.atomic import atomic_path, write_text
from mssr.evaluation.bootstrap import (
    POOL_COLUMNS,
    cluster_bootstrap,
    cluster_bootstrap_mean_ci,
    cluster_sums,
    pooled_peak_r2,
    validate_ci,
    validate_n_boot,
)
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
# groups and order


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
        sums = cluster_sums(group[list(POOL_COLUMNS)].to_numpy(dtype=float), clusters)
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
        :data:`SUMMARY_DETAIL_COLUMNS`). ``peak_r2`` is pooled over the group's matched peaks
        (``statistic == "pooled"``) where ``df`` has the
        :data:`mssr.evaluation.bootstrap.POOL_COLUMNS`, else the mean of the per-spectrum
        values. Sorted by group (methods in :data:`METHOD_ORDER`, other columns ascending), then
        metric in :data:`SUMMARY_METRICS` order.

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
    n_boot = validate_n_boot(n_boot)
    ci = validate_ci(ci)
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
    R^2 of ``r``, :func:`mssr.evaluation.bootstrap.pooled_peak_r2`), with a percentile CI from
    a cluster bootstrap that draws the same proteins for both methods. A metric undefined for a spectrum (NaN in either
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
    n_boot, ci, seed = validate_n_boot(n_boot), validate_ci(ci), _validate_seed(seed)
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
                        sums = cluster_sums(both, clusters)
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


def budget_line(budgets: dict | None, unit: str) -> str:
    """One header sentence on the learned models' training budgets: the same, or that they differ.

    Parameters
    ----------
    budgets : dict
        ``{model: budget}``, a number or a ``(low, high)`` range over several models of that name
        (the 14 baselines); None or empty says nothing.
    unit : str
        What the numbers count ('optimizer steps', 'epochs').
    """
    if not budgets:
        return ""
    ranges = {name: (v, v) if not isinstance(v, (tuple, list)) else tuple(v) for name, v in budgets.items()}
    values = {x for lo_hi in ranges.values() for x in lo_hi}
    if len(values) == 1:
        return f"Every learned model was trained for {_format_count(values.pop())} {unit} (the same budget)."
    parts = [f"{name}: {_format_count(lo)}" + (f"-{_format_count(hi)}" if hi != lo else "")
             for name, (lo, hi) in ranges.items()]
    return f"**The learned models did not get the same training budget** ({unit}; {'; '.join(parts)})."


def _format_count(value) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"


def _summary_markdown(summary: pd.DataFrame, *, digits: int, n_boot: int, ci: float, seed: int,
                      proteins: dict | None = None, budget: str = "") -> str:
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
    if budget:
        parts.insert(1, budget + "\n")
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


def _paired_markdown(table: pd.DataFrame, *, digits: int, n_boot: int, ci: float, seed: int,
                     budget: str = "") -> str:
    parts = [
        "# Paired differences: each learned method minus each reference\n",
        *([budget + "\n"] if budget else []),
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
    budgets: dict | None = None,
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
    budgets : dict, optional
        Training epochs per learned method (:func:`budget_line`), stated in the Markdown headers.

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
    budget = budget_line(budgets, "epochs")
    write_text(paths[1], _summary_markdown(summary, digits=digits, n_boot=n_boot, ci=ci, seed=seed, proteins=proteins,
                                           budget=budget))
    with atomic_path(paths[2]) as tmp:
        _table1_frame().to_csv(tmp, index=False)
    write_text(paths[3], _table1_markdown())
    with atomic_path(paths[4]) as tmp:
        differences.to_csv(tmp, index=False)
    write_text(paths[5], _paired_markdown(differences, digits=digits, n_boot=n_boot, ci=ci, seed=seed, budget=budget))
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
    budgets: dict | None = None,
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
    budgets : dict, optional
        As in :func:`write_tables`.

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
    paths = write_tables(df_metrics, out_dir, n_boot=n_boot, ci=ci, seed=seed, learned=learned, budgets=budgets)
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
