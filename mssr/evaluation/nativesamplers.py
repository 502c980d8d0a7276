"""Sampler settings of a native-resolution model against the sampling protocol, on validation patches.

The default sampler of ``mssr enhance`` must score within the protocol's 95% confidence interval.
The variants are those of the paper-grid sampler table (:func:`mssr.evaluation.samplers.sampler_variants`:
the protocol first, :data:`mssr.enhance.options.PAPER_PROTOCOL`), with the model's recorded default
second. :func:`sampler_table` draws patch pairs of the *validation* proteins (:class:`mssr.data.patches.PatchPairs`
with its own seed: not the patches the validation loss saw), samples every one with the protocol
(listed first) and each variant, and records per patch the x0 error relative to the input's squared
peak (the training loss's unit, :class:`mssr.model.diffusion.DiffusionConfig`), the number of network
evaluations and the wall time. :func:`compare` gives each variant's mean, its cluster-bootstrap CI by
protein, the paired difference to the protocol with its CI, and whether the variant's mean lies in
the protocol's CI.

For an anchored model whose default sampling is data-consistent (``NativeSampling.consistency``),
every variant is sampled with that projection onto its patch's low-field data, as ``mssr enhance``
samples (:class:`mssr.model.anchor.Consistency`), and the default once more without it
(:data:`UNPROJECTED`). The projection's filter is periodic like the anchor's, so these patches are
sampled with the margin they were drawn with (the anchor's context) and scored inside it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from mssr import _validate
from mssr.data.patches import PatchConfig, PatchPairs
from mssr.enhance.options import PAPER_PROTOCOL
from mssr.evaluation.bootstrap import cluster_bootstrap_mean_ci
from mssr.evaluation.samplers import PROTOCOL, SamplerVariant, check_variants, sampler_variants
from mssr.model.anchor import Consistency

DEFAULT: str = "default"
"""Name of the variant that samples as the model's recorded default (``mssr enhance``)."""

UNPROJECTED: str = "default_unprojected"
"""The default of an anchored model sampled without its data consistency (:class:`mssr.model.anchor.Consistency`)."""

COLUMNS: tuple[str, ...] = ("variant", "sampler", "steps", "repeats", "start_step", "projected", "nfe", "patch", "protein",
                            "factor", "rel_mse", "seconds")


def validation_patches(proteins: Sequence[int], cfg: PatchConfig, *, n: int, seed: int, data: dict | None = None):
    """``n`` patch pairs of the given (validation) proteins: x0, x_lr (n, 1, S, S) float32, factors, proteins.

    ``data``, for anchored patches: filled with the patches with their margin
    (:func:`mssr.data.patches.render_patch`): ``x0``, ``x_lr`` (the anchors) and ``low`` (the
    low-field patches themselves), float32 of shape (n, S + 2 m, S + 2 m), ``margin`` (m,
    points) and ``added_fwhm_px`` (n, 2), the anchors' kernels.
    """
    pairs = PatchPairs(proteins, cfg, length=n, seed=seed)
    x0, x_lr, factors, owners, infos = [], [], [], [], []
    for i in range(n):
        info: dict = {}
        a, b, f = pairs.item((0, 0, i), info=info)
        x0.append(a)
        x_lr.append(b)
        factors.append(f)
        owners.append(pairs.protein_of((0, 0, i)))
        infos.append(info)
    if data is not None and infos and infos[0]:
        data["x0"] = np.stack([d["x0"] for d in infos])
        data["x_lr"] = np.stack([d["anchor"] for d in infos])
        data["low"] = np.stack([d["low"] for d in infos])
        data["margin"] = int(infos[0]["margin"])
        data["added_fwhm_px"] = np.asarray([d["added_fwhm_px"] for d in infos], dtype=np.float64)
    return (torch.as_tensor(np.stack(x0))[:, None], torch.as_tensor(np.stack(x_lr))[:, None],
            torch.as_tensor(factors, dtype=torch.float64), np.asarray(owners))


