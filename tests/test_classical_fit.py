"""Lorentz-to-Gauss and peak fit + redraw against independently known line shapes.

Reference line shapes come from nmrglue (``ng.linesh.sim_NDregion``) and closed forms: a
Lorentzian of FWHM L under NMRPipe's GM window with g1 = L is a Gaussian of FWHM
1.2 sqrt(ln 2) g2 (the FT of exp(-(0.6 pi g2 t)^2)).
"""

import math

import nmrglue as ng
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize

from mssr.evaluation import classical


def _lorentzian(grid, centre, fwhm):
    return 1.0 / (1.0 + 4.0 * ((grid - centre) / fwhm) ** 2)


def _fit_gaussian(profile):
    grid = np.arange(len(profile), dtype=float)

    def gauss(x, height, centre, fwhm):
        return height * np.exp(-4.0 * math.log(2.0) * (x - centre) ** 2 / fwhm**2)

    k = int(np.argmax(profile))
    (height, centre, fwhm), _ = optimize.curve_fit(gauss, grid, profile, p0=[profile[k], k, 3.0])
    return height, centre, fwhm


def test_gm_fwhm_constant_is_the_closed_form():
    # FT of exp(-(a t)^2) has FWHM 2 a sqrt(ln 2) / pi; a = 0.6 pi g2
    assert classical.GM_FWHM_PER_G2 == pytest.approx(2 * 0.6 * math.pi * math.sqrt(math.log(2)) / math.pi)
    assert classical.GM_FWHM_PER_G2 == pytest.approx(0.99907, abs=1e-5)


@pytest.mark.parametrize("lorentz_fwhm, g2", [(6.0, 4.0), (6.0, 8.0), (3.0, 3.0), (10.0, 6.0), (4.0, 2.5)])
def test_lorentz_gauss_turns_a_lorentzian_into_the_predicted_gaussian(lorentz_fwhm, g2):
    n, centre = 256, 127.3
    line = 0.2 * _lorentzian(np.arange(n), centre, lorentz_fwhm)  # low enough not to clip
    image = np.outer(np.ones(5), line)
    out = classical.lorentz_gauss(image, g1_px=(0.0, lorentz_fwhm), g2_px=(1.0, g2))
    height, fitted_centre, fwhm = _fit_gaussian(out[2])
    assert fwhm == pytest.approx(classical.GM_FWHM_PER_G2 * g2, rel=0.01)
    assert fitted_centre == pytest.approx(centre, abs=0.01)
    # The window is 1 at t = 0: the volume of the line is kept (Gaussian area = height fwhm sqrt(pi / 4 ln 2)).
    volume_in = 0.2 * math.pi / 2 * lorentz_fwhm
    assert height * fwhm * math.sqrt(math.pi / (4 * math.log(2))) == pytest.approx(volume_in, rel=0.01)
    # g1 = 0 on axis 0: that axis is untouched (every row stays the same line).
    assert_allclose(out, np.repeat(out[2:3], 5, axis=0), atol=1e-12)


def test_lorentz_gauss_with_partial_g1_leaves_the_remaining_lorentzian():
    # g1 = L - w leaves a Lorentzian of FWHM w convolved with the Gaussian; with a tiny g2 the
    # Gaussian is negligible and the line is the narrower Lorentzian (FWHM w), volume kept.
    n, centre, low, high = 512, 255.6, 9.0, 5.0
    line = 0.2 * _lorentzian(np.arange(n), centre, low)
    out = classical.lorentz_gauss(line[None, :].repeat(3, 0), g1_px=(0, low - high), g2_px=(1, 0.3))[1]
    expected = 0.2 * low / high * _lorentzian(np.arange(n), centre, high)
    assert_allclose(out, expected, atol=0.003 * expected.max())


def test_lorentz_gauss_keeps_dtype_and_rejects_bad_widths():
    x = np.zeros((16, 16), np.float32)
    assert classical.lorentz_gauss(x, g1_px=1.0, g2_px=1.5).dtype == np.float32
    with pytest.raises(ValueError, match="g2_px"):
        classical.lorentz_gauss(x, g1_px=1.0, g2_px=(0.0, 1.0))
    with pytest.raises(ValueError, match="g1_px"):
        classical.lorentz_gauss(x, g1_px=-1.0, g2_px=1.0)
    with pytest.raises(TypeError, match="g1_px"):
        classical.lorentz_gauss(x, g1_px="1", g2_px=1.0)


SHAPE = (48, 64)
# (row centre, row FWHM), (col centre, col FWHM) per peak: 2.8 and 3.6 px apart, less than the widths
TWO_PEAKS = [[(20.3, 4.0), (30.6, 3.0)], [(23.1, 3.5), (34.2, 5.0)]]
HEIGHTS = [0.9, 0.55]


def _two_peaks(sign=1.0, shapes=("l", "l")):
    return sign * ng.linesh.sim_NDregion(SHAPE, list(shapes), TWO_PEAKS, HEIGHTS)


