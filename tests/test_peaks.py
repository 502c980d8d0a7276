"""Tests of peak detection (Algorithm 1) and optimal matching."""

from itertools import permutations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage

from mssr.evaluation import peaks


def _blobs(centres, amplitudes, shape=(48, 48), width=1.0, dtype=np.float64):
    """Gaussian blobs of standard deviation ``width`` px at integer ``centres``."""
    rows, cols = np.indices(shape)
    x = np.zeros(shape)
    for (r, c), a in zip(centres, amplitudes):
        x += a * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * width**2))
    return x.astype(dtype)


def _naive_detect(x, sigma, window, alpha, polarity=1):
    """Algorithm 1 pixel by pixel, with explicit mirrored padding (scipy's 'reflect')."""
    smoothed = ndimage.gaussian_filter(x.astype(np.float64), sigma) if sigma > 0 else x.astype(np.float64)
    s = polarity * smoothed
    threshold = s.mean() + alpha * s.std()
    half = window // 2
    padded = np.pad(s, half, mode="symmetric")
    found = []
    for r in range(s.shape[0]):
        for c in range(s.shape[1]):
            if s[r, c] == padded[r : r + window, c : c + window].max() and s[r, c] > threshold:
                found.append((r, c))
    return np.array(found, dtype=np.float64).reshape(-1, 2)


def test_detect_finds_known_peaks_with_unsmoothed_amplitudes():
    centres = [(8, 10), (20, 30), (35, 12), (40, 40)]
    x = _blobs(centres, [1.0, 0.8, 0.7, 0.9], dtype=np.float32)
    found = peaks.detect(x, sigma=1.0, window=3, alpha=3.0)
    assert_array_equal(found.coords, np.array(centres, dtype=float))
    assert found.coords.dtype == np.float64
    assert found.amplitudes.dtype == np.float32  # read from the caller's array, not the smoothed one
    assert_array_equal(found.amplitudes, x[tuple(np.array(centres).T)])
    assert_array_equal(found.signs, [1, 1, 1, 1])


@pytest.mark.parametrize("sigma, window, alpha", [(0.0, 3, 2.0), (1.0, 3, 3.0), (1.5, 5, 1.0), (0.7, 7, 0.5)])
def test_detect_agrees_with_pixelwise_algorithm(sigma, window, alpha):
    rng = np.random.default_rng(1)
    x = _blobs(rng.integers(3, 37, size=(12, 2)), rng.uniform(0.3, 1.0, 12), shape=(40, 40))
    x += rng.normal(0, 0.05, x.shape)
    found = peaks.detect(x, sigma=sigma, window=window, alpha=alpha)
    expected = _naive_detect(x, sigma, window, alpha)
    assert len(expected) > 3
    assert_array_equal(found.coords, expected)


def test_detect_negative_peaks_only_with_sign_both():
    x = _blobs([(10, 10), (30, 30)], [0.9, -0.8])
    positive = peaks.detect(x)
    both = peaks.detect(x, sign="both")
    assert_array_equal(positive.coords, [[10, 10]])
    assert_array_equal(both.coords, [[10, 10], [30, 30]])
    assert_array_equal(both.signs, [1, -1])
    assert_allclose(both.amplitudes, [0.9, -0.8])
    assert_array_equal(both.coords[1:], _naive_detect(x, 1.0, 3, 3.0, polarity=-1))


