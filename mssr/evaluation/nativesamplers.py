"""Sampler settings of a native-resolution model against the sampling protocol, on validation patches.

The default sampler of ``mssr enhance`` must score within the protocol's 95% confidence interval.
:func:`sampler_table` draws patch pairs of the *validation* proteins (:class:`mssr.data.patches.PatchPairs`
with its own seed: not the patches the validation loss saw), samples every one with the protocol
(listed first) and each variant, and records per patch the x0 error relative to the input's squared
peak (the training loss's unit, :class:`mssr.model.diffusion.DiffusionConfig`), the number of network
evaluations and the wall time. :func:`compare` gives each variant's mean, its cluster-bootstrap CI by
protein, the paired difference to the protocol with its CI, and whether the variant's mean lies in
the protocol's CI.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from mssr.data.patches import PatchConfig, PatchPairs
from mssr.evaluation.bootstrap import cluster_bootstrap_mean_ci

PROTOCOL: dict = {"sampler": "ddpm", "steps": 500, "repeats": 5, "start_step": None}
"""The paper's sampling protocol: ancestral DDPM, 500 steps from pure noise, 5 repeats."""

COLUMNS: tuple[str, ...] = ("variant", "sampler", "steps", "repeats", "start_step", "nfe", "patch", "protein",
                            "factor", "rel_mse", "seconds")


def validation_patches(proteins: Sequence[int], cfg: PatchConfig, *, n: int, seed: int):
    """``n`` patch pairs of the given (validation) proteins: x0, x_lr (n, 1, S, S) float32, factors, proteins."""
    pairs = PatchPairs(proteins, cfg, length=n, seed=seed)
    x0, x_lr, factors, owners = [], [], [], []
    for i in range(n):
        a, b, f = pairs[(0, 0, i)]
        x0.append(a)
        x_lr.append(b)
        factors.append(f)
        owners.append(pairs.protein_of((0, 0, i)))
    return (torch.as_tensor(np.stack(x0))[:, None], torch.as_tensor(np.stack(x_lr))[:, None],
            torch.as_tensor(factors, dtype=torch.float64), np.asarray(owners))


def _nfe(diffusion, variant: Mapping) -> int:
    steps = diffusion.schedule_timesteps(variant["sampler"], variant["steps"], start_step=variant.get("start_step"))
    return len(steps) * int(variant["repeats"])


def sampler_table(enhancer, x0, x_lr, factors, proteins, variants: Mapping[str, Mapping], *,
                  batch_size: int = 64, seed: int = 0) -> pd.DataFrame:
    """Every variant (the protocol first) on every patch, plus the identity (the input itself).

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
    variants : mapping of str to mapping
        Name -> ``sampler``, ``steps``, ``repeats``, ``start_step``.
    batch_size : int
        Chains per network call.
    seed : int
        Seed of the samplers' noise (the same for every variant).

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`, one row per (variant, patch).
    """
    peak2 = x_lr.abs().amax(dim=(1, 2, 3)).double().pow(2).numpy()
    runs = {"identity": None, "protocol": PROTOCOL, **{k: v for k, v in variants.items() if k != "protocol"}}
    rows = []
    for name, variant in runs.items():
        start = time.perf_counter()
        if variant is None:
            est, nfe = x_lr, 0
        else:
            generator = torch.Generator().manual_seed(int(seed))
            est, _ = enhancer.diffusion.sample(
                enhancer.predictor, x_lr, factors, sampler=variant["sampler"], steps=int(variant["steps"]),
                repeats=int(variant["repeats"]), batch_size=batch_size, start_step=variant.get("start_step"),
                generator=generator, progress=False)
            nfe = _nfe(enhancer.diffusion, variant)
        seconds = (time.perf_counter() - start) / len(x0)
        err = (est.double() - x0.double()).pow(2).mean(dim=(1, 2, 3)).numpy() / peak2
        for i in range(len(x0)):
            rows.append({"variant": name, "sampler": (variant or {}).get("sampler", ""),
                         "steps": (variant or {}).get("steps", 0), "repeats": (variant or {}).get("repeats", 0),
                         "start_step": (variant or {}).get("start_step"), "nfe": nfe, "patch": i,
                         "protein": str(proteins[i]), "factor": float(factors[i]), "rel_mse": float(err[i]),
                         "seconds": seconds})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare(table: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per variant: mean rel. MSE and CI by protein, paired difference to the protocol and its CI.

    ``within_protocol_ci`` says whether the variant's mean lies in the protocol's 95% CI (or below
    it: better than the protocol).
    """
    proto = table[table.variant == "protocol"].set_index("patch")
    p_mean, p_low, p_high, _, _ = cluster_bootstrap_mean_ci(proto.rel_mse.to_numpy(), proto.protein.to_numpy(),
                                                            n_boot=n_boot, rng=seed)
    out = []
    for name, group in table.groupby("variant", sort=False):
        g = group.set_index("patch").loc[proto.index]
        mean, low, high, n, k = cluster_bootstrap_mean_ci(g.rel_mse.to_numpy(), g.protein.to_numpy(),
                                                          n_boot=n_boot, rng=seed)
        diff = g.rel_mse.to_numpy() - proto.rel_mse.to_numpy()
        d_mean, d_low, d_high, _, _ = cluster_bootstrap_mean_ci(diff, g.protein.to_numpy(), n_boot=n_boot, rng=seed)
        out.append({"variant": name, "sampler": g.sampler.iloc[0], "steps": int(g.steps.iloc[0]),
                    "repeats": int(g.repeats.iloc[0]), "start_step": g.start_step.iloc[0], "nfe": int(g.nfe.iloc[0]),
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
        ``patches`` (number, default 32), ``seed`` (default 2), ``variants`` (name -> settings).
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
    default = default_sampling(enhancer.extra)
    variants = {"default": {"sampler": default.sampler, "steps": default.steps, "repeats": default.repeats,
                            "start_step": default.start_step}, **dict(validate.get("variants") or {})}
    proteins = split_proteins(split_json)
    val = proteins["val"] or proteins["train"]
    x0, x_lr, factors, owners = validation_patches(val, PatchConfig.from_dict(dict(patches)),
                                                   n=int(validate.get("patches", 32)),
                                                   seed=int(validate.get("seed", 2)))
    table = sampler_table(enhancer, x0, x_lr, factors, owners, variants)
    summary = compare(table)
    for frame, path in ((table, out_table), (summary, out_summary)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    return summary


__all__ = ["COLUMNS", "PROTOCOL", "compare", "run_validation", "sampler_table", "validation_patches"]
