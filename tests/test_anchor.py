"""The native model's anchor: kernel widths estimated from a plane's own lines, and its deconvolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.special import voigt_profile

from mssr.data.patches import PatchConfig, render_patch, voigt_fwhm
from mssr.evaluation.realpairs import fwhm_px, isolated_peaks, strong_peaks
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


# --------------------------------------------------------------------------------------------
# data consistency (the projection the sampler applies to the network's estimate)


def test_wiener_transfer_is_the_filter_skimage_applies():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 70))
    ext = anchor.mirrored(x)
    assert ext.shape == (192, 140)
    np.testing.assert_array_equal(ext[:96, :70], x)
    np.testing.assert_array_equal(ext[96:, 70:], x[::-1, ::-1])
    transfer, filt = anchor.wiener_transfer((3.0, 2.0), ext.shape, balance=1e-2)
    ours = np.fft.irfft2(filt * np.fft.rfft2(ext), s=ext.shape)[:96, :70]
    # skimage's own Wiener-Hunt filter of the extended plane (the PSF as an image, not our transfer)
    t0, t1 = np.arange(-96, 96.0), np.arange(-70, 70.0)
    psf = np.outer(1 / (1 + (2 * t0 / 3.0) ** 2), 1 / (1 + (2 * t1 / 2.0) ** 2))
    np.testing.assert_allclose(ours, anchor.deconvolve(x, (3.0, 2.0), balance=1e-2), atol=1e-12)
    assert transfer[0, 0] == pytest.approx(1.0)  # broadening keeps the volume
    from skimage import restoration

    theirs = restoration.wiener(ext, psf / psf.sum(), 1e-2, clip=False)[:96, :70]
    # the same filter up to the sampled PSF's truncated tails (a few % of the plane's SD)
    assert np.abs(ours - theirs).std() < 0.1 * np.abs(ours).std()


def test_the_kept_laplacian_is_the_five_point_laplacians_transfer():
    # |L(k)| = 4 - 2 cos(2 pi k / H) - 2 cos(2 pi l / W): 0 at the origin, 8 at the Nyquist corner;
    # the same array for the same shape (kept), read-only, and deconvolve's filter is skimage's own
    shape = (12, 10)
    reg = anchor.laplacian_transfer(shape)
    k = np.arange(12)[:, None]
    l = np.arange(10 // 2 + 1)[None, :]
    expected = 4 - 2 * np.cos(2 * np.pi * k / 12) - 2 * np.cos(2 * np.pi * l / 10)
    np.testing.assert_allclose(np.abs(reg), expected, atol=1e-12)
    assert np.abs(reg)[6, 5] == pytest.approx(8.0)
    assert anchor.laplacian_transfer((12, 10)) is reg
    assert not reg.flags.writeable
    from skimage import restoration

    from mssr import degrade

    x = np.random.default_rng(4).normal(size=(6, 5))
    ext = anchor.mirrored(x)
    transfer = degrade.lorentzian_transfer((2.0, 1.5), ext.shape).astype(np.complex128)
    theirs = restoration.wiener(ext, transfer, 3e-2, is_real=True, clip=False)[:6, :5]  # skimage's own Laplacian
    np.testing.assert_allclose(anchor.deconvolve(x, (2.0, 1.5), balance=3e-2), theirs, atol=1e-12)


def _broadened(x, widths):
    """``x`` broadened by the Lorentzian on its mirrored extension (the boundary the anchor assumes)."""
    from mssr import degrade

    ext = anchor.mirrored(x)
    out = np.fft.irfft2(degrade.lorentzian_transfer(widths, ext.shape) * np.fft.rfft2(ext), s=ext.shape)
    return out[: x.shape[0], : x.shape[1]]


def test_consistency_keeps_an_estimate_the_data_agree_with():
    import torch

    widths = (4.0, 3.0)
    x_hr = _plane((256, 224), PEAKS, (5.0, 4.0))
    y = _broadened(x_hr, widths)  # noise-free low-field data of exactly this truth
    out = anchor.Consistency(y, widths)(torch.as_tensor(x_hr, dtype=torch.float32)[None, None])
    np.testing.assert_allclose(out[0, 0].numpy(), x_hr, atol=2e-6)
    # the anchor alone (the same filter) is not the truth: the consistency step does not just return it
    assert np.abs(anchor.deconvolve(y, widths) - x_hr).max() > 0.05


def test_consistency_removes_an_offset_and_keeps_what_the_broadening_hid():
    import torch

    widths = (4.0, 3.0)
    shape = (128, 96)
    x_hr = _plane(shape, [(40.3, 50.2, 1.0), (90.6, 30.1, 0.7)], (5.0, 4.0))
    y = _broadened(x_hr, widths)
    # fine structure near the Nyquist frequency of both axes, away from the edges: the
    # broadening leaves < 0.3% of it in y
    r, c = np.arange(shape[0]), np.arange(shape[1])
    window = np.outer(np.exp(-0.5 * ((r - 64) / 12) ** 2), np.exp(-0.5 * ((c - 48) / 10) ** 2))
    fine = 0.02 * window * np.outer((-1.0) ** r, (-1.0) ** c)
    assert np.abs(_broadened(fine, widths)).max() < 3e-3 * 0.02
    estimate = x_hr + 0.05 + fine
    out = anchor.Consistency(y, widths)(torch.as_tensor(estimate, dtype=torch.float32)[None])
    error = out[0].numpy() - x_hr
    assert abs(error.mean()) < 1e-6  # the offset, which the data contradict, is gone
    np.testing.assert_allclose(error, fine, atol=1e-4)  # the hidden part stays (0.5% of it)


def test_consistency_refuses_a_plane_of_another_shape():
    import torch

    c = anchor.Consistency(np.zeros((32, 40)), (2.0, 2.0))
    with pytest.raises(ValueError, match="plane shape"):
        c(torch.zeros(1, 1, 40, 32))


def test_consistency_of_a_stack_of_chains_treats_each_plane_with_its_own_data():
    import torch

    rng = np.random.default_rng(8)
    y = rng.normal(size=(2, 40, 48))
    widths = [(2.0, 3.0), (5.0, 1.0)]
    stack = torch.as_tensor(rng.normal(size=(6, 1, 40, 48)), dtype=torch.float32)  # 2 planes x 3 chains
    out = anchor.Consistency(y, widths)(stack)
    for n in range(2):
        one = anchor.Consistency(y[n], widths[n])
        for r in range(3):
            np.testing.assert_allclose(out[3 * n + r].numpy(), one(stack[3 * n + r][None])[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="pair"):
        anchor.Consistency(y, widths[:1])
    with pytest.raises(ValueError, match="whole number"):
        anchor.Consistency(y, widths)(stack[:5])


def test_a_line_at_one_edge_does_not_leak_onto_the_other():
    # an analytic line 6 points from the left edge of a 128-point axis, cut by the edge (not periodic)
    factor = 2.0
    high = (4.0, 4.0)
    x_lr = _plane((96, 128), [(48.2, 6.3, 1.0)], [w * factor for w in high]) / factor**2
    y = anchor.deconvolve(x_lr, [(factor - 1) * w for w in high], balance=1e-5)
    far = np.abs(y[:, 64:]).max()
    assert far < 0.01 * y.max()  # nothing appears at the opposite edge
    assert fwhm_px(y, (48, 6)) == pytest.approx(high, rel=0.08)  # interior lines: 3 % (above); 6 % here
    # a periodic filter of the same plane rings at the other edge
    transfer, filt = anchor.wiener_transfer([(factor - 1) * w for w in high], x_lr.shape, balance=1e-5)
    periodic = np.fft.irfft2(filt * np.fft.rfft2(x_lr), s=x_lr.shape)
    assert np.abs(periodic[:, 64:]).max() > 3 * far


@pytest.mark.parametrize("factor, high", [(1.33, (6.0, 4.0)), (2.0, (6.0, 4.0)), (2.0, (16.0, 10.0))])
def test_added_widths_of_a_crowded_plane_come_from_fits_with_the_neighbours(factor, high):
    # every strong peak has a neighbour of 0.6 x its height one low-field FWHM away on the row
    # axis (none is isolated); the half-height reading of such a pair is wider than either line.
    # Lines of 32 x 20 low-field points are fitted on every 5th x 3rd point (FIT_SAMPLING)
    low = [w * factor for w in high]
    scale = high[0] / 6.0
    peaks = []
    for k, (r, c) in enumerate([(40, 40), (40, 120), (40, 190), (120, 50), (120, 140), (200, 60), (200, 170)]):
        r, c = scale * (r + 0.3 * k), scale * (c + 0.2 * k)
        peaks += [(r, c, 1.0 - 0.05 * k), (r + low[0], c + 0.5, 0.6 * (1.0 - 0.05 * k))]
    x_lr = _plane((int(256 * scale), int(224 * scale)), peaks, low) / 8.0
    assert len(isolated_peaks(x_lr, strong_peaks(x_lr))) == 0
    truth = [(factor - 1) * w for w in high]
    assert anchor.added_widths_px(x_lr, factor) == pytest.approx(truth, rel=0.05)
    # what the half-height widths of the same peaks imply for the row axis: far off
    crossing = np.median([fwhm_px(x_lr, p)[0] for p in strong_peaks(x_lr)])
    assert crossing * (1 - 1 / factor) > 1.15 * truth[0]


def _isolated_voigt_pair(factor, snr, seed=0):
    """16 isolated apodized (Voigt) lines broadened by a Lorentzian of (f - 1) x their FWHM, white noise
    at ``snr`` (the low-field maximum over the noise SD); returns (low-field plane, true kernel)."""
    rng = np.random.default_rng(seed)
    peaks = [(30 + 60 * i + rng.uniform(0, 1), 30 + 55 * j + rng.uniform(0, 1), 0.5 + 0.5 * rng.uniform())
             for i in range(4) for j in range(4)]
    x_hr = _plane((256, 240), peaks, (4.0, 3.0), sigma=(2.0, 1.5))
    truth = [(factor - 1) * w for w in fwhm_px(x_hr, (int(peaks[0][0]), int(peaks[0][1])))]
    t0, t1 = np.arange(-511, 512, dtype=np.float64), np.arange(-479, 480, dtype=np.float64)
    kernel = np.outer(1 / (1 + (2 * t0 / truth[0]) ** 2), 1 / (1 + (2 * t1 / truth[1]) ** 2))
    x_lr = fftconvolve(x_hr, kernel / kernel.sum(), mode="same")
    return x_lr + rng.normal(0.0, x_lr.max() / snr, x_lr.shape), truth


@pytest.mark.parametrize("factor", [1.5, 2.0])
@pytest.mark.parametrize("snr", [3000, 300])
def test_added_widths_of_isolated_lines_hold_at_moderate_snr(factor, snr):
    # the lightest measuring regularization (1e-6) lets enough noise through at S/N 300 to put the
    # kernel 10-11 % too narrow here; the one the noise allows keeps it within 5 %
    x_lr, truth = _isolated_voigt_pair(factor, snr)
    assert len(isolated_peaks(x_lr, strong_peaks(x_lr))) >= anchor.MIN_ISOLATED
    assert anchor.added_widths_px(x_lr, factor) == pytest.approx(truth, rel=0.05)


def test_measuring_balance_is_the_lightest_the_noise_allows():
    clean, truth = _isolated_voigt_pair(2.0, 3000)
    noisy, _ = _isolated_voigt_pair(2.0, 200)
    peaks = isolated_peaks(clean, strong_peaks(clean))
    assert anchor.measuring_balance(clean, truth, peaks) == min(anchor.MEASURE_BALANCES)
    assert anchor.measuring_balance(noisy, truth, peaks) == max(anchor.MEASURE_BALANCES)
    # the rule itself: the chosen deconvolution's noise is within MEASURE_NOISE of the peak heights
    from mssr.spectrum import robust_noise_sd

    for x in (clean, noisy):
        balance = anchor.measuring_balance(x, truth, peaks)
        d = anchor.deconvolve(x, truth, balance=balance)
        share = robust_noise_sd(d) / np.median(d[peaks[:, 0], peaks[:, 1]])
        assert (share <= anchor.MEASURE_NOISE) or balance == max(anchor.MEASURE_BALANCES)


def test_estimate_balance_is_the_heaviest_that_keeps_the_peak_heights():
    # isolated lines at f = 2, known kernel; a heavier balance lowers the deconvolved peaks (it blunts
    # the lines it narrows): the chosen one keeps HEIGHT_KEPT of the lightest's height, the next does not
    x_lr, truth = _isolated_voigt_pair(2.0, 1000)
    peaks = strong_peaks(x_lr)
    chosen = anchor.estimate_balance(x_lr, truth)
    candidates = sorted(anchor.ESTIMATE_BALANCES)

    def height(b):
        d = anchor.deconvolve(x_lr, truth, balance=b)
        return float(np.median(d[peaks[:, 0], peaks[:, 1]]))

    ref = height(candidates[0])
    assert height(chosen) >= anchor.HEIGHT_KEPT * ref
    k = candidates.index(chosen)
    assert k + 1 < len(candidates) and height(candidates[k + 1]) < anchor.HEIGHT_KEPT * ref
    # lines already as narrow as the kernel allows nothing: no broadening, the lightest
    assert anchor.estimate_balance(x_lr, (0.0, 0.0)) == candidates[0]


def test_estimate_balance_regularizes_broad_lines_more():
    # the same peaks with 3x broader 1H lines at the low field: their deconvolution by a narrow kernel
    # (a small field gap: 1.5 points on 6-point lines) hardly changes the peaks' height, so a heavier
    # balance (less amplified noise) costs them nothing
    rng = np.random.default_rng(4)
    peaks = [(30 + 60 * i + rng.uniform(0, 1), 30 + 55 * j + rng.uniform(0, 1), 1.0) for i in range(4) for j in range(4)]
    kernel = (1.5, 1.5)
    narrow = _plane((256, 240), peaks, (6.0, 6.0)) + rng.normal(0, 1e-3, (256, 240))
    broad = _plane((256, 240), peaks, (6.0, 18.0)) + rng.normal(0, 1e-3, (256, 240))
    assert anchor.estimate_balance(broad, kernel) > anchor.estimate_balance(narrow, kernel)
