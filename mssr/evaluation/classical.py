"""Non-learned resolution enhancement: identity, deconvolution, Lorentz-to-Gauss, peak fit + redraw.

All work on one processed 2D frequency-domain spectrum (normalized to [-1, 1]; axis 0 indirect,
axis 1 direct) with what the caller knows of the low-field model: its blur kernel ``psf`` (pixels)
for the deconvolutions, its added linewidth per axis (FWHM, pixels) for the line-shape methods.
Outputs are clipped to [-1, 1] and keep the input's shape and float dtype; the arithmetic is
float64.

- :func:`enhance` / :func:`enhance_many`: identity, Richardson-Lucy, Wiener, unsupervised Wiener.
- :func:`lorentz_gauss`: NMRPipe's GM window applied through the pseudo-FID of each axis.
- :func:`fit_peaks`, :func:`draw_peaks`, :func:`peak_fit`: pick the peaks, fit 2D Lorentzian or
  Gaussian shapes to clusters of overlapping peaks, redraw them at the high-field widths (what
  DEEP Picker's Voigt fitter does with ``-recon``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal, get_args

import numpy as np
from nmrglue.process import proc_base
from scipy import ndimage, optimize
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from skimage import restoration

Method = Literal["identity", "richardson_lucy", "wiener", "unsupervised_wiener"]
"""Deconvolution method; see :func:`enhance`."""

Lineshape = Literal["lorentzian", "gaussian"]
"""Line shape of a fitted peak along each axis."""

GM_FWHM_PER_G2 = 1.2 * math.sqrt(math.log(2.0))
"""FWHM of the Gaussian line NMRPipe's GM window makes, per unit of ``g2`` (0.99907).

