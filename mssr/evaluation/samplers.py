"""Sampler options against the sampling protocol: metrics and wall time per spectrum.

:func:`sampler_table` samples a subset of the blur test set with the run's protocol (the
``sample`` config section, listed first as ``'protocol'``) and with each configured variant (DDIM
and DPM-Solver++ with few steps, DDPM started from the noised low-field input at an intermediate
step), and records the nine metrics and the wall time per spectrum. Every variant's schedule is
checked before anything is sampled (DDIM steps must divide T; DPM-Solver++ with log-SNR spacing
refuses step counts that repeat timesteps; ``start_step`` must reach a timestep of the schedule).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from mssr import _validate
from mssr.config import set_threads
from mssr.evaluation import timed
from mssr.evaluation.metrics import METRIC_NAMES
from mssr.evaluation.scoring import metric_options, sweep_factors
from mssr.evaluation.tables import summarize
from mssr.evaluation.testsets import read_testset
from mssr.factors import as_factor
from mssr.figures.plots import METRIC_LABELS, frame_with_columns, png_path, save_figure
from mssr.model.diffusion import SAMPLERS, Sampler
from mssr.model.sample import SampleConfig

log = logging.getLogger(__name__)

SAMPLER_COLUMNS: tuple[str, ...] = (
    "variant", "sampler", "steps", "repeats", "start_step", "nfe", "factor", "sample", *METRIC_NAMES,
    "seconds", "peak_shift_ppm", "protein", "experiment",
)
"""Columns of the sampler table (:func:`sampler_table`)."""

PROTOCOL = "protocol"
"""Name of the variant that samples as the ``sample`` config section says."""

SAMPLER_FIGURE_METRICS: tuple[str, ...] = ("mse", "ssim", "missed_peak_ratio", "hallucination_ratio")
"""Metrics drawn against time per spectrum in the sampler figure (bounded ones: R^2 has no lower
bound, and a few failed spectra would set the scale)."""

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class SamplerVariant:
    """One sampling option compared with the protocol.

    Attributes
    ----------
    name : str
        Name in the table and figure (letters, digits, ``_.-``).
    sampler : {'ddpm', 'ddim', 'dpmsolver'}
        See :meth:`mssr.model.diffusion.Diffusion.make_scheduler`.
    steps : int
        Steps of the full schedule.
    repeats : int
        Samples averaged per spectrum.
    start_step : int or None
        Start from the low-field input noised to the first schedule timestep <= this training
        timestep (None: from pure noise).
    """

    name: str
    sampler: Sampler
    steps: int
    repeats: int
    start_step: int | None = None

    def config(self, base: SampleConfig) -> SampleConfig:
        """``base`` (batch size, seed, device) with this variant's sampler, steps, repeats, start."""
        return replace(base, sampler=self.sampler, steps=self.steps, repeats=self.repeats,
                       start_step=self.start_step)


def _validate_variant(i: int, d, base: SampleConfig, section: str) -> SamplerVariant:
    where = f"{section}.variants[{i}]"
    if not isinstance(d, Mapping):
        raise TypeError(f"{where} must be a mapping with name, sampler, steps, repeats, start_step; got {d!r}")
    unknown = sorted(set(d) - {"name", "sampler", "steps", "repeats", "start_step"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}")
    for key in ("name", "sampler", "steps"):
        if key not in d:
            raise ValueError(f"{where} needs {key!r}")
    name = d["name"]
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(f"{where}.name must be letters, digits, '_', '.' or '-', got {name!r}")
    _validate.choice(f"{where}.sampler", d["sampler"], SAMPLERS)
    steps = _validate.positive_int(f"{where}.steps", d["steps"])
    repeats = _validate.positive_int(f"{where}.repeats", d.get("repeats") if d.get("repeats") is not None else base.repeats)
    start = d.get("start_step")
    if start is not None:
        start = _validate.positive_int(f"{where}.start_step", start)
    return SamplerVariant(name=name, sampler=d["sampler"], steps=steps, repeats=repeats, start_step=start)


def sampler_variants(samplers: Mapping, sample: Mapping, *, section: str = "samplers") -> list[SamplerVariant]:
    """The protocol (the ``sample`` section, named ``'protocol'``) followed by the configured variants.

    Parameters
    ----------
    samplers : mapping
        The ``samplers`` config section; ``variants`` is a list of mappings with ``name``,
        ``sampler``, ``steps`` and optionally ``repeats`` (default: the protocol's) and
        ``start_step``.
    sample : mapping
        The ``sample`` config section.
    section : str
        The config key of ``samplers``, named in errors.

    Returns
    -------
    list of SamplerVariant
        Names unique.
    """
    samplers = _validate.mapping(section, samplers)
    base = SampleConfig.from_dict(dict(_validate.mapping("sample", sample)))
    variants = [SamplerVariant(PROTOCOL, base.sampler, base.steps, base.repeats, base.start_step)]
    raw = samplers.get("variants") or []
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Sequence):
        raise TypeError(f"{section}.variants must be a list of variants, got {raw!r}")
    for i, d in enumerate(raw):
        v = _validate_variant(i, d, base, section)
        if any(v.name == u.name for u in variants):
            raise ValueError(f"{section}.variants[{i}].name {v.name!r} is used twice ('{PROTOCOL}' is the "
                             "protocol's)")
        variants.append(v)
    return variants


