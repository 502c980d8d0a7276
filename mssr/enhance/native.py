"""Native-resolution enhancement of one 2D plane: working grid in, whole-plane tiled sampling, input grid out.

The steps, for a plane ``x`` recorded at ``B_low`` on its own axes:

1. onto the working grid of the target field (:func:`mssr.data.grid.to_working`): same ppm
   window, a spacing that resolves the high-field lines;
2. into the network's unit, ``x / network_scale(x)`` (:func:`mssr.data.patches.network_scale`, the
   one scaling of the native mode, as in training);
   an anchored model (``extra['native']['anchor']``) is given the plane's anchor instead
   (:func:`mssr.model.anchor.anchor`: Wiener deconvolution by the Lorentzian its own lines imply);
3. ``repeats`` chains of the sampler over the whole plane at once, the network run on overlapping
   tiles whose noise predictions are blended at every step (:class:`mssr.model.tiles.TiledPredictor`),
   in groups of chains so memory is bounded whatever ``repeats``;
4. for an anchored model, the network's estimate weighted against the anchor's by the model's
   :attr:`NativeSampling.network_weight` at this field ratio (:func:`network_weight_at`):
   ``anchor + w (mean - anchor)``, the SD times ``w`` (``w = 0``: the anchor, nothing sampled).
   Here the anchor is regularized as its own lines allow (:func:`mssr.model.anchor.estimate_balance`),
   while the network's input and its data consistency keep the balance it was trained with;
5. mean and per-point SD of the chains, back to the input's intensity unit and onto the input's
   points (:func:`mssr.data.grid.from_working`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mssr.data import grid
from mssr.data.linewidths import validate_experiment, width_ratio
from mssr.data.patches import network_scale
from mssr.model import anchor
from mssr.model.network import NoisePredictor
from mssr.model.network_weight import network_weight_at, validate_network_weight
from mssr.model.sample import LIMIT_REASONS, LIMITS, combine_moments
from mssr.model.tiles import OVERLAP, TILE, TiledPredictor
from mssr.spectrum import Axis

CHAINS_PER_GROUP: int = 2
"""Chains sampled together: memory grows with this, not with ``repeats``."""


@dataclass(frozen=True)
class NativeSampling:
    """Sampler settings of the native mode.

    Attributes
    ----------
    sampler : {'ddpm', 'ddim', 'dpmsolver'}
        See :meth:`mssr.model.diffusion.Diffusion.sample`.
    steps : int
        Steps of the full respaced schedule.
    repeats : int
        Chains averaged (their SD is the uncertainty).
    start_step : int or None
        Start from the low-field input noised to this timestep (None: pure noise, the paper).
    consistency : bool
        Anchored models: project the x0 prediction onto the low-field data at every step
        (:class:`mssr.model.anchor.Consistency`), so that the network changes only what the
        broadening hid.
    batch_size : int
        Tiles per network call.
    tile, overlap : int
        Tile side and overlap, working points.
    seed : int
        Seed of the sampler's noise.
    network_weight : float or tuple of (float, float)
        Anchored models: the weight ``w`` of the network's correction of its anchor, the estimate
        being ``anchor + w (network - anchor)``: one number in [0, 1] for every field ratio, or
        ``(factor, weight)`` points (factors > 1, increasing) interpolated linearly in ``ln f``
        and held constant beyond the first and last (:func:`network_weight_at`). 1: the network's
        estimate as sampled; 0: the anchor alone.
    """

    sampler: str = "ddpm"
    steps: int = 500
    repeats: int = 5
    start_step: int | None = None
    consistency: bool = True
    batch_size: int = 4
    tile: int = TILE
    overlap: int = OVERLAP
    seed: int = 0
    network_weight: float | tuple = 1.0

    @classmethod
    def from_dict(cls, d: dict) -> "NativeSampling":
        if not isinstance(d, dict):
            raise TypeError(f"sampling settings must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"sampling settings: unknown key(s) {', '.join(unknown)}")
        if "network_weight" in d:
            d = {**d, "network_weight": validate_network_weight(d["network_weight"])}
        cfg = cls(**d)
        for name in ("steps", "repeats", "batch_size", "tile"):
            value = getattr(cfg, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(cfg.consistency, bool):
            raise TypeError(f"consistency must be true or false, got {cfg.consistency!r}")
        if cfg.repeats > LIMITS["repeats"]:
            raise ValueError(f"repeats must be at most {LIMITS['repeats']} ({LIMIT_REASONS['repeats']}), "
                             f"got {cfg.repeats}")
        return cfg


def enhance_plane(x: np.ndarray, axes, *, target_mhz: float, enhancer, sampling: NativeSampling,
                  experiment: str = "fixed", added_fwhm_px=None, anchor_balance: float | None = None,
                  progress: bool = False, info: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """High-field estimate of one plane and its per-point uncertainty, on the plane's own points.

    Parameters
    ----------
    x : ndarray, shape (n_indirect, n_direct), floating
        The recorded plane; axis 1 the directly detected 1H.
    axes : (Axis, Axis)
        Its axes (ppm, spectrometer MHz of the recording field).
    target_mhz : float
        1H frequency of the field to estimate, MHz.
    enhancer : mssr.model.sample.Enhancer
        A loaded native model (``extra['native']`` in its config).
    sampling : NativeSampling
        Sampler settings.
    experiment : {'fixed', 'hsqc', 'trosy'}
        How the lines changed between the fields (:mod:`mssr.data.linewidths`), for the anchor's
        kernel of an anchored model: ``fixed`` (widths fixed in Hz) unless the experiment is known.
    added_fwhm_px : (float, float), optional
        The anchor's kernel widths (working points, :func:`anchor_widths` of this plane, target
        and experiment), when already known; default: estimated from the plane's lines.
    anchor_balance : float, optional
        The anchor's regularization as an estimate (:func:`anchor_balance` of this plane and
        kernel), when already known; default: estimated.
    progress : bool
        Show a progress bar over the sampling steps.
    info : dict, optional
        Filled with ``anchor_fwhm_px`` (the anchor's kernel widths per axis, working points),
        ``anchor_balance`` (its regularization as an estimate), ``network_weight``
        (:func:`network_weight_at` of this plane's field ratio) and ``anchor`` (the anchor on the
        plane's points, as :func:`anchor_plane` gives it) for an anchored model.

    Returns
    -------
    mean, std : ndarray, float32, shape of ``x``
        The estimate and the SD of the chains, in the intensity unit of ``x``.
    """
    if not (isinstance(axes, (tuple, list)) and len(axes) == 2 and all(isinstance(a, Axis) for a in axes)):
        raise TypeError("axes must be a pair of mssr.spectrum.Axis")
    x = np.asarray(x)
    if x.ndim != 2 or x.shape != (axes[0].size, axes[1].size):
        raise ValueError(f"x must be 2D with the axes' shape {(axes[0].size, axes[1].size)}, got {x.shape}")
    low_mhz = axes[1].field_mhz
    factor = float(target_mhz) / low_mhz
    if not factor > 1.0:
        raise ValueError(f"target field {target_mhz} MHz must be above the recording field {low_mhz:.1f} MHz")
    experiment = validate_experiment(experiment)
    # 1.-2. working grid, network unit
    settings = enhancer.extra["native"].get("anchor")
    low, scale = _working(x, axes, target_mhz)
    widths = None
    if settings:
        widths = (_kernel(low, axes, target_mhz, experiment) if added_fwhm_px is None
                  else _checked_widths(added_fwhm_px))
    weight = network_weight_at(sampling.network_weight, factor)
    if widths is None and weight != 1.0:
        raise ValueError(f"network_weight {weight:g}: the model in {enhancer.model_dir} has no anchor to weight "
                         "its network against (only anchored native models take a weight below 1)")
    classical = alone = None
    if widths is not None:
        # the anchor as an estimate: as regularized as its lines allow (the network's input
        # keeps the balance it was trained with)
        balance = (anchor.estimate_balance(low, widths) if anchor_balance is None
                   else _checked_balance(anchor_balance))
        classical = anchor.deconvolve(low, widths, balance=balance)
        alone = grid.from_working(classical * scale, axes).astype(np.float32)
        if info is not None:
            info["anchor_fwhm_px"] = list(widths)
            info["anchor_balance"] = balance
            info["network_weight"] = round(weight, 4)
            info["anchor"] = alone
    if weight == 0.0:
        # the anchor alone: nothing to sample
        return alone, np.zeros_like(alone)
    # the network's input: the anchor at the balance it was trained with, or the plane itself
    x_in = anchor.deconvolve(low, widths, balance=float(settings["balance"])) if widths is not None else low
    x_lr = torch.as_tensor(x_in.astype(np.float32))[None, None].to(enhancer.device)
    multiple = 2 ** (enhancer.model_config.levels - 1)
    predictor = enhancer.predictor
    if enhancer.device.type == "cpu" and hasattr(predictor, "unet"):
        # NHWC convolutions are about 2x faster on the CPU for these narrow layers (bench_model.py)
        predictor = NoisePredictor(predictor.unet, channels_last=True).eval()
    tiled = TiledPredictor(predictor, multiple=multiple, tile=sampling.tile,
                           overlap=sampling.overlap, batch_size=sampling.batch_size)
    project = (anchor.Consistency(low, widths, balance=float(settings["balance"]))
               if widths is not None and sampling.consistency else None)
    generator = torch.Generator(device=enhancer.device).manual_seed(int(sampling.seed))
    # 3. chains in groups, their moments merged exactly (mssr.model.sample.combine_moments)
    moments = None
    done = 0
    while done < sampling.repeats:
        group = min(CHAINS_PER_GROUP, sampling.repeats - done)
        with torch.inference_mode():
            mean, std = enhancer.diffusion.sample(
                tiled, x_lr, torch.tensor([factor], dtype=torch.float64), sampler=sampling.sampler,
                steps=sampling.steps, repeats=group, batch_size=group, start_step=sampling.start_step,
                generator=generator, progress=progress, project_x0=project,
            )
        part = (group, mean[0, 0].double().cpu().numpy(), std[0, 0].double().cpu().numpy())
        moments = part if moments is None else combine_moments(moments, part)
        done += group
    _, mean_w, std_w = moments
    if not (np.isfinite(mean_w).all() and np.isfinite(std_w).all()):
        raise FloatingPointError(f"the model in {enhancer.model_dir} returned NaN or Inf")
    # 4. the network's estimate weighted against the anchor's
    if weight != 1.0:
        mean_w = classical + weight * (mean_w - classical)
        std_w = weight * std_w
    # 5. input unit, input points
    mean_out = grid.from_working(mean_w * scale, axes)
    std_out = np.maximum(grid.from_working(std_w * scale, axes), 0.0)
    return mean_out.astype(np.float32), std_out.astype(np.float32)


def anchor_plane(x: np.ndarray, axes, *, target_mhz: float, balance: float | None = None,
                 experiment: str = "fixed", added_fwhm_px=None) -> np.ndarray:
    """The anchor alone (no network) of one plane, on the plane's own points and in its unit.

    The classical first step of an anchored model (:mod:`mssr.model.anchor`), as
    :func:`enhance_plane` computes it: working grid, network unit, Wiener deconvolution by the
    Lorentzian the plane's own lines imply under the ``experiment``'s rule, and back.

    Parameters
    ----------
    balance : float, optional
        Wiener regularization; default :func:`mssr.model.anchor.estimate_balance` of the plane,
        the anchor :func:`enhance_plane` weighs the network against.
    added_fwhm_px : (float, float), optional
        The kernel widths, working points (:func:`anchor_widths`); default: estimated.
    """
    experiment = validate_experiment(experiment)
    low, scale = _working(x, axes, target_mhz)
    widths = (_kernel(low, axes, target_mhz, experiment) if added_fwhm_px is None
              else _checked_widths(added_fwhm_px))
    balance = anchor.estimate_balance(low, widths) if balance is None else _checked_balance(balance)
    y = anchor.deconvolve(low, widths, balance=balance)
    return grid.from_working(y * scale, axes).astype(np.float32)


def anchor_widths(x: np.ndarray, axes, *, target_mhz: float, experiment: str = "fixed") -> tuple[float, float]:
    """The anchor's kernel widths for one plane: the Lorentzian FWHM its lines imply, working points.

    What :func:`enhance_plane` and :func:`anchor_plane` estimate when not given ``added_fwhm_px``
    (:func:`mssr.model.anchor.added_widths_px` on the plane's working grid, in the network unit);
    estimate it once to run both on one plane (seconds on an isolated-peak plane, about a minute
    on a crowded one, where the widths are fitted).

    Returns
    -------
    (float, float)
        Added FWHM along the indirect and the direct axis, points of the working grid at ``target_mhz``.
    """
    experiment = validate_experiment(experiment)
    low, _ = _working(x, axes, target_mhz)
    return _kernel(low, axes, target_mhz, experiment)


def anchor_balance(x: np.ndarray, axes, *, target_mhz: float, added_fwhm_px) -> float:
    """The anchor's regularization as an estimate for one plane and kernel (dimensionless).

    What :func:`enhance_plane` and :func:`anchor_plane` choose when not given it
    (:func:`mssr.model.anchor.estimate_balance` on the plane's working grid, in the network unit);
    choose it once to run both on one plane.

    Parameters
    ----------
    added_fwhm_px : (float, float)
        The anchor's kernel widths, working points (:func:`anchor_widths`).
    """
    low, _ = _working(x, axes, target_mhz)
    return float(anchor.estimate_balance(low, _checked_widths(added_fwhm_px)))


def _working(x, axes, target_mhz: float):
    """Step 1: the plane on its working grid in the network's unit, and that unit (``low, scale``)."""
    work, _ = grid.to_working(np.asarray(x, dtype=np.float64), axes, target_mhz=target_mhz)
    scale = network_scale(work)
    return work / scale, scale


def _kernel(low: np.ndarray, axes, target_mhz: float, experiment: str) -> tuple[float, float]:
    """The anchor's kernel widths of a working-grid plane ``low`` (working points)."""
    ratio = width_ratio(experiment, [ax.nucleus for ax in axes], axes[1].field_mhz, target_mhz)
    widths = anchor.added_widths_px(low, float(target_mhz) / axes[1].field_mhz, ratio=ratio)
    return tuple(float(w) for w in widths)


def _checked_widths(added_fwhm_px) -> tuple[float, float]:
    widths = tuple(float(w) for w in np.ravel(np.asarray(added_fwhm_px, dtype=np.float64)))
    if len(widths) != 2 or not all(np.isfinite(w) and w >= 0 for w in widths):
        raise ValueError(f"added_fwhm_px must be two finite widths >= 0 (working points), got {added_fwhm_px!r}")
    return widths


def _checked_balance(balance) -> float:
    value = float(balance)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"the anchor's balance must be a finite number > 0, got {balance!r}")
    return value


def is_native(extra: dict) -> bool:
    """Whether a model's ``config.json`` ``extra`` describes a native-resolution model."""
    return isinstance(extra, dict) and isinstance(extra.get("native"), dict)


def default_sampling(extra: dict, **overrides) -> NativeSampling:
    """The sampler settings a native model was validated with, updated by ``overrides``.

    A key given overrides, also with None for ``start_step`` (pure noise); None for any other key
    keeps the model's value.
    """
    base = dict(extra["native"].get("sample") or {})
    base.update({k: v for k, v in overrides.items() if v is not None or k == "start_step"})
    return NativeSampling.from_dict(base)


__all__ = ["CHAINS_PER_GROUP", "NativeSampling", "anchor_balance", "anchor_plane", "anchor_widths", "default_sampling", "enhance_plane", "is_native"]
