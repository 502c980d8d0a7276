"""The native model's anchor: the low-field plane deconvolved with the broadening its own lines imply.

The native network does not start from the low-field spectrum itself but from a classical
estimate of the high-field one, and learns what that estimate leaves wrong (the residual
parameterization of :mod:`mssr.model.diffusion` then predicts ``x0 - anchor``). The anchor is a
Wiener deconvolution (:func:`skimage.restoration.wiener`) with a separable Lorentzian kernel whose
widths the plane's own lines give, under the rule the physical low-field model uses
(:mod:`mssr.degrade`, :mod:`mssr.evaluation.realpairs`): linewidths fixed in Hz, so going from
``B_low`` to ``B_high = f B_low`` narrows every line in ppm by ``f``, and the low-field spectrum is
the high-field one convolved with a Lorentzian of FWHM

    ``a = (f - 1) W_high``   (points, per axis),

``W_high`` the high-field FWHM in points of the same grid. ``W_high`` is not observed; it is found
as a fixed point (:func:`added_widths_px`): start from Lorentzian additivity (``W_high = W_low /
f``, ``W_low`` the median FWHM of the plane's strong isolated peaks), deconvolve lightly
regularized (:func:`measuring_balance`, :data:`FIT_MEASURE_BALANCE` on a crowded plane) with ``a = (f - 1) W_high``, measure the deconvolved widths
at the same peaks, and correct ``W_high`` by how much they differ from those of a Lorentzian line
of width ``W_high + a`` through the same deconvolution (which cancels the broadening the
regularization itself leaves); repeat. Lines that are not Lorentzian (apodized, Voigt-like) broaden
less than additively, which the first step alone would miss (on the protein-L pair at 600 MHz the
first step gives a kernel of 3.38 x 1.08 working points, the fixed point 3.96 x 1.25, the truth
3.97 x 1.25).

The half-height widths are read on the strong isolated peaks (:func:`mssr.evaluation.realpairs.isolated_peaks`)
where a plane has at least :data:`MIN_ISOLATED` of them. A crowded plane has too few (Ddx4's
measured planes have 0 to 7 at every Table-1 factor, protein L's 46 to 62), and there the half-height
reading of overlapping lines is wider than either line: on Ddx4 plane 0 broadened to 400 MHz it put
the 15N kernel at 11.4-14.7 working points for a true 8.5 (two noise draws), and the anchor's MSE at
up to 64x that with the true kernel. There every strong peak (the :data:`FIT_PEAKS` strongest) is
fitted with its neighbours instead (:func:`_fitted_widths`: Lorentzians sharing one pair of widths
per window, the same fit in every step of the fixed point).

Training (:mod:`mssr.data.patches`) anchors each patch with the kernel of its own median line,
jittered by :data:`TRAINING_JITTER` (log-normal), since a patch holds too few peaks to measure; the
network thus learns to correct kernels that are off by about that much.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from skimage import restoration

from mssr import degrade

BALANCE: float = 3e-3
"""Wiener regularization weight of the anchor (noise-to-signal power, Laplacian regularizer; the
filter does not depend on the intensity unit). On 400 rendered training patches the mean relative
MSE of the anchor was 0.0106, 0.0088, 0.0078, 0.0074, 0.0076 at 3e-4, 1e-3, 3e-3, 1e-2, 3e-2;
on the four real pairs (protein L and Ddx4 at 600 and 400 MHz: test data, so looked at, not tuned
on) 3e-3 was within 1.9x of each pair's best MSE over 1e-3 to 1e-2."""

ESTIMATE_BALANCES: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
"""Candidate regularizations of the anchor where it is itself the estimate (:func:`estimate_balance`;
the network's input keeps :data:`BALANCE`, the one it was trained with)."""

