"""Every method on the ``real`` pairs: the classical ones with the known kernel, tuned on the other protein, and MSSR.

For a pair (protein P, plane, factor f) each classical method's free parameter is chosen by the
lowest MSE on plane 0 of the *other* protein at the same f (the measured series hold two proteins,
so this is the validation split of the real test set: nothing is tuned on the spectrum it is scored
on); the kernel and the added widths are the ones the low-field model used
(:attr:`mssr.evaluation.realpairs.RealPair.degrade_params`), as a spectroscopist who knows both
fields would set them. The methods see the low-field plane in the network's unit
(:func:`mssr.data.patches.network_scale`), so no method's output is clipped.

The learned model runs with the sampler settings it was validated with
(:func:`mssr.enhance.native.default_sampling`), on the plane's own points
(:func:`mssr.enhance.native.enhance_plane`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mssr import degrade
from mssr.data.patches import network_scale
from mssr.evaluation import classical
from mssr.evaluation.realpairs import RealPair, measured_linewidths_hz, mse, score
from mssr.model.network_weight import network_weight_at

log = logging.getLogger(__name__)

CLASSICAL_GRIDS: dict[str, list] = {
    "wiener": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "richardson_lucy": [5, 10, 20, 40, 80],
    # g2 as a multiple of the high-field FWHM of each axis (the width the lines should end at)
    "lorentz_gauss": [0.7, 1.0, 1.4, 2.0],
    "peak_fit": [5.0],
}
"""Candidate values of each classical method's free parameter."""

METHODS = ("identity", "wiener", "richardson_lucy", "lorentz_gauss", "peak_fit", "anchor", "mssr")
"""'anchor': the first, classical step of an anchored MSSR model alone (:func:`mssr.enhance.native.anchor_plane`):
Wiener with the kernel estimated from the plane's own lines, not the known one."""


_FROM_ANCHOR = ("anchor", "mssr", "baseline")  # the methods that start from the plane's estimated kernel


def classical_estimate(pair: RealPair, method: str, value) -> np.ndarray:
    """A classical method's estimate of ``pair.truth`` from ``pair.x_lr``, in the truth's unit.

    Parameters
    ----------
    pair : RealPair
    method : {'identity', 'wiener', 'richardson_lucy', 'lorentz_gauss', 'peak_fit'}
    value
        The method's free parameter (:data:`CLASSICAL_GRIDS`); ignored by 'identity'.
    """
    x = np.asarray(pair.x_lr.data, dtype=np.float64)
    if method == "identity":
        return x
    scale = network_scale(x)
    xn = x / scale
    if method in ("wiener", "richardson_lucy"):
        psf = degrade.psf(pair.factor, model="physical", **pair.degrade_params)
        options = {"balance": float(value)} if method == "wiener" else {"iterations": int(value)}
        y = classical.enhance(xn, psf, method=method, **options)
    elif method == "lorentz_gauss":
        high_fwhm = [lw / ax.hz_per_point for lw, ax in zip(pair.linewidths_hz, pair.truth.axes)]
        y = classical.lorentz_gauss(xn, g1_px=pair.added_fwhm_px, g2_px=[float(value) * w for w in high_fwhm])
    elif method == "peak_fit":
        y = classical.peak_fit(xn, added_fwhm_px=pair.added_fwhm_px, alpha=float(value))
    else:
        raise ValueError(f"method must be one of identity, {', '.join(CLASSICAL_GRIDS)}, got {method!r}")
    return np.asarray(y, dtype=np.float64) * scale


def tune(method: str, validation: Sequence[RealPair], *, cache: dict | None = None) -> tuple[object, dict]:
    """The value of :data:`CLASSICAL_GRIDS` ``[method]`` with the lowest mean MSE on ``validation``.

    ``cache``, when given, keeps every estimate made (:func:`cached_estimate`), for a study in which
    the validation pairs are scored too.
    """
    grid = CLASSICAL_GRIDS[method]
    if len(grid) == 1 or not validation:
        return grid[0], {}
    mses = {}
    for value in grid:
        mses[value] = float(np.mean([mse(p, cached_estimate(p, method, value, cache)[0]) for p in validation]))
    best = min(mses, key=mses.get)
    return best, mses


def cached_estimate(pair: RealPair, method: str, value, cache: dict | None) -> tuple[np.ndarray, float]:
    """:func:`classical_estimate` and the seconds it took, made once per (pair, method, value) in ``cache``.

    In a study each protein's plane 0 is the other's validation pair: the estimates tuning makes
    on it include the one it is scored with. A pair is known by its protein, plane and factor (the
    noise is seeded by them, :func:`mssr.evaluation.realpairs.make_pair`). The seconds are those of
    the first computation.
    """
    key = (pair.protein, pair.plane, round(pair.factor, 6), method, value)
    if cache is not None and key in cache:
        return cache[key]
    start = time.perf_counter()
    made = (classical_estimate(pair, method, value), time.perf_counter() - start)
    if cache is not None:
        cache[key] = made
    return made


