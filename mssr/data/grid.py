"""The working grid of the native-resolution mode: a ppm grid that resolves the high-field lines.

A spectrum goes onto the working grid before the network sees it and comes back onto its own
points afterwards. The grid keeps the spectrum's ppm window (the outer edges of its first and last
points, as :meth:`mssr.spectrum.Axis.resized` does) and changes only the number of points, so that
the narrowest line expected at the *target* field spans at least :data:`POINTS_PER_FWHM` points on
every axis::

    spacing (Hz at the target field) = NARROWEST_FWHM_HZ[nucleus] / POINTS_PER_FWHM
    points = ceil(spectral width of the window at the target field (Hz) / spacing)

Zero-filled spectra are coarsened to it, under-digitized ones refined. Because the spacing is
fixed in Hz at the target field, a line of a given width in Hz covers the same number of working
points whatever the spectrometer: the network sees the same line shapes on every input.

Resampling is band-limited (the DCT-II of each axis is zero-padded or truncated, i.e. the
spectrum is interpolated with its own cosine series, with an even extension at the window edges
so no edge rings). It is exact for a refinement followed by the way back, and for a line with at
least 3 points per FWHM it keeps width and height within 1% (a Lorentzian of FWHM 3 points has
less than 1% of its Fourier amplitude beyond the Nyquist frequency).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import fft as sp_fft

from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis

NARROWEST_FWHM_HZ: dict[str, float] = {
    # amide 1H of small proteins at high field: 15-30 Hz (NMR_NOTES, est.); 12 Hz leaves margin
    "1H": 12.0,
    # backbone 15N: 4.1 Hz at 400 MHz, 5.9 Hz at 900 MHz for 20 kDa (est.); TROSY lines narrower
    "15N": 5.0,
    # 13C-alpha ~14 Hz (est.); methyls and C' can be narrower
    "13C": 10.0,
}
"""Narrowest high-field linewidth (FWHM, Hz) the working grid must resolve, per nucleus."""

POINTS_PER_FWHM: float = 3.0
"""Working points per FWHM of the narrowest expected high-field line."""

MAX_POINTS: int = 8192
"""Largest working-grid axis, points: a guard against headers with absurd spectral widths."""


def _validate_axes(axes) -> tuple[Axis, ...]:
    if not isinstance(axes, Sequence) or not axes or not all(isinstance(a, Axis) for a in axes):
        raise TypeError("axes must be a non-empty sequence of mssr.spectrum.Axis")
    return tuple(axes)


def _validate_field(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (MHz), got {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a finite field > 0 MHz, got {value}")
    return float(value)


def working_spacing_hz(nucleus: str) -> float:
    """Working-grid point spacing of ``nucleus`` at the target field, Hz."""
    if nucleus not in NARROWEST_FWHM_HZ:
        raise ValueError(
            f"no working grid for nucleus {nucleus!r}; supported: {sorted(NARROWEST_FWHM_HZ)}"
        )
    return NARROWEST_FWHM_HZ[nucleus] / POINTS_PER_FWHM


def working_axis(axis: Axis, *, target_mhz: float) -> Axis:
    """The working axis of ``axis`` for a target magnet of ``target_mhz`` (1H MHz).

    Parameters
    ----------
    axis : Axis
        The spectrum's own axis.
    target_mhz : float
        1H frequency of the field to be estimated, MHz.

    Returns
    -------
    Axis
        Same nucleus, spectrometer frequency and ppm window as ``axis``, with the number of points
        that gives at most :func:`working_spacing_hz` Hz per point at ``target_mhz``.
    """
    if not isinstance(axis, Axis):
        raise TypeError(f"axis must be an mssr.spectrum.Axis, got {type(axis).__name__}")
    target_mhz = _validate_field("target_mhz", target_mhz)
    window_ppm = axis.sw_hz / axis.obs_mhz
    window_hz = window_ppm * target_mhz * GYROMAGNETIC_RATIO_TO_1H[axis.nucleus]
    size = math.ceil(window_hz / working_spacing_hz(axis.nucleus) - 1e-9)
    if size > MAX_POINTS:
        raise ValueError(
            f"the {axis.nucleus} axis spans {window_ppm:.1f} ppm: its working grid would need {size} points "
            f"(more than {MAX_POINTS}); is the header's spectral width right?"
        )
    return axis.resized(max(size, 8))


def working_axes(axes, *, target_mhz: float) -> tuple[Axis, ...]:
    """:func:`working_axis` of every axis."""
    return tuple(working_axis(a, target_mhz=target_mhz) for a in _validate_axes(axes))


def resample(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Band-limited resampling of an array onto ``shape`` points over the same window.

    Each axis is transformed with an orthonormal DCT-II (point centres at (i + 1/2) of the window
    divided by its size, even extension at the edges), its coefficients zero-padded or truncated to
    the new size, and transformed back; the result is scaled by ``sqrt(new / old)`` per axis, so
    that heights (not integrals) are kept.

    Parameters
    ----------
    x : ndarray, floating
        Spectrum, any number of dimensions.
    shape : sequence of int
        New size of every axis, points.

    Returns
    -------
    ndarray
        The resampled spectrum, dtype of ``x``.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point array, got {x.dtype}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != x.ndim or any(s < 1 for s in shape):
        raise ValueError(f"shape must give a positive size for each of the {x.ndim} axes, got {shape}")
    y = x.astype(np.float64)
    for axis, new in enumerate(shape):
        old = y.shape[axis]
        if new == old:
            continue
        c = sp_fft.dct(y, type=2, norm="ortho", axis=axis)
        if new < old:
            c = np.take(c, np.arange(new), axis=axis)
        else:
            pad = [(0, 0)] * y.ndim
            pad[axis] = (0, new - old)
            c = np.pad(c, pad)
        y = sp_fft.idct(c, type=2, norm="ortho", axis=axis) * math.sqrt(new / old)
    return y.astype(x.dtype, copy=False)


def to_working(x: np.ndarray, axes, *, target_mhz: float) -> tuple[np.ndarray, tuple[Axis, ...]]:
    """A spectrum on its working grid: (array, working axes).

    Parameters
    ----------
    x : ndarray, shape (n_0, ..., n_k)
        Spectrum on ``axes``.
    axes : sequence of Axis
        Its axes, in array order.
    target_mhz : float
        1H frequency of the field to be estimated, MHz.
    """
    axes = _validate_axes(axes)
    x = np.asarray(x)
    if x.shape != tuple(a.size for a in axes):
        raise ValueError(f"x has shape {x.shape}, the axes give {tuple(a.size for a in axes)}")
    work = working_axes(axes, target_mhz=target_mhz)
    return resample(x, [a.size for a in work]), work


def from_working(x: np.ndarray, axes) -> np.ndarray:
    """A working-grid array back onto the spectrum's own points (``axes``: the original axes)."""
    axes = _validate_axes(axes)
    return resample(x, [a.size for a in axes])


__all__ = [
    "MAX_POINTS",
    "NARROWEST_FWHM_HZ",
    "POINTS_PER_FWHM",
    "from_working",
    "resample",
    "to_working",
    "working_axes",
    "working_axis",
    "working_spacing_hz",
]
