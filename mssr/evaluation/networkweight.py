"""How much of its network's correction an anchored native model should apply, measured on real validation planes.

An anchored model's estimate is ``anchor + w (network - anchor)``
(:attr:`mssr.enhance.native.NativeSampling.network_weight`): ``w = 1`` the network's estimate as
sampled, ``w = 0`` its classical anchor alone. The network learns on rendered patches; on measured
spectra it may correct its anchor by more or by less than it should, and by how much depends on
the field ratio (at a small ratio the broadening hides only the finest structure). This module
measures that on planes of peakipy's measured series that no study scores (the *validation
planes*, :data:`VALIDATION_PLANES`), broadened physically as the test pairs are
(:func:`mssr.evaluation.realpairs.make_pair`):

1. for every validation pair, the network's estimate with ``w = 1`` (the model's own sampler
   settings) and the anchor it started from, on the plane's own points;
2. every weight of :data:`WEIGHTS` scored on every pair (their convex combination, exact since
   the weighting is linear) with :func:`mssr.evaluation.realpairs.score`;
3. per field ratio, the weight with the lowest MSE relative to each pair's anchor (so that each
   plane counts the same, whatever its intensity), averaged over each protein's planes and then over
   the proteins (so that each protein counts the same: the planes of one series are spectra of one
   sample).

The chosen ``(factor, weight)`` points are written as JSON (``network_weight``), the form
:class:`mssr.model.sample.Enhancer` reads from a model directory's
:data:`mssr.model.network_weight.FILE` (copied there by ``scripts/ship_model.sh``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mssr.model.network_weight import WEIGHT_STEP

log = logging.getLogger(__name__)

VALIDATION_PLANES: dict[str, list[int]] = {"protein_L": [2], "Ddx4": [1, 3, 4]}
"""Planes of the measured series used for this calibration only: the real study scores plane 0 of
each protein and the unseen-planes study protein L 1 and 3, Ddx4 2 and 5 (``configs/real_unseen.yaml``)."""

WEIGHTS: tuple[float, ...] = tuple(round(k * WEIGHT_STEP, 10) for k in range(round(1 / WEIGHT_STEP) + 1))
"""Weights scored, 0 to 1 in steps of :data:`mssr.model.network_weight.WEIGHT_STEP`."""


def scan(pairs, enhancer, *, weights: Sequence[float] = WEIGHTS, sampling=None) -> pd.DataFrame:
    """Score every weight on every pair.

    Parameters
    ----------
    pairs : sequence of mssr.evaluation.realpairs.RealPair
        Validation pairs.
    enhancer : mssr.model.sample.Enhancer
        An anchored native model.
    weights : sequence of float
        Weights in [0, 1].
    sampling : mssr.enhance.native.NativeSampling, optional
        Sampler settings (default: the model's own); its ``network_weight`` is replaced by 1.

    Returns
    -------
    DataFrame
        One row per (pair, weight): ``protein``, ``plane``, ``factor``, ``low_mhz``, ``weight``, the
        scores of :func:`mssr.evaluation.realpairs.score`, ``mse_anchor`` and ``mse_ratio``
        (``mse / mse_anchor``).
    """
    from dataclasses import replace

    from mssr.enhance import native
    from mssr.evaluation.realpairs import mse, score

    if not enhancer.extra.get("native", {}).get("anchor"):
        raise ValueError(f"the model in {enhancer.model_dir} has no anchor: there is no network weight to measure")
    weights = [float(w) for w in weights]
    if not weights or not all(0.0 <= w <= 1.0 for w in weights):
        raise ValueError(f"weights must be numbers in [0, 1], got {weights}")
    cfg = replace(sampling or native.default_sampling(enhancer.extra), network_weight=1.0)
    rows = []
    for pair in pairs:
        start = time.perf_counter()
        target = pair.truth.axes[1].field_mhz
        info: dict = {}
        full, _ = native.enhance_plane(pair.x_lr.data, pair.x_lr.axes, target_mhz=target, enhancer=enhancer,
                                       sampling=cfg, info=info)
        full = full.astype(np.float64)
        alone = info["anchor"].astype(np.float64)  # its kernel estimated once (tens of seconds on a crowded plane)
        mse_anchor = mse(pair, alone)
        for w in weights:
            s = score(pair, alone + w * (full - alone))
            rows.append({"protein": pair.protein, "plane": pair.plane, "factor": round(pair.factor, 4),
                         "low_mhz": round(pair.x_lr.axes[1].field_mhz, 1), "weight": w, **s,
                         "mse_anchor": mse_anchor, "mse_ratio": s["mse"] / mse_anchor})
        log.info("%s plane %d f=%.3f: anchor mse %.3g, network mse %.3g (%.0f s)", pair.protein, pair.plane,
                 pair.factor, mse_anchor, rows[-1]["mse"], time.perf_counter() - start)
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> list[list[float]]:
    """Per factor, the weight with the lowest ``mse_ratio`` averaged by protein: ``[[factor, weight], ...]``, factors increasing.

    The ratios are averaged over each protein's planes first, then over the proteins, so that
    each protein counts the same (the planes of one series are spectra of one sample).
    """
    by_protein = table.groupby(["factor", "protein", "weight"])["mse_ratio"].mean()
    mean = by_protein.groupby(["factor", "weight"]).mean().reset_index()
    points = []
    for factor, group in mean.groupby("factor"):
        best = group.loc[group["mse_ratio"].idxmin()]
        points.append([float(factor), float(best["weight"])])
    return sorted(points)


def measure(*, model_dir=None, out_csv, planes: dict | None = None, low_mhz: Sequence[float] = (600.0, 400.0),
            seed: int = 1234, weights: Sequence[float] = WEIGHTS, cache=None, threads: int | None = None) -> pd.DataFrame:
    """Steps 1-2 on the validation planes: the scan (:func:`scan`) of a model, written atomically to ``out_csv``.

    Parameters
    ----------
    model_dir : path, optional
        The anchored native model (default: the shipped one).
    out_csv : path
        The scan, with the ``planes``, ``seed`` of its pairs in its rows.
    planes : dict, optional
        Validation planes per protein (default :data:`VALIDATION_PLANES`).
    low_mhz : sequence of float
        Low fields the 800 MHz planes are broadened to, 1H MHz.
    seed : int
        Seed of the low-field noise.
    weights : sequence of float
        Weights scored.
    cache : path, optional
        Where the peakipy sdist is cached.
    threads : int, optional
        CPU threads of torch.
    """
    from pathlib import Path

    from mssr.atomic import atomic_path
    from mssr.config import set_threads
    from mssr.data.real import measured_planes
    from mssr.enhance.models import load_enhancer, model_dir_of
    from mssr.evaluation.realpairs import make_pair

    set_threads(threads)
    real = measured_planes(planes or VALIDATION_PLANES, cache=cache)
    pairs = [make_pair(p.protein, p.plane, p.spectrum, p.spectrum.axes[1].field_mhz / low, seed=seed)
             for p in real for low in low_mhz]
    enhancer = load_enhancer(model_dir_of(model_dir), "cpu")
    table = scan(pairs, enhancer, weights=weights)
    table["seed"] = int(seed)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


def record(scan_csv, *, model_dir=None, out_json) -> list[list[float]]:
    """Step 3: the chosen points of a scan (:func:`choose`), written atomically as JSON with what they rest on.

    Parameters
    ----------
    scan_csv : path
        A scan of :func:`measure`.
    model_dir : path, optional
        The model it was measured on (its weights' SHA-256 goes into the record).
    out_json : path
        ``{"network_weight": [[factor, weight], ...], "criterion", "planes", "low_mhz", "seed",
        "weights_scored", "scan_sha256", "model_weights_sha256"}``.

    Returns
    -------
    list of [factor, weight]
    """
    import hashlib
    from pathlib import Path

    from mssr.atomic import atomic_path
    from mssr.enhance.models import model_dir_of

    table = pd.read_csv(scan_csv)
    points = choose(table)
    weights_file = Path(model_dir_of(model_dir)) / "model.safetensors"
    planes = {str(k): sorted(int(v) for v in g["plane"].unique()) for k, g in table.groupby("protein")}
    out = {
        "network_weight": points,
        "criterion": "per factor, the lowest MSE / the anchor's MSE, averaged over each protein's planes, then over the proteins",
        "planes": planes,
        "low_mhz": sorted({float(v) for v in table["low_mhz"]}, reverse=True),
        "seed": int(table["seed"].iloc[0]) if "seed" in table else None,
        "weights_scored": sorted({float(w) for w in table["weight"]}),
        "scan_sha256": hashlib.sha256(Path(scan_csv).read_bytes()).hexdigest(),
        "model_weights_sha256": hashlib.sha256(weights_file.read_bytes()).hexdigest(),
    }
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(out, indent=2) + "\n")
    log.info("network weight: %s", points)
    return points


__all__ = ["VALIDATION_PLANES", "WEIGHTS", "choose", "measure", "record", "scan"]
