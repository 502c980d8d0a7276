"""Low-field simulation: what a spectrum recorded at high field would look like at a lower one.

Two models of the low-field spectrum ``x_lr`` of a high-field spectrum ``x0`` (2D, on the
normalized intensity scale) and an upscaling factor ``f = high MHz / low MHz`` are provided:

``'paper'``
    The MSSR paper's model (section 3.3), as written::

        x_lr = GaussianBlur(x0, sigma = 1 / f pixels) + N(0, sigma_lr^2),   sigma_lr = 0.01

    The blur is :func:`scipy.ndimage.gaussian_filter` (sampled Gaussian, ``truncate=4``) with the
    boundary mode ``'reflect'`` (half-sample symmetric: a flat baseline stays flat at the edges).
    For sigma < 1 px the sampled kernel is narrower than the continuous Gaussian: at f = 9/4
    (sigma = 0.444 px, sigma^2 = 0.198 px^2) its second moment is 0.138 px^2.

``'physical'``
    Per-axis broadening computed from linewidths in Hz and the two field strengths on the
    sample's own ppm grid (see NMR_NOTES.md). For an axis of nucleus X::

        LW(B) = dipolar_hz + csa_hz * (B / B_ref)^2                      (Hz)
        added FWHM (px) = (LW(B_low) / MHz_X(B_low) - LW(B_high) / MHz_X(B_high)) / (ppm per px)

    with ``B_low = B_high / f``. A Lorentzian line convolved with a Lorentzian of FWHM ``a`` has
    FWHM ``w + a``, so this broadening turns every high-field line of that nucleus into its
    low-field width. It is applied as in NMR processing, by multiplying the time-domain signal
    (the Fourier transform of the spectrum along the axis) with ``exp(-pi * a * |nu|)``, ``nu`` in
    cycles per pixel; the spectrum is extended by symmetric reflection (one axis length on each
    side) first, so lines near an edge do not wrap around. With ``lineshape='gaussian'`` (lines
    whose shape is set by Gaussian apodization) widths add in quadrature instead and the filter is
    a Gaussian.

    Noise. Peak-height S/N scales as B0^(3/2) for lines of equal width in Hz, each spectrum in
    its own units (NMR_NOTES.md), and, at equal amplitude and acquisition, as 1 / (width in Hz)
    per axis (the height of a Lorentzian of fixed area). With ``SNR_high = 1 / sigma_high`` (noise
    SD over the peak height ``max|x0|``) the low-field spectrum must have::

        SNR_low = SNR_high * f^(-3/2) * prod_k LW_high,k / LW_low,k                 (Hz widths)
        sigma_low = 1 / SNR_low = sigma_high * f^(3/2) * prod_k LW_low,k / LW_high,k

    and its noise SD is ``sigma_low`` times the *broadened* spectrum's own peak height
    ``max|blur(x0)|``. For lines fixed in Hz this is ``height_low / (SNR_high / f^1.5)``. The
    former rule, noise ``sigma_high * f^(3/2) * max|x0|``, ignored that the volume-keeping
    broadening had already lowered the heights (by ``prod_k w_high,k / w_low,k``, f per axis for
    lines fixed in Hz): the S/N then fell as f^(3/2) * f^d = f^(7/2) in 2D (f^(5/2) with one
    broadened axis) instead of f^(3/2). ``LW_low`` is the width the model draws: on a clamped axis
    (see below) the high-field ppm width, ``LW_high / f`` Hz. The time-domain renderer
    (:mod:`mssr.data.timedomain`, FIDs with field-scaled amplitude and noise, the same processing)
    obeys the same rule by construction; the tests compare the two on one peak at two fields.

    Where a line is narrower in ppm at low field (CSA-dominated nuclei such as 13C'), the added
    width is negative and no blur can produce it. :func:`simulate_physical_info` reports it
    (``producible=False``); :func:`simulate` clamps that axis' width to 0 and issues an
    :class:`UnproducibleBroadeningWarning`.

The module works on numpy arrays only and knows no file formats.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real
from typing import Literal, get_args

import numpy as np
from scipy import ndimage

from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis

DegradeModel = Literal["paper", "physical"]
Lineshape = Literal["lorentzian", "gaussian"]

SIGMA_LR: float = 0.01
"""Noise standard deviation of the paper's model, normalized intensity units."""