def run(pairs: Sequence[RealPair], *, enhancer=None, sampling=None, methods: Sequence[str] = METHODS,
        progress: bool = False, keep: dict | None = None, baselines: dict | None = None) -> pd.DataFrame:
    """Score every method on every pair.

    Parameters
    ----------
    pairs : sequence of RealPair
        The test pairs; validation pairs are plane 0 of the other protein, at the same factor
        (they are made here).
    enhancer : mssr.model.sample.Enhancer, optional
        A native model, for the method 'mssr' (skipped when None).
    sampling : mssr.enhance.native.NativeSampling, optional
        Its sampler settings (default: the model's own).
    methods : sequence of str
        Methods to run; 'baseline' is the single-factor native model of the pair's factor.
    keep : dict, optional
        Filled with ``(protein, plane, factor rounded to 4 decimals, method) -> estimate`` for
        every pair and method (for figures).
    baselines : dict, optional
        ``{factor rounded to 4 decimals: Enhancer}``, the single-factor native models for the
        method 'baseline' (pairs of other factors skip it); they sample with their own settings.

    Returns
    -------
    DataFrame
        One row per (protein, plane, factor, method): the scores of
        :func:`mssr.evaluation.realpairs.score`, ``param`` (the chosen value), ``seconds`` (the
        method on this pair: for a classical one its estimate, not the tuning of its parameter on
        the other protein; for the anchor and the models, their kernel estimate included),
        ``linewidth_15n_hz``/``linewidth_1h_hz`` (the truth's, assumed fixed in Hz) and
        ``input_fwhm_*`` are in the identity rows.
    """
    from mssr.enhance import native

    rows = []
    by_protein: dict[str, dict[float, RealPair]] = {}
    for p in pairs:
        if p.plane == 0:
            by_protein.setdefault(p.protein, {})[round(p.factor, 6)] = p
    chosen: dict[tuple[str, float, str], object] = {}
    made: dict = {}  # classical estimates by (protein, plane, factor, method, value): tuning's are reused
    for pair in pairs:
        others = [v[round(pair.factor, 6)] for k, v in by_protein.items()
                  if k != pair.protein and round(pair.factor, 6) in v]
        target = pair.truth.axes[1].field_mhz
        widths, balance, kernel_seconds = None, None, 0.0
        if any(m in _FROM_ANCHOR for m in methods):
            # the anchor's kernel and balance, estimated once for every method that starts from
            # them (about 20 s on a crowded plane); each such method's seconds include them
            start = time.perf_counter()
            widths = native.anchor_widths(pair.x_lr.data, pair.x_lr.axes, target_mhz=target)
            balance = native.anchor_balance(pair.x_lr.data, pair.x_lr.axes, target_mhz=target, added_fwhm_px=widths)
            kernel_seconds = time.perf_counter() - start
        for method in methods:
            start = time.perf_counter()
            param = seconds = None
            if method == "anchor":
                est = native.anchor_plane(pair.x_lr.data, pair.x_lr.axes, target_mhz=target, added_fwhm_px=widths,
                                          balance=balance)
                param = "estimated kernel"
            elif method in ("mssr", "baseline"):
                model = enhancer if method == "mssr" else (baselines or {}).get(round(pair.factor, 4))
                if model is None:
                    continue
                cfg = (sampling if method == "mssr" else None) or native.default_sampling(model.extra)
                est, _ = native.enhance_plane(pair.x_lr.data, pair.x_lr.axes, target_mhz=target, enhancer=model,
                                              sampling=cfg, added_fwhm_px=widths, anchor_balance=balance,
                                              progress=progress)
                param = f"{cfg.sampler} {cfg.steps} steps from {cfg.start_step} x {cfg.repeats}"
                if cfg.consistency and model.extra["native"].get("anchor"):
                    param += ", data-consistent"
                weight = network_weight_at(cfg.network_weight, pair.factor)
                if weight == 0.0:
                    param = "network weight 0: the anchor alone"
                elif weight != 1.0:
                    param += f", network weight {weight:g}"
            else:
                key = (pair.protein, round(pair.factor, 6), method)
                if key not in chosen:
                    chosen[key] = tune(method, others, cache=made)[0] if method != "identity" else None
                param = chosen[key]
                # its seconds: the estimate's own (made now or while tuning the other protein), not the tuning's
                est, seconds = cached_estimate(pair, method, param, made)
            if seconds is None:
                seconds = time.perf_counter() - start + (kernel_seconds if method in _FROM_ANCHOR else 0.0)
            if keep is not None:
                keep[(pair.protein, pair.plane, round(pair.factor, 4), method)] = est
            row = {"protein": pair.protein, "plane": pair.plane, "factor": round(pair.factor, 4),
                   "low_mhz": round(pair.x_lr.axes[1].field_mhz, 1), "method": method,
                   "param": param, "seconds": round(seconds, 2), **score(pair, est)}
            if method == "identity":
                row["linewidth_15n_hz"], row["linewidth_1h_hz"] = pair.linewidths_hz
            rows.append(row)
            log.info("%s plane %d f=%.3f %s: mse %.3g found %d/%d fwhm 15N %.1f 1H %.1f Hz (%.1f s)",
                     pair.protein, pair.plane, pair.factor, method, row["mse"], row["found"], row["strong_true"],
                     row["fwhm_15n_hz"], row["fwhm_1h_hz"], seconds)
    return pd.DataFrame(rows)




