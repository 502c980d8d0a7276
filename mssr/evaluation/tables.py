"""Aggregate the per-sample metrics table into per-factor summaries with bootstrap CIs.

The metrics table has one row per (method, factor, sample) and one column per metric (see
:data:`METRICS`). :func:`summarize` turns it into a long table with one row per
(group..., metric): the mean over samples, a percentile-bootstrap confidence interval of that
mean and the number of samples it used. Metrics that are undefined for a sample (NaN, e.g. a peak
metric of a spectrum without peaks) are skipped, and ``n`` says how many values remained.

:func:`write_tables` writes the summaries and the recomputed Table 1 as CSV and Markdown.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mssr import factors
from mssr.atomic import atomic_path, write_text
from mssr.evaluation.metrics import GLOBAL_METRICS, LOCAL_METRICS

METRICS: tuple[str, ...] = GLOBAL_METRICS + LOCAL_METRICS
"""The nine metrics, in the order tables list them."""

METHOD_ORDER: tuple[str, ...] = ("mssr", "baseline", "identity", "richardson_lucy", "wiener")
"""Order in which methods are listed; other methods follow alphabetically."""

GROUP_COLUMNS: tuple[str, ...] = ("testset", "method", "factor", "steps", "repeats")
"""Columns of a metrics table that identify a group, where present (in this order)."""

SUMMARY_VALUE_COLUMNS: tuple[str, ...] = ("metric", "mean", "ci_low", "ci_high", "n")
"""Columns :func:`summarize` adds after the group columns."""


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
        metrics = tuple(m for m in METRICS if m in df.columns)
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
    _validate_columns("summary", summary, SUMMARY_VALUE_COLUMNS, what="summary")
    return summary


def _validate_digits(digits) -> int:
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)):
        raise TypeError(f"digits must be an int, got {type(digits).__name__}")
    if not 1 <= digits <= 15:
        raise ValueError(f"digits must be in 1..15, got {digits}")
    return int(digits)


# ---------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_mean_ci(values, *, n_boot: int = 1000, ci: float = 0.95, rng=None) -> tuple[float, float, float, int]:
    """Mean of ``values`` and its percentile-bootstrap confidence interval, NaN skipped.

    All ``n_boot`` resamples are drawn at once as an ``(n_boot, n)`` index array, so memory
    grows as ``8 * n_boot * n`` bytes (80 MB for 1000 resamples of 10,000 samples).

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
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    finite = values[~np.isnan(values)]
    n = finite.size
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(finite.mean())
    if n == 1:
        return mean, mean, mean, 1
    rng = np.random.default_rng(rng)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot_means = finite[idx].mean(axis=1)
    alpha = (1.0 - ci) / 2.0
    low, high = np.quantile(boot_means, [alpha, 1.0 - alpha])
    return mean, float(low), float(high), n


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
    if column.name == "method":
        ranks = {m: i for i, m in enumerate(sorted(column.unique(), key=_method_rank))}
        return column.map(ranks)
    if column.name == "metric":
        known = {m: i for i, m in enumerate(METRICS)}
        others = sorted(set(column.unique()) - set(known))
        ranks = {**known, **{m: len(METRICS) + i for i, m in enumerate(others)}}
        return column.map(ranks)
    return column


def summarize(
    df: pd.DataFrame,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    by: Sequence[str] = ("method", "factor"),
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-group mean of every metric with a percentile-bootstrap confidence interval.

    Parameters
    ----------
    df : DataFrame
        Metrics table, one row per (method, factor, sample), one numeric column per metric.
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
        Metric columns to summarize; by default those of :data:`METRICS` present in ``df``.

    Returns
    -------
    DataFrame
        Long format: the ``by`` columns, then ``metric``, ``mean``, ``ci_low``, ``ci_high`` and
        ``n`` (finite values used; NaN values are skipped). Sorted by group (methods in
        :data:`METHOD_ORDER`, other columns ascending), then metric in :data:`METRICS` order.

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

    rows = []
    for key, group in df.groupby(list(by), sort=False, dropna=False):
        for metric in metrics:
            mean, low, high, n = bootstrap_mean_ci(
                group[metric].to_numpy(dtype=float), n_boot=n_boot, ci=ci, rng=_group_rng(seed, key, metric)
            )
            rows.append((*key, metric, mean, low, high, n))
    columns = [*by, *SUMMARY_VALUE_COLUMNS]
    summary = pd.DataFrame(rows, columns=columns)
    summary["n"] = summary["n"].astype("int64")
    summary = summary.sort_values([*by, "metric"], key=_sort_key, kind="stable", na_position="last")
    return summary.reset_index(drop=True)


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


def _summary_markdown(summary: pd.DataFrame, *, digits: int, n_boot: int, ci: float, seed: int) -> str:
    parts = [
        "# Metrics per method and upscaling factor\n",
        f"Cells: mean [{ci:.0%} CI] over test spectra; percentile bootstrap of the mean "
        f"({n_boot} resamples, seed {seed}). `n` is the number of test spectra of the row; a metric "
        "undefined for some spectra (NaN, e.g. peak metrics of a spectrum without peaks) is averaged "
        "over fewer, marked `(n=k)`.\n",
    ]
    testsets = list(dict.fromkeys(summary["testset"])) if "testset" in summary.columns else [None]
    present = list(dict.fromkeys(summary["metric"]))
    sections = [
        ("Global metrics", [m for m in present if m in GLOBAL_METRICS]),
        ("Local (peak) metrics", [m for m in present if m in LOCAL_METRICS]),
        ("Other metrics", [m for m in present if m not in METRICS]),
    ]
    for testset in testsets:
        part = summary if testset is None else summary[summary["testset"] == testset].drop(columns="testset")
        for title, metrics in sections:
            if not metrics:
                continue
            heading = title if testset is None else f"{title}, test set '{testset}'"
            parts.append(f"## {heading}\n")
            parts.append(to_markdown(part, digits=digits, metrics=metrics))
    return "\n".join(parts)


def write_tables(
    df_metrics,
    out_dir,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    digits: int = 4,
) -> list[Path]:
    """Write the metric summaries and Table 1 as CSV and Markdown, each file atomically.

    Groups are the columns of :data:`GROUP_COLUMNS` present in the metrics table
    (``testset``, ``method``, ``factor``, and ``steps``/``repeats`` for a sampler sweep).

    Parameters
    ----------
    df_metrics : DataFrame or path-like
        Metrics table (or the path of its CSV file); needs ``method``, ``factor`` and at least
        one metric column.
    out_dir : path-like
        Directory for the files; created if missing.
    n_boot, ci, seed : int, float, int
        Bootstrap settings, see :func:`summarize`.
    digits : int
        Significant digits in the Markdown tables (the CSV keeps full precision).

    Returns
    -------
    list of Path
        ``summary.csv`` (long format of :func:`summarize`), ``summary.md``, ``table1.csv``,
        ``table1.md``, in this order.
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

    paths = [out_dir / "summary.csv", out_dir / "summary.md", out_dir / "table1.csv", out_dir / "table1.md"]
    with atomic_path(paths[0]) as tmp:
        summary.to_csv(tmp, index=False)
    write_text(paths[1], _summary_markdown(summary, digits=digits, n_boot=n_boot, ci=ci, seed=seed))
    with atomic_path(paths[2]) as tmp:
        _table1_frame().to_csv(tmp, index=False)
    write_text(paths[3], _table1_markdown())
    return paths
