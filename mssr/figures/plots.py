"""The paper's figures as PNG files: example spectra, metrics versus factor, sampler sweep.

Conventions (NMR_NOTES.md, "Plotting conventions"): the directly detected 1H axis (array axis 1)
is horizontal, the indirect axis (array axis 0) vertical; both ppm axes run from high to low away
from the lower-left corner (``set_xlim(hi, lo)``, ``set_ylim(hi, lo)``), so the lowest shifts meet
in the upper right as in every NMR program. Spectra are drawn as contours with geometric levels
that start a few robust noise SDs above zero (:func:`contour_levels`); negative contours get their
own colour.

A ppm pair ``(hi, lo)`` always gives the shifts of the *centres* of the first and last pixel
(as :attr:`mssr.spectrum.Axis.ppm_limits` and nmrglue's ``ppm_limits()`` do); pixel 0 is the
highest ppm.

Figures are built as :class:`matplotlib.figure.Figure` objects without pyplot, rendered by Agg
when saved, so no GUI backend is touched and no figure stays registered (nothing needs closing).
Every public ``plot_*`` function writes one PNG atomically and returns its path; the matching
private ``_figure_*`` function returns the figure unsaved, for inspection.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mssr import _validate
from mssr.atomic import atomic_path
from mssr.spectrum import robust_noise_sd  # noqa: F401  (public here too: figures use it)
from mssr.evaluation.tables import METHOD_ORDER, summarize

POSITIVE_COLOR = "#1f3a93"
"""Colour of positive contours (dark blue)."""

NEGATIVE_COLOR = "#c0392b"
"""Colour of negative contours (red)."""

METHOD_COLORS = {
    "mssr": "#d62728",
    "baseline": "#1f77b4",
    "identity": "#7f7f7f",
    "richardson_lucy": "#2ca02c",
    "wiener": "#9467bd",
}
"""Fixed colour per method, so that every figure uses the same one."""

_EXTRA_COLORS = ("#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939")

METRIC_LABELS = {
    "mse": "MSE",
    "r2": "$R^2$",
    "ssim": "SSIM",
    "hallucination_ratio": "hallucination ratio",
    "missed_peak_ratio": "missed peak ratio",
    "peak_mse": "peak MSE",
    "peak_r2": "peak $R^2$",
    "peak_intensity_diff": "peak intensity difference",
    "peak_shift_diff": "peak shift difference (fraction of threshold)",
}
"""Axis titles of the metrics."""

# 1.4826 * MAD estimates the SD of Gaussian noise (1 / Phi^-1(3/4)).

_DPI = 150


# ---------------------------------------------------------------------------------------------
# validation


def _validate_spectrum(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (indirect, direct), got shape {x.shape}")
    if min(x.shape) < 2:
        raise ValueError(f"{name} needs at least 2 points per axis, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _validate_ppm(name: str, ppm) -> tuple[float, float]:
    if isinstance(ppm, (str, bytes)) or not isinstance(ppm, Sequence) or len(ppm) != 2:
        raise TypeError(f"{name} must be a pair (hi, lo) of ppm values, got {ppm!r}")
    hi, lo = (float(v) for v in ppm)
    if not (math.isfinite(hi) and math.isfinite(lo)):
        raise ValueError(f"{name} must be finite, got {ppm!r}")
    if not hi > lo:
        raise ValueError(f"{name} must be (hi, lo) with hi > lo (pixel 0 is the highest ppm), got {ppm!r}")
    return hi, lo


def _validate_nuclei(nuclei) -> tuple[str, str]:
    if isinstance(nuclei, str) or not isinstance(nuclei, Sequence) or len(nuclei) != 2:
        raise TypeError(f"nuclei must be a pair (indirect, direct) such as ('15N', '1H'), got {nuclei!r}")
    if not all(isinstance(n, str) and n for n in nuclei):
        raise TypeError(f"nuclei must contain non-empty str, got {nuclei!r}")
    return nuclei[0], nuclei[1]


def png_path(out_path) -> Path:
    """``out_path`` as a Path, checked to name a PNG file (TypeError/ValueError naming ``out_path``)."""
    if not isinstance(out_path, (str, Path)):
        raise TypeError(f"out_path must be a str or Path, got {type(out_path).__name__}")
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".png":
        raise ValueError(f"out_path must end in .png, got {str(out_path)!r}")
    return out_path


def frame_with_columns(name: str, df, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` if it is a DataFrame holding ``columns``; TypeError/ValueError naming ``name`` and what is missing."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing}; it has {list(df.columns)}")
    return df


# ---------------------------------------------------------------------------------------------
# helpers


def save_figure(fig: Figure, out_path, dpi: int = _DPI) -> Path:
    """Write ``fig`` as a PNG to ``out_path`` atomically (a reader never sees half a file).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    out_path : str or Path
        PNG file (:func:`png_path`).
    dpi : int
        Resolution, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = png_path(out_path)
    dpi = _validate.positive_int("dpi", dpi)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return out_path