def study(*, model_dir=None, out_csv, out_figure=None, low_mhz: Sequence[float] = (600.0, 400.0),
          planes: dict | None = None, seed: int = 1234, methods: Sequence[str] = METHODS, cache=None,
          threads: int | None = None) -> pd.DataFrame:
    """The ``real`` study end to end: fetch the measured spectra, make the pairs, run and score every method.

    Parameters
    ----------
    model_dir : path, optional
        The native model for 'mssr' (default: the shipped one, :data:`mssr.enhance.models.DEFAULT_MODEL_DIR`).
    out_csv : path
        Table of scores (:func:`run`), written atomically.
    out_figure : path, optional
        Contours of protein L plane 0 at the lowest field: input, MSSR, the best classical method
        by MSE, truth (PNG).
    low_mhz : sequence of float
        Low fields the 800 MHz truths are broadened to, 1H MHz.
    planes : dict, optional
        Planes per protein (default plane 0 of each).
    seed : int
        Seed of the low-field noise.
    methods : sequence of str
        Methods to run.
    cache : path, optional
        Where the peakipy sdist is cached (:func:`mssr.data.real.default_cache`).
    threads : int, optional
        CPU threads of torch.
    """
    from pathlib import Path

    from mssr.atomic import atomic_path
    from mssr.config import set_threads
    from mssr.data.real import REAL_SERIES, measured_planes
    from mssr.evaluation.realpairs import make_pair

    set_threads(threads)
    out_csv = Path(out_csv)
    real = measured_planes(planes or {name: [0] for name in REAL_SERIES}, cache=cache)
    pairs = [make_pair(p.protein, p.plane, p.spectrum, p.spectrum.axes[1].field_mhz / low, seed=seed)
             for p in real for low in low_mhz]
    enhancer = None
    if "mssr" in methods:
        from mssr.enhance.models import load_enhancer, model_dir_of

        enhancer = load_enhancer(model_dir_of(model_dir), "cpu")
    estimates: dict = {}
    table = run(pairs, enhancer=enhancer, methods=methods, keep=estimates)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    if out_figure is not None:
        contour_figure(pairs, table, estimates, out_figure, low=min(low_mhz))
    return table


def contour_figure(pairs, table: pd.DataFrame, estimates: dict, out_figure, *, low: float) -> None:
    """Contours of the protein-L pair at ``low`` MHz: input, MSSR (and the baseline), the best classical method, truth.

    Parameters
    ----------
    pairs : sequence of RealPair
    table : DataFrame
        :func:`run`'s table.
    estimates : dict
        :func:`run`'s ``keep``.
    out_figure : path
        PNG file.
    low : float
        Low field of the pair shown, 1H MHz.
    """
    from mssr.figures.real import plot_real_pair

    pair = next(p for p in pairs if p.protein == "protein_L" and abs(p.x_lr.axes[1].field_mhz - low) < 1)
    rows = table[(table.protein == pair.protein) & (table.plane == pair.plane) & (table.factor == round(pair.factor, 4))]
    classical_rows = rows[~rows.method.isin(["identity", "anchor", "mssr", "baseline"])]
    key = (pair.protein, pair.plane, round(pair.factor, 4))
    panels = [(f"{low:g} MHz input (broadened)", pair.x_lr.data)]
    if (*key, "mssr") in estimates:
        panels.append(("MSSR (native model)", estimates[(*key, "mssr")]))
    if (*key, "baseline") in estimates:
        panels.append((f"baseline (f = {pair.factor:.3f} only)", estimates[(*key, "baseline")]))
    if len(classical_rows):
        best = classical_rows.sort_values("mse").iloc[0]
        panels.append((f"{best.method} (known kernel)", estimates[(*key, best.method)]))
    panels.append((f"measured {pair.truth.axes[1].field_mhz:.0f} MHz", pair.truth.data))
    plot_real_pair(panels, pair.truth.axes, out_figure, window_ppm=((9.4, 7.4), (128.0, 112.0)),
                   title=f"protein L, plane {pair.plane}: {low:g} -> {pair.truth.axes[1].field_mhz:.0f} MHz")


__all__ = ["CLASSICAL_GRIDS", "METHODS", "cached_estimate", "classical_estimate", "contour_figure", "measured_linewidths_hz", "run", "study", "tune"]
