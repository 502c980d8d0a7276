"""A continuous-factor MSSR on factors it never saw (held out of Table 1, or off it).

The paper's MSSR embeds the upscaling factor ``f = high MHz / low MHz`` as one of 14 classes, so it
can only be asked for the field pairs of Table 1. The continuous variant
(:class:`mssr.model.network.ModelConfig` ``conditioning='continuous'``) embeds ``1000 * ln f`` like a
timestep and accepts any factor >= 1. :func:`train_continuous` trains it on the run's factors
minus a configured held-out list; :func:`heldout_table` then scores, on the same stored inputs:

- at every held-out Table-1 factor: the continuous model (never trained on it), the class model
  MSSR, that factor's single-factor baseline, identity (the low-field input) and Richardson-Lucy
  deconvolution with the known kernel. The class model saw every factor, including the held-out
  ones (their embedding rows were trained), so it is an upper bound, not a peer: the question is
  how close the continuous model gets to it without having seen the factor;
- optionally, at trained factors (the neighbours of each held-out factor, or all of them): the
  continuous model alone, as its in-distribution reference;
- at off-table field pairs (e.g. 950/600 MHz, f = 1.583): only the continuous model, identity and
  Richardson-Lucy exist. Their low-field inputs are computed from the test split with the test
  set's own low-field model and seed (:func:`offtable_inputs`), exactly as the Table-1 inputs
  were (:func:`mssr.evaluation.testsets.build_blur`).

What is reasonable to ask for off the table: factors inside the trained range (interpolation,
e.g. 950/600 = 1.583) and a little beyond it (1000/400 = 2.5). A benchtop 80 MHz -> 400 MHz pair
(f = 5.0) embeds at ``1000 ln 5 = 1609``, twice the largest trained value (``1000 ln 2.25 = 811``),
where the embedding network has never been; and under the paper's low-field model its blur is
sigma = 1/f = 0.2 px, almost none, so the test would measure denoising, while a real 80 MHz protein
spectrum differs from a 400 MHz one by strong coupling and ~11x less sensitivity, which no blur
models. Such factors are accepted but flagged ``extrapolated`` in the table and logged.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from mssr import _validate
from mssr import degrade as _degrade
from mssr.config import degrade_params, set_threads, train_from_config
from mssr.data.store import read_samples
from mssr.evaluation import timed
from mssr.evaluation.metrics import METRIC_NAMES
from mssr.evaluation.scoring import metric_options
from mssr.evaluation.tables import METRICS, summarize
from mssr.evaluation.testsets import read_testset
from mssr.factors import FACTOR_LABELS, FACTORS, as_factor, factor_label
from mssr.figures.plots import figure_metrics_vs_factor, frame_with_columns, png_path, save_figure
from mssr.model.sample import Enhancer, SampleConfig

log = logging.getLogger(__name__)


Reference = Literal["none", "neighbours", "all"]
"""Trained factors the continuous model is also scored on: none, the nearest trained factor below
and above each held-out one, or all."""

CONTINUOUS_METHOD = "mssr_continuous"
"""Method name of the continuous-factor MSSR in the tables."""

CLASSICAL_METHODS: tuple[str, ...] = ("identity", "richardson_lucy")
"""Non-learned methods scored at every held-out and off-table factor."""

HELDOUT_METHODS: tuple[str, ...] = (CONTINUOUS_METHOD, "mssr", "baseline", *CLASSICAL_METHODS)
"""Methods of the held-out table, in the order they are listed."""

HELDOUT_COLUMNS: tuple[str, ...] = (
    "method", "factor", "table1", "heldout", "extrapolated", "sample", *METRIC_NAMES, "seconds",
    "peak_shift_ppm", "protein", "experiment",
)
"""Columns of the held-out table (:func:`heldout_table`)."""

# Factors closer than this are the same factor (as in mssr.factors).
_FACTOR_TOL = 5e-4


# ---------------------------------------------------------------------------------------------
# validation


def _validate_labels(name: str, labels) -> list[str]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"{name} must be a list of Table-1 factor labels such as ['1.286'], got {labels!r}")
    try:
        out = [factor_label(as_factor(f)) for f in labels]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists a factor twice: {list(labels)}")
    return out



def _validate_field_pair(i: int, pair) -> tuple[float, float]:
    name = f"continuous.off_table_mhz[{i}]"
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise TypeError(f"{name} must be a (high MHz, low MHz) pair, got {pair!r}")
    high, low = pair
    for value in (high, low):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
            raise TypeError(f"{name} must hold two finite numbers (1H MHz), got {pair!r}")
    if not float(high) > float(low) > 0:
        raise ValueError(f"{name} must be (high, low) with high > low > 0 MHz, got {pair!r}")
    return float(high), float(low)


# ---------------------------------------------------------------------------------------------
# factors


def continuous_training_factors(factors, heldout) -> list[str]:
    """Labels of the factors the continuous model trains on: the run's factors minus the held-out ones.

    Parameters
    ----------
    factors : sequence
        The run's Table-1 factors (values or 3-decimal labels), or ``'all'``.
    heldout : sequence
        Table-1 factors left out of training (``continuous.heldout``); each must be one of
        ``factors``, so that the test set has its inputs.

    Returns
    -------
    list of str
        3-decimal labels, ascending.

    Raises
    ------
    ValueError
        If a held-out factor is not one of the run's factors, or none is left to train on.

    Examples
    --------
    >>> continuous_training_factors(["1.250", "1.286", "1.333"], ["1.286"])
    ['1.250', '1.333']
    """
    run = list(FACTOR_LABELS) if factors == "all" else _validate_labels("factors", factors)
    held = _validate_labels("continuous.heldout", heldout)
    missing = [f for f in held if f not in run]
    if missing:
        raise ValueError(f"continuous.heldout {missing} are not among the run's factors {run}; "
                         "a held-out factor needs test-set inputs and a baseline")
    trained = sorted((f for f in run if f not in held), key=float)
    if not trained:
        raise ValueError(f"continuous.heldout {held} leaves no factor to train on")
    return trained


def offtable_factors(pairs) -> list[float]:
    """Upscaling factors of (high MHz, low MHz) field pairs outside Table 1, ascending, unique.

    Parameters
    ----------
    pairs : sequence of (float, float)
        1H spectrometer frequencies, MHz, high first (``continuous.off_table_mhz``).

    Returns
    -------
    list of float
        ``high / low`` of each pair (dimensionless), pairs giving the same factor counted once.

    Raises
    ------
    ValueError
        If a pair gives a Table-1 factor (within 5e-4): those are scored as held-out factors.

    Examples
    --------
    >>> [round(f, 4) for f in offtable_factors([(950, 600), (400, 80)])]
    [1.5833, 5.0]
    """
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"continuous.off_table_mhz must be a list of (high, low) MHz pairs, got {pairs!r}")
    factors: list[float] = []
    for i, pair in enumerate(pairs):
        high, low = _validate_field_pair(i, pair)
        f = high / low
        table = [t for t in FACTORS if abs(float(t) - f) < _FACTOR_TOL]
        if table:
            raise ValueError(f"continuous.off_table_mhz[{i}] = {high:g}/{low:g} MHz is the Table-1 factor "
                             f"{factor_label(table[0])}; list it in continuous.heldout instead")
        if not any(abs(f - g) < _FACTOR_TOL for g in factors):
            factors.append(f)
    return sorted(factors)


def reference_factors(run, trained, heldout, reference: Reference) -> list[str]:
    """Trained factors at which the continuous model is scored as its in-distribution reference.

    Parameters
    ----------
    run : sequence of str
        The test set's factor labels.
    trained : sequence of str
        Labels the continuous model was trained on.
    heldout : sequence of str
        Held-out labels.
    reference : {'none', 'neighbours', 'all'}
        ``'neighbours'``: for each held-out factor the nearest trained factor below and above it.

    Returns
    -------
    list of str
        Labels, ascending.

    Examples
    --------
    >>> reference_factors(["1.250", "1.286", "1.333", "1.400"], ["1.250", "1.333", "1.400"], ["1.286"],
    ...                   "neighbours")
    ['1.250', '1.333']
    """
    reference = _validate.choice("continuous.reference", reference, get_args(Reference))
    available = sorted((f for f in run if f in set(trained)), key=float)
    if reference == "none":
        return []
    if reference == "all":
        return available
    chosen = set()
    for h in heldout:
        below = [f for f in available if float(f) < float(h)]
        above = [f for f in available if float(f) > float(h)]
        chosen.update(([below[-1]] if below else []) + ([above[0]] if above else []))
    return sorted(chosen, key=float)


# ---------------------------------------------------------------------------------------------
# training


def continuous_config(cfg: Mapping, *, epochs: int | None = None) -> dict:
    """The pipeline config for the continuous model: ``model.conditioning`` set to ``'continuous'``
    and, when given, ``train.epochs`` replaced.

    Parameters
    ----------
    cfg : mapping
        The pipeline configuration (at least the sections :func:`mssr.config.train_from_config`
        reads: data, model, diffusion, train, degrade, tracking); not modified.
    epochs : int, optional
        Training epochs of the continuous model (``continuous.epochs``); None keeps ``train.epochs``.

    Returns
    -------
    dict
        A deep copy with those keys replaced.
    """
    cfg = _validate.mapping("cfg", cfg)
    out = copy.deepcopy(cfg)
    out["model"] = {**dict(cfg["model"]), "conditioning": "continuous"}
    if epochs is not None:
        out["train"] = {**dict(cfg["train"]), "epochs": _validate.positive_int("continuous.epochs", epochs)}
    return out


def train_continuous(cfg: Mapping, train_h5, val_h5, out_dir, *, factors, heldout, epochs: int | None = None,
                     store_json=None, threads: int | None = None) -> Path:
    """Train the continuous-factor MSSR on the run's factors minus the held-out ones.

    Parameters
    ----------
    cfg : mapping
        The pipeline configuration; every training setting is MSSR's (:func:`continuous_config`).
    train_h5, val_h5 : path
        Training and validation sets.
    out_dir : path
        Model folder (``model.safetensors``, ``config.json``, ``history.csv``).
    factors : sequence
        The run's factors.
    heldout : sequence
        Factors left out of training (``continuous.heldout``).
    epochs : int, optional
        Training epochs (``continuous.epochs``); None: ``train.epochs``.
    store_json : path, optional
        The tracking store record of the workflow.
    threads : int, optional
        CPU threads of torch.

    Returns
    -------
    Path
        ``out_dir``.
    """
    trained = continuous_training_factors(factors, heldout)
    log.info("continuous MSSR: training on %s, holding out %s", ", ".join(trained),
             ", ".join(_validate_labels("continuous.heldout", heldout)))
    return train_from_config(continuous_config(cfg, epochs=epochs), train_h5, val_h5, out_dir, factor=None,
                             factors=trained, store_json=store_json, threads=threads)


# ---------------------------------------------------------------------------------------------
# inputs


def offtable_inputs(test_h5, factors, *, degrade: Mapping) -> tuple[np.ndarray, np.ndarray, list]:
    """Low-field inputs of the test split at factors outside Table 1.

    Computed with :func:`mssr.degrade.precompute`, the configured low-field model and
    ``degrade.test_seed``, as :func:`mssr.evaluation.testsets.build_blur` computes the Table-1 inputs: a
    Table-1 factor given here reproduces the stored test-set inputs exactly.

    Parameters
    ----------
    test_h5 : path
        The test split (:mod:`mssr.data.store` sample set of high-field spectra).
    factors : sequence of float
        Upscaling factors (dimensionless, > 1).
    degrade : mapping
        The ``degrade`` config section.

    Returns
    -------
    x : ndarray, shape (N, S, S), float32
        High-field truths.
    x_lr : ndarray, shape (F, N, S, S), float32
        Low-field inputs, one plane per factor.
    headers : list of dict
        Spectrum headers of the N samples.
    """
    degrade = _validate.mapping("degrade", degrade)
    test = read_samples(_validate.path("test_h5", test_h5, exists=True))
    x_lr = _degrade.precompute(test.x, [float(f) for f in factors], model=degrade.get("model", "paper"),
                               seed=_test_seed(degrade), headers=test.headers,
                               **degrade_params(degrade))
    return test.x, x_lr.astype(np.float32, copy=False), test.headers


# ---------------------------------------------------------------------------------------------
# held-out factors


def _trained_labels(enhancer: Enhancer) -> list[str]:
    values = enhancer.extra.get("factors") or []
    return sorted({factor_label(as_factor(f)) for f in values}, key=float)


def _baseline_factor(enhancer: Enhancer) -> str:
    label = enhancer.extra.get("factor")
    trained = _trained_labels(enhancer)
    if label is None and len(trained) == 1:
        label = trained[0]
    if label is None or enhancer.predictor.conditioning != "none":
        raise ValueError(f"{enhancer.model_dir}: not a single-factor baseline (conditioning "
                         f"{enhancer.predictor.conditioning!r}, factors {trained})")
    return factor_label(as_factor(label))


def _test_seed(degrade: Mapping) -> int:
    # No default here: the seed of the test inputs is config.yaml's degrade.test_seed, nowhere else.
    if "test_seed" not in degrade:
        raise ValueError("degrade.test_seed is missing: the seed of the test set's low-field inputs")
    return _validate.integer("degrade.test_seed", degrade["test_seed"], 0)


def _check_testset_matches(testset_attrs: dict, degrade: dict, testset_h5) -> None:
    model = degrade.get("model", "paper")
    seed = _test_seed(degrade)
    if testset_attrs.get("testset") != "blur":
        raise ValueError(f"{testset_h5}: a 'blur' test set is needed, got {testset_attrs.get('testset')!r}")
    stored = (testset_attrs.get("degrade_model"), testset_attrs.get("seed"), testset_attrs.get("params") or {})
    configured = (model, seed, degrade_params(degrade))
    if stored != configured:
        raise ValueError(f"{testset_h5} was built with low-field model, seed and parameters {stored}, the degrade "
                         f"section says {configured}: the off-table inputs would not be comparable")


def heldout_table(testset_h5, test_h5, *, continuous_model, class_model, baseline_models: Sequence,
                  continuous: Mapping, sample: Mapping, degrade: Mapping, metrics: Mapping) -> pd.DataFrame:
    """Score the continuous model on factors it never saw, against the class model, the baselines
    and the classical methods, all on the same low-field inputs.

    Parameters
    ----------
    testset_h5 : path
        The blur test set (:mod:`mssr.evaluation.testsets`), holding the Table-1 inputs.
    test_h5 : path
        The test split it was built from; off-table inputs are computed from it
        (:func:`offtable_inputs`).
    continuous_model : path
        Folder (or weights file) of the continuous model (:func:`train_continuous`).
    class_model : path
        MSSR with class conditioning, trained on all the run's factors.
    baseline_models : sequence of path
        Single-factor baselines; one for each held-out factor is needed (others are ignored).
    continuous : mapping
        The ``continuous`` config section: ``heldout`` (labels; must agree with what the model
        was trained without), ``reference`` ({'none', 'neighbours', 'all'}, default
        'neighbours') and ``off_table_mhz`` ((high, low) 1H MHz pairs, default none).
    sample : mapping
        The ``sample`` config section: the protocol every learned model is sampled with.
    degrade : mapping
        The ``degrade`` config section (off-table inputs, deconvolution kernel).
    metrics : mapping
        The ``metrics`` config section.

    Returns
    -------
    DataFrame
        One row per (method, factor, sample), columns :data:`HELDOUT_COLUMNS`: ``factor``
        (high/low, dimensionless), ``table1`` (a Table-1 factor), ``heldout`` (not among the
        continuous model's training factors; true for every method at that factor),
        ``extrapolated`` (outside the range of the training factors), the nine metrics,
        ``seconds`` (wall time per spectrum of that method at that factor, s).

    Raises
    ------
    ValueError
        If the continuous model is not continuous, was trained on a factor listed as held out (or
        without one that is not), a held-out factor has no baseline, the test set was built
        with another low-field model, seed or parameters than ``degrade`` says, or ``test_h5`` is
        not the split it was built from.
    """
    continuous = _validate.mapping("continuous", continuous)
    degrade = _validate.mapping("degrade", degrade)
    cfg = SampleConfig.from_dict(dict(_validate.mapping("sample", sample)))
    options = metric_options(_validate.mapping("metrics", metrics))
    reference = _validate.choice("continuous.reference", continuous.get("reference", "neighbours"), get_args(Reference))
    off_table = offtable_factors(continuous.get("off_table_mhz") or [])

    x, x_lr_all, labels, s = read_testset(_validate.path("testset_h5", testset_h5, exists=True))
    _check_testset_matches(s.attrs, degrade, testset_h5)
    cont = timed.load_enhancer("continuous_model", continuous_model, cfg.device)
    if cont.predictor.conditioning != "continuous":
        raise ValueError(f"continuous_model: {cont.model_dir} has {cont.predictor.conditioning!r} conditioning, "
                         "not 'continuous'")
    trained = _trained_labels(cont)
    heldout = [f for f in labels if f not in trained]
    configured = sorted(_validate_labels("continuous.heldout", continuous.get("heldout", [])), key=float)
    if heldout != configured:
        raise ValueError(f"{cont.model_dir} was trained on {trained}, which holds out {heldout} of the test set's "
                         f"factors, but continuous.heldout is {configured}: retrain it")
    if not heldout:
        raise ValueError("continuous.heldout is empty: there is no unseen Table-1 factor to evaluate")
    lo, hi = float(trained[0]), float(trained[-1])

    mssr = timed.load_enhancer("class_model", class_model, cfg.device)
    if mssr.predictor.conditioning != "class":
        raise ValueError(f"class_model: {mssr.model_dir} has {mssr.predictor.conditioning!r} conditioning, not 'class'")
    baselines = {}
    for i, path in enumerate(baseline_models):
        enhancer = timed.load_enhancer(f"baseline_models[{i}]", path, cfg.device)
        baselines[_baseline_factor(enhancer)] = enhancer
    missing = [f for f in heldout if f not in baselines]
    if missing:
        raise ValueError(f"baseline_models has no baseline for the held-out factor(s) {missing} "
                         f"(has {sorted(baselines, key=float)})")
    unsupported = [f for f in heldout if not mssr.supports(float(as_factor(f)))]
    if unsupported:
        raise ValueError(f"class_model: {mssr.model_dir} was not trained for {unsupported}")

    # Off-table inputs come from the test split; it must be the split the test set was built from.
    if off_table:
        truth, x_lr_off, headers_off = offtable_inputs(test_h5, off_table, degrade=degrade)
        if truth.shape != x.shape or not np.array_equal(truth, x):
            raise ValueError(f"test_h5: {test_h5} is not the test split that {testset_h5} was built from")
    for f in off_table:
        if not lo <= f <= hi:
            log.warning("factor %.4f is outside the continuous model's training range %.3f..%.3f: extrapolation",
                        f, lo, hi)

    for enhancer in (cont, mssr, *(baselines[f] for f in heldout)):
        timed.warm_up(enhancer, x_lr_all[0], float(as_factor(labels[0])), cfg)
    parts = []

    def add(method, f, pred, seconds, *, table1, unseen, truth_x, headers):
        parts.append(timed.scored(truth_x, pred, headers, options, method=method, factor=f, table1=table1,
                             heldout=unseen, extrapolated=not lo - _FACTOR_TOL <= f <= hi + _FACTOR_TOL,
                             seconds=seconds))

    for label in heldout:
        f = float(as_factor(label))
        x_lr = x_lr_all[labels.index(label)]
        for method, enhancer in ((CONTINUOUS_METHOD, cont), ("mssr", mssr), ("baseline", baselines[label])):
            pred, seconds = timed.sample_timed(enhancer, x_lr, f, cfg)
            add(method, f, pred, seconds, table1=True, unseen=True, truth_x=x, headers=s.headers)
        for method in CLASSICAL_METHODS:
            pred, seconds = timed.classical_timed(method, x_lr, f, degrade)
            add(method, f, pred, seconds, table1=True, unseen=True, truth_x=x, headers=s.headers)
        log.info("held-out factor %s: %s", label, _mse_summary(parts[-len(HELDOUT_METHODS):]))
    for label in reference_factors(labels, trained, heldout, reference):
        f = float(as_factor(label))
        pred, seconds = timed.sample_timed(cont, x_lr_all[labels.index(label)], f, cfg)
        add(CONTINUOUS_METHOD, f, pred, seconds, table1=True, unseen=False, truth_x=x, headers=s.headers)
        log.info("trained factor %s: %s", label, _mse_summary(parts[-1:]))
    for k, f in enumerate(off_table):
        x_lr = x_lr_off[k]
        pred, seconds = timed.sample_timed(cont, x_lr, f, cfg)
        add(CONTINUOUS_METHOD, f, pred, seconds, table1=False, unseen=True, truth_x=truth, headers=headers_off)
        for method in CLASSICAL_METHODS:
            pred, seconds = timed.classical_timed(method, x_lr, f, degrade)
            add(method, f, pred, seconds, table1=False, unseen=True, truth_x=truth, headers=headers_off)
        log.info("off-table factor %.4f: %s", f, _mse_summary(parts[-1 - len(CLASSICAL_METHODS):]))

    df = pd.concat(parts, ignore_index=True)[list(HELDOUT_COLUMNS)]
    rank = {m: i for i, m in enumerate(HELDOUT_METHODS)}
    df = df.sort_values(["factor", "method", "sample"], key=lambda c: c.map(rank) if c.name == "method" else c,
                        kind="stable")
    return df.reset_index(drop=True)


def _mse_summary(parts: Sequence[pd.DataFrame]) -> str:
    return ", ".join(f"{p['method'].iloc[0]} mse {p['mse'].mean():.5f}" for p in parts)


def plot_heldout(df: pd.DataFrame, out_path, *, metrics: Sequence[str] = METRICS, n_boot: int = 1000,
                 seed: int = 0, dpi: int = 150) -> Path:
    """Metrics versus factor for every method of the held-out table, held-out and off-table
    factors marked (dashed and dotted vertical lines).

    Parameters
    ----------
    df : DataFrame
        Output of :func:`heldout_table`.
    out_path : path
        PNG file to write.
    metrics : sequence of str
        One panel per metric.
    n_boot, seed : int
        Bootstrap resamples and seed of the 95% bands (:func:`mssr.evaluation.tables.summarize`).
    dpi : int
        Resolution, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    df = frame_with_columns("df (the output of heldout_table)", df, ("method", "factor", "table1", "heldout"))
    out_path = png_path(out_path)
    summary = summarize(df, by=("method", "factor"), metrics=list(metrics), n_boot=n_boot, seed=seed)
    methods = [m for m in HELDOUT_METHODS if m in set(df["method"])]
    fig = figure_metrics_vs_factor(summary, list(metrics), methods=methods)
    heldout = sorted(df.loc[df["table1"].astype(bool) & df["heldout"].astype(bool), "factor"].unique())
    off_table = sorted(df.loc[~df["table1"].astype(bool), "factor"].unique())
    for ax in fig.axes:
        if not ax.get_visible() or not ax.lines:
            continue
        for f in heldout:
            ax.axvline(f, color="0.5", ls="--", lw=0.8, zorder=0)
        for f in off_table:
            ax.axvline(f, color="0.5", ls=":", lw=0.8, zorder=0)
    # One legend for the methods and the two kinds of unseen factor.
    handles, names = fig.axes[0].get_legend_handles_labels()
    handles += [Line2D([], [], color="0.5", ls="--", lw=0.8), Line2D([], [], color="0.5", ls=":", lw=0.8)]
    names += ["held out of continuous training", "off Table 1"]
    for legend in list(fig.legends):
        legend.remove()
    fig.legend(handles, names, loc="outside upper center", ncols=min(len(names), 4), frameon=False)
    return save_figure(fig, out_path, dpi)


def write_heldout(testset_h5, test_h5, out_csv, out_png, *, continuous_model, class_model,
                  baseline_models: Sequence, continuous: Mapping, sample: Mapping, degrade: Mapping,
                  metrics: Mapping, seed: int = 0, threads: int | None = None) -> Path:
    """:func:`heldout_table` written to ``out_csv`` and drawn by :func:`plot_heldout` to ``out_png``.

    Parameters are those of the two functions; ``seed`` seeds the bootstrap bands (``n_boot``
    is ``metrics['bootstrap']``), ``threads`` limits torch's CPU threads.

    Returns
    -------
    Path
        ``out_csv``.
    """
    set_threads(threads)
    df = heldout_table(testset_h5, test_h5, continuous_model=continuous_model, class_model=class_model,
                       baseline_models=baseline_models, continuous=continuous, sample=sample, degrade=degrade,
                       metrics=metrics)
    timed.write_table(df, out_csv)
    plot_heldout(df, out_png, n_boot=int(dict(metrics).get("bootstrap", 1000)), seed=seed)
    return Path(out_csv)


__all__ = [
    "CLASSICAL_METHODS", "CONTINUOUS_METHOD", "HELDOUT_COLUMNS", "HELDOUT_METHODS", "continuous_config",
    "continuous_training_factors", "heldout_table", "offtable_factors", "offtable_inputs", "plot_heldout",
    "reference_factors", "train_continuous", "write_heldout",
]