def _axis_label(nucleus: str) -> str:
    match = re.fullmatch(r"(\d+)([A-Z][a-z]?)", nucleus)
    if match:
        return rf"$^{{{match.group(1)}}}${match.group(2)} (ppm)"
    return f"{nucleus} (ppm)"


def _ppm_centres(ppm: tuple[float, float], size: int) -> np.ndarray:
    return np.linspace(ppm[0], ppm[1], size)


def ppm_edges(ppm: tuple[float, float], size: int) -> tuple[float, float]:
    """Outer edges (ppm) of ``size`` points whose centres run from ``ppm[0]`` to ``ppm[1]`` (for imshow extents)."""
    half = (ppm[0] - ppm[1]) / (size - 1) / 2
    return ppm[0] + half, ppm[1] - half


def _method_colors(methods: Sequence[str]) -> dict:
    unknown = [m for m in methods if m not in METHOD_COLORS]
    colors = {m: METHOD_COLORS[m] for m in methods if m in METHOD_COLORS}
    if len(unknown) <= len(_EXTRA_COLORS):
        colors.update(zip(unknown, _EXTRA_COLORS))
    else:
        # Many models (e.g. the 14 single-factor baselines): distinct shades of one colour map.
        cmap = matplotlib.colormaps["viridis"]
        colors.update((m, cmap(i / (len(unknown) - 1))) for i, m in enumerate(unknown))
    return colors


def _line_with_band(ax, rows: pd.DataFrame, x_col: str, *, color, label: str) -> None:
    """Plot ``mean`` versus ``x_col`` with the ``ci_low``..``ci_high`` band of summary rows."""
    x = rows[x_col].to_numpy(dtype=float)
    ax.plot(x, rows["mean"].to_numpy(dtype=float), marker="o", ms=3, lw=1.2, color=color, label=label)
    ax.fill_between(
        x, rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float), color=color, alpha=0.2, lw=0
    )


def set_nmr_axes(ax, ppm_x, ppm_y, nuclei, *, label_y: bool = True) -> None:
    """Limits (ppm, highest first) and nucleus labels of a spectrum's axes; ``nuclei`` is (indirect, direct)."""
    # NMR convention: shifts grow leftwards and downwards (origin of low ppm at the upper right).
    ax.set_xlim(ppm_x[0], ppm_x[1])
    ax.set_ylim(ppm_y[0], ppm_y[1])
    ax.set_xlabel(_axis_label(nuclei[1]))
    if label_y:
        ax.set_ylabel(_axis_label(nuclei[0]))


# ---------------------------------------------------------------------------------------------
# contours


