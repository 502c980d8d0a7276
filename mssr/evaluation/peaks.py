"""Peak picking (the paper's Algorithm 1) and optimal peak matching on 2D spectra.

Coordinates are in pixels, ``(row, col)``: row along axis 0 (indirect dimension), col along
axis 1 (direct 1H dimension). Distances are Euclidean in pixels; convert with the spectrum's
ppm per pixel where ppm are wanted (see :func:`mssr.evaluation.metrics.compute`).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal, NamedTuple, get_args

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

Sign = Literal["positive", "both"]
"""Which extrema are peaks: ``"positive"`` maxima only (the paper), or ``"both"`` signs."""

# Connectivity for merging plateau pixels: 8-neighbours inside one spectrum, never across the
# batch axis, so a stack of spectra is labelled exactly as each spectrum alone.
_PLANE_CONNECTIVITY = np.zeros((3, 3, 3), dtype=bool)
_PLANE_CONNECTIVITY[1] = True


class Peaks(NamedTuple):
    """Peaks of one 2D spectrum.

    Attributes
    ----------
    coords : ndarray, shape (K, 2), float64
        Peak positions ``(row, col)`` in pixels, sorted row-major.
    amplitudes : ndarray, shape (K,)
        Values of the *unsmoothed* spectrum at ``coords``, in the spectrum's dtype and scale.
    signs : ndarray, shape (K,), int8
        ``+1`` for a maximum, ``-1`` for a minimum (only with ``sign="both"``).
    """

    coords: np.ndarray
    amplitudes: np.ndarray
    signs: np.ndarray


@dataclass(frozen=True)
class PeakOptions:
    """Options of peak detection and matching, validated on construction.

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian smoothing before detection, pixels (>= 0; 0 = none).
    window : int
        Side ``n`` of the ``n x n`` maximum filter, pixels (odd, >= 3).
    alpha : float
        A peak must exceed ``mean + alpha * std`` of the smoothed spectrum (>= 0).
    threshold_px : float
        Largest Euclidean distance, pixels, at which a true and a predicted peak still match (>= 0).
    sign : {"positive", "both"}
        ``"positive"``: maxima only, as in the paper. ``"both"``: also minima below
        ``mean - alpha * std`` (negative peaks), matched only to peaks of the same sign.

    Examples
    --------
    >>> from dataclasses import asdict
    >>> options = PeakOptions(threshold_px=2.0)
    >>> sorted(asdict(options))
    ['alpha', 'sigma', 'sign', 'threshold_px', 'window']
    """

    sigma: float = 1.0
    window: int = 3
    alpha: float = 3.0
    threshold_px: float = 3.0
    sign: Sign = "positive"

    def __post_init__(self) -> None:
        _validate_nonnegative(self.sigma, "sigma")
        _validate_window(self.window)
        _validate_nonnegative(self.alpha, "alpha")
        _validate_nonnegative(self.threshold_px, "threshold_px")
        _validate_sign(self.sign)


def _validate_nonnegative(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")


def _validate_window(window) -> None:
    if isinstance(window, bool) or not isinstance(window, Integral):
        raise TypeError(f"window must be an int, got {type(window).__name__}")
    # An even window has no centre pixel (scipy would shift it by half a pixel); a 1 x 1 window
    # makes every pixel a local maximum.
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of pixels >= 3, got {window}")


def _validate_sign(sign) -> None:
    if sign not in get_args(Sign):
        raise ValueError(f"sign must be one of {get_args(Sign)}, got {sign!r}")


def validate_spectra(x, name: str, ndim: int) -> np.ndarray:
    """Check that ``x`` is a finite real array of ``ndim`` dimensions; return it unchanged.

    Raises
    ------
    TypeError
        ``x`` is not a numpy array of real numbers.
    ValueError
        ``x`` has another number of dimensions, or holds NaN or inf (the first is named).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}D, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
    return x


def _validate_coords(coords, name: str) -> np.ndarray:
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"{name} must have shape (K, 2), got {coords.shape}")
    if not np.isfinite(coords).all():
        raise ValueError(f"{name} contains NaN or inf")
    return coords


