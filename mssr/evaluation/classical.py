"""Non-learned resolution enhancement baselines: identity, Richardson-Lucy and Wiener deconvolution.

They work on the processed 2D frequency-domain spectrum (normalized to [-1, 1]) with a blur
kernel ``psf`` that the caller knows (the low-field model's kernel, in pixels). Outputs are
clipped to [-1, 1] and keep the input's shape and float dtype; the arithmetic is float64.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Literal, get_args

import numpy as np
from skimage import restoration

Method = Literal["identity", "richardson_lucy", "wiener", "unsupervised_wiener"]
"""Enhancement method; see :func:`enhance`."""


def _validate_image(x, name: str, ndim: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a float dtype, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}D, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _validate_psf(psf, image_shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(psf, np.ndarray):
        raise TypeError(f"psf must be a numpy array, got {type(psf).__name__}")
    if psf.ndim != 2 or not np.issubdtype(psf.dtype, np.floating):
        raise ValueError(f"psf must be a 2D float kernel, got shape {psf.shape} and dtype {psf.dtype}")
    # An even side has no centre pixel: the deconvolved spectrum would move by half a pixel.
    if any(n % 2 == 0 for n in psf.shape):
        raise ValueError(f"psf must have odd sides, got shape {psf.shape}")
    if psf.shape[0] > image_shape[0] or psf.shape[1] > image_shape[1]:
        raise ValueError(f"psf {psf.shape} must not be larger than the spectrum {image_shape}")
    if not np.isfinite(psf).all() or (psf < 0).any():
        raise ValueError("psf must be finite and non-negative")
    if abs(psf.sum() - 1.0) > 1e-6:
        raise ValueError(f"psf must sum to 1, sums to {psf.sum():.8g}")
    return psf.astype(np.float64)


def _validate_options(method, iterations, balance, seed) -> None:
    if method not in get_args(Method):
        raise ValueError(f"method must be one of {get_args(Method)}, got {method!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, Integral):
        raise TypeError(f"iterations must be an int, got {type(iterations).__name__}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if isinstance(balance, bool) or not isinstance(balance, Real):
        raise TypeError(f"balance must be a real number, got {type(balance).__name__}")
    if not (np.isfinite(balance) and balance > 0):
        raise ValueError(f"balance must be finite and > 0, got {balance}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _richardson_lucy_signed(x: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    """Richardson-Lucy on the positive and the negative part of ``x`` separately, recombined."""
    result = np.zeros_like(x)
    for sign in (1.0, -1.0):
        part = np.maximum(sign * x, 0.0)
        if part.any():
            result += sign * restoration.richardson_lucy(part, psf, num_iter=iterations, clip=False)
    return result


def _enhance_one(x, psf, method, iterations, balance, rng) -> np.ndarray:
    if method == "identity":
        return x
    if method == "richardson_lucy":
        return _richardson_lucy_signed(x, psf, iterations)
    if method == "wiener":
        return restoration.wiener(x, psf, balance, clip=False)
    estimate, _ = restoration.unsupervised_wiener(x, psf, clip=False, rng=rng)
    return estimate


def enhance_many(
    x_lr: np.ndarray,
    psf: np.ndarray,
    *,
    method: Method,
    iterations: int = 30,
    balance: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """Enhance a stack of low-field spectra, one spectrum at a time.

    Parameters
    ----------
    x_lr : ndarray, shape (N, H, W), float
        Low-field spectra on the [-1, 1] scale.
    psf, method, iterations, balance
        As in :func:`enhance`.
    seed : int, optional
        Seeds ``"unsupervised_wiener"`` (a Gibbs sampler): spectrum ``i`` uses
        ``numpy.random.default_rng((seed, i))``, so results do not depend on batching order
        within the stack. Ignored by the other methods.

    Returns
    -------
    ndarray, shape (N, H, W)
        Enhanced spectra, clipped to [-1, 1], in ``x_lr``'s dtype.
    """
    x_lr = _validate_image(x_lr, "x_lr", 3)
    psf64 = _validate_psf(psf, x_lr.shape[1:])
    _validate_options(method, iterations, balance, seed)
    out = np.empty_like(x_lr)
    for i, spectrum in enumerate(x_lr):
        enhanced = _enhance_one(
            spectrum.astype(np.float64), psf64, method, iterations, balance, np.random.default_rng((seed, i))
        )
        out[i] = np.clip(enhanced, -1.0, 1.0)
    return out


def enhance(
    x_lr: np.ndarray,
    psf: np.ndarray,
    *,
    method: Method,
    iterations: int = 30,
    balance: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """Enhance one low-field spectrum with a non-learned method and the known blur kernel.

    Methods:

    - ``"identity"``: no enhancement (the low-field input itself, clipped): the floor every
      method must beat.
    - ``"richardson_lucy"``: ``iterations`` steps of ``skimage.restoration.richardson_lucy``.
      Its multiplicative update is derived for non-negative (Poisson) images and keeps an
      estimate non-negative, so a signed spectrum cannot be deconvolved as is; and adding an
      offset to make it positive leaves the peaks as a small relative contrast on a large
      background, where the update barely moves. Instead the positive part ``max(x, 0)`` and the
      negative part ``max(-x, 0)`` are deconvolved separately and subtracted. This is exact where
      positive and negative peaks do not overlap after blurring (they then blur independently);
      where they overlap, partial cancellation in ``x`` is not undone. Rectified noise is
      deconvolved as signal, like any noise under Richardson-Lucy.
    - ``"wiener"``: ``skimage.restoration.wiener`` with the Laplacian regularizer and weight
      ``balance`` (noise-to-signal power). Linear, so signs need no special care; it assumes
      periodic boundaries.
    - ``"unsupervised_wiener"``: ``skimage.restoration.unsupervised_wiener``, which estimates the
      regularization from the data by Gibbs sampling (seeded by ``seed``); ``balance`` unused.

    Parameters
    ----------
    x_lr : ndarray, shape (H, W), float
        Low-field spectrum on the [-1, 1] scale.
    psf : ndarray, shape (h, w), float
        Blur kernel in pixels, centred, odd sides no larger than the spectrum, non-negative,
        summing to 1 (within 1e-6).
    method : {"identity", "richardson_lucy", "wiener", "unsupervised_wiener"}
        Enhancement method.
    iterations : int, optional
        Richardson-Lucy iterations.
    balance : float, optional
        Wiener regularization weight (> 0).
    seed : int, optional
        Seed of ``"unsupervised_wiener"``; equals ``enhance_many(x_lr[None], ...)[0]``.

    Returns
    -------
    ndarray, shape (H, W)
        Enhanced spectrum clipped to [-1, 1], in ``x_lr``'s dtype.

    Examples
    --------
    >>> psf = np.full((3, 3), 1 / 9)
    >>> x = np.zeros((16, 16), np.float32)
    >>> enhance(x, psf, method="wiener").dtype
    dtype('float32')
    """
    x_lr = _validate_image(x_lr, "x_lr", 2)
    return enhance_many(
        x_lr[None], psf, method=method, iterations=iterations, balance=balance, seed=seed
    )[0]