def contour_levels(x, *, n_levels: int = 12, factor: float = 1.3, start_sd: float = 5.0) -> np.ndarray:
    """Positive geometric contour levels starting a few noise SDs above zero.

    ``levels[k] = start * factor**k`` with ``start = start_sd * robust_noise_sd(x)``; the
    negative levels are ``-levels``. When the noise SD is zero (a noise-free rendered spectrum
    with a flat baseline), the series is placed so that its top level is ``max|x| / factor``.

    Parameters
    ----------
    x : ndarray
        Spectrum intensities (any shape, finite).
    n_levels : int
        Number of positive levels.
    factor : float
        Ratio of consecutive levels, > 1 (1.2-1.4 is usual for protein spectra).
    start_sd : float
        Lowest level in units of the robust noise SD, > 0.

    Returns
    -------
    ndarray, shape (n_levels,)
        Increasing positive levels, in the dtype of ``x`` when it is floating (else float64).

    Raises
    ------
    ValueError
        If ``x`` is zero everywhere (no level can be placed).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    n_levels = _validate.positive_int("n_levels", n_levels)
    factor = _validate.positive("factor", factor)
    if factor <= 1.0:
        raise ValueError(f"factor must be > 1, got {factor}")
    start_sd = _validate.positive("start_sd", start_sd)
    noise_sd = robust_noise_sd(x)
    if noise_sd > 0:
        start = start_sd * noise_sd
    else:
        peak = float(np.max(np.abs(x)))
        if peak == 0:
            raise ValueError("x is zero everywhere: no contour level can be placed")
        start = peak / factor**n_levels
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return (start * factor ** np.arange(n_levels)).astype(dtype)


def draw_contours(ax, x: np.ndarray, levels: np.ndarray, ppm_x, ppm_y) -> None:
    """Positive (blue) and negative (red, the mirrored levels) contours of ``x`` on ppm axes ``(hi, lo)``."""
    xs = _ppm_centres(ppm_x, x.shape[1])
    ys = _ppm_centres(ppm_y, x.shape[0])
    data = np.asarray(x, dtype=float)
    # Levels outside the data range are dropped: matplotlib would otherwise warn and draw one
    # contour at the minimum.
    positive = np.asarray(levels, dtype=float)
    positive = positive[positive < data.max()]
    negative = -np.asarray(levels, dtype=float)[::-1]
    negative = negative[negative > data.min()]
    if positive.size:
        cs = ax.contour(xs, ys, data, levels=positive, colors=POSITIVE_COLOR, linewidths=0.6)
        cs.set_gid("positive")
    if negative.size:
        cs = ax.contour(xs, ys, data, levels=negative, colors=NEGATIVE_COLOR, linewidths=0.6)
        cs.set_gid("negative")


# ---------------------------------------------------------------------------------------------
# Fig. 3: example spectra


def _figure_spectra(
    panels, *, ppm_x, ppm_y, nuclei=("15N", "1H"), levels=None, title: str | None = None
) -> Figure:
    if not isinstance(panels, Sequence) or isinstance(panels, str) or not panels:
        raise TypeError("panels must be a non-empty list of (title, 2-D array) pairs")
    checked = []
    for i, panel in enumerate(panels):
        if not isinstance(panel, tuple) or len(panel) != 2 or not isinstance(panel[0], str):
            raise TypeError(f"panels[{i}] must be a (title, array) tuple, got {type(panel).__name__}")
        checked.append((panel[0], _validate_spectrum(f"panels[{i}] ({panel[0]!r})", panel[1])))
    ppm_x = _validate_ppm("ppm_x", ppm_x)
    ppm_y = _validate_ppm("ppm_y", ppm_y)
    nuclei = _validate_nuclei(nuclei)
    if levels is None:
        # One set of levels for all panels, from the first (reference) spectrum: a prediction
        # with less noise must not get lower contours than the spectrum it is compared with.
        levels = contour_levels(checked[0][1])
    else:
        levels = np.asarray(levels, dtype=float)
        if levels.ndim != 1 or levels.size == 0 or not np.all(levels > 0) or np.any(np.diff(levels) <= 0):
            raise ValueError("levels must be a non-empty increasing 1-D array of positive values")

    n = len(checked)
    fig = Figure(figsize=(3.0 * n + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, n, sharex=True, sharey=True, squeeze=False)[0]
    for i, (ax, (name, x)) in enumerate(zip(axes, checked)):
        draw_contours(ax, x, levels, ppm_x, ppm_y)
        set_nmr_axes(ax, ppm_x, ppm_y, nuclei, label_y=i == 0)
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    return fig


def plot_spectra(
    panels: list[tuple[str, np.ndarray]],
    *,
    ppm_x: tuple[float, float],
    ppm_y: tuple[float, float],
    nuclei: tuple[str, str] = ("15N", "1H"),
    out_path,
    levels=None,
    title: str | None = None,
    dpi: int = _DPI,
) -> Path:
    """Contour plots of spectra side by side (Fig. 3: original, low field, MSSR, baseline).

    Parameters
    ----------
    panels : list of (str, ndarray)
        Panel title and spectrum, shape (H, W) = (indirect, direct); all on the same ppm window.
    ppm_x : (float, float)
        Direct-axis (1H) shifts of the centres of the first and last column, ppm, ``hi > lo``.
    ppm_y : (float, float)
        Indirect-axis shifts of the centres of the first and last row, ppm, ``hi > lo``.
    nuclei : (str, str)
        Nuclei of the (indirect, direct) axes, e.g. ``('15N', '1H')``.
    out_path : str or Path
        PNG file to write.
    levels : array_like, optional
        Positive contour levels shared by all panels; by default :func:`contour_levels` of the
        first panel.
    title : str, optional
        Figure title.
    dpi : int
        Resolution of the PNG, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = png_path(out_path)
    dpi = _validate.positive_int("dpi", dpi)
    fig = _figure_spectra(panels, ppm_x=ppm_x, ppm_y=ppm_y, nuclei=nuclei, levels=levels, title=title)
    return save_figure(fig, out_path, dpi)