HEIGHT_KEPT: float = 0.97
"""The anchor's estimate is regularized as heavily as it can be while its strong peaks keep this
share of the height the lightest of :data:`ESTIMATE_BALANCES` gives them (:func:`estimate_balance`):
the regularization damps the noise the deconvolution amplifies until it starts to blunt the lines
it narrows. The best balance differs between spectra by more than 10x: on the validation planes
(noise seed 1234, the true kernel) the lowest MSE over the candidates was at 1e-2 on protein L
plane 2 at 600 MHz and 1e-3 at 400 MHz, at 3e-2 to 1e-1 on Ddx4 planes 1 and 3 at 600 MHz (4x
below the MSE at :data:`BALANCE`) and 1e-2 at 400 MHz; the share of the peaks' height kept at
those balances was 0.98, 1.0, 0.97-1.0 and 0.95-0.98."""

MEASURE_BALANCES: tuple[float, ...] = (1e-6, 3e-6, 1e-5, 3e-5)
"""Candidate regularizations, lightest first, for the deconvolutions whose half-height linewidths the
fixed point reads (a plane with :data:`MIN_ISOLATED` strong isolated peaks); the lightest whose
deconvolution keeps the noise within :data:`MEASURE_NOISE` of the peaks is used
(:func:`measuring_balance`). The fixed point settles where the regularization's broadening of the
plane's lines and of the model line differ, which leaves the kernel too narrow under a heavy one,
and a light one lets through noise that shifts the half-height crossings. On protein L plane 2 (a
validation plane, noise seed 1234) broadened to 400 MHz the 15N / 1H kernel was 3.2 / 6.2 % too
narrow at 3e-5, 1.8 / 4.0 % at 1e-5, 0.6 / 2.2 % at 3e-6, 1.3 % too wide / 0.5 % too narrow at 1e-6
(anchor MSE within 0.3 % of the true kernel's; 20 % above it at 3e-5); on 16 isolated Voigt lines
with white noise at a peak S/N of 300 (f = 1.5 and 2) 1e-6 put it 10-11 % too narrow, 3e-5 1-3 %."""

MEASURE_NOISE: float = 0.05
"""Largest noise SD (:func:`mssr.spectrum.robust_noise_sd`) of a measuring deconvolution, as a share
of the median height of the peaks it is read at. On the 16 Voigt lines above the kernel was within
4.5 % wherever the share was below 0.066 and 10-11 % off at 0.10-0.13; on protein L plane 2 at
400 MHz the share is 0.047 at 1e-6 (at 600 MHz 0.003 at every candidate)."""

FIT_MEASURE_BALANCE: float = 3e-5
"""The measuring regularization for a crowded plane's fitted widths (:func:`_fitted_widths`), fixed:
the fits follow the noise a lighter one lets through, more than :data:`MEASURE_NOISE` shows: on Ddx4 planes 1 and 3 (validation planes, seed 1234)
at 400 MHz the 1H kernel was 16 / 12 % too wide at 3e-5, 58 / 80 % at 1e-6 (anchor MSE 23x and 46x
the true kernel's); at 600 MHz every value from 3e-7 to 3e-5 gave it to within 10 %."""

ITERATIONS: int = 4
"""Fixed-point steps of :func:`added_widths_px`. On the real pairs (working grid, noise seed 1234)
it settles within 2% in 4 steps; on protein L planes 0-3 it finds the true widths to within 0.4 %
at 600 MHz and 0.5-4.7 % too narrow at 400 MHz (plane 0: 11.62 / 3.62 points for 11.91 / 3.73);
on the crowded Ddx4 planes 1, 3 and 4 (fits) to within 4 % at 600 MHz and 2-16 % at 400 MHz
(planes 1 and 3, fitted on :data:`FIT_SAMPLING`: within 4.8 % at 600, 1.4-12.4 % at 400 MHz)."""

MIN_ISOLATED: int = 10
"""Fewest strong isolated peaks whose median half-height width gives the kernel; a plane with
fewer (crowded) is measured by fitting its strongest peaks with their neighbours instead."""

FIT_PEAKS: int = 64
"""A crowded plane's kernel is measured on at most this many of its strongest peaks (time)."""