def native_variants(variants, default) -> list[SamplerVariant]:
    """The protocol, the model's default (a :class:`mssr.enhance.native.NativeSampling`), then ``variants``.

    ``variants`` is a list in the format of the ``samplers.variants`` config section.
    """
    out = sampler_variants({"variants": list(variants or [])}, PAPER_PROTOCOL, section="native.validate")
    for reserved in (DEFAULT, UNPROJECTED):
        if any(v.name == reserved for v in out):
            raise ValueError(f"native.validate.variants: the name {reserved!r} is the model's recorded default"
                             + (" without its data consistency" if reserved == UNPROJECTED else ""))
    out.insert(1, SamplerVariant(DEFAULT, default.sampler, default.steps, default.repeats, default.start_step))
    return out


def sampler_table(enhancer, x0, x_lr, factors, proteins, variants: Sequence[SamplerVariant], *,
                  batch_size: int = 64, seed: int = 0, projection=None,
                  unprojected: Sequence[str] = (), margin: int = 0) -> pd.DataFrame:
    """Every variant on every patch, plus the identity (the input itself).

    Parameters
    ----------
    enhancer : mssr.model.sample.Enhancer
        A native model.
    x0, x_lr : torch.Tensor, shape (N, 1, S, S)
        True high-field and low-field patches in the network's unit.
    factors : torch.Tensor, shape (N,)
        ``B_high / B_low`` of each patch.
    proteins : array_like, shape (N,)
        The protein of each patch (the bootstrap clusters).
    variants : sequence of SamplerVariant
        The protocol (named ``'protocol'``) among them (:func:`native_variants`).
    batch_size : int
        Chains per network call.
    seed : int
        Seed of the samplers' noise (the same for every variant).
    projection : callable, optional
        The data consistency of the patches (:class:`mssr.model.anchor.Consistency` of their
        low-field data), applied as ``mssr enhance`` applies it to every variant but those named
        in ``unprojected``.
    unprojected : sequence of str
        Variants sampled without ``projection``.
    margin : int
        Points on each side of the patches that are context, not scored: the patches are sampled
        whole (as a tile of a plane is, with its neighbours) and the error is that of the inner part.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`, one row per (variant, patch).
    """
    if not any(v.name == PROTOCOL for v in variants):
        raise ValueError(f"variants must include the protocol ({PROTOCOL!r})")
    timesteps = check_variants(variants, enhancer.diffusion)
    m = _validate.integer("margin", margin, 0)
    inner = (Ellipsis, slice(m, x0.shape[-2] - m), slice(m, x0.shape[-1] - m))
    peak2 = x_lr[inner].abs().amax(dim=(1, 2, 3)).double().pow(2).numpy()
    runs = [(SamplerVariant("identity", "", 0, 0), 0), *zip(variants, timesteps)]
    rows = []
    for v, t in runs:
        start = time.perf_counter()
        est = x_lr
        if v.name != "identity":
            generator = torch.Generator().manual_seed(int(seed))
            est, _ = enhancer.diffusion.sample(
                enhancer.predictor, x_lr, factors, sampler=v.sampler, steps=v.steps, repeats=v.repeats,
                batch_size=batch_size, start_step=v.start_step, generator=generator, progress=False,
                project_x0=None if v.name in unprojected else projection)
        seconds = (time.perf_counter() - start) / len(x0)
        err = (est[inner].double() - x0[inner].double()).pow(2).mean(dim=(1, 2, 3)).numpy() / peak2
        for i in range(len(x0)):
            rows.append({"variant": v.name, "sampler": v.sampler, "steps": v.steps, "repeats": v.repeats,
                         "start_step": v.start_step,
                         "projected": projection is not None and v.name not in unprojected and v.name != "identity", "nfe": t * v.repeats, "patch": i, "protein": str(proteins[i]),
                         "factor": float(factors[i]), "rel_mse": float(err[i]), "seconds": seconds})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare(table: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per variant: mean rel. MSE and CI by protein, paired difference to the protocol and its CI.

    ``within_protocol_ci`` says whether the variant's mean lies in the protocol's 95% CI (or below
    it: better than the protocol).
    """
    proto = table[table.variant == PROTOCOL].set_index("patch")
    _, _, p_high, _, _ = cluster_bootstrap_mean_ci(proto.rel_mse.to_numpy(), proto.protein.to_numpy(),
                                                            n_boot=n_boot, rng=seed)
    out = []
    for name, group in table.groupby("variant", sort=False):
        g = group.set_index("patch").loc[proto.index]
        mean, low, high, n, k = cluster_bootstrap_mean_ci(g.rel_mse.to_numpy(), g.protein.to_numpy(),
                                                          n_boot=n_boot, rng=seed)
        diff = g.rel_mse.to_numpy() - proto.rel_mse.to_numpy()
        d_mean, d_low, d_high, _, _ = cluster_bootstrap_mean_ci(diff, g.protein.to_numpy(), n_boot=n_boot, rng=seed)
        out.append({"variant": name, "sampler": g.sampler.iloc[0], "steps": int(g.steps.iloc[0]),
                    "repeats": int(g.repeats.iloc[0]), "start_step": g.start_step.iloc[0],
                    "projected": bool(g.projected.iloc[0]), "nfe": int(g.nfe.iloc[0]),
                    "patches": n, "proteins": k, "rel_mse": mean, "ci_low": low, "ci_high": high,
                    "diff_vs_protocol": d_mean, "diff_ci_low": d_low, "diff_ci_high": d_high,
                    "within_protocol_ci": bool(mean <= p_high), "seconds_per_patch": float(g.seconds.iloc[0])})
    return pd.DataFrame(out)


def run_validation(model, split_json, out_table, out_summary, *, validate: Mapping, patches: Mapping,
                   threads: int | None = None) -> pd.DataFrame:
    """The ``native_samplers`` rule: validation patches, every variant, the comparison, written atomically.

    Parameters
    ----------
    model : path
        The native model (its recorded default sampler is the variant ``'default'``).
    split_json : path
        The run's split: patches are drawn from its validation proteins.
    out_table, out_summary : path
        Per-patch table (:func:`sampler_table`) and the comparison (:func:`compare`), CSV.
    validate : mapping
        The ``native.validate`` section: ``patches`` (number), ``seed`` and ``variants`` (a list as
        in the ``samplers`` section).
    patches : mapping
        The ``native.patches`` config (:class:`mssr.data.patches.PatchConfig`).
    threads : int, optional
        CPU threads of torch.
    """
    from mssr.atomic import atomic_path
    from mssr.config import set_threads
    from mssr.enhance.native import default_sampling
    from mssr.model.native import split_proteins
    from mssr.model.sample import Enhancer

    set_threads(threads)
    enhancer = Enhancer(model, device="cpu")
    validate = _validate.mapping("native.validate", validate)
    n = _validate.positive_int("native.validate.patches", validate.get("patches"))
    seed = _validate.integer("native.validate.seed", validate.get("seed"), 0)
    default = default_sampling(enhancer.extra)
    variants = native_variants(validate.get("variants"), default)
    proteins = split_proteins(split_json)
    val = proteins["val"] or proteins["train"]
    data: dict = {}
    x0, x_lr, factors, owners = validation_patches(val, PatchConfig.from_dict(dict(patches)), n=n, seed=seed,
                                                   data=data)
    projection, unprojected, margin = None, (), 0
    settings = enhancer.extra["native"].get("anchor")
    if settings and default.consistency and data:
        # every variant as mssr enhance samples it: on the patch with its margin (the projection's
        # filter is periodic, like the anchor's), scored inside; the default once more unprojected
        x0, x_lr = (torch.as_tensor(data[k])[:, None] for k in ("x0", "x_lr"))
        margin = data["margin"]
        projection = Consistency(data["low"], data["added_fwhm_px"], balance=float(settings["balance"]))
        variants.append(SamplerVariant(UNPROJECTED, default.sampler, default.steps, default.repeats,
                                       default.start_step))
        unprojected = (UNPROJECTED,)
    table = sampler_table(enhancer, x0, x_lr, factors, owners, variants, projection=projection,
                          unprojected=unprojected, margin=margin)
    summary = compare(table)
    for frame, path in ((table, out_table), (summary, out_summary)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    return summary


__all__ = ["COLUMNS", "DEFAULT", "UNPROJECTED", "compare", "native_variants", "run_validation", "sampler_table",
           "validation_patches"]