DEFAULT_OPTIONS = PeakOptions()
"""The default peak options: the one place where the defaults of detection and matching live.
Every function and config reader that needs a default reads it from here."""


def _one_per_component(mask: np.ndarray) -> np.ndarray:
    """Reduce every 8-connected region of ``mask`` (per spectrum) to one pixel.

    The kept pixel is the region's pixel closest to the region's centroid (first in row-major
    order on ties), so an isolated pixel is kept as is and a flat-topped peak gives one peak.

    Parameters
    ----------
    mask : ndarray of bool, shape (N, H, W)

    Returns
    -------
    ndarray of int, shape (M, 3)
        ``(spectrum, row, col)`` of the kept pixels, sorted by spectrum then row-major.
    """
    labels, count = ndimage.label(mask, structure=_PLANE_CONNECTIVITY)
    if count == 0:
        return np.empty((0, 3), dtype=np.intp)
    index = np.nonzero(labels)
    label = labels[index]
    if count == label.size:  # no plateau: every candidate is its own region
        return np.stack(index, axis=1)
    size = np.bincount(label)
    centroid_row = np.bincount(label, index[1]) / np.maximum(size, 1)
    centroid_col = np.bincount(label, index[2]) / np.maximum(size, 1)
    distance2 = (index[1] - centroid_row[label]) ** 2 + (index[2] - centroid_col[label]) ** 2
    order = np.lexsort((distance2, label))  # stable: ties keep row-major order
    first = np.ones(order.size, dtype=bool)
    first[1:] = label[order][1:] != label[order][:-1]
    kept = np.sort(order[first])  # back to (spectrum, row, col) order
    return np.stack([axis[kept] for axis in index], axis=1)


def _candidates(smoothed: np.ndarray, window: int, alpha: float, polarity: int) -> np.ndarray:
    """Algorithm 1 on a stack: local extrema of ``polarity`` beyond ``mean +- alpha * std``."""
    signed = smoothed if polarity > 0 else -smoothed
    local_max = signed == ndimage.maximum_filter(signed, size=(1, window, window))
    mean = signed.mean(axis=(1, 2), keepdims=True)
    std = signed.std(axis=(1, 2), keepdims=True)
    # A constant spectrum has std 0 but its mean can differ from its value by rounding; test the
    # range instead so that it never yields peaks (every pixel would be a "local maximum").
    flat = (signed.max(axis=(1, 2), keepdims=True) == signed.min(axis=(1, 2), keepdims=True))
    return local_max & (signed > mean + alpha * std) & ~flat


def detect_many(
    x: np.ndarray,
    *,
    sigma: float = DEFAULT_OPTIONS.sigma,
    window: int = DEFAULT_OPTIONS.window,
    alpha: float = DEFAULT_OPTIONS.alpha,
    sign: Sign = DEFAULT_OPTIONS.sign,
) -> list[Peaks]:
    """Detect the peaks of a stack of 2D spectra (the paper's Algorithm 1, batched).

    For each spectrum ``x[i]``: smooth with a Gaussian of standard deviation ``sigma`` (pixels),
    apply an ``n x n`` maximum filter (``n = window``), and call a pixel a peak when the smoothed
    value equals the filtered one (a local maximum) and exceeds ``mean + alpha * std`` of the
    smoothed spectrum. Amplitudes are read from the unsmoothed ``x[i]`` at the peak pixel.
    Filters use scipy's default ``"reflect"`` boundary.

    Plateaus: two 8-neighbour pixels can both be local maxima of a window of 3 or more only if
    they are equal, so connected runs of candidate pixels are plateaus; each is reduced to one
    peak, at the run's pixel nearest its centroid. A constant spectrum (std 0) has no peak.

    Sign: the paper's algorithm finds positive maxima only, and so does ``sign="positive"``.
    Spectra also have negative peaks (e.g. HNCACB C-beta); ``sign="both"`` applies the same test
    to ``-x`` and returns those peaks with ``signs == -1`` and their (negative) amplitudes.

    Parameters
    ----------
    x : ndarray, shape (N, H, W)
        Spectra, any real dtype (normally float32 in [-1, 1]).
    sigma : float, optional
        Gaussian smoothing, pixels (0 disables it).
    window : int, optional
        Maximum-filter side, pixels (odd, >= 3).
    alpha : float, optional
        Threshold in standard deviations of the smoothed spectrum.
    sign : {"positive", "both"}, optional
        Which extrema count as peaks.

    Returns
    -------
    list of Peaks
        One per spectrum; coordinates are integer pixel positions stored as float64.
    """
    return detect_stack(x, PeakOptions(sigma=sigma, window=window, alpha=alpha, sign=sign))