FIT_WINDOW: float = 1.5
"""Half side of each peak's fitting window, in current estimates of its FWHM."""

FIT_COMPONENTS: int = 8
"""Most Lorentzians (the window's strongest local maxima) fitted together in one window."""

FIT_SAMPLING: float = 6.0
"""Fewest points per guessed FWHM a window is fitted on: a wider line is fitted on every k-th point
of its window through the peak (time: the fits' SVDs grow with the points). On Ddx4 planes 1 and 3
(validation planes, noise seed 1234, 2 cores) at 400 MHz the kernel estimate took 17-19 s instead of
62-67 s, its 15N / 1H error -3.0 / +12.4 % and -1.4 / +10.7 % (every point: -1.7 / +16.0 % and
-1.4 / +11.8 %); at 600 MHz 21-22 s instead of 29-31 s, the same widths to 0.1 %."""

FIT_EVALUATIONS: int = 100
"""Most residual evaluations of one window's fit."""

TRAINING_JITTER: float = 0.1
"""SD of the log-normal factor on each training patch's kernel widths (estimation error)."""

def mirrored(x):
    """The plane extended by its mirror images to twice its size on both axes (numpy or torch).

    The even extension the working grid's resampling assumes (:mod:`mssr.data.grid`): filtered
    periodically, it has no jump where the plane's opposite edges would meet, so a line at one
    edge does not leak onto the other. Its first ``H x W`` points are the plane.
    """
    if isinstance(x, np.ndarray):
        top = np.concatenate([x, x[..., ::-1]], axis=-1)
        return np.concatenate([top, top[..., ::-1, :]], axis=-2)
    import torch

    top = torch.cat([x, x.flip(-1)], dim=-1)
    return torch.cat([top, top.flip(-2)], dim=-2)