GM multiplies the FID by ``exp(pi g1 t - (0.6 pi g2 t)^2)`` (``t`` in units of the inverse
spectral width). The Fourier transform of ``exp(-(a t)^2)`` is a Gaussian of FWHM
``2 a sqrt(ln 2) / pi``; with ``a = 0.6 pi g2`` that is ``1.2 sqrt(ln 2) g2``. A Lorentzian of FWHM
``L`` has the FID ``exp(-pi L t)``, which ``g1 = L`` cancels exactly."""

_FOUR_LN2 = 4.0 * math.log(2.0)


# ---------------------------------------------------------------------------------------------
# validation


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
    _validate_positive_number(balance, "balance")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _validate_positive_number(value, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and ok):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value}")
    return float(value)


def _validate_pair(value, name: str) -> tuple[float, float]:
    """A per-axis pair of widths in pixels (>= 0); a single number applies to both axes."""
    if isinstance(value, Real) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a number or a pair of numbers (one per axis), got {value!r}")
    return tuple(_validate_positive_number(v, f"{name}[{k}]", allow_zero=True) for k, v in enumerate(value))


def _validate_lineshape(lineshape) -> str:
    if lineshape not in get_args(Lineshape):
        raise ValueError(f"lineshape must be one of {get_args(Lineshape)}, got {lineshape!r}")
    return lineshape


def _validate_count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# deconvolution


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


# ---------------------------------------------------------------------------------------------
# Lorentz-to-Gauss apodization through the pseudo-FID


def gm_window(n_time: int, n_fft: int, g1_px: float, g2_px: float) -> np.ndarray:
    """NMRPipe's GM window on the first ``n_time`` points of a pseudo-FID of ``n_fft`` points.

    Parameters
    ----------
    n_time : int
        Time points to return (``n_fft // 2 + 1`` for a real spectrum's ``rfft``).
    n_fft : int
        Points of the spectrum the pseudo-FID comes from; its spectral width is ``n_fft`` px.
    g1_px, g2_px : float
        Inverse-exponential and Gaussian widths in pixels of the spectrum (Hz divided by the Hz
        per pixel); ``nmrglue.proc_base.gm`` takes them as fractions of the spectral width, i.e.
        ``g / n_fft``.

    Returns
    -------
    ndarray, shape (n_time,), float64
        ``exp(pi g1 t - (0.6 pi g2 t)^2)`` at ``t = k / n_fft``, ``k = 0 .. n_time - 1``.
    """
    return proc_base.gm(np.ones(n_time), g1=g1_px / n_fft, g2=g2_px / n_fft, g3=0.0)


def _lorentz_gauss_axis(x: np.ndarray, axis: int, g1_px: float, g2_px: float) -> np.ndarray:
    n = x.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (n, n)
    # Symmetric extension (one axis length on each side), as the physical broadening does, so a
    # line near an edge does not wrap around.
    extended = np.pad(x, pad, mode="symmetric")
    length = extended.shape[axis]
    # rfft of the real spectrum = the conjugate of its pseudo-FID at t = 0 .. length/2 (the
    # causal half of the Hilbert-completed spectrum's inverse FT); the window is real, so
    # windowing it and transforming back gives the windowed absorption spectrum.
    fid = np.fft.rfft(extended, axis=axis)
    shape = [1, 1]
    shape[axis] = -1
    window = gm_window(fid.shape[axis], length, g1_px, g2_px).reshape(shape)
    spectrum = np.fft.irfft(fid * window, n=length, axis=axis)
    return np.take(spectrum, np.arange(n, 2 * n), axis=axis)


def lorentz_gauss(x_lr: np.ndarray, *, g1_px, g2_px) -> np.ndarray:
    """Lorentz-to-Gauss resolution enhancement of a 2D spectrum, axis by axis (NMRPipe GM).

    Each axis is taken to its pseudo-FID (the inverse Fourier transform of the real spectrum
    along that axis), multiplied by ``exp(pi g1 t - (0.6 pi g2 t)^2)``
    (:func:`nmrglue.proc_base.gm`, ``g3 = 0``) and transformed back. A Lorentzian line of FWHM
    ``L`` px with ``g1 = L`` becomes a Gaussian of FWHM ``GM_FWHM_PER_G2 * g2`` px (0.99907
    ``g2``); with ``g1`` = the width the low-field model added, a line of low-field width
    ``w_high + g1`` becomes the Voigt of a Lorentzian ``w_high`` and that Gaussian. The window is
    1 at ``t = 0``, so every peak's volume is kept. An axis with ``g1 = 0`` is left unchanged.
    Small ``g2`` amplifies noise: the window peaks at ``exp(1 / (1.44 (g2/g1)^2))``.

    Parameters
    ----------
    x_lr : ndarray, shape (H, W), float
        Low-field spectrum.
    g1_px : float or pair of float
        Lorentzian width to remove per axis (FWHM), px (>= 0); Hz / (Hz per px).
    g2_px : float or pair of float
        Gaussian width per axis, px (> 0 where ``g1 > 0``).

    Returns
    -------
    ndarray, shape (H, W)
        Enhanced spectrum clipped to [-1, 1], in ``x_lr``'s dtype.
    """
    x_lr = _validate_image(x_lr, "x_lr", 2)
    g1 = _validate_pair(g1_px, "g1_px")
    g2 = _validate_pair(g2_px, "g2_px")
    y = x_lr.astype(np.float64)
    for axis in (0, 1):
        if g1[axis] > 0:
            if g2[axis] <= 0:
                raise ValueError(f"g2_px[{axis}] must be > 0 where g1_px[{axis}] > 0 (the window would grow without bound)")
            y = _lorentz_gauss_axis(y, axis, g1[axis], g2[axis])
    return np.clip(y, -1.0, 1.0).astype(x_lr.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# peak fitting and redrawing


@dataclass(frozen=True)
class FittedPeaks:
    """Peaks fitted to a 2D spectrum.

    Attributes
    ----------
    centres : ndarray, shape (K, 2)
        ``(row, col)`` positions, px.
    fwhm : ndarray, shape (K, 2)
        Full widths at half maximum along (rows, cols), px.
    heights : ndarray, shape (K,)
        Signed peak heights, the spectrum's intensity units.
    lineshape : {'lorentzian', 'gaussian'}
        Shape along each axis; a peak is the product of its two axis profiles.
    """

    centres: np.ndarray
    fwhm: np.ndarray
    heights: np.ndarray
    lineshape: str

    def __len__(self) -> int:
        return len(self.heights)

    @property
    def volumes(self) -> np.ndarray:
        """Integral of every peak, intensity x px^2."""
        per_axis = math.pi / 2 if self.lineshape == "lorentzian" else math.sqrt(math.pi / _FOUR_LN2)
        return self.heights * per_axis**2 * self.fwhm[:, 0] * self.fwhm[:, 1]


def line_profiles(grid: np.ndarray, centres: np.ndarray, fwhm: np.ndarray, lineshape: str):
    """Unit-height profiles (K, n) on ``grid`` (points) and their derivatives by centre and by FWHM (points).

    ``lineshape`` is ``'lorentzian'`` or ``'gaussian'``; ``centres`` and ``fwhm`` have shape (K,).
    """
    u = (grid[None, :] - centres[:, None]) / fwhm[:, None]
    if lineshape == "lorentzian":
        p = 1.0 / (1.0 + 4.0 * u * u)
        d_centre = 8.0 * u * p * p / fwhm[:, None]
        d_width = 8.0 * u * u * p * p / fwhm[:, None]
    else:
        p = np.exp(-_FOUR_LN2 * u * u)
        d_centre = 2.0 * _FOUR_LN2 * u * p / fwhm[:, None]
        d_width = 2.0 * _FOUR_LN2 * u * u * p / fwhm[:, None]
    return p, d_centre, d_width


def _draw(rows, cols, centres, fwhm, heights, lineshape) -> np.ndarray:
    p0, _, _ = line_profiles(rows, centres[:, 0], fwhm[:, 0], lineshape)
    p1, _, _ = line_profiles(cols, centres[:, 1], fwhm[:, 1], lineshape)
    return (p0.T * heights) @ p1


def _half_width(profile: np.ndarray, k: int) -> float:
    """Half width at half height of a positive profile around index ``k``, px (linear interp.)."""
    half = profile[k] / 2.0
    sides = []
    for step in (-1, 1):
        j = k
        while 0 <= j + step < len(profile) and profile[j + step] > half:
            j += step
        if 0 <= j + step < len(profile):
            a, b = profile[j], profile[j + step]
            sides.append(abs(j - k) + (a - half) / (a - b) if a != b else abs(j - k))
        else:
            sides.append(np.nan)
    sides = [s for s in sides if np.isfinite(s)]
    return min(sides) if sides else np.nan


def _prominence(s: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Height of each peak above the median of the 16-pixel ring 2 px around it (edges: reflected)."""
    padded = np.pad(s, 2, mode="reflect")
    ring = np.ones((5, 5), bool)
    ring[1:4, 1:4] = False
    out = np.empty(len(peaks))
    for i, (r, c) in enumerate(peaks):
        out[i] = s[r, c] - np.median(padded[r : r + 5, c : c + 5][ring])
    return out


def _pick(x: np.ndarray, threshold: float, max_peaks: int):
    """Local extrema of |x| (3 x 3, either sign) above ``threshold`` and as prominent: (K, 2) int, signs."""
    found = []
    for sign in (1.0, -1.0):
        s = sign * x
        # strictly above some neighbour: a flat region is no peak
        mask = ((s == ndimage.maximum_filter(s, size=3, mode="nearest")) & (s > threshold)
                & (s > ndimage.minimum_filter(s, size=3, mode="nearest")))
        # A plateau gives several equal maxima; keep one per connected plateau.
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        if n:
            idx = np.array(ndimage.maximum_position(s, labels, range(1, n + 1)), dtype=int).reshape(-1, 2)
            # A noise bump on the tail of a broad line is a local maximum too; it does not rise
            # above its surroundings by the threshold.
            idx = idx[_prominence(s, idx) > threshold]
            found += [(r, c, sign) for r, c in idx]
    if not found:
        return np.zeros((0, 2), int), np.zeros(0)
    arr = np.array(found, dtype=float)
    order = np.argsort(-np.abs(x[arr[:, 0].astype(int), arr[:, 1].astype(int)]), kind="stable")[:max_peaks]
    arr = arr[order]
    return arr[:, :2].astype(int), arr[:, 2]


def _initial(x: np.ndarray, peaks: np.ndarray, signs: np.ndarray):
    """Sub-pixel centres (parabolic), half-height widths and heights of picked peaks."""
    h, w = x.shape
    centres = peaks.astype(float)
    widths = np.empty_like(centres)
    heights = x[peaks[:, 0], peaks[:, 1]].astype(float)
    for i, ((r, c), sign) in enumerate(zip(peaks, signs)):
        for axis, (line, k) in enumerate(((sign * x[:, c], r), (sign * x[r, :], c))):
            if 0 < k < len(line) - 1:
                a, b, d = line[k - 1], line[k], line[k + 1]
                denom = a - 2 * b + d
                if denom < 0:
                    centres[i, axis] = k + np.clip(0.5 * (a - d) / denom, -0.5, 0.5)
            hw = _half_width(line, k)
            widths[i, axis] = 2.0 * hw if np.isfinite(hw) else 2.0
    widths = np.clip(widths, 0.5, [h / 2.0, w / 2.0])
    return centres, widths, heights


def _groups(centres: np.ndarray, widths: np.ndarray, max_group: int) -> list[np.ndarray]:
    """Clusters of overlapping peaks (closer than 2 mean FWHM on both axes), at most ``max_group`` each."""
    reach = widths[:, None, :] + widths[None, :, :]  # 2 x the mean FWHM of a pair
    near = (np.abs(centres[:, None, :] - centres[None, :, :]) < reach).all(axis=2)
    n, labels = connected_components(csr_matrix(near), directed=False)
    groups = []
    for g in range(n):
        members = np.flatnonzero(labels == g)
        if len(members) > max_group:
            # Split a long chain along its longer extent into consecutive chunks.
            spread = np.ptp(centres[members], axis=0)
            members = members[np.argsort(centres[members, int(np.argmax(spread))], kind="stable")]
            groups += [members[i : i + max_group] for i in range(0, len(members), max_group)]
        else:
            groups.append(members)
    return groups


def _fit_group(target, rows, cols, p0, lower, upper, lineshape, max_nfev):
    nk = len(p0) // 5

    def unpack(p):
        q = p.reshape(nk, 5)
        return q[:, 0], q[:, 1], q[:, 2], q[:, 3], q[:, 4]

    def residual(p):
        h, r0, wr, c0, wc = unpack(p)
        return (_draw(rows, cols, np.stack([r0, c0], 1), np.stack([wr, wc], 1), h, lineshape) - target).ravel()

    def jacobian(p):
        h, r0, wr, c0, wc = unpack(p)
        pr, dr, dwr = line_profiles(rows, r0, wr, lineshape)
        pc, dc, dwc = line_profiles(cols, c0, wc, lineshape)
        hr = h[:, None, None]
        columns = (pr[:, :, None] * pc[:, None, :], hr * dr[:, :, None] * pc[:, None, :],
                   hr * dwr[:, :, None] * pc[:, None, :], hr * pr[:, :, None] * dc[:, None, :],
                   hr * pr[:, :, None] * dwc[:, None, :])
        jac = np.stack(columns, axis=-1)  # (K, rows, cols, 5)
        return jac.transpose(1, 2, 0, 3).reshape(len(rows) * len(cols), nk * 5)

    result = optimize.least_squares(residual, p0, jac=jacobian, bounds=(lower, upper), method="trf",
                                    x_scale="jac", xtol=1e-8, ftol=1e-8, gtol=1e-8, max_nfev=max_nfev)
    return result.x.reshape(nk, 5)


def noise_sd(x: np.ndarray) -> float:
    """Robust noise standard deviation of a spectrum, intensity units.

    From the differences of neighbouring points along the direct (last) axis, which cancel the
    smooth line shapes and tails: ``1.4826 * MAD(diff) / sqrt(2)``.
    """
    x = _validate_image(x, "x", 2)
    if x.shape[1] < 2:
        return 0.0
    d = np.diff(x.astype(np.float64), axis=1)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def fit_peaks(
    x: np.ndarray,
    *,
    lineshape: Lineshape = "lorentzian",
    alpha: float = 5.0,
    min_relative_height: float = 0.01,
    max_peaks: int | None = None,
    max_group: int = 4,
    sweeps: int = 1,
    max_nfev: int = 20,
) -> FittedPeaks:
    """Pick the peaks of a 2D spectrum and fit their line shapes, cluster by cluster.

    1. Peaks are the local extrema of ``|x|`` (3 x 3, both signs) higher than the threshold
       ``max(alpha * noise_sd(x), min_relative_height * max|x|)`` and higher by as much than the
       median of the ring 2 px around them (so noise bumps on a broad tail are no peaks); the
       strongest ``max_peaks``.
    2. Start values: parabolic sub-pixel centre, width from the half-height crossings along each
       axis, height = the value at the peak.
    3. Peaks closer than two mean FWHM on both axes form a cluster (connected components; long
       chains are cut into chunks of ``max_group``). Each cluster is fitted by bounded
       least squares (:func:`scipy.optimize.least_squares`, analytic Jacobian) to its bounding box
       (padded by 1.5 FWHM) after subtracting the current model of every other peak; this repeats
       ``sweeps`` times (Gauss-Seidel over clusters). The defaults (32 peaks at 32 x 32 px, 4 per fit, one
       sweep, 20 evaluations) bound the CPU time of a spectrum (about 0.1 s at 32 x 32 px).

    Bounds: the height keeps the sign it was picked with and is at most 4 max|x|; the centre moves
    at most ``max(1.5, FWHM / 2)`` px; the FWHM lies in [0.3 px, max(4 px, 3 x start)].

    Parameters
    ----------
    x : ndarray, shape (H, W), float
        Spectrum.
    lineshape : {'lorentzian', 'gaussian'}
        Shape along each axis.
    alpha : float
        Threshold in units of the robust noise SD (:func:`noise_sd`).
    min_relative_height : float
        Lower bound of the threshold relative to max|x| (keeps a noise-free spectrum's tails out).
    max_peaks : int, optional
        Most peaks kept (the highest); default ``max(32, H W / 1024)`` (32 at 32 x 32 px, 136 at
        256 x 546 px), which bounds the time.
    max_group, sweeps, max_nfev : int
        Most peaks per joint fit, fitting sweeps, function evaluations per fit.

    Returns
    -------
    FittedPeaks
        Empty for a flat spectrum or one without peaks above the threshold.
    """
    x = _validate_image(x, "x", 2)
    lineshape = _validate_lineshape(lineshape)
    alpha = _validate_positive_number(alpha, "alpha", allow_zero=True)
    min_relative_height = _validate_positive_number(min_relative_height, "min_relative_height", allow_zero=True)
    if max_peaks is None:
        max_peaks = max(32, x.size // 1024)
    max_peaks = _validate_count(max_peaks, "max_peaks")
    max_group = _validate_count(max_group, "max_group")
    sweeps = _validate_count(sweeps, "sweeps")
    max_nfev = _validate_count(max_nfev, "max_nfev")
    data = x.astype(np.float64)
    empty = FittedPeaks(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), lineshape)
    top = float(np.max(np.abs(data))) if data.size else 0.0
    if top == 0.0:
        return empty
    threshold = max(alpha * noise_sd(data), min_relative_height * top)
    peaks, signs = _pick(data, threshold, max_peaks)
    if len(peaks) == 0:
        return empty
    centres, widths, heights = _initial(data, peaks, signs)
    params = np.column_stack([heights, centres[:, 0], widths[:, 0], centres[:, 1], widths[:, 1]])
    move = np.maximum(1.5, widths / 2.0)
    w_hi = np.maximum(4.0, 3.0 * widths)
    lower = np.column_stack([np.where(signs > 0, 0.0, -4 * top), centres[:, 0] - move[:, 0], np.full(len(signs), 0.3),
                             centres[:, 1] - move[:, 1], np.full(len(signs), 0.3)])
    upper = np.column_stack([np.where(signs > 0, 4 * top, 0.0), centres[:, 0] + move[:, 0], w_hi[:, 0],
                             centres[:, 1] + move[:, 1], w_hi[:, 1]])
    params = np.clip(params, lower + 1e-12, upper - 1e-12)
    groups = _groups(centres, widths, max_group)
    rows_all, cols_all = np.arange(data.shape[0], dtype=float), np.arange(data.shape[1], dtype=float)
    for _ in range(sweeps if len(groups) > 1 else 1):
        for members in groups:
            q = params[members]
            pad = 1.5 * np.max(q[:, [2, 4]], axis=0)
            r_lo = max(int(np.floor(q[:, 1].min() - pad[0])), 0)
            r_hi = min(int(np.ceil(q[:, 1].max() + pad[0])) + 1, data.shape[0])
            c_lo = max(int(np.floor(q[:, 3].min() - pad[1])), 0)
            c_hi = min(int(np.ceil(q[:, 3].max() + pad[1])) + 1, data.shape[1])
            rows, cols = rows_all[r_lo:r_hi], cols_all[c_lo:c_hi]
            others = np.setdiff1d(np.arange(len(params)), members, assume_unique=True)
            target = data[r_lo:r_hi, c_lo:c_hi]
            if len(others):
                o = params[others]
                target = target - _draw(rows, cols, o[:, [1, 3]], o[:, [2, 4]], o[:, 0], lineshape)
            params[members] = _fit_group(target, rows, cols, q.ravel(), lower[members].ravel(),
                                         upper[members].ravel(), lineshape, max_nfev)
    return FittedPeaks(params[:, [1, 3]].copy(), params[:, [2, 4]].copy(), params[:, 0].copy(), lineshape)


def narrowed(peaks: FittedPeaks, added_fwhm_px, *, min_fwhm_px: float = 0.5) -> FittedPeaks:
    """The same peaks at the high-field widths, volumes kept.

    Lorentzian widths lose ``added_fwhm_px`` (widths of convolved Lorentzians add), Gaussian ones
    lose it in quadrature; the result is clamped to ``min_fwhm_px`` (a point-sampled line much
    narrower than a pixel misses the grid), and each height is scaled by
    ``(w0 w1) / (w0' w1')`` so that the volume is kept.

    Parameters
    ----------
    peaks : FittedPeaks
        Fitted low-field peaks.
    added_fwhm_px : float or pair of float
        Width the low-field model added per axis, px (>= 0).
    min_fwhm_px : float
        Smallest redrawn FWHM, px (> 0).
    """
    if not isinstance(peaks, FittedPeaks):
        raise TypeError(f"peaks must be FittedPeaks, got {type(peaks).__name__}")
    added = np.array(_validate_pair(added_fwhm_px, "added_fwhm_px"))
    min_fwhm_px = _validate_positive_number(min_fwhm_px, "min_fwhm_px")
    if peaks.lineshape == "lorentzian":
        fwhm = peaks.fwhm - added[None, :]
    else:
        fwhm = np.sqrt(np.clip(peaks.fwhm**2 - added[None, :] ** 2, 0.0, None))
    fwhm = np.maximum(fwhm, min_fwhm_px)
    heights = peaks.heights * np.prod(peaks.fwhm, axis=1) / np.prod(fwhm, axis=1)
    return FittedPeaks(peaks.centres.copy(), fwhm, heights, peaks.lineshape)


def draw_peaks(peaks: FittedPeaks, shape, *, dtype=np.float64) -> np.ndarray:
    """Render fitted peaks on a grid of ``shape`` px (point-sampled profiles), shape (H, W)."""
    if not isinstance(peaks, FittedPeaks):
        raise TypeError(f"peaks must be FittedPeaks, got {type(peaks).__name__}")
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape!r}")
    h, w = (_validate_count(n, "shape[]") for n in shape)
    if len(peaks) == 0:
        return np.zeros((h, w), dtype)
    out = _draw(np.arange(h, dtype=float), np.arange(w, dtype=float), peaks.centres, peaks.fwhm,
                peaks.heights, peaks.lineshape)
    return out.astype(dtype, copy=False)