@pytest.mark.parametrize("value", [0.0, 0.1, -0.7, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_spectrum_has_no_peaks(value, dtype):
    x = np.full((64, 64), value, dtype=dtype)
    for sign in ("positive", "both"):
        found = peaks.detect(x, sign=sign)
        assert found.coords.shape == (0, 2)
        assert found.amplitudes.shape == (0,)


def test_plateau_gives_one_peak_at_its_centre():
    x = np.zeros((30, 30))
    x[10:13, 15:18] = 1.0  # 3 x 3 flat top: 9 equal local maxima without smoothing
    found = peaks.detect(x, sigma=0.0, window=3, alpha=1.0)
    assert_array_equal(found.coords, [[11, 16]])

    y = np.zeros((30, 30))
    y[5:7, 5:7] = 1.0  # 2 x 2: four pixels equally near the centroid, the first row-major wins
    y[20, 20] = 1.0
    found = peaks.detect(y, sigma=0.0, window=3, alpha=1.0)
    assert_array_equal(found.coords, [[5, 5], [20, 20]])


def test_detect_many_equals_detect_per_spectrum():
    rng = np.random.default_rng(2)
    stack = np.stack(
        [_blobs(rng.integers(3, 29, (6, 2)), rng.uniform(0.3, 1, 6), shape=(32, 32)) for _ in range(5)]
    )
    stack[3] = 0.25  # a constant spectrum inside the stack
    stack += rng.normal(0, 0.02, stack.shape) * (np.arange(5) != 3)[:, None, None]
    many = peaks.detect_many(stack, sign="both")
    assert len(many) == 5
    assert len(many[3].coords) == 0
    for spectrum, found in zip(stack, many):
        single = peaks.detect(spectrum, sign="both")
        assert_array_equal(found.coords, single.coords)
        assert_array_equal(found.amplitudes, single.amplitudes)
        assert_array_equal(found.signs, single.signs)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"sigma": -1.0}, ValueError),
        ({"window": 4}, ValueError),
        ({"window": 1}, ValueError),
        ({"window": 3.0}, TypeError),
        ({"window": True}, TypeError),
        ({"alpha": float("nan")}, ValueError),
        ({"sign": "negative"}, ValueError),
    ],
)
def test_detect_rejects_bad_options(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        peaks.detect(np.zeros((8, 8)), **kwargs)


def test_detect_rejects_bad_arrays():
    x = np.zeros((8, 8))
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN.*\(2, 3\)"):
        peaks.detect(x)
    with pytest.raises(ValueError, match="x must be 2D"):
        peaks.detect(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="x must be 3D"):
        peaks.detect_many(np.zeros((8, 8)))
    with pytest.raises(TypeError, match="x must be a numpy array"):
        peaks.detect([[0.0, 1.0]])
    with pytest.raises(TypeError, match="x must hold real numbers"):
        peaks.detect(np.zeros((8, 8), dtype=complex))


def _greedy(true_coords, pred_coords, threshold):
    """Repeatedly pair the closest remaining admissible true/predicted peaks."""
    d = np.linalg.norm(np.asarray(true_coords, float)[:, None] - np.asarray(pred_coords, float)[None], axis=2)
    pairs = []
    while np.isfinite(d).any() and d[np.isfinite(d)].min() <= threshold:
        i, j = np.unravel_index(np.argmin(d), d.shape)
        pairs.append((i, j, d[i, j]))
        d[i, :], d[:, j] = np.inf, np.inf
    return pairs


def test_match_beats_greedy_nearest_neighbour():
    true = [[0.0, 0.0], [0.0, 2.5]]
    pred = [[0.0, 2.0], [0.0, 5.0]]
    greedy = _greedy(true, pred, 3.0)
    assert len(greedy) == 1  # greedy takes the 0.5 px pair and strands the other true peak
    i_true, i_pred, dist = peaks.match(true, pred, threshold_px=3.0)
    assert_array_equal(i_true, [0, 1])
    assert_array_equal(i_pred, [0, 1])
    assert_allclose(dist, [2.0, 2.5])

    # Same number of pairs, smaller total distance than greedy.
    true = [[0.0, 0.0], [0.0, 2.0]]
    pred = [[0.0, 1.9], [0.0, 4.5]]
    greedy = _greedy(true, pred, 5.0)
    assert len(greedy) == 2
    assert sum(g[2] for g in greedy) == pytest.approx(0.1 + 4.5)
    i_true, i_pred, dist = peaks.match(true, pred, threshold_px=5.0)
    assert_array_equal(i_pred, [0, 1])
    assert dist.sum() == pytest.approx(1.9 + 2.5)


def _brute_force(true, pred, threshold):
    """Most admissible pairs, then least total distance, over every injective assignment."""
    d = np.linalg.norm(true[:, None] - pred[None], axis=2)
    best = (0, 0.0)
    small, large = (true, pred) if len(true) <= len(pred) else (pred, true)
    for perm in permutations(range(len(large)), len(small)):
        if len(true) <= len(pred):
            dist = d[np.arange(len(true)), list(perm)]
        else:
            dist = d[list(perm), np.arange(len(pred))]
        ok = dist <= threshold
        key = (int(ok.sum()), float(dist[ok].sum()))
        if key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
            best = key
    return best


@pytest.mark.parametrize("seed", range(8))
def test_match_is_optimal_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    true = rng.uniform(0, 8, size=(rng.integers(1, 6), 2))
    pred = rng.uniform(0, 8, size=(rng.integers(1, 6), 2))
    i_true, i_pred, dist = peaks.match(true, pred, threshold_px=2.5)
    count, total = _brute_force(true, pred, 2.5)
    assert len(dist) == count
    assert dist.sum() == pytest.approx(total)
    assert len(set(i_true)) == len(i_true) and len(set(i_pred)) == len(i_pred)
    assert (dist <= 2.5).all()
    assert_allclose(dist, np.linalg.norm(true[i_true] - pred[i_pred], axis=1))
    assert (np.diff(i_true) > 0).all()


def test_match_threshold_is_inclusive_and_empty_sets():
    i_true, i_pred, dist = peaks.match([[0, 0]], [[0, 3]], threshold_px=3.0)
    assert_array_equal(dist, [3.0])
    i_true, i_pred, dist = peaks.match([[0, 0]], [[0, 3.01]], threshold_px=3.0)
    assert len(i_true) == len(i_pred) == len(dist) == 0
    for true, pred in [(np.empty((0, 2)), [[1, 1]]), ([[1, 1]], np.empty((0, 2))), (np.empty((0, 2)),) * 2]:
        i_true, i_pred, dist = peaks.match(true, pred, threshold_px=3.0)
        assert i_true.shape == i_pred.shape == dist.shape == (0,)


def test_match_rejects_bad_input():
    with pytest.raises(ValueError, match="pred_coords must have shape"):
        peaks.match([[0, 0]], [0, 0], threshold_px=1.0)
    with pytest.raises(ValueError, match="threshold_px"):
        peaks.match([[0, 0]], [[0, 0]], threshold_px=-1.0)


# -- line widths and resolution --------------------------------------------------------------------


def _lorentzian(n, centre, fwhm):
    """A sampled Lorentzian line of height 1, FWHM ``fwhm`` px (closed form)."""
    return 1.0 / (1.0 + 4.0 * (np.arange(n) - centre) ** 2 / fwhm**2)


def test_default_options_are_defined_once():
    assert peaks.DEFAULT_OPTIONS == peaks.PeakOptions()
    import inspect

    for fn in (peaks.detect, peaks.detect_many):
        defaults = {k: v.default for k, v in inspect.signature(fn).parameters.items() if k != "x"}
        assert defaults == {k: getattr(peaks.DEFAULT_OPTIONS, k) for k in defaults}


@pytest.mark.parametrize("fwhm, rtol", [(3.0, 0.06), (4.0, 0.035), (6.0, 0.02), (10.0, 0.01)])
@pytest.mark.parametrize("offset", [0.0, 0.2, 0.37, -0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linewidths_of_lorentzians_of_known_fwhm(fwhm, rtol, offset, dtype):
    # Axis 0 of 5 px, axis 1 of ``fwhm`` px, centred between pixels by ``offset``.
    x = np.outer(_lorentzian(48, 20 + offset, 5.0), _lorentzian(96, 47 + offset, fwhm)).astype(dtype)
    found = peaks.detect(x, sigma=0.0)
    assert len(found.coords) == 1
    widths = peaks.linewidths(x, found)
    assert widths.shape == (1, 2) and widths.dtype == np.float64
    assert_allclose(widths[0, 1], fwhm, rtol=rtol)
    assert_allclose(widths[0, 0], 5.0, rtol=0.025)


def test_linewidths_of_a_negative_peak_and_at_the_edge():
    x = -np.outer(_lorentzian(40, 15, 4.0), _lorentzian(40, 25, 8.0))
    found = peaks.detect(x, sign="both", sigma=0.0)
    assert_array_equal(found.signs, [-1])
    assert_allclose(peaks.linewidths(x, found)[0], [4.0, 8.0], rtol=0.02)
    # A line that is still above half height at the border has no measurable width there.
    edge = np.outer(_lorentzian(40, 20, 4.0), _lorentzian(40, 1, 12.0))
    widths = peaks.linewidths(edge, peaks.Peaks(np.array([[20.0, 1.0]]), np.array([1.0]), np.array([1], np.int8)))
    assert_allclose(widths[0, 0], 4.0, rtol=0.035) and np.isnan(widths[0, 1])
    with pytest.raises(ValueError, match="integer"):
        peaks.linewidths(edge, peaks.Peaks(np.array([[20.5, 1.0]]), np.array([1.0]), np.array([1], np.int8)))


def test_close_pairs_inside_the_half_height_ellipse():
    coords = np.array([[10.0, 10.0], [10.0, 13.0], [12.0, 10.0], [30.0, 30.0], [30.0, 31.0]])
    found = peaks.Peaks(coords, np.ones(5), np.array([1, 1, 1, 1, -1], np.int8))
    i, j = peaks.close_pairs(found, (3.0, 4.0))  # d/w: (0, 3/4) in, (2/3, 0) in, (2/3, 3/4) out
    assert list(zip(i, j)) == [(0, 1), (0, 2)]  # the last two differ in sign
    with pytest.raises(ValueError, match="fwhm_px"):
        peaks.close_pairs(found, (0.0, 1.0))


@pytest.mark.parametrize("separation, shown", [(0.5, False), (0.8, False), (0.95, True), (1.5, True)])
@pytest.mark.parametrize("sign", [1, -1])
def test_resolved_two_lorentzians_at_known_separation(separation, shown, sign):
    # Two equal Lorentzians of FWHM w: the sum dips to 0.9 x its maxima at a separation of 0.87 w.
    w = 6.0
    a, b = 40.0, 40.0 + separation * w
    x = sign * np.outer(_lorentzian(40, 20, 4.0), _lorentzian(96, a, w) + _lorentzian(96, b, w))
    result = peaks.resolved(x, [[20, a]], [[20, b]], [sign], dip=0.9)
    assert result.tolist() == [shown]


def test_resolved_rejects_one_line_and_wrong_sign():
    w = 6.0
    single = np.outer(_lorentzian(40, 20, 4.0), _lorentzian(96, 40, w))  # only the first line is there
    merged = np.outer(_lorentzian(40, 20, 4.0), _lorentzian(96, 43, 1.6 * w))  # one line between them
    for x in (single, merged, -single):
        assert not peaks.resolved(x, [[20, 40.0]], [[20, 46.0]], [1], dip=0.9)[0]
    assert peaks.resolved(np.zeros((4, 4)), np.empty((0, 2)), np.empty((0, 2)), [], dip=0.5).shape == (0,)
    with pytest.raises(ValueError, match="dip"):
        peaks.resolved(single, [[20, 40.0]], [[20, 46.0]], [1], dip=1.0)