def check_variants(variants: Sequence[SamplerVariant], diffusion) -> list[int]:
    """Network evaluations per chain of each variant, refusing schedules the sampler cannot run.

    Parameters
    ----------
    variants : sequence of SamplerVariant
    diffusion : mssr.model.diffusion.Diffusion
        The model's noise schedule (T).

    Returns
    -------
    list of int
        Timesteps each variant's chains run through (``steps``, fewer with ``start_step``).

    Raises
    ------
    ValueError
        Naming the variant: DDIM steps that do not divide T, DPM-Solver++ step counts that repeat
        timesteps, more steps than T, a ``start_step`` >= T or below every timestep.
    """
    nfe = []
    for v in variants:
        try:
            nfe.append(len(diffusion.schedule_timesteps(v.sampler, v.steps, start_step=v.start_step)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sampler variant {v.name!r} ({v.sampler}, {v.steps} steps, start_step "
                             f"{v.start_step}): {exc}") from exc
    return nfe


def sampler_table(model, testset_h5, *, samplers: Mapping, sample: Mapping, metrics: Mapping,
                  factors) -> pd.DataFrame:
    """Metrics and wall time per spectrum of every sampler variant on a subset of a test set.

    Parameters
    ----------
    model : path
        The model's folder or weights file (MSSR).
    testset_h5 : path
        Test set (:mod:`mssr.evaluation.testsets`).
    samplers : mapping
        The ``samplers`` section: ``n_samples`` (first spectra of the test set), ``factors``
        (how many factors, spread evenly over ``factors`` as in the sweep) and ``variants``.
    sample : mapping
        The ``sample`` section (the protocol; batch size, seed and device of every variant).
    metrics : mapping
        The ``metrics`` section.
    factors : sequence
        The run's factors.

    Returns
    -------
    DataFrame
        One row per (variant, factor, sample), columns :data:`SAMPLER_COLUMNS`: ``nfe`` is the
        number of network evaluations per spectrum (timesteps run x repeats), ``seconds`` the
        wall time per spectrum (s), measured after one warm-up call.
    """
    samplers = _validate.mapping("samplers", samplers)
    variants = sampler_variants(samplers, sample)
    base = SampleConfig.from_dict(dict(sample))
    options = metric_options(_validate.mapping("metrics", metrics))
    n = _validate.positive_int("samplers.n_samples", samplers.get("n_samples", 8))
    count = _validate.positive_int("samplers.factors", samplers.get("factors", 2))
    enhancer = timed.load_enhancer("model", model, base.device)
    timesteps = check_variants(variants, enhancer.diffusion)

    x_all, x_lr_all, labels, s = read_testset(_validate.path("testset_h5", testset_h5, exists=True))
    chosen = sweep_factors(factors, count)
    absent = [f for f in chosen if f not in labels]
    if absent:
        raise ValueError(f"{testset_h5}: factor(s) {absent} not in the test set (has {labels})")
    parts = []
    timed.warm_up(enhancer, x_lr_all[0], float(as_factor(labels[0])), base)
    for label in chosen:
        f = float(as_factor(label))
        x, x_lr, headers = x_all[:n], x_lr_all[labels.index(label)][:n], s.headers[:n]
        for v, t in zip(variants, timesteps):
            pred, seconds = timed.sample_timed(enhancer, x_lr, f, v.config(base))
            parts.append(timed.scored(x, pred, headers, options, variant=v.name, sampler=v.sampler, steps=v.steps,
                                 repeats=v.repeats, start_step=v.start_step, nfe=t * v.repeats, factor=f,
                                 seconds=seconds))
            log.info("factor %s %s: %d evaluations per spectrum, mse %.5f, %.3f s per spectrum", label, v.name,
                     t * v.repeats, parts[-1]["mse"].mean(), seconds)
    df = pd.concat(parts, ignore_index=True)
    df["start_step"] = df["start_step"].astype("Int64")
    return df[list(SAMPLER_COLUMNS)].reset_index(drop=True)


def _figure_samplers(df: pd.DataFrame, metrics: Sequence[str], n_boot: int, seed: int) -> Figure:
    order = list(dict.fromkeys(df["variant"]))
    summary = summarize(df, by=("variant",), metrics=list(metrics), n_boot=n_boot, seed=seed)
    seconds = df.groupby("variant")["seconds"].mean()
    fig = Figure(figsize=(3.8 * len(metrics), 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colors = matplotlib.colormaps["tab10"]
    for ax, metric in zip(axes, metrics):
        rows = summary[summary["metric"] == metric].set_index("variant")
        for k, name in enumerate(order):
            r = rows.loc[name]
            t = float(seconds[name])
            ax.errorbar([t], [r["mean"]], yerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]],
                        fmt="*" if name == PROTOCOL else "o", ms=9 if name == PROTOCOL else 6, capsize=3,
                        color=colors(k % 10), label=name)
        # Few-step samplers can be tens of times faster than the protocol: a log axis keeps both readable.
        if float(seconds.max()) >= 10 * float(seconds.min()) > 0:
            ax.set_xscale("log")
        ax.set_xlabel("seconds per spectrum")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=min(len(names), 6), frameon=False)
    return fig


def plot_samplers(df: pd.DataFrame, out_path, *, metrics: Sequence[str] = SAMPLER_FIGURE_METRICS,
                  n_boot: int = 1000, seed: int = 0, dpi: int = 150) -> Path:
    """Each metric against wall time per spectrum, one point per variant with its 95% bootstrap
    interval (factors and spectra pooled); the protocol is the star.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`sampler_table`.
    out_path : path
        PNG file to write.
    metrics : sequence of str
        One panel per metric.
    n_boot, seed : int
        Bootstrap resamples and seed.
    dpi : int
        Resolution, dots per inch.

    Returns
    -------
    Path
        ``out_path``.
    """
    df = frame_with_columns("df (the output of sampler_table)", df, ("variant", "seconds", *metrics))
    out_path = png_path(out_path)
    return save_figure(_figure_samplers(df, list(metrics), n_boot, seed), out_path, dpi)


def write_samplers(model, testset_h5, out_csv, out_png, *, samplers: Mapping, sample: Mapping, metrics: Mapping,
                   factors, seed: int = 0, threads: int | None = None) -> Path:
    """:func:`sampler_table` written to ``out_csv`` and drawn by :func:`plot_samplers` to ``out_png``.

    ``seed`` seeds the bootstrap intervals (``n_boot`` is ``metrics['bootstrap']``); ``threads``
    limits torch's CPU threads.

    Returns
    -------
    Path
        ``out_csv``.
    """
    set_threads(threads)
    df = sampler_table(model, testset_h5, samplers=samplers, sample=sample, metrics=metrics, factors=factors)
    timed.write_table(df, out_csv)
    plot_samplers(df, out_png, n_boot=int(dict(metrics).get("bootstrap", 1000)), seed=seed)
    return Path(out_csv)


__all__ = ["PROTOCOL", "SAMPLER_COLUMNS", "SAMPLER_FIGURE_METRICS", "SamplerVariant", "check_variants",
           "plot_samplers", "sampler_table", "sampler_variants", "write_samplers"]