def detect_stack(x: np.ndarray, options: PeakOptions = DEFAULT_OPTIONS) -> list[Peaks]:
    """:func:`detect_many` with its options as one :class:`PeakOptions` (``threshold_px`` unused).

    Parameters
    ----------
    x : ndarray, shape (N, H, W)
        Spectra, any real dtype.
    options : PeakOptions, optional
        Detection options.

    Returns
    -------
    list of Peaks
        One per spectrum.
    """
    x = validate_spectra(x, "x", 3)
    if not isinstance(options, PeakOptions):
        raise TypeError(f"options must be a PeakOptions, got {type(options).__name__}")
    # sigma 0 on axis 0: scipy skips that axis, so spectra never bleed into each other.
    smoothed = ndimage.gaussian_filter(x.astype(np.float64), sigma=(0.0, options.sigma, options.sigma))
    polarities = (1,) if options.sign == "positive" else (1, -1)
    found = []
    for polarity in polarities:
        where = _one_per_component(_candidates(smoothed, options.window, options.alpha, polarity))
        found.append(np.column_stack([where, np.full(len(where), polarity)]))
    table = np.concatenate(found)
    table = table[np.lexsort((table[:, 2], table[:, 1], table[:, 0]))]
    bounds = np.searchsorted(table[:, 0], np.arange(x.shape[0] + 1))
    peaks = []
    for i in range(x.shape[0]):
        rows = table[bounds[i] : bounds[i + 1]]
        peaks.append(
            Peaks(
                coords=rows[:, 1:3].astype(np.float64),
                amplitudes=x[i][rows[:, 1], rows[:, 2]],
                signs=rows[:, 3].astype(np.int8),
            )
        )
    return peaks


def detect(
    x: np.ndarray,
    *,
    sigma: float = DEFAULT_OPTIONS.sigma,
    window: int = DEFAULT_OPTIONS.window,
    alpha: float = DEFAULT_OPTIONS.alpha,
    sign: Sign = DEFAULT_OPTIONS.sign,
) -> Peaks:
    """Detect the peaks of one 2D spectrum (the paper's Algorithm 1).

    See :func:`detect_many` for the algorithm, plateaus and signs.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Spectrum, any real dtype.
    sigma, window, alpha, sign
        As in :func:`detect_many` (pixels).

    Returns
    -------
    Peaks
        ``coords`` (K, 2) in pixels, ``amplitudes`` (K,) from ``x``, ``signs`` (K,).

    Examples
    --------
    >>> x = np.zeros((9, 9)); x[4, 4] = 1.0
    >>> detect(x, sigma=1.0, window=3, alpha=3.0).coords
    array([[4., 4.]])
    """
    x = validate_spectra(x, "x", 2)
    return detect_many(x[None], sigma=sigma, window=window, alpha=alpha, sign=sign)[0]