PAPER_MODE: str = "reflect"
"""Boundary mode of the paper model's Gaussian blur (see :func:`scipy.ndimage.gaussian_filter`)."""

SIGMA_HIGH: float = 0.01
"""Default noise standard deviation of the high-field spectrum relative to its peak height."""

_GAUSS_TRUNCATE = 4.0
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


# ---------------------------------------------------------------------------------------------
# validation


def _validate_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)


def _validate_nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


def _validate_image(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2D array (H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def _validate_model(model) -> str:
    if model not in get_args(DegradeModel):
        raise ValueError(f"model must be one of {get_args(DegradeModel)}, got {model!r}")
    return model


_NDIMAGE_MODES = ("reflect", "constant", "nearest", "mirror", "wrap", "grid-constant", "grid-mirror", "grid-wrap")


def _validate_mode(mode) -> str:
    if mode not in _NDIMAGE_MODES:
        raise ValueError(f"mode must be one of {_NDIMAGE_MODES}, got {mode!r}")
    return mode


def _validate_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _validate_shape(shape) -> tuple[int, int]:
    if not isinstance(shape, Sequence) or len(shape) != 2:
        raise TypeError(f"shape must be a pair of ints (H, W), got {shape!r}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(f"shape must hold two positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


_PAPER_PARAMS = ("sigma_lr", "mode")
_PHYSICAL_PARAMS = ("axes", "high_mhz", "linewidths", "sigma_high", "lineshape", "input_noise")


def _validate_params(model: str, params: Mapping) -> dict:
    allowed = _PAPER_PARAMS if model == "paper" else _PHYSICAL_PARAMS
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for the {model!r} model; it accepts {list(allowed)}")
    return dict(params)


def _validate_axes(axes) -> tuple[tuple[str, str], tuple[float, float], float | None]:
    """(nuclei, ppm per px, field MHz or None) from 2 Axis objects or a (nuclei, ppm_per_px) pair."""
    if axes is None:
        raise ValueError(
            "axes is required by the 'physical' model: the sample's 2 Axis objects or (nuclei, ppm_per_px)"
        )
    if not isinstance(axes, Sequence) or len(axes) != 2:
        raise TypeError(f"axes must be 2 Axis objects or a (nuclei, ppm_per_px) pair, got {axes!r}")
    if all(isinstance(a, Axis) for a in axes):
        nuclei = (axes[0].nucleus, axes[1].nucleus)
        ppm = (axes[0].ppm_per_point, axes[1].ppm_per_point)
        fields = [a.field_mhz for a in axes]
        if abs(fields[0] - fields[1]) > 1e-3 * fields[1]:
            raise ValueError(f"axes were recorded at different fields ({fields[0]:.3f} and {fields[1]:.3f} MHz)")
        return nuclei, ppm, fields[1]
    nuclei, ppm = axes
    if isinstance(nuclei, str) or not isinstance(nuclei, Sequence) or len(nuclei) != 2:
        raise TypeError(f"axes: nuclei must be a pair of nucleus names such as ('15N', '1H'), got {nuclei!r}")
    for n in nuclei:
        if n not in GYROMAGNETIC_RATIO_TO_1H:
            raise ValueError(
                f"axes: nucleus {n!r} is not supported; expected one of {sorted(GYROMAGNETIC_RATIO_TO_1H)}"
            )
    if not isinstance(ppm, Sequence) or len(ppm) != 2:
        raise TypeError(f"axes: ppm_per_px must be a pair of numbers, got {ppm!r}")
    ppm = tuple(_validate_positive("ppm_per_px", p) for p in ppm)
    return (str(nuclei[0]), str(nuclei[1])), ppm, None


def _validate_linewidths(linewidths) -> dict[str, Linewidth]:
    merged = dict(DEFAULT_LINEWIDTHS)
    if linewidths is None:
        return merged
    if not isinstance(linewidths, Mapping):
        raise TypeError(f"linewidths must be a mapping nucleus -> Linewidth, got {type(linewidths).__name__}")
    for nucleus, value in linewidths.items():
        if isinstance(value, Linewidth):
            merged[nucleus] = value
        elif isinstance(value, Mapping):
            merged[nucleus] = Linewidth(**value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            merged[nucleus] = Linewidth(*value)
        elif isinstance(value, Real) and not isinstance(value, bool):
            merged[nucleus] = Linewidth(dipolar_hz=float(value))
        else:
            raise TypeError(
                f"linewidths[{nucleus!r}] must be a Linewidth, a dict of its fields, a (dipolar_hz, csa_hz) "
                f"pair or a fixed width in Hz, got {value!r}"
            )
    return merged


def _validate_lineshape(lineshape) -> str:
    if lineshape not in get_args(Lineshape):
        raise ValueError(f"lineshape must be one of {get_args(Lineshape)}, got {lineshape!r}")
    return lineshape


class UnproducibleBroadeningWarning(UserWarning):
    """The low-field line would be narrower (in ppm) than the high-field one on some axis."""


@dataclass(frozen=True)
class Linewidth:
    """Field dependence of a natural linewidth: ``LW(B) = dipolar_hz + csa_hz * (B / ref_mhz)^2``.

    Parameters
    ----------
    dipolar_hz : float
        Field-independent part (dipolar relaxation, exchange, truncation), Hz.
    csa_hz : float
        Chemical-shift-anisotropy part at ``ref_mhz``, Hz; grows with the square of the field.
    ref_mhz : float
        1H frequency at which ``csa_hz`` is stated, MHz.
    """

    dipolar_hz: float
    csa_hz: float = 0.0
    ref_mhz: float = 900.0

    def __post_init__(self):
        for name in ("dipolar_hz", "csa_hz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"Linewidth.{name} must be a finite number >= 0, got {value!r}")
        _validate_positive("ref_mhz", self.ref_mhz)
        if self.dipolar_hz + self.csa_hz <= 0:
            raise ValueError("Linewidth must be > 0 Hz (dipolar_hz + csa_hz)")

    def at(self, field_mhz: float) -> float:
        """Linewidth (FWHM, Hz) on a magnet of 1H frequency ``field_mhz`` (MHz)."""
        field_mhz = _validate_positive("field_mhz", field_mhz)
        return self.dipolar_hz + self.csa_hz * (field_mhz / self.ref_mhz) ** 2

    @classmethod
    def from_two_fields(cls, low_mhz: float, lw_low_hz: float, high_mhz: float, lw_high_hz: float) -> "Linewidth":
        """The linewidth model through two (field MHz, linewidth Hz) points, referenced to ``high_mhz``."""
        low_mhz = _validate_positive("low_mhz", low_mhz)
        high_mhz = _validate_positive("high_mhz", high_mhz)
        if not high_mhz > low_mhz:
            raise ValueError(f"high_mhz ({high_mhz}) must be greater than low_mhz ({low_mhz})")
        csa = (lw_high_hz - lw_low_hz) / (1.0 - (low_mhz / high_mhz) ** 2)
        return cls(dipolar_hz=lw_high_hz - csa, csa_hz=csa, ref_mhz=high_mhz)


DEFAULT_LINEWIDTHS: dict[str, Linewidth] = {
    # The widths of the lines as processed, not only their relaxation: what the spectrum on the grid
    # shows. Amide 1H and 15N are the processed FWHM of mssr.data.timedomain's 2D 1H-15N HSQC of a
    # 20 kDa protein (natural 1H 16.8 / 17.5 Hz, 15N 2.9 / 4.3 Hz at 400 / 900 MHz; cos^2 windows
    # over 85 ms 1H and 64 ms 15N acquisitions), through the points at 400 and 900 MHz. The former
    # natural-only widths (1H 20 Hz, 15N 4.1 / 5.9 Hz) under-broadened the time-domain pairs: on a
    # RefDB protein's HSQC at 900 -> 600 MHz (fine grid) the relative MSE of degrade vs the renderer
    # was 0.066 with them and 0.014 with the processed widths for its mass (no broadening: 0.171);
    # tests/test_degrade.py checks these widths against the renderer.
    "1H": Linewidth.from_two_fields(400.0, 21.67, 900.0, 22.21),
    "15N": Linewidth.from_two_fields(400.0, 16.53, 900.0, 17.06),
    # 13C-alpha (est.): ~14 Hz at both fields (no time-domain 13C renderer yet)
    "13C": Linewidth(dipolar_hz=14.0, csa_hz=0.0),
}
"""Linewidth models per nucleus for a ~20 kDa protein: processed widths of the time-domain renderer (1H, 15N)."""


@dataclass(frozen=True)
class PhysicalBroadening:
    """The physical model's numbers for one sample and factor.

    Attributes
    ----------
    factor : float
        Upscaling factor high MHz / low MHz.
    high_mhz, low_mhz : float
        1H frequencies of the two magnets, MHz.
    nuclei : tuple of str
        Nucleus of each axis.
    ppm_per_px : tuple of float
        Grid spacing of each axis, ppm.
    linewidth_high_hz, linewidth_low_hz : tuple of float
        Natural linewidth (FWHM) on each axis at the two fields, Hz.
    fwhm_high_px, fwhm_low_px : tuple of float
        The same linewidths on the pixel grid, px.
    added_fwhm_px : tuple of float
        FWHM of the broadening kernel each axis needs, px; negative where the line is narrower at
        low field.
    applied_fwhm_px : tuple of float
        ``added_fwhm_px`` clamped to >= 0: what :func:`simulate` applies.
    producible : bool
        False if any ``added_fwhm_px`` is negative.
    lineshape : str
        ``'lorentzian'`` or ``'gaussian'``.
    sigma_high, sigma_low : float
        Noise standard deviation relative to the peak height at the two fields (``1 / SNR``):
        ``sigma_low = sigma_high * f^1.5 * prod_k LW_low,k / LW_high,k`` (module notes), with
        ``LW_low`` the drawn width (high-field ppm width on a clamped axis).
    height_ratio : float
        ``prod_k w_high,k / w_low,k`` with the applied widths: how much the broadening lowers a
        line that the grid resolves (Lorentzian or Gaussian of these FWHMs).
    """

    factor: float
    high_mhz: float
    low_mhz: float
    nuclei: tuple[str, ...]
    ppm_per_px: tuple[float, ...]
    linewidth_high_hz: tuple[float, ...]
    linewidth_low_hz: tuple[float, ...]
    fwhm_high_px: tuple[float, ...]
    fwhm_low_px: tuple[float, ...]
    added_fwhm_px: tuple[float, ...]
    applied_fwhm_px: tuple[float, ...]
    producible: bool
    lineshape: str
    sigma_high: float
    sigma_low: float
    height_ratio: float = 1.0


# ---------------------------------------------------------------------------------------------
# the paper's model


def _paper_sigma(factor: float) -> float:
    return 1.0 / factor


def _paper_blur(x: np.ndarray, factor: float, mode: str) -> np.ndarray:
    return ndimage.gaussian_filter(x, _paper_sigma(factor), mode=mode, truncate=_GAUSS_TRUNCATE)


def _paper_psf(factor: float, shape: tuple[int, int] | None) -> np.ndarray:
    sigma = _paper_sigma(factor)
    if shape is None:
        radius = int(_GAUSS_TRUNCATE * sigma + 0.5)
        shape = (2 * radius + 1, 2 * radius + 1)
    delta = np.zeros(shape)
    delta[shape[0] // 2, shape[1] // 2] = 1.0
    # Filtering a delta with zero padding yields scipy's own (truncated, sampled) kernel.
    kernel = ndimage.gaussian_filter(delta, sigma, mode="constant", truncate=_GAUSS_TRUNCATE)
    return kernel / kernel.sum()


# ---------------------------------------------------------------------------------------------
# the physical model


def simulate_physical_info(
    factor,
    *,
    axes=None,
    high_mhz: float | None = None,
    linewidths: Mapping | None = None,
    sigma_high: float = SIGMA_HIGH,
    lineshape: Lineshape = "lorentzian",
) -> PhysicalBroadening:
    """Linewidths, kernel widths and noise of the physical model for one sample.

    Parameters
    ----------
    factor : float or Fraction
        Upscaling factor ``high MHz / low MHz`` (> 0).
    axes : pair of Axis, or (nuclei, ppm_per_px)
        The sample's two axes (array order), or their nuclei (e.g. ``('15N', '1H')``) and grid
        spacings in ppm per pixel.
    high_mhz : float, optional
        1H frequency the sample was recorded at, MHz. Taken from ``axes`` when they are Axis
        objects; required otherwise.
    linewidths : mapping, optional
        Per-nucleus :class:`Linewidth` overrides (or ``(dipolar_hz, csa_hz)`` pairs, or a fixed
        width in Hz); merged over :data:`DEFAULT_LINEWIDTHS`.
    sigma_high : float
        Noise standard deviation of the high-field spectrum relative to its peak height.
    lineshape : {'lorentzian', 'gaussian'}
        Line shape of the spectrum: Lorentzian widths add linearly, Gaussian ones in quadrature.
    Returns
    -------
    PhysicalBroadening
    """
    factor = _validate_positive("factor", factor)
    nuclei, ppm_per_px, axes_mhz = _validate_axes(axes)
    if high_mhz is None:
        if axes_mhz is None:
            raise ValueError("high_mhz is required when axes are given as (nuclei, ppm_per_px)")
        high_mhz = axes_mhz
    high_mhz = _validate_positive("high_mhz", high_mhz)
    sigma_high = _validate_nonnegative("sigma_high", sigma_high)
    lineshape = _validate_lineshape(lineshape)
    table = _validate_linewidths(linewidths)
    low_mhz = high_mhz / factor
    lw_high, lw_low, w_high, w_low, added = [], [], [], [], []
    for nucleus, spacing in zip(nuclei, ppm_per_px):
        if nucleus not in table:
            raise ValueError(f"linewidths has no entry for nucleus {nucleus!r}; pass linewidths={{{nucleus!r}: ...}}")
        gamma = GYROMAGNETIC_RATIO_TO_1H[nucleus]
        lw_h, lw_l = table[nucleus].at(high_mhz), table[nucleus].at(low_mhz)
        # 1. linewidth in ppm = Hz / (spectrometer MHz of this nucleus), then in pixels
        wh = lw_h / (high_mhz * gamma) / spacing
        wl = lw_l / (low_mhz * gamma) / spacing
        # 2. Lorentzian FWHMs add; Gaussian FWHMs add in quadrature
        if lineshape == "lorentzian":
            a = wl - wh
        else:
            a = math.copysign(math.sqrt(abs(wl**2 - wh**2)), wl - wh)
        lw_high.append(lw_h)
        lw_low.append(lw_l)
        w_high.append(wh)
        w_low.append(wl)
        added.append(a)
    # 3. S/N rule (module notes): heights fall by the width ratio on the grid, the S/N by f^1.5
    #    times the Hz-width ratio of the lines as drawn (a clamped axis keeps its ppm width)
    applied = tuple(max(a, 0.0) for a in added)
    height_ratio, hz_ratio = 1.0, 1.0
    for wh, a, lw_h, spacing, nucleus in zip(w_high, applied, lw_high, ppm_per_px, nuclei):
        w_drawn = wh + a if lineshape == "lorentzian" else math.hypot(wh, a)
        height_ratio *= wh / w_drawn
        hz_ratio *= w_drawn * spacing * low_mhz * GYROMAGNETIC_RATIO_TO_1H[nucleus] / lw_h
    return PhysicalBroadening(
        factor=factor,
        high_mhz=high_mhz,
        low_mhz=low_mhz,
        nuclei=nuclei,
        ppm_per_px=ppm_per_px,
        linewidth_high_hz=tuple(lw_high),
        linewidth_low_hz=tuple(lw_low),
        fwhm_high_px=tuple(w_high),
        fwhm_low_px=tuple(w_low),
        added_fwhm_px=tuple(added),
        applied_fwhm_px=applied,
        producible=all(a >= 0 for a in added),
        lineshape=lineshape,
        sigma_high=sigma_high,
        sigma_low=sigma_high * factor**1.5 * hz_ratio,
        height_ratio=height_ratio,
    )


def _transfer(fwhm_px: float, length: int, lineshape: str, *, full: bool = False) -> np.ndarray:
    """Fourier transform of the broadening kernel (FWHM ``fwhm_px``) on a grid of ``length`` px."""
    nu = np.abs(np.fft.fftfreq(length) if full else np.fft.rfftfreq(length))
    if lineshape == "lorentzian":
        # FT of a Lorentzian of half width g is exp(-2 pi g |nu|); g = FWHM / 2
        return np.exp(-math.pi * fwhm_px * nu)
    sigma = fwhm_px / _FWHM_PER_SIGMA
    return np.exp(-2.0 * (math.pi * sigma * nu) ** 2)


def _broaden_axis(x: np.ndarray, fwhm_px: float, axis: int, lineshape: str) -> np.ndarray:
    if fwhm_px <= 0:
        return x
    n = x.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (n, n)
    extended = np.pad(x, pad, mode="symmetric")
    length = extended.shape[axis]
    shape = [1, 1]
    shape[axis] = -1
    filt = _transfer(fwhm_px, length, lineshape).reshape(shape)
    spectrum = np.fft.irfft(np.fft.rfft(extended, axis=axis) * filt, n=length, axis=axis)
    return np.take(spectrum, np.arange(n, 2 * n), axis=axis)


def _kernel_1d(fwhm_px: float, size: int, lineshape: str) -> np.ndarray:
    """Kernel of :func:`_broaden_axis` on an axis of ``size`` px, centred at ``size // 2``."""
    if fwhm_px <= 0:
        k = np.zeros(size)
        k[size // 2] = 1.0
        return k
    length = 3 * size
    circular = np.fft.irfft(_transfer(fwhm_px, length, lineshape), n=length)
    k = np.roll(circular, size // 2)[:size]
    return k / k.sum()


def lorentzian_transfer(fwhm_px, shape: tuple[int, int]) -> np.ndarray:
    """Transfer function of the separable Lorentzian broadening :func:`simulate` applies, on the
    ``numpy.fft.rfft2`` grid of a ``shape`` plane (full frequency axis 0, half axis 1), real and
    positive (the line is centred: no phase).

    Parameters
    ----------
    fwhm_px : (float, float)
        FWHM on each axis, points (0: no broadening on that axis).
    shape : (int, int)
        Shape of the plane.

    Returns
    -------
    ndarray, float64, shape ``(H, W // 2 + 1)``
    """
    shape = _validate_shape(shape)
    rows = _transfer(max(float(fwhm_px[0]), 0.0), shape[0], "lorentzian", full=True)
    cols = _transfer(max(float(fwhm_px[1]), 0.0), shape[1], "lorentzian")
    return np.outer(rows, cols)


def _noise_gain(fwhm_px: Sequence[float], shape: tuple[int, int], lineshape: str) -> float:
    """Factor by which the blur scales the standard deviation of white noise (kernel L2 norm)."""
    gain2 = 1.0
    for w, n in zip(fwhm_px, shape):
        if w > 0:
            gain2 *= float(np.mean(_transfer(w, 3 * n, lineshape, full=True) ** 2))
    return math.sqrt(gain2)


def _warn_unproducible(info: PhysicalBroadening) -> None:
    bad = [f"{n} ({a:.3g} px)" for n, a in zip(info.nuclei, info.added_fwhm_px) if a < 0]
    warnings.warn(
        f"low-field lines are narrower in ppm than high-field ones on {', '.join(bad)} at factor "
        f"{info.factor:.3f}; no blur produces that, the width on those axes is left unchanged",
        UnproducibleBroadeningWarning,
        stacklevel=3,
    )


# ---------------------------------------------------------------------------------------------
# public API


def simulate(
    x0: np.ndarray,
    factor,
    *,
    model: DegradeModel = "paper",
    rng: np.random.Generator | int | None = None,
    noise: bool = True,
    **params,
) -> np.ndarray:
    """Low-field spectrum of a high-field 2D spectrum.

    Parameters
    ----------
    x0 : ndarray, shape (H, W), floating
        High-field spectrum on the normalized intensity scale; axis 0 indirect, axis 1 direct.
    factor : float or Fraction
        Upscaling factor ``high MHz / low MHz`` (> 0).
    model : {'paper', 'physical'}
        Low-field model (see the module docstring).
    rng : numpy Generator, int or None
        Source of the noise; None draws fresh entropy (not reproducible).
    noise : bool
        Add the model's noise (False: blur only).
    **params
        ``'paper'``: ``sigma_lr`` (noise std, normalized units, default 0.01), ``mode`` (boundary
        mode of :func:`scipy.ndimage.gaussian_filter`, default ``'reflect'``).
        ``'physical'``: ``axes`` (required), ``high_mhz``, ``linewidths``, ``sigma_high``
        (default 0.01), ``lineshape``, as in :func:`simulate_physical_info`; and ``input_noise``
        (default True): ``x0`` already carries white noise of std ``sigma_high * max|x0|``, so the
        added noise brings the blurred total to ``sigma_low * max|y|``, ``y`` the broadened
        spectrum (its own peak height: the S/N rule of the module notes); with False the added
        noise alone has that std. Where the carried noise already exceeds it, nothing is added.

    Returns
    -------
    ndarray, shape (H, W)
        The low-field spectrum, dtype of ``x0``.

    Warns
    -----
    UnproducibleBroadeningWarning
        ``'physical'`` model where an axis would need a negative added width (clamped to 0).
    """
    x0 = _validate_image("x0", x0)
    factor = _validate_positive("factor", factor)
    model = _validate_model(model)
    params = _validate_params(model, params)
    if not isinstance(noise, bool):
        raise TypeError(f"noise must be a bool, got {type(noise).__name__}")
    x = x0.astype(np.float64)
    if model == "paper":
        sigma_lr = _validate_nonnegative("sigma_lr", params.get("sigma_lr", SIGMA_LR))
        y = _paper_blur(x, factor, _validate_mode(params.get("mode", PAPER_MODE)))
        if noise and sigma_lr > 0:
            y = y + _validate_rng(rng).normal(0.0, sigma_lr, size=y.shape)
        return y.astype(x0.dtype, copy=False)

    input_noise = params.pop("input_noise", True)
    if not isinstance(input_noise, bool):
        raise TypeError(f"input_noise must be a bool, got {type(input_noise).__name__}")
    info = simulate_physical_info(factor, **params)
    if not info.producible:
        _warn_unproducible(info)
    y = x
    for axis, width in enumerate(info.applied_fwhm_px):
        y = _broaden_axis(y, width, axis, info.lineshape)
    if noise and info.sigma_low > 0:
        # noise from the broadened spectrum's own height (not max|x0|: that counted the loss twice)
        target = info.sigma_low * float(np.max(np.abs(y)))
        carried = 0.0
        if input_noise:
            gain = _noise_gain(info.applied_fwhm_px, x.shape, info.lineshape)
            carried = info.sigma_high * float(np.max(np.abs(x))) * gain
        added = math.sqrt(max(target**2 - carried**2, 0.0))
        if added > 0:
            y = y + _validate_rng(rng).normal(0.0, added, size=y.shape)
    return y.astype(x0.dtype, copy=False)


def psf(factor, *, model: DegradeModel = "paper", shape: tuple[int, int] | None = None, **params) -> np.ndarray:
    """The blur kernel :func:`simulate` applies, for deconvolution baselines.

    Parameters
    ----------
    factor : float or Fraction
        Upscaling factor (> 0).
    model : {'paper', 'physical'}
        Low-field model.
    shape : (int, int), optional
        Kernel array shape, centre at ``(H // 2, W // 2)``; the kernel is cut to it and
        renormalized. Default: the paper model's full support ``2 * int(4 sigma + 0.5) + 1`` px;
        for the physical model ``2 * ceil(16 FWHM) + 1`` px per axis (holds ~98% of a
        Lorentzian), computed on the grid :func:`simulate` uses for an image of that shape.
    **params
        The model's parameters as in :func:`simulate` (noise parameters are accepted and unused).

    Returns
    -------
    ndarray, float64, shape ``shape``
        Non-negative kernel summing to 1.
    """
    factor = _validate_positive("factor", factor)
    model = _validate_model(model)
    params = _validate_params(model, params)
    if shape is not None:
        shape = _validate_shape(shape)
    if model == "paper":
        return _paper_psf(factor, shape)
    params.pop("input_noise", None)
    info = simulate_physical_info(factor, **params)
    widths = info.applied_fwhm_px
    if shape is None:
        shape = tuple(2 * math.ceil(16 * w) + 1 for w in widths)
    k0 = _kernel_1d(widths[0], shape[0], info.lineshape)
    k1 = _kernel_1d(widths[1], shape[1], info.lineshape)
    kernel = np.clip(np.outer(k0, k1), 0.0, None)
    return kernel / kernel.sum()


def _factor_key(factor) -> tuple[int, int]:
    # Table-1 factors given as floats (8/7 = 1.142857...) map to the same exact ratio as Fractions.
    exact = Fraction(float(factor)).limit_denominator(10_000)
    return exact.numerator, exact.denominator


def sample_rng(seed: int, factor, *sample_id: int) -> np.random.Generator:
    """The noise stream of one (sample, factor) of a test set.

    Keyed by the exact factor and the sample's id (one int, or several: protein, plane), not by
    positions in a list, so evaluating a subset of factors or samples reproduces the same inputs.
    """
    if not sample_id:
        raise TypeError("sample_rng needs at least one sample id")
    num, den = _factor_key(factor)
    return np.random.default_rng([int(seed), num, den, *(int(i) for i in sample_id)])


def precompute(
    x0: np.ndarray,
    factors: Sequence,
    *,
    model: DegradeModel = "paper",
    seed: int,
    headers: Sequence[Mapping] | None = None,
    sample_ids: Sequence[int] | None = None,
    noise: bool = True,
    **params,
) -> np.ndarray:
    """Low-field inputs of a test set, one per (factor, sample), reproducibly seeded.

    Parameters
    ----------
    x0 : ndarray, shape (N, H, W), floating
        High-field spectra.
    factors : sequence of float or Fraction
        Upscaling factors.
    model : {'paper', 'physical'}
        Low-field model.
    seed : int
        Base seed (>= 0). Sample ``i`` at factor ``f`` uses :func:`sample_rng` ``(seed, f,
        sample_ids[i])``.
    headers : sequence of dict, optional
        Spectrum headers of the samples (``{'axes': [...], ...}``); the physical model reads each
        sample's axes (and field) from them unless ``axes`` is given in ``params``.
    sample_ids : sequence of int, optional
        Stable ids of the samples for seeding; default ``0..N-1``.
    noise : bool
        Add the model's noise.
    **params
        Model parameters, as in :func:`simulate`.

    Returns
    -------
    ndarray, shape (F, N, H, W)
        Low-field spectra, dtype of ``x0``.
    """
    if not isinstance(x0, np.ndarray):
        raise TypeError(f"x0 must be a numpy array, got {type(x0).__name__}")
    if x0.ndim != 3:
        raise ValueError(f"x0 must have shape (N, H, W), got {x0.shape}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or len(factors) == 0:
        raise TypeError(f"factors must be a non-empty sequence of numbers, got {factors!r}")
    for f in factors:
        _validate_positive("factors[]", f)
    n = x0.shape[0]
    if sample_ids is None:
        sample_ids = range(n)
    elif len(sample_ids) != n:
        raise ValueError(f"sample_ids has {len(sample_ids)} entries for {n} samples")
    model = _validate_model(model)
    per_sample_axes = model == "physical" and "axes" not in params
    if per_sample_axes:
        if headers is None:
            raise ValueError("the 'physical' model needs headers (each sample's axes) or axes=...")
        if len(headers) != n:
            raise ValueError(f"headers has {len(headers)} entries for {n} samples")
    out = np.empty((len(factors), *x0.shape), dtype=x0.dtype)
    for k, factor in enumerate(factors):
        for i, sid in enumerate(sample_ids):
            sample_params = dict(params)
            if per_sample_axes:
                sample_params["axes"] = tuple(Axis.from_dict(a) for a in headers[i]["axes"])
            out[k, i] = simulate(
                x0[i], factor, model=model, rng=sample_rng(seed, factor, sid), noise=noise, **sample_params
            )
    return out