def peak_fit(
    x_lr: np.ndarray,
    *,
    added_fwhm_px,
    lineshape: Lineshape = "lorentzian",
    alpha: float = 5.0,
    min_fwhm_px: float = 0.5,
    keep_residual: bool = False,
    **fit_options,
) -> np.ndarray:
    """Model-based enhancement: fit the peaks, redraw them at the high-field widths.

    :func:`fit_peaks`, then :func:`narrowed` and :func:`draw_peaks`. With
    ``keep_residual=False`` (DEEP Picker's ``-recon``) what is not fitted as a peak (noise, peaks
    below the threshold) is dropped, and a flat or noise-only spectrum gives a (near) empty
    result; with ``True`` the fit residual ``x_lr - drawn low-field peaks`` is added back, so
    what was not fitted stays as it was.

    Parameters
    ----------
    x_lr : ndarray, shape (H, W), float
        Low-field spectrum.
    added_fwhm_px : float or pair of float
        Width the low-field model added per axis, px.
    lineshape, alpha, **fit_options
        As in :func:`fit_peaks`.
    min_fwhm_px : float
        As in :func:`narrowed`.
    keep_residual : bool
        Add the fit residual back (see above).

    Returns
    -------
    ndarray, shape (H, W)
        Redrawn spectrum clipped to [-1, 1], in ``x_lr``'s dtype.
    """
    x_lr = _validate_image(x_lr, "x_lr", 2)
    if not isinstance(keep_residual, bool):
        raise TypeError(f"keep_residual must be a bool, got {type(keep_residual).__name__}")
    peaks = fit_peaks(x_lr, lineshape=lineshape, alpha=alpha, **fit_options)
    out = draw_peaks(narrowed(peaks, added_fwhm_px, min_fwhm_px=min_fwhm_px), x_lr.shape)
    if keep_residual:
        out = out + (x_lr.astype(np.float64) - draw_peaks(peaks, x_lr.shape))
    return np.clip(out, -1.0, 1.0).astype(x_lr.dtype, copy=False)