def match(
    true_coords: np.ndarray,
    pred_coords: np.ndarray,
    *,
    threshold_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match true to predicted peaks one-to-one, optimally, within a distance threshold.

    Solves the assignment problem (``scipy.optimize.linear_sum_assignment``) on Euclidean
    distances in pixels. Pairs farther apart than ``threshold_px`` are inadmissible: they get a
    cost larger than any sum of admissible distances, so the solution first has as many
    admissible pairs as possible and, among those, the smallest total distance; inadmissible
    pairs are then dropped and count as unmatched. A pair at exactly ``threshold_px`` matches.

    Parameters
    ----------
    true_coords : array_like, shape (K, 2)
        True peak positions, pixels.
    pred_coords : array_like, shape (M, 2)
        Predicted peak positions, pixels.
    threshold_px : float
        Largest matching distance, pixels.

    Returns
    -------
    i_true : ndarray of intp, shape (P,)
        Indices into ``true_coords``, ascending.
    i_pred : ndarray of intp, shape (P,)
        Matching indices into ``pred_coords``.
    dist : ndarray of float64, shape (P,)
        Distances of the matched pairs, pixels (each <= ``threshold_px``).

    Examples
    --------
    >>> match([[0, 0], [0, 2.5]], [[0, 2.0], [0, 5.0]], threshold_px=3.0)
    (array([0, 1]), array([0, 1]), array([2. , 2.5]))
    """
    true_coords = _validate_coords(true_coords, "true_coords")
    pred_coords = _validate_coords(pred_coords, "pred_coords")
    _validate_nonnegative(threshold_px, "threshold_px")
    empty = (np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float64))
    if len(true_coords) == 0 or len(pred_coords) == 0:
        return empty
    distance = cdist(true_coords, pred_coords)
    admissible = distance <= threshold_px
    # Peaks with no admissible partner cannot match: leave them out of the (cubic) solve.
    rows = np.flatnonzero(admissible.any(axis=1))
    cols = np.flatnonzero(admissible.any(axis=0))
    if rows.size == 0:
        return empty
    sub = distance[np.ix_(rows, cols)]
    sub_admissible = admissible[np.ix_(rows, cols)]
    # Exceeds the largest possible total of admissible distances, so trading one admissible
    # pair for an inadmissible one never pays.
    penalty = (min(sub.shape) + 1) * threshold_px + 1.0
    i_sub, j_sub = linear_sum_assignment(np.where(sub_admissible, sub, penalty))
    keep = sub_admissible[i_sub, j_sub]
    i_true, i_pred = rows[i_sub[keep]], cols[j_sub[keep]]
    return i_true, i_pred, distance[i_true, i_pred]


# ---------------------------------------------------------------------------------------------
# line widths and resolution of close pairs


def _apex_height(profile: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Height of each line's apex, refined from the three points around its maximum pixel.

    For a Lorentzian, ``1 / y`` is a parabola in the position, so a parabola through
    ``1 / y`` at ``c - 1, c, c + 1`` gives the exact apex height of a sampled Lorentzian whose
    maximum falls between pixels. Where that does not apply (a neighbour <= 0, an edge, or no
    minimum of the parabola) the pixel's own value is kept.
    """
    k = np.arange(len(centre))
    width = profile.shape[1]
    top = profile[k, centre]
    inside = (centre > 0) & (centre < width - 1)
    left = profile[k, np.clip(centre - 1, 0, width - 1)]
    right = profile[k, np.clip(centre + 1, 0, width - 1)]
    ok = inside & (left > 0) & (right > 0) & (top >= left) & (top >= right) & (top > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_l, inv_c, inv_r = 1.0 / left, 1.0 / top, 1.0 / right
        curvature = (inv_l + inv_r - 2.0 * inv_c) / 2.0
        offset = (inv_r - inv_l) / (4.0 * curvature)
        apex = 1.0 / (inv_c - curvature * offset**2)
    ok &= (curvature > 0) & np.isfinite(apex) & (np.abs(offset) <= 0.5 + 1e-9)
    return np.where(ok, apex, top)


def _half_height_width(profile: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """FWHM, pixels, of the line at ``centre`` in each row of ``profile`` (K, L); NaN if unbounded."""
    if len(centre) == 0:
        return np.empty(0)
    k = np.arange(len(centre))
    half = _apex_height(profile, centre) / 2.0
    index = np.arange(profile.shape[1])
    below = profile < half[:, None]
    right_side = below & (index > centre[:, None])
    left_side = below & (index < centre[:, None])
    has = right_side.any(axis=1) & left_side.any(axis=1)
    j_right = np.argmax(right_side, axis=1)  # first point below half height right of the apex
    j_left = profile.shape[1] - 1 - np.argmax(left_side[:, ::-1], axis=1)  # and left of it
    j_right, j_left = np.where(has, j_right, 1), np.where(has, j_left, 0)
    # Linear interpolation between the last point above and the first point below half height.
    above_r, below_r = profile[k, j_right - 1], profile[k, j_right]
    above_l, below_l = profile[k, np.minimum(j_left + 1, profile.shape[1] - 1)], profile[k, j_left]
    with np.errstate(divide="ignore", invalid="ignore"):
        right = (j_right - 1) + (above_r - half) / (above_r - below_r)
        left = (j_left + 1) - (above_l - half) / (above_l - below_l)
    return np.where(has, right - left, np.nan)


def linewidths(x: np.ndarray, peaks: Peaks) -> np.ndarray:
    """Full width at half height of each peak along both axes, pixels.

    Along each axis, the profile through the peak's pixel is read (the row for axis 1, the
    column for axis 0; sign-flipped for a negative peak). The apex height ``h`` is refined from
    the three points around the maximum (exact for a sampled Lorentzian, see below); going
    outward from the apex, the first point below ``h / 2`` on each side and the point before it
    are joined by a straight line, and the FWHM is the distance between the two crossings. The
    baseline is taken as 0 (spectra are baseline-corrected). A line that does not fall below
    half height before the spectrum's edge gets NaN on that axis (so does a reading that is not a
    positive finite width); two lines that overlap above
    half height are measured as one (a blend is as wide as it looks).

    Accuracy on sampled Lorentzians, largest error over sub-pixel centre positions (measured;
    the straight line across the convex flank overestimates): 5.3% at 3 points per FWHM, 3.0%
    at 4, 2.0% at 5, 1.4% at 6, 0.5% at 10; 11% at 2 points, where no half-height reading is
    reliable.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Spectrum.
    peaks : Peaks
        Its peaks (e.g. from :func:`detect`); ``coords`` must be integer pixel positions.

    Returns
    -------
    ndarray of float64, shape (K, 2)
        FWHM along (axis 0, axis 1), pixels; NaN where a line has no half-height crossing.

    Examples
    --------
    >>> cols = np.arange(64)
    >>> line = 1 / (1 + 4 * (cols - 30.0) ** 2 / 6.0**2)
    >>> x = np.outer(1 / (1 + 4 * (np.arange(32) - 16.0) ** 2 / 4.0**2), line)
    >>> np.round(linewidths(x, detect(x)), 2)
    array([[4., 6.]])
    """
    x = validate_spectra(x, "x", 2)
    if not isinstance(peaks, Peaks):
        raise TypeError(f"peaks must be a Peaks, got {type(peaks).__name__}")
    coords = _validate_coords(peaks.coords, "peaks.coords")
    if len(coords) == 0:
        return np.empty((0, 2))
    rows, cols = coords[:, 0].astype(np.intp), coords[:, 1].astype(np.intp)
    if not (np.array_equal(rows, coords[:, 0]) and np.array_equal(cols, coords[:, 1])):
        raise ValueError("peaks.coords must be integer pixel positions")
    if rows.min() < 0 or cols.min() < 0 or rows.max() >= x.shape[0] or cols.max() >= x.shape[1]:
        raise ValueError(f"peaks.coords lie outside the spectrum of shape {x.shape}")
    sign = np.where(np.asarray(peaks.signs) < 0, -1.0, 1.0)[:, None]
    x64 = x.astype(np.float64)
    along_0 = _half_height_width(sign * x64[:, cols].T, rows)
    along_1 = _half_height_width(sign * x64[rows, :], cols)
    widths = np.column_stack([along_0, along_1])
    # a reading that is not a positive finite width (flat flanks at half height, a dip through the
    # apex of a noisy low line) is no width: NaN like an unbounded line
    return np.where(np.isfinite(widths) & (widths > 0), widths, np.nan)


def close_pairs(peaks: Peaks, fwhm_px) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of peaks of equal sign closer than a line width: the overlaps a spectrum must resolve.

    Peaks ``i`` and ``j`` form a close pair when
    ``(d_row / w_0)**2 + (d_col / w_1)**2 < 1``, with ``d`` their distance along each axis and
    ``w = fwhm_px`` the line width (FWHM) along each axis: their centres lie inside each other's
    half-height ellipse.

    Parameters
    ----------
    peaks : Peaks
        Peaks of the true spectrum.
    fwhm_px : (float, float)
        Line width along (axis 0, axis 1), pixels (> 0), e.g. the low-field input's.

    Returns
    -------
    i, j : ndarray of intp, shape (P,)
        Indices into ``peaks`` with ``i < j``.
    """
    width = np.asarray(fwhm_px, dtype=np.float64)
    if width.shape != (2,) or not (np.isfinite(width).all() and (width > 0).all()):
        raise ValueError(f"fwhm_px must be two finite widths > 0, pixels, got {fwhm_px!r}")
    coords = _validate_coords(peaks.coords, "peaks.coords")
    scaled = coords / width
    distance = cdist(scaled, scaled)
    same_sign = np.asarray(peaks.signs)[:, None] == np.asarray(peaks.signs)[None, :]
    i, j = np.nonzero(np.triu((distance < 1.0) & same_sign, k=1))
    return i.astype(np.intp), j.astype(np.intp)


def resolved(x: np.ndarray, first, second, signs, *, dip: float) -> np.ndarray:
    """Whether ``x`` shows two maxima at each pair of positions, with a dip between them.

    ``x`` (sign-flipped for negative pairs) is read by bilinear interpolation at points 0.25 px
    apart on the segment from ``first[k]`` to ``second[k]``. Let ``a`` be the largest value on
    the first half of the segment, ``b`` on the second half, and ``m`` the smallest value between
    the positions of ``a`` and ``b``. The pair is resolved when ``min(a, b) > 0`` and
    ``m <= dip * min(a, b)``: the spectrum falls between the two lines by at least ``1 - dip`` of
    the lower one. One merged line (its maximum between the two) or a single line at one end has
    no such dip. For two equal Lorentzians of FWHM ``w`` a dip exists from a separation of
    ``w / sqrt(3) = 0.58 w``; with ``dip = 0.9`` they count as resolved from ``0.87 w`` (the sum
    at the midpoint is then 90% of its maxima).

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Spectrum (true or predicted).
    first, second : array_like, shape (P, 2)
        The two positions of each pair, pixels ``(row, col)``.
    signs : array_like, shape (P,)
        Sign of each pair's lines (+1 or -1).
    dip : float
        Largest value between the maxima, as a fraction of the lower maximum, in (0, 1).

    Returns
    -------
    ndarray of bool, shape (P,)
    """
    x = validate_spectra(x, "x", 2)
    first = _validate_coords(first, "first")
    second = _validate_coords(second, "second")
    signs = np.asarray(signs, dtype=np.float64).reshape(-1)
    if len(first) != len(second) or len(signs) != len(first):
        raise ValueError(f"first, second and signs must have one row per pair, got {len(first)}, "
                         f"{len(second)} and {len(signs)}")
    if isinstance(dip, bool) or not isinstance(dip, Real) or not 0.0 < dip < 1.0:
        raise ValueError(f"dip must be a number in (0, 1), got {dip!r}")
    if len(first) == 0:
        return np.zeros(0, dtype=bool)
    steps = int(np.ceil(np.max(np.hypot(*(second - first).T)) / 0.25)) + 1
    steps += steps % 2 == 0  # odd: the midpoint is a sample and belongs to both halves
    t = np.linspace(0.0, 1.0, max(steps, 5))
    path = first[:, None, :] + t[None, :, None] * (second - first)[:, None, :]  # (P, T, 2)
    profile = ndimage.map_coordinates(x.astype(np.float64), [path[..., 0].ravel(), path[..., 1].ravel()],
                                      order=1, mode="nearest").reshape(path.shape[:2])
    profile *= np.where(signs < 0, -1.0, 1.0)[:, None]
    middle = len(t) // 2
    i_a = np.argmax(profile[:, : middle + 1], axis=1)
    i_b = middle + np.argmax(profile[:, middle:], axis=1)
    k = np.arange(len(profile))
    a, b = profile[k, i_a], profile[k, i_b]
    index = np.arange(len(t))
    between = (index >= i_a[:, None]) & (index <= i_b[:, None])
    m = np.where(between, profile, np.inf).min(axis=1)
    lower = np.minimum(a, b)
    return (lower > 0) & (m <= dip * lower)