def deconvolve(x: np.ndarray, added_fwhm_px, *, balance: float = BALANCE) -> np.ndarray:
    """Wiener deconvolution of a plane by a separable Lorentzian (mirrored boundaries, :func:`mirrored`).

    Parameters
    ----------
    x : ndarray, shape (H, W)
        The plane (any intensity unit; ``balance`` is relative to the network's unit).
    added_fwhm_px : (float, float)
        Lorentzian FWHM per axis, points.
    balance : float
        Regularization weight (:data:`BALANCE`).

    Returns
    -------
    ndarray, float64, shape (H, W)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be 2D, got shape {x.shape}")
    if not (len(added_fwhm_px) == 2 and all(math.isfinite(float(w)) and float(w) >= 0 for w in added_fwhm_px)):
        raise ValueError(f"added_fwhm_px must be two finite widths >= 0, got {added_fwhm_px!r}")
    if max(added_fwhm_px) <= 0:
        return x.copy()
    # the transfer function itself (complex dtype: skimage takes it as given), so the kernel is
    # the whole periodic Lorentzian, tails included, as the broadening made it
    ext = mirrored(x)
    transfer = degrade.lorentzian_transfer(added_fwhm_px, ext.shape).astype(np.complex128)
    return restoration.wiener(ext, transfer, float(balance), reg=laplacian_transfer(ext.shape), is_real=True,
                              clip=False)[: x.shape[0], : x.shape[1]]


@functools.lru_cache(maxsize=4)
def laplacian_transfer(shape) -> np.ndarray:
    """The Laplacian regularizer of :func:`skimage.restoration.wiener` on ``shape``, rfft2 layout (read-only).

    What ``wiener`` builds itself when given no ``reg`` (``skimage.restoration.uft.laplacian``),
    kept for the last few shapes: a plane's anchor, its balance search and its data consistency
    filter the same mirrored plane many times (about 0.15 s a time on a 1604 x 2336 extension).

    Parameters
    ----------
    shape : (int, int)
        Shape of the (mirrored) plane, points.

    Returns
    -------
    ndarray, complex128, shape ``(H, W // 2 + 1)``
    """
    from skimage.restoration import uft

    reg, _ = uft.laplacian(2, tuple(int(n) for n in shape), is_real=True)
    reg.setflags(write=False)
    return reg


def _median_widths(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    from mssr.evaluation.realpairs import fwhm_px

    widths = np.array([fwhm_px(x, p) for p in peaks], dtype=np.float64).reshape(-1, 2)
    return np.nanmedian(widths, axis=0)


def _fitted_widths(x: np.ndarray, peaks: np.ndarray, guess) -> np.ndarray:
    """Median Lorentzian FWHM (points, per axis) of ``peaks``, each fitted with its neighbours.

    Around each peak a window of :data:`FIT_WINDOW` x ``guess`` points on each side is fitted by
    bounded least squares (:func:`scipy.optimize.least_squares`, the analytic Jacobian of
    :func:`mssr.evaluation.classical.line_profiles`) with a constant
    and a separable Lorentzian at each of the :data:`FIT_COMPONENTS` strongest local maxima within
    it or one ``guess`` outside it (any above :data:`mssr.evaluation.realpairs.TRUE_PEAK_SNR` noise SDs), all sharing one
    pair of widths: the overlapping neighbours take their share of the window instead of widening
    the peak, as they widen a half-height reading.
    """
    from scipy.optimize import least_squares
    from threadpoolctl import threadpool_limits

    from mssr.evaluation.classical import line_profiles
    from mssr.evaluation.realpairs import TRUE_PEAK_SNR, local_maxima
    from mssr.spectrum import robust_noise_sd

    guess = np.maximum(np.asarray(guess, dtype=np.float64), 1.0)
    components = local_maxima(x, TRUE_PEAK_SNR * robust_noise_sd(x))
    half = np.maximum(3, np.ceil(FIT_WINDOW * guess)).astype(int)
    reach = np.ceil(guess).astype(int)
    step = np.maximum(1, np.floor(guess / FIT_SAMPLING)).astype(int)
    widths = []
    # one BLAS thread: the SVDs of these small Jacobians are slower threaded (Ddx4 plane 0 at
    # 400 MHz, 2 cores: 143 s on two threads, 60 s on one, the same widths)
    with threadpool_limits(limits=1, user_api="blas"):
        for p in np.asarray(peaks, dtype=int).reshape(-1, 2):
            lo = np.maximum(p - half, 0)
            hi = np.minimum(p + half + 1, x.shape)
            # a neighbour just outside the window still puts its flank inside it
            inside = np.all((components >= lo - reach) & (components < hi + reach), axis=1)
            centres = components[inside][:FIT_COMPONENTS].astype(np.float64)
            if not len(centres):
                centres = p[None, :].astype(np.float64)
            # every step-th point through the peak: FIT_SAMPLING points per guessed FWHM
            rows, cols = (np.arange(c - ((c - a) // n) * n, b, n)
                          for c, a, b, n in zip(p, lo, hi, step))
            window = x[np.ix_(rows, cols)].ravel()
            rows, cols = rows.astype(np.float64), cols.astype(np.float64)
            k = len(centres)

            def parts(q):
                # q = (FWHM rows, FWHM cols, constant, then height, row, col of each Lorentzian)
                pr, dr, dwr = line_profiles(rows, q[4::3], np.full(k, q[0]), "lorentzian")
                pc, dc, dwc = line_profiles(cols, q[5::3], np.full(k, q[1]), "lorentzian")
                return q[3::3][:, None, None], pr[:, :, None], dr[:, :, None], dwr[:, :, None], \
                    pc[:, None, :], dc[:, None, :], dwc[:, None, :]

            def residual(q):
                h, pr, _, _, pc, _, _ = parts(q)
                return q[2] + (h * pr * pc).sum(axis=0).ravel() - window

            def jacobian(q):
                h, pr, dr, dwr, pc, dc, dwc = parts(q)
                jac = np.empty((len(window), len(q)))
                jac[:, 0] = (h * dwr * pc).sum(axis=0).ravel()
                jac[:, 1] = (h * pr * dwc).sum(axis=0).ravel()
                jac[:, 2] = 1.0
                jac[:, 3::3] = (pr * pc).reshape(k, -1).T
                jac[:, 4::3] = (h * dr * pc).reshape(k, -1).T
                jac[:, 5::3] = (h * pr * dc).reshape(k, -1).T
                return jac

            heights = np.maximum(x[centres[:, 0].astype(int), centres[:, 1].astype(int)], 0.0)
            q0 = np.concatenate([guess, [0.0], np.column_stack([heights, centres]).ravel()])
            lower = np.concatenate([[0.3, 0.3, -np.inf], np.column_stack([np.zeros(len(centres)), centres - 1.5]).ravel()])
            upper = np.concatenate([10.0 * guess + 5.0, [np.inf],
                                    np.column_stack([np.full(len(centres), np.inf), centres + 1.5]).ravel()])
            q0 = np.clip(q0, lower, upper)
            fit = least_squares(residual, q0, jac=jacobian, bounds=(lower, upper), x_scale="jac",
                                max_nfev=FIT_EVALUATIONS)
            widths.append(fit.x[:2])
    return np.median(np.array(widths).reshape(-1, 2), axis=0)


def added_widths_px(x: np.ndarray, factor: float, *, ratio=(1.0, 1.0),
                    iterations: int = ITERATIONS) -> tuple[float, float]:
    """The Lorentzian widths (points) that broadened a low-field plane, estimated from its own lines.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Low-field plane, in the network's unit.
    factor : float
        ``B_high / B_low`` (> 1).
    ratio : (float, float)
        ``LW_Hz(B_low) / LW_Hz(B_high)`` per axis (:func:`mssr.data.linewidths.width_ratio`; 1 for
        lines fixed in Hz): a line of ``W_high`` points is ``r f W_high`` wide at the low field and
        the kernel is ``(r f - 1) W_high`` (none where ``r f <= 1``).
    iterations : int
        Fixed-point steps (module notes).

    Returns
    -------
    (float, float)
        FWHM of the added Lorentzian on each axis, points of ``x``'s grid.

    Raises
    ------
    ValueError
        If the plane has no strong peak to measure (:func:`mssr.evaluation.realpairs.strong_peaks`;
        the isolated ones where there are :data:`MIN_ISOLATED`, module notes).
    """
    from mssr.evaluation.realpairs import fwhm_px, isolated_peaks, strong_peaks

    factor = float(factor)
    if not factor > 1.0:
        raise ValueError(f"factor must be > 1, got {factor}")
    x = np.asarray(x, dtype=np.float64)
    strong = strong_peaks(x)
    if not len(strong):
        raise ValueError("the plane has no strong peak whose linewidth would give the broadening")
    # peaks whose half height is not reached within the plane (at an edge) give no width
    isolated = isolated_peaks(x, strong)
    crossings = np.array([fwhm_px(x, p) for p in isolated], dtype=np.float64).reshape(-1, 2)
    measurable = np.all(np.isfinite(crossings), axis=1)
    if measurable.sum() >= MIN_ISOLATED:
        peaks = isolated[measurable]
        low = np.median(crossings[measurable], axis=0)

        def measure(plane, where, guess):
            return _median_widths(plane, where)
    else:
        # a crowded plane: every strong peak (the strongest FIT_PEAKS), fitted with its neighbours
        peaks = strong[:FIT_PEAKS]
        measure = _fitted_widths
        crossings = np.array([fwhm_px(x, p) for p in peaks], dtype=np.float64).reshape(-1, 2)
        measurable = np.all(np.isfinite(crossings), axis=1)
        if not measurable.any():
            raise ValueError("the linewidths of the plane's strong peaks could not be measured "
                             "(every one is cut by an edge)")
        low = measure(x, peaks, np.median(crossings[measurable], axis=0))
    broadening = factor * _validated_ratio(ratio)  # low-field over high-field width, per axis
    if not np.all(broadening > 1.0):
        # lines no wider at the low field on some axis (in ppm): nothing to deconvolve there
        broadening = np.maximum(broadening, 1.0)
    high = low / broadening
    crowded = measure is _fitted_widths
    balance = FIT_MEASURE_BALANCE if crowded else measuring_balance(x, (broadening - 1.0) * high, peaks)
    for _ in range(int(iterations)):
        added = (broadening - 1.0) * high
        measured = measure(deconvolve(x, added, balance=balance), peaks, high)
        if not np.all(np.isfinite(measured)):
            break
        # the same deconvolution of the line the model claims (a Lorentzian of the low-field width
        # high + added): the difference is the model's error, free of the regularization's broadening
        model = measure(deconvolve(_line(high + added), added, balance=balance),
                        np.array([_LINE_CENTRE]), high)
        # a line cannot come out narrower than nothing, nor wider than its low-field width
        high = np.clip(high + (measured - model), 0.05 * low, low)
    added = (broadening - 1.0) * high
    return float(added[0]), float(added[1])


def _peak_heights(x: np.ndarray, added_fwhm_px, balances, peaks: np.ndarray):
    """``(balance, deconvolved plane, median height at peaks)`` for each balance, in order (one FFT of ``x``).

    The same filter as :func:`deconvolve` (:func:`wiener_transfer` on the :func:`mirrored` plane).
    """
    where = np.asarray(peaks, dtype=int).reshape(-1, 2)
    ext = mirrored(np.asarray(x, dtype=np.float64))
    spectrum = np.fft.rfft2(ext)
    for balance in balances:
        _, filt = wiener_transfer(added_fwhm_px, ext.shape, balance=balance)
        d = np.fft.irfft2(filt * spectrum, s=ext.shape)[: x.shape[0], : x.shape[1]]
        yield float(balance), d, float(np.median(d[where[:, 0], where[:, 1]]))


def measuring_balance(x: np.ndarray, added_fwhm_px, peaks: np.ndarray) -> float:
    """The lightest of :data:`MEASURE_BALANCES` whose deconvolution of ``x`` keeps the noise within :data:`MEASURE_NOISE` of the peaks.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        The low-field plane.
    added_fwhm_px : (float, float)
        The kernel (points) it is deconvolved with, the fixed point's first guess.
    peaks : ndarray, shape (K, 2)
        Points (row, column) of the peaks whose widths will be read.

    Returns
    -------
    float
        The balance; the heaviest candidate where none keeps the noise that low.
    """
    from mssr.spectrum import robust_noise_sd

    candidates = sorted(float(b) for b in MEASURE_BALANCES)
    for balance, d, height in _peak_heights(x, added_fwhm_px, candidates[:-1], peaks):
        if height > 0 and robust_noise_sd(d) <= MEASURE_NOISE * height:
            return balance
    return candidates[-1]


def estimate_balance(x: np.ndarray, added_fwhm_px, peaks: np.ndarray | None = None) -> float:
    """The regularization of the anchor as an estimate: the heaviest of :data:`ESTIMATE_BALANCES` that keeps :data:`HEIGHT_KEPT` of the peaks' height.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        The low-field plane (network unit, working grid).
    added_fwhm_px : (float, float)
        The anchor's kernel, points.
    peaks : ndarray, shape (K, 2), optional
        Where the heights are read (default: the plane's strong peaks,
        :func:`mssr.evaluation.realpairs.strong_peaks`).

    Returns
    -------
    float
        The balance (the lightest candidate where even the next one blunts the peaks).
    """
    from mssr.evaluation.realpairs import strong_peaks

    x = np.asarray(x, dtype=np.float64)
    where = (strong_peaks(x) if peaks is None else np.asarray(peaks, dtype=int)).reshape(-1, 2)
    candidates = sorted(float(b) for b in ESTIMATE_BALANCES)
    if not len(where) or max(added_fwhm_px) <= 0:
        return candidates[0]
    chosen, reference = candidates[0], None
    for balance, _, height in _peak_heights(x, added_fwhm_px, candidates, where):
        if reference is None:
            reference = height
        elif not height >= HEIGHT_KEPT * reference:
            break
        chosen = balance
    return chosen


def _validated_ratio(ratio) -> np.ndarray:
    r = np.asarray(ratio, dtype=np.float64)
    if r.shape != (2,) or not np.all(np.isfinite(r)) or not np.all(r > 0):
        raise ValueError(f"ratio must be two positive numbers (one per axis), got {ratio!r}")
    return r


_LINE_SIDE = 513
_LINE_CENTRE = (_LINE_SIDE // 2, _LINE_SIDE // 2)


def _line(fwhm_px) -> np.ndarray:
    """A centred 2D Lorentzian line of unit height, FWHM ``fwhm_px`` per axis, on a square grid."""
    t = np.arange(_LINE_SIDE, dtype=np.float64) - _LINE_SIDE // 2
    rows = 1.0 / (1.0 + (2.0 * t / max(float(fwhm_px[0]), 1e-3)) ** 2)
    cols = 1.0 / (1.0 + (2.0 * t / max(float(fwhm_px[1]), 1e-3)) ** 2)
    return np.outer(rows, cols)


def anchor(x: np.ndarray, factor: float, *, added_fwhm_px=None, ratio=(1.0, 1.0), balance: float = BALANCE):
    """The anchor of a low-field plane: its deconvolution by the broadening its lines imply.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Low-field plane in the network's unit, on the working grid.
    factor : float
        ``B_high / B_low``.
    added_fwhm_px : (float, float), optional
        Kernel widths (points); estimated with :func:`added_widths_px` when None.
    ratio : (float, float)
        The experiment's linewidth ratio per axis for that estimate (:func:`added_widths_px`).
    balance : float
        Wiener regularization (:data:`BALANCE`).

    Returns
    -------
    anchor : ndarray, float64, shape (H, W)
    added_fwhm_px : (float, float)
        The widths used.
    """
    if added_fwhm_px is None:
        added_fwhm_px = added_widths_px(x, factor, ratio=ratio)
    return deconvolve(x, added_fwhm_px, balance=balance), tuple(float(w) for w in added_fwhm_px)


def wiener_transfer(added_fwhm_px, shape, *, balance: float = BALANCE) -> tuple[np.ndarray, np.ndarray]:
    """The broadening's transfer function and the Wiener filter of :func:`deconvolve`, rfft2 layout.

    Parameters
    ----------
    added_fwhm_px : (float, float)
        Lorentzian FWHM per axis, points.
    shape : (int, int)
        Shape of the plane.
    balance : float
        Regularization weight (:data:`BALANCE`).

    Returns
    -------
    transfer, filter : ndarray, float64, shape ``(H, W // 2 + 1)``
        ``H(k)`` and ``H(k) / (H(k)^2 + balance |L(k)|^2)`` (``L`` the Laplacian regularizer of
        :func:`skimage.restoration.wiener`), so that ``irfft2(filter * rfft2(x))`` is
        :func:`deconvolve` of a plane of half this shape on each axis when ``x`` is its
        :func:`mirrored` extension (periodic on ``shape`` itself).
    """
    transfer = degrade.lorentzian_transfer(added_fwhm_px, tuple(shape))
    reg = laplacian_transfer(tuple(shape))
    return transfer, transfer / (transfer**2 + float(balance) * np.abs(reg) ** 2)


class Consistency:
    """Data consistency of an estimate with the low-field plane: what the anchor's filter sees of it comes from the data.

    With ``H`` the broadening and ``W`` the anchor's Wiener filter (:func:`wiener_transfer`), an
    estimate ``x0`` of the high-field plane is replaced by

        ``x0 + W (y - H x0)``,

    ``y`` the low-field plane (both filtered on their :func:`mirrored` extensions, as the anchor
    is): the range-null-space decomposition of DDNM (Wang, Yu and Zhang,
    ICLR 2023) with the regularized inverse ``W`` for the pseudo-inverse. Where the data determine
    the spectrum (``W H`` near 1: the broad, low-frequency content) the result is the data's
    deconvolution, the anchor; the estimate keeps only what the broadening removed (``W H`` near
    0: the fine structure of narrow lines). A low-level offset or a smooth background an estimate
    adds is in the first part and removed; the sampler applies it to its x0 prediction at every
    step (``project_x0`` of :meth:`mssr.model.diffusion.Diffusion.sample`).

    Parameters
    ----------
    y : ndarray, shape (H, W) or (N, H, W)
        The low-field plane (or N planes), in the estimate's unit, on its grid.
    added_fwhm_px : (float, float) or sequence of N of them
        The broadening's Lorentzian widths (points), the anchor's; one pair per plane.
    balance : float
        The anchor's regularization (:data:`BALANCE`).

    Notes
    -----
    The estimates a sampler passes are a spectrum-major stack of chains, shape (N R, 1, H, W) or
    (N R, H, W): chain ``n R + r`` belongs to plane ``n``.
    """

    def __init__(self, y: np.ndarray, added_fwhm_px, *, balance: float = BALANCE):
        import torch

        y = np.asarray(y, dtype=np.float64)
        if y.ndim not in (2, 3):
            raise ValueError(f"y must be one plane (H, W) or N planes (N, H, W), got shape {y.shape}")
        planes = y.reshape((-1, *y.shape[-2:]))
        widths = np.asarray(added_fwhm_px, dtype=np.float64).reshape(-1, 2)
        if len(widths) != len(planes):
            raise ValueError(f"added_fwhm_px: {len(widths)} pair(s) of widths for {len(planes)} plane(s)")
        self.shape = planes.shape[-2:]
        ext = (2 * self.shape[0], 2 * self.shape[1])
        gains, anchors = [], []
        for plane, w in zip(planes, widths):
            transfer, filt = wiener_transfer(w, ext, balance=balance)
            gains.append(filt * transfer)
            anchors.append(deconvolve(plane, w, balance=balance))  # W y
        self._gain = torch.as_tensor(np.stack(gains).astype(np.float32))
        self._anchor = torch.as_tensor(np.stack(anchors).astype(np.float32))

    def __call__(self, x0):
        """``x0 + W (y - H x0)`` for a stack of shape (N R, [1,] H, W) (Notes)."""
        import torch

        if tuple(x0.shape[-2:]) != tuple(self.shape):
            raise ValueError(f"estimate has plane shape {tuple(x0.shape[-2:])}, the data {tuple(self.shape)}")
        n = len(self._gain)
        if x0.shape[0] % n:
            raise ValueError(f"a stack of {x0.shape[0]} estimates is not a whole number of chains of {n} plane(s)")
        repeats = x0.shape[0] // n
        h, w = self.shape
        flat = mirrored(x0.reshape(n, repeats, h, w))
        gain = self._gain.to(x0.device)[:, None]
        seen = torch.fft.irfft2(gain * torch.fft.rfft2(flat), s=(2 * h, 2 * w))
        out = (flat - seen)[..., :h, :w] + self._anchor.to(x0.device)[:, None]
        return out.reshape(x0.shape)

__all__ = ["BALANCE", "Consistency", "FIT_COMPONENTS", "FIT_EVALUATIONS", "FIT_MEASURE_BALANCE", "FIT_PEAKS", "FIT_WINDOW",
           "ESTIMATE_BALANCES", "HEIGHT_KEPT", "ITERATIONS",
           "MEASURE_BALANCES", "MEASURE_NOISE", "MIN_ISOLATED", "TRAINING_JITTER", "added_widths_px", "anchor", "deconvolve",
           "estimate_balance", "laplacian_transfer", "measuring_balance", "mirrored", "wiener_transfer"]