# ---------------------------------------------------------------------------------------------
# Figs. 4 and 5: metrics versus factor


def _single_valued_groups(summary: pd.DataFrame, used: Sequence[str], name: str) -> None:
    extra = [c for c in summary.columns if c not in (*used, "metric", "mean", "ci_low", "ci_high", "n")]
    mixed = [c for c in extra if summary[c].nunique(dropna=False) > 1]
    if mixed:
        raise ValueError(
            f"{name} mixes several values of {mixed}; select one (e.g. summary[summary.testset == 'blur']) first"
        )


def figure_metrics_vs_factor(summary, metrics, *, methods=None) -> Figure:
    """The figure of :func:`plot_metrics_vs_factor`, not yet written (callers may annotate it)."""
    summary = frame_with_columns("summary", summary, ("method", "factor", "metric", "mean", "ci_low", "ci_high"))
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise TypeError(f"metrics must be a non-empty list of metric names, got {metrics!r}")
    missing = [m for m in metrics if m not in set(summary["metric"])]
    if missing:
        raise ValueError(f"metrics {missing} are not in the summary")
    present = list(dict.fromkeys(summary["method"]))
    if methods is None:
        methods = sorted(present, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))
    else:
        if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
            raise TypeError(f"methods must be a non-empty list of method names, got {methods!r}")
        unknown = [m for m in methods if m not in present]
        if unknown:
            raise ValueError(f"methods {unknown} are not in the summary (it has {present})")
    _single_valued_groups(summary, ("method", "factor"), "summary")
    colors = _method_colors(methods)

    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        rows = summary[summary["metric"] == metric]
        for method in methods:
            d = rows[rows["method"] == method].sort_values("factor")
            if d.empty:
                continue
            _line_with_band(ax, d, "factor", color=colors[method], label=method)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel("upscaling factor f = high / low MHz")
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 5), frameon=False)
    return fig


