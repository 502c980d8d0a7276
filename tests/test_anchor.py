"""The native model's anchor: kernel widths estimated from a plane's own lines, and its deconvolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.special import voigt_profile

from mssr.data.patches import PatchConfig, render_patch, voigt_fwhm
from mssr.evaluation.realpairs import fwhm_px
from mssr.model import anchor


def _plane(shape, peaks, fwhm, *, sigma=(0.0, 0.0)):
    """Sum of separable Voigt lines (FWHM of the Lorentzian part ``fwhm`` points, Gaussian SD ``sigma``)."""
    r = np.arange(shape[0], dtype=np.float64)
    c = np.arange(shape[1], dtype=np.float64)
    x = np.zeros(shape)
    for (p0, p1, h) in peaks:
        rows = voigt_profile(r - p0, max(sigma[0], 1e-9), fwhm[0] / 2)
        cols = voigt_profile(c - p1, max(sigma[1], 1e-9), fwhm[1] / 2)
        x += h * np.outer(rows / rows.max(), cols / cols.max())
    return x


PEAKS = [(40.3, 50.2, 1.0), (40.7, 150.6, 0.8), (120.2, 60.4, 0.9), (130.5, 170.1, 0.7), (200.4, 100.3, 0.6)]


@pytest.mark.parametrize("factor", [1.5, 2.0])
def test_added_widths_of_lorentzian_lines_fixed_in_hz(factor):
    # lines of 6 x 4 points at high field, f times wider at low field: the kernel is (f - 1) x those
    high = (6.0, 4.0)
    x_lr = _plane((256, 224), PEAKS, [w * factor for w in high]) / 8.0
    added = anchor.added_widths_px(x_lr, factor)
    assert added == pytest.approx([(factor - 1) * w for w in high], rel=0.03)


def test_added_widths_of_voigt_lines_follow_the_whole_width():
    # apodized (Voigt) lines broadened by the real pairs' rule: a Lorentzian of (f - 1) x the
    # high-field FWHM; plain Lorentzian additivity would find less (module notes)
    factor = 1.5
    sigma = (2.0, 1.5)
    lorentz = (4.0, 3.0)
    x_hr = _plane((256, 224), PEAKS, lorentz, sigma=sigma)
    w_high = [fwhm_px(x_hr, (40, 50))[k] for k in range(2)]
    truth = [(factor - 1) * w for w in w_high]
    # an analytic Lorentzian kernel, wide enough for its tails (independent of mssr.degrade)
    t0, t1 = np.arange(-511, 512, dtype=np.float64), np.arange(-447, 448, dtype=np.float64)
    kernel = np.outer(1 / (1 + (2 * t0 / truth[0]) ** 2), 1 / (1 + (2 * t1 / truth[1]) ** 2))
    x_lr = fftconvolve(x_hr, kernel / kernel.sum(), mode="same") / 8.0
    added = anchor.added_widths_px(x_lr, factor)
    assert added == pytest.approx(truth, rel=0.05)
    additive = [fwhm_px(x_lr, (40, 50))[k] * (1 - 1 / factor) for k in range(2)]
    assert all(a < 0.93 * t for a, t in zip(additive, truth))  # what the first step alone would give


def test_deconvolution_with_the_right_kernel_restores_a_lorentzian():
    high = (5.0, 4.0)
    factor = 2.0
    x_hr = _plane((256, 224), PEAKS, high) / 8.0
    # the same lines broadened, their volumes kept: heights lower by f per axis
    x_lr = _plane((256, 224), PEAKS, [w * factor for w in high]) / 8.0 / factor**2
    y = anchor.deconvolve(x_lr, [(factor - 1) * w for w in high], balance=1e-6)
    w = fwhm_px(y, (120, 60))
    assert w == pytest.approx(high, rel=0.03)  # the regularization leaves ~2.5% on a 4-point line
    assert y[120, 60] == pytest.approx(x_hr[120, 60], rel=0.06)  # less the frequencies the regularization drops


def test_a_plane_without_peaks_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no strong peak"):
        anchor.added_widths_px(rng.normal(0, 1e-3, (64, 64)), 2.0)
    with pytest.raises(ValueError, match="factor"):
        anchor.added_widths_px(np.zeros((8, 8)), 1.0)
    with pytest.raises(ValueError, match="added_fwhm_px"):
        anchor.deconvolve(np.zeros((8, 8)), (float("nan"), 1.0))


@pytest.mark.parametrize("sigma,gamma", [(1.0, 0.0), (0.0, 2.0), (1.5, 1.0), (3.0, 0.5)])
def test_voigt_fwhm_matches_the_profile(sigma, gamma):
    x = np.linspace(-40, 40, 80001)
    p = voigt_profile(x, max(sigma, 1e-9), gamma)
    above = x[p >= p.max() / 2]
    assert voigt_fwhm(sigma, gamma) == pytest.approx(above[-1] - above[0], rel=2e-3)


def test_anchored_patches_are_closer_to_the_truth_at_high_snr():
    # at high S/N and small factors the anchor (known kernel up to the jitter) beats the raw input
    cfg = PatchConfig(size=64, snr=(3000.0, 3000.0), max_factor=1.6, anchor=True)
    plain = PatchConfig(size=64, snr=(3000.0, 3000.0), max_factor=1.6)
    peaks = np.array([[118.0, 8.20, 1.0], [121.0, 7.90, 0.8], [115.0, 8.6, 0.7], [124.0, 8.0, 0.9]])
    better = 0
    for i in range(12):
        x0, a, _ = render_patch(peaks, cfg, np.random.default_rng(i))
        x0p, x_lr, _ = render_patch(peaks, plain, np.random.default_rng(i))
        # the same lines (the noise and the unit differ: the anchored patch is drawn with a margin)
        assert np.allclose(x0 / x0.max(), x0p / x0p.max(), atol=1e-6)
        better += np.mean((a - x0) ** 2) / x0.max() ** 2 < np.mean((x_lr - x0p) ** 2) / x0p.max() ** 2
    assert better >= 10


def test_lorentzian_transfer_is_the_transform_of_a_lorentzian_of_that_width():
    from mssr import degrade

    shape = (512, 384)
    fwhm = (6.0, 3.5)
    kernel = np.fft.irfft2(degrade.lorentzian_transfer(fwhm, shape), s=shape)
    kernel = np.fft.fftshift(kernel)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-9)
    centre = (shape[0] // 2, shape[1] // 2)
    assert fwhm_px(kernel, centre) == pytest.approx(fwhm, rel=0.01)
