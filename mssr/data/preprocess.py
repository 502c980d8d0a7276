"""Model inputs: 2D spectra resized to S x S pixels and normalized to [-1, 1].

Order and formulas
------------------
``preprocess`` first resizes, then normalizes, so that the stored sample's largest magnitude is
exactly 1::

    r       = resize(x, S)               # anti-aliased, ppm window kept
    scale   = max |r|                    # 1.0 when r is all zeros
    x_norm  = r / scale                  # in [-1, 1]; 0 stays 0; negative peaks stay negative
    r       = x_norm * scale             # how outputs map back to the resized intensities

Resizing (per axis, separable)
------------------------------
Downsampling integrates: each output pixel is the mean of the input over the output pixel's
extent, with input pixels taken as constant over their own extent (fractional overlaps for
non-integer ratios; block means for integer ones). The integral (sum x pixel area in ppm^2) is
kept exactly, so a peak narrower than an output pixel keeps its volume instead of falling
between the sampled points as in plain subsampling. Upsampling interpolates linearly between
point centres (heights kept). The ppm window (outer edges) is kept: :meth:`Axis.resized`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mssr.data.store import read_planes, write_samples
from mssr.spectrum import Spectrum

log = logging.getLogger(__name__)


def _validate_array(x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    if np.iscomplexobj(x):
        raise ValueError("x must be real")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or Inf values")
    return x


def _validate_size(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        size = tuple(size)
    else:
        raise TypeError(f"size must be an int S or a pair (H, W) of pixels, got {size!r}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in size):
        raise ValueError(f"size must hold positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _float_dtype(x: np.ndarray) -> np.dtype:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


def normalize(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Divide by the largest magnitude: ``x_norm = x / max|x|``.

    Parameters
    ----------
    x : ndarray
        Real intensities (any shape).

    Returns
    -------
    x_norm : ndarray
        Same shape, the caller's float dtype (float64 for integers); values in [-1, 1], the
        largest magnitude exactly +-1, zeros stay zero, signs kept.
    scale : float
        ``max|x|`` (1.0 when ``x`` is all zeros), so that ``x == x_norm * scale``.
    """
    _validate_array(x)
    dtype = _float_dtype(x)
    x = x.astype(dtype, copy=False)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    scale = peak if peak > 0 else 1.0
    return x / dtype.type(scale), scale


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Linear map from ``n_in`` to ``n_out`` points over the same window, shape (n_out, n_in).

    Downsampling (``n_out < n_in``): row ``j`` averages the input over output pixel ``j``'s
    extent, ``M[j, i] = overlap(j, i) / (n_in / n_out)`` in input-pixel units, so that
    ``M.sum(axis=0) * n_in / n_out == 1`` (integral kept). Upsampling: linear interpolation at
    the output point centres ``(j + 0.5) n_in / n_out - 0.5`` (clamped to the end points).
    """
    if n_out == n_in:
        return np.eye(n_in)
    if n_out < n_in:
        edges = np.linspace(0.0, n_in, n_out + 1)
        left = np.arange(n_in, dtype=np.float64)
        overlap = np.minimum(edges[1:, None], left[None, :] + 1.0) - np.maximum(edges[:-1, None], left[None, :])
        return np.clip(overlap, 0.0, None) * (n_out / n_in)
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
    i0 = np.minimum(np.floor(pos).astype(int), n_in - 2) if n_in > 1 else np.zeros(n_out, dtype=int)
    frac = pos - i0
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    m[rows, i0] = 1.0 - frac
    if n_in > 1:
        m[rows, i0 + 1] += frac
    return m


def resize(spectrum: Spectrum, size) -> Spectrum:
    """Resize a 2D spectrum to ``size`` pixels with anti-aliasing, keeping its ppm window.

    Parameters
    ----------
    spectrum : Spectrum
        2D spectrum.
    size : int or (int, int)
        S (for S x S) or (H, W), pixels.

    Returns
    -------
    Spectrum
        Resized data (caller's float dtype), axes :meth:`Axis.resized`, meta unchanged.
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a Spectrum, got {type(spectrum).__name__}")
    if spectrum.ndim != 2:
        raise ValueError(f"spectrum must be 2D (project 3D/4D spectra first), got shape {spectrum.shape}")
    h, w = _validate_size(size)
    x = _validate_array(np.asarray(spectrum.data))
    dtype = _float_dtype(x)
    rows = resample_matrix(x.shape[0], h)
    cols = resample_matrix(x.shape[1], w)
    x64 = x.astype(np.float64)
    # associativity: multiply first along the axis that shrinks the intermediate most
    if h * x.shape[1] <= x.shape[0] * w:
        out = (rows @ x64) @ cols.T
    else:
        out = rows @ (x64 @ cols.T)
    out = out.astype(dtype)
    axes = (spectrum.axes[0].resized(h), spectrum.axes[1].resized(w))
    return spectrum.with_data(out, axes)


def preprocess(spectrum: Spectrum, *, size) -> Spectrum:
    """Resize to ``size`` then normalize (see the module notes for the exact formulas).

    Returns
    -------
    Spectrum
        Data in [-1, 1] with max |x| = 1 (unless all zero); meta gains ``scale`` (the resized
        spectrum is ``data * scale``).
    """
    resized = resize(spectrum, size)
    x_norm, scale = normalize(resized.data)
    return resized.with_data(x_norm, scale=scale)


def preprocess_file(planes_h5, out_h5, *, size) -> Path:
    """Preprocess every plane of a plane set into an S x S sample set.

    Parameters
    ----------
    planes_h5 : str or Path
        Output of :func:`mssr.data.project.project_manifest`.
    out_h5 : str or Path
        Sample set (:func:`mssr.data.store.write_samples`), float32 (N, H, W), written atomically;
        headers keep the axes and the meta (protein, experiment, projection, scale, ...).
    size : int or (int, int)
        Pixels.

    Returns
    -------
    Path
        ``out_h5``.
    """
    h, w = _validate_size(size)
    planes = read_planes(planes_h5)
    if not planes:
        raise ValueError(f"{planes_h5}: plane set holds no spectrum")
    samples = []
    for i, plane in enumerate(planes):
        try:
            samples.append(preprocess(plane, size=(h, w)))
        except ValueError as exc:
            raise ValueError(f"{planes_h5}: plane {i} ({plane.meta.get('source', '?')}): {exc}") from exc
    x = np.stack([s.data for s in samples]).astype(np.float32)
    attrs = {"stage": "preprocess", "size": [h, w], "n_samples": len(samples), "source": str(planes_h5),
             "normalization": "x_norm = resize(x) / max|resize(x)|; meta.scale = max|resize(x)|"}
    log.info("%d planes -> %d samples of %d x %d pixels", len(planes), len(samples), h, w)
    return write_samples(out_h5, x, [s.header() for s in samples], attrs=attrs)