def _sorted(peaks):
    order = np.argsort(peaks.centres[:, 0])
    return peaks.centres[order], peaks.fwhm[order], peaks.heights[order]


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_peak_fit_recovers_two_overlapping_lorentzians(sign, noise):
    rng = np.random.default_rng(7)
    x = _two_peaks(sign) + noise * rng.standard_normal(SHAPE)
    peaks = classical.fit_peaks(x, lineshape="lorentzian")
    assert len(peaks) == 2
    centres, fwhm, heights = _sorted(peaks)
    true_centres = np.array([[p[0][0], p[1][0]] for p in TWO_PEAKS])
    true_fwhm = np.array([[p[0][1], p[1][1]] for p in TWO_PEAKS])
    # within 2% of a linewidth in position, 2% relative in width and height
    assert np.all(np.abs(centres - true_centres) < 0.02 * true_fwhm)
    assert_allclose(fwhm, true_fwhm, rtol=0.02)
    assert_allclose(heights, sign * np.array(HEIGHTS), rtol=0.02)


def test_peak_fit_recovers_gaussians_with_the_gaussian_shape():
    peaks = classical.fit_peaks(_two_peaks(shapes=("g", "g")), lineshape="gaussian")
    centres, fwhm, heights = _sorted(peaks)
    assert_allclose(fwhm, [[p[0][1], p[1][1]] for p in TWO_PEAKS], rtol=0.02)
    assert_allclose(heights, HEIGHTS, rtol=0.02)


def test_redraw_narrows_lorentzians_by_the_added_width_and_keeps_volumes():
    added = (1.5, 2.0)
    out = classical.peak_fit(_two_peaks(), added_fwhm_px=added, lineshape="lorentzian", alpha=3.0)
    narrow = [[(r, wr - added[0]), (c, wc - added[1])] for (r, wr), (c, wc) in TWO_PEAKS]
    scale = [(wr * wc) / ((wr - added[0]) * (wc - added[1])) for (_, wr), (_, wc) in TWO_PEAKS]
    expected = ng.linesh.sim_NDregion(SHAPE, ["l", "l"], narrow, [h * s for h, s in zip(HEIGHTS, scale)])
    expected = np.clip(expected, -1, 1)
    assert_allclose(out, expected, atol=0.01 * np.abs(expected).max())


def test_narrowed_clamps_widths_and_subtracts_gaussians_in_quadrature():
    peaks = classical.FittedPeaks(np.array([[10.0, 10.0]]), np.array([[5.0, 1.0]]), np.array([1.0]), "gaussian")
    narrow = classical.narrowed(peaks, (3.0, 2.0), min_fwhm_px=0.5)
    assert_allclose(narrow.fwhm, [[4.0, 0.5]])
    assert_allclose(narrow.volumes, peaks.volumes)


@pytest.mark.parametrize("kind", ["zeros", "noise", "constant"])
def test_peak_fit_is_robust_on_spectra_without_peaks(kind):
    rng = np.random.default_rng(3)
    x = {"zeros": np.zeros(SHAPE), "noise": 0.01 * rng.standard_normal(SHAPE), "constant": np.full(SHAPE, 0.3)}[kind]
    out = classical.peak_fit(x.astype(np.float32), added_fwhm_px=1.0, alpha=5.0)
    assert out.dtype == np.float32 and out.shape == SHAPE
    # at most a few noise spikes redrawn, nothing like the input's energy in peaks
    if kind == "zeros" or kind == "constant":
        assert not out.any()
    else:
        assert len(classical.fit_peaks(x, alpha=5.0)) <= 3


def test_fit_peaks_rejects_bad_options():
    with pytest.raises(ValueError, match="lineshape"):
        classical.fit_peaks(_two_peaks(), lineshape="voigt")
    with pytest.raises(TypeError, match="max_peaks"):
        classical.fit_peaks(_two_peaks(), max_peaks=2.5)
    with pytest.raises(ValueError, match="alpha"):
        classical.fit_peaks(_two_peaks(), alpha=-1.0)


def test_keep_residual_leaves_what_was_not_fitted():
    x = _two_peaks()
    x[40:, :] += 0.004  # a weak flat shelf below the threshold: no peak
    added = (1.5, 2.0)
    dropped = classical.peak_fit(x, added_fwhm_px=added, alpha=3.0)
    kept = classical.peak_fit(x, added_fwhm_px=added, alpha=3.0, keep_residual=True)
    # what differs is the residual: the shelf the fit did not model
    assert_allclose(kept[44:, 5:20] - dropped[44:, 5:20], 0.004, atol=3e-4)
    assert np.abs(dropped[44:, 5:20]).max() < 0.002
    # the fitted peaks are narrowed the same way in both
    assert_allclose(kept[15:28, 25:40], dropped[15:28, 25:40], atol=0.01)