def plot_metrics_vs_factor(
    summary: pd.DataFrame, metrics: Sequence[str], out_path, *, methods=None, dpi: int = _DPI
) -> Path:
    """Mean of each metric versus upscaling factor, a line per method with its CI band (Figs. 4, 5).

    Parameters
    ----------
    summary : DataFrame
        Output of :func:`mssr.evaluation.tables.summarize` grouped by ``method`` and ``factor``; any other
        group column (e.g. ``testset``) must hold a single value.
    metrics : sequence of str
        One subplot per metric, e.g. ``GLOBAL_METRICS`` (Fig. 4) or ``LOCAL_METRICS`` (Fig. 5).
    out_path : str or Path
        PNG file to write.
    methods : sequence of str, optional
        Methods to draw, in legend order; by default all, MSSR first.
    dpi : int
        Resolution of the PNG, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = png_path(out_path)
    dpi = _validate.positive_int("dpi", dpi)
    return save_figure(figure_metrics_vs_factor(summary, metrics, methods=methods), out_path, dpi)


# ---------------------------------------------------------------------------------------------
# Fig. 6: sampling steps x repeats


def _figure_steps_sweep(df, *, metric: str = "mse", n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> Figure:
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a str, got {type(metric).__name__}")
    df = frame_with_columns("df", df, ("steps", "repeats", metric))
    if "method" in df.columns and df["method"].nunique() > 1:
        raise ValueError(f"df holds several methods {sorted(df['method'].unique())}; select one first")
    summary = summarize(df, n_boot=n_boot, ci=ci, seed=seed, by=("repeats", "steps"), metrics=[metric])
    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    ax = fig.subplots()
    repeats_values = list(dict.fromkeys(summary["repeats"]))
    for i, repeats in enumerate(repeats_values):
        d = summary[summary["repeats"] == repeats].sort_values("steps")
        color = _EXTRA_COLORS[i % len(_EXTRA_COLORS)]
        _line_with_band(ax, d, "steps", color=color, label=f"{int(repeats)} repeats")
    steps_all = summary["steps"].to_numpy(dtype=float)
    # Step counts usually double from one setting to the next; a log axis spaces them evenly.
    if steps_all.min() > 0 and steps_all.max() / steps_all.min() >= 10:
        ax.set_xscale("log")
    ax.set_xlabel("sampling steps")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)} vs sampling steps ({ci:.0%} CI)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig


def plot_steps_sweep(
    df: pd.DataFrame,
    out_path,
    *,
    metric: str = "mse",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    dpi: int = _DPI,
) -> Path:
    """A metric versus the number of sampling steps, a line per repeat count (Fig. 6).

    Parameters
    ----------
    df : DataFrame
        Per-sample rows of one method with columns ``steps``, ``repeats`` and ``metric``; rows
        of all factors and spectra are pooled per (repeats, steps).
    out_path : str or Path
        PNG file to write.
    metric : str
        Metric column to plot.
    n_boot, ci, seed : int, float, int
        Bootstrap settings of the CI bands (see :func:`mssr.evaluation.tables.summarize`).
    dpi : int
        Resolution of the PNG, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = png_path(out_path)
    dpi = _validate.positive_int("dpi", dpi)
    return save_figure(_figure_steps_sweep(df, metric=metric, n_boot=n_boot, ci=ci, seed=seed), out_path, dpi)


# ---------------------------------------------------------------------------------------------
# uncertainty


def _binned_calibration(std: np.ndarray, abs_err: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(std, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:
        return np.array([std.mean()]), np.array([abs_err.mean()])
    which = np.clip(np.searchsorted(edges, std, side="right") - 1, 0, edges.size - 2)
    counts = np.bincount(which, minlength=edges.size - 1)
    keep = counts > 0
    mean_std = np.bincount(which, weights=std, minlength=edges.size - 1)[keep] / counts[keep]
    mean_err = np.bincount(which, weights=abs_err, minlength=edges.size - 1)[keep] / counts[keep]
    return mean_std, mean_err


def _figure_uncertainty(mean, std, truth, *, ppm_x, ppm_y, nuclei=("15N", "1H"), n_bins: int = 10) -> Figure:
    mean = _validate_spectrum("mean", mean)
    std = _validate_spectrum("std", std)
    truth = _validate_spectrum("truth", truth)
    if not (mean.shape == std.shape == truth.shape):
        raise ValueError(f"mean {mean.shape}, std {std.shape} and truth {truth.shape} must have one shape")
    if np.any(std < 0):
        raise ValueError("std must be >= 0 everywhere")
    ppm_x = _validate_ppm("ppm_x", ppm_x)
    ppm_y = _validate_ppm("ppm_y", ppm_y)
    nuclei = _validate_nuclei(nuclei)
    n_bins = _validate.positive_int("n_bins", n_bins)

    std64 = np.asarray(std, dtype=float)
    abs_err = np.abs(np.asarray(mean, dtype=float) - np.asarray(truth, dtype=float))
    fig = Figure(figsize=(14.0, 3.5), layout="constrained")
    ax_pred, ax_std, ax_err, ax_cal = fig.subplots(1, 4)

    draw_contours(ax_pred, mean, contour_levels(truth), ppm_x, ppm_y)
    set_nmr_axes(ax_pred, ppm_x, ppm_y, nuclei)
    ax_pred.set_title("prediction (mean of repeats)")

    x_edges = ppm_edges(ppm_x, mean.shape[1])
    y_edges = ppm_edges(ppm_y, mean.shape[0])
    # Row 0 (highest indirect ppm) sits at the 'top' extent value; set_ylim then flips the axis
    # to the NMR orientation, so data coordinates stay exact ppm.
    extent = (x_edges[0], x_edges[1], y_edges[1], y_edges[0])
    vmax = float(max(np.quantile(std64, 0.995), np.quantile(abs_err, 0.995))) or 1.0
    for ax, image, title in ((ax_std, std64, "per-pixel std of repeats"), (ax_err, abs_err, "|prediction - truth|")):
        im = ax.imshow(image, origin="upper", extent=extent, aspect="auto", cmap="magma", vmin=0.0, vmax=vmax,
                       interpolation="nearest")
        ax.set_xlim(x_edges[0], x_edges[1])
        ax.set_ylim(y_edges[0], y_edges[1])
        ax.set_xlabel(_axis_label(nuclei[1]))
        ax.set_ylabel(_axis_label(nuclei[0]))
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.85, label="intensity (normalized)")

    flat_std, flat_err = std64.ravel(), abs_err.ravel()
    binned_std, binned_err = _binned_calibration(flat_std, flat_err, n_bins)
    ax_cal.plot(binned_std, binned_err, marker="o", ms=4, color=METHOD_COLORS["mssr"], label="binned mean |error|")
    reference = np.linspace(0.0, max(float(flat_std.max()), 1e-12), 50)
    # For an unbiased Gaussian prediction E|error| = sqrt(2/pi) * std.
    ax_cal.plot(
        reference, np.sqrt(2.0 / np.pi) * reference, ls="--", color="0.4", label=r"calibrated: $\sqrt{2/\pi}\,\sigma$"
    )
    if flat_std.std() > 0 and flat_err.std() > 0:
        r = float(np.corrcoef(flat_std, flat_err)[0, 1])
        ax_cal.set_title(f"std vs |error|\nPearson r = {r:.2f}")
    else:
        ax_cal.set_title("std vs |error|")
    ax_cal.set_xlabel("per-pixel std")
    ax_cal.set_ylabel("mean |error|")
    ax_cal.grid(alpha=0.3)
    ax_cal.legend(frameon=False, fontsize="small")
    return fig


def plot_uncertainty(
    mean: np.ndarray,
    std: np.ndarray,
    truth: np.ndarray,
    *,
    ppm_x: tuple[float, float],
    ppm_y: tuple[float, float],
    nuclei: tuple[str, str] = ("15N", "1H"),
    out_path,
    n_bins: int = 10,
    dpi: int = _DPI,
) -> Path:
    """Prediction, per-pixel std over sampler repeats, |error|, and std versus |error|.

    Parameters
    ----------
    mean : ndarray, shape (H, W)
        Mean of the sampler repeats (the prediction).
    std : ndarray, shape (H, W)
        Per-pixel standard deviation over the repeats, >= 0.
    truth : ndarray, shape (H, W)
        High-field spectrum; its noise sets the contour levels of the prediction.
    ppm_x, ppm_y : (float, float)
        Shifts of the first and last pixel centres of the direct and indirect axes, ppm.
    nuclei : (str, str)
        Nuclei of the (indirect, direct) axes.
    out_path : str or Path
        PNG file to write.
    n_bins : int
        Number of std quantile bins of the calibration panel.
    dpi : int
        Resolution of the PNG, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = png_path(out_path)
    dpi = _validate.positive_int("dpi", dpi)
    fig = _figure_uncertainty(mean, std, truth, ppm_x=ppm_x, ppm_y=ppm_y, nuclei=nuclei, n_bins=n_bins)
    return save_figure(fig, out_path, dpi)


# ---------------------------------------------------------------------------------------------
# training curves


def _figure_loss_curves(history) -> Figure:
    if not isinstance(history, pd.DataFrame):
        raise TypeError(f"history must be a pandas DataFrame, got {type(history).__name__}")
    x_col = "step" if "step" in history.columns else "epoch" if "epoch" in history.columns else None
    if x_col is None:
        raise ValueError(f"history needs a 'step' or 'epoch' column; it has {list(history.columns)}")
    frame_with_columns("history", history, (x_col, "loss"))
    if history.empty:
        raise ValueError("history has no rows")
    loss_cols = [c for c in ("loss", "val_loss") if c in history.columns]
    models = list(dict.fromkeys(history["model"])) if "model" in history.columns else [None]
    colors = _method_colors([str(m) for m in models])

    fig = Figure(figsize=(4.6 * len(loss_cols), 3.6), layout="constrained")
    axes = fig.subplots(1, len(loss_cols), squeeze=False)[0]
    for ax, col in zip(axes, loss_cols):
        values = history[col].to_numpy(dtype=float)
        for model in models:
            d = history if model is None else history[history["model"] == model]
            d = d[[x_col, col]].dropna().sort_values(x_col)
            if d.empty:
                continue
            ax.plot(d[x_col].to_numpy(dtype=float), d[col].to_numpy(dtype=float), lw=1.0,
                    color=colors[str(model)], label="loss" if model is None else str(model))
        finite = values[np.isfinite(values)]
        # Diffusion losses fall over orders of magnitude early in training.
        if finite.size and finite.min() > 0:
            ax.set_yscale("log")
        ax.set_xlabel(x_col)
        ax.set_ylabel(col)
        ax.set_title("training loss" if col == "loss" else "validation loss")
        ax.grid(alpha=0.3)
    if models != [None]:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize="small")
    return fig


def plot_loss_curves(history: pd.DataFrame, out_path, *, dpi: int = _DPI) -> Path:
    """Training (and validation) loss versus step or epoch, a line per model.

    Parameters
    ----------
    history : DataFrame
        Columns ``step`` or ``epoch``, ``loss``, optionally ``val_loss`` (NaN where not
        evaluated) and ``model`` (one line per model name).
    out_path : str or Path
        PNG file to write.
    dpi : int
        Resolution of the PNG, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = png_path(out_path)
    dpi = _validate.positive_int("dpi", dpi)
    return save_figure(_figure_loss_curves(history), out_path, dpi)
