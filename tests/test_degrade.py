"""Low-field simulation: blur widths, noise statistics, the physical linewidth model, seeding."""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import curve_fit

from mssr import degrade
from mssr.factors import FACTORS
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis

GAMMA_N = GYROMAGNETIC_RATIO_TO_1H["15N"]


def _delta(shape=(33, 33), dtype=np.float64):
    x = np.zeros(shape, dtype=dtype)
    x[shape[0] // 2, shape[1] // 2] = 1.0
    return x


def _second_moment(profile):
    n = np.arange(profile.size) - profile.size // 2
    return float((profile * n**2).sum() / profile.sum())


def _sampled_gaussian_variance(sigma):
    # scipy's kernel: exp(-n^2 / 2 sigma^2) on |n| <= int(4 sigma + 0.5), normalized
    radius = int(4 * sigma + 0.5)
    n = np.arange(-radius, radius + 1)
    g = np.exp(-(n**2) / (2 * sigma**2))
    return float((g * n**2).sum() / g.sum())


def _lorentzian(x, amp, centre, fwhm):
    return amp * (fwhm / 2) ** 2 / ((x - centre) ** 2 + (fwhm / 2) ** 2)


def _fit_fwhm(profile):
    x = np.arange(profile.size, dtype=float)
    p0 = (profile.max(), float(np.argmax(profile)), 3.0)
    (amp, centre, fwhm), _ = curve_fit(_lorentzian, x, profile, p0=p0)
    return abs(fwhm)


def _render_lorentzian_2d(shape, centre, fwhm_px):
    y = _lorentzian(np.arange(shape[0], dtype=float), 1.0, centre[0], fwhm_px[0])
    x = _lorentzian(np.arange(shape[1], dtype=float), 1.0, centre[1], fwhm_px[1])
    return np.outer(y, x)


# ---------------------------------------------------------------------------------------------
# paper model


@pytest.mark.parametrize("factor", FACTORS)
def test_paper_blur_second_moment_is_the_sampled_gaussian_of_sigma_one_over_f(factor):
    y = degrade.simulate(_delta(), factor, model="paper", noise=False)
    sigma = 1 / float(factor)
    for axis in (0, 1):
        profile = y.sum(axis=1 - axis)
        assert _second_moment(profile) == pytest.approx(_sampled_gaussian_variance(sigma), rel=1e-9)
    # the sampled kernel is narrower than sigma^2 at sub-pixel sigma; the module docstring says so
    if factor == Fraction(9, 4):
        assert _second_moment(y.sum(axis=0)) == pytest.approx(0.1375, abs=1e-3)


@pytest.mark.parametrize("factor", [0.5, 1.0])
def test_paper_blur_second_moment_equals_sigma_squared_for_wide_kernels(factor):
    y = degrade.simulate(_delta((41, 41)), factor, model="paper", noise=False)
    assert _second_moment(y.sum(axis=0)) == pytest.approx((1 / factor) ** 2, rel=1e-3)
    assert _second_moment(y.sum(axis=1)) == pytest.approx((1 / factor) ** 2, rel=1e-3)


@pytest.mark.parametrize("sigma_lr", [0.01, 0.05])
def test_paper_noise_statistics(sigma_lr):
    x0 = np.zeros((256, 256), dtype=np.float32)
    kwargs = {} if sigma_lr == degrade.SIGMA_LR else {"sigma_lr": sigma_lr}
    y = degrade.simulate(x0, 2.0, model="paper", rng=np.random.default_rng(1), **kwargs)
    assert y.std() == pytest.approx(sigma_lr, rel=0.02)
    assert abs(y.mean()) < 5 * sigma_lr / 256


def test_paper_blur_equals_scipy_reflect_and_keeps_dtype():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(24, 20))
    for dtype in (np.float32, np.float64):
        y = degrade.simulate(x0.astype(dtype), Fraction(3, 2), noise=False)
        assert y.dtype == dtype
        expected = ndimage.gaussian_filter(x0, 2 / 3, mode="reflect")
        np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("factor", [Fraction(9, 8), Fraction(2, 1), 0.5])
def test_paper_psf_is_the_impulse_response(factor):
    k = degrade.psf(factor)
    assert k.sum() == pytest.approx(1.0)
    assert k.shape[0] % 2 == 1 and k.shape == k.shape[::-1]
    y = degrade.simulate(_delta((41, 41)), factor, noise=False)
    r = k.shape[0] // 2
    np.testing.assert_allclose(y[20 - r : 21 + r, 20 - r : 21 + r], k, atol=1e-12)
    assert np.abs(y).sum() == pytest.approx(1.0)  # nothing outside the support
    k_big = degrade.psf(factor, shape=(41, 41))
    np.testing.assert_allclose(k_big, y, atol=1e-12)


def test_same_seed_same_noise_and_rng_types():
    x0 = np.zeros((16, 16))
    a = degrade.simulate(x0, 2, rng=np.random.default_rng(5))
    b = degrade.simulate(x0, 2, rng=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, degrade.simulate(x0, 2, rng=6))


# ---------------------------------------------------------------------------------------------
# physical model


def test_default_linewidths_reproduce_the_notes():
    n15 = degrade.DEFAULT_LINEWIDTHS["15N"]
    assert n15.at(400) == pytest.approx(4.1)
    assert n15.at(900) == pytest.approx(5.9)
    assert degrade.DEFAULT_LINEWIDTHS["13C"].at(400) == degrade.DEFAULT_LINEWIDTHS["13C"].at(900) == 14.0
    # NMR_NOTES example: 4.5 ppm of 1H over 256 px, 20 Hz line, 900 -> 400 MHz: 1.58 px
    info = degrade.simulate_physical_info(
        Fraction(9, 4), axes=(("1H", "1H"), (4.5 / 256, 4.5 / 256)), high_mhz=900, linewidths={"1H": 20.0}
    )
    assert info.added_fwhm_px[1] == pytest.approx(20 * (1 / 400 - 1 / 900) / (4.5 / 256))
    assert info.added_fwhm_px[1] == pytest.approx(1.58, abs=0.005)
    assert info.low_mhz == pytest.approx(400.0)
    assert info.sigma_low == pytest.approx(0.01 * 2.25**1.5)


def test_physical_lorentzian_kernel_fwhm_on_a_delta():
    # 1H, 20 Hz at both fields, 900 -> 400 MHz: added 20/400 - 20/900 ppm; grid chosen for 8 px
    added_ppm = 20 / 400 - 20 / 900
    axes = (("1H", "1H"), (added_ppm / 8, added_ppm / 8))
    # a long axis, so tails reflected at the edges are negligible (~(4 / 2048)^2)
    y = degrade.simulate(_delta((1, 4097)), 2.25, model="physical", axes=axes, high_mhz=900, noise=False)
    profile = y[0]
    c = 2048
    half = profile.max() / 2
    # the band-limited Lorentzian of FWHM 8 px is at half maximum exactly at +-4 px
    assert profile.argmax() == c
    assert profile[c - 4] == pytest.approx(half, rel=1e-4)
    assert profile[c + 4] == pytest.approx(half, rel=1e-4)
    assert profile[c - 3] > half > profile[c - 5]
    assert y.sum() == pytest.approx(1.0, rel=1e-9)


def test_physical_widens_a_line_of_known_hz_width_to_its_low_field_ppm_width():
    ppm_per_px = (0.01, 0.005)  # 15N, 1H
    axes = (Axis("15N", 900 * GAMMA_N, 128 * 0.01 * 900 * GAMMA_N, 130.0, 128),
            Axis("1H", 900.0, 256 * 0.005 * 900.0, 9.0, 256))
    assert axes[0].ppm_per_point == pytest.approx(ppm_per_px[0])
    lw_high = (5.9, 20.0)  # Hz at 900 MHz (default models)
    fwhm_high_px = (lw_high[0] / (900 * GAMMA_N) / ppm_per_px[0], lw_high[1] / 900 / ppm_per_px[1])
    x0 = _render_lorentzian_2d((128, 256), (64, 128), fwhm_high_px).astype(np.float32)
    y = degrade.simulate(x0, Fraction(9, 4), model="physical", axes=axes, noise=False)
    assert y.dtype == np.float32
    fwhm_n_ppm = _fit_fwhm(y[:, 128].astype(float)) * ppm_per_px[0]
    fwhm_h_ppm = _fit_fwhm(y[64, :].astype(float)) * ppm_per_px[1]
    assert fwhm_n_ppm == pytest.approx(4.1 / (400 * GAMMA_N), rel=0.01)
    assert fwhm_h_ppm == pytest.approx(20.0 / 400, rel=0.01)
    # integral is preserved, height falls
    assert y.sum() == pytest.approx(x0.sum(), rel=1e-3)
    assert y.max() < x0.max()


def test_physical_gaussian_lineshape_adds_in_quadrature():
    spacing = 0.002
    axes = (("1H", "1H"), (spacing, spacing))
    w_high, w_low = 20 / 900 / spacing, 20 / 400 / spacing
    sigma = w_high / (2 * math.sqrt(2 * math.log(2)))
    n = np.arange(160, dtype=float)
    line = np.exp(-((n - 80) ** 2) / (2 * sigma**2))
    x0 = np.outer(line, line)
    y = degrade.simulate(x0, 2.25, model="physical", axes=axes, high_mhz=900, lineshape="gaussian", noise=False)
    profile = y[80]
    s_fit = math.sqrt(_second_moment(profile / profile.sum()))
    assert s_fit * 2 * math.sqrt(2 * math.log(2)) == pytest.approx(w_low, rel=0.01)


def test_physical_noise_scales_with_field_to_the_three_halves():
    height = 2.0
    x0 = np.zeros((256, 256))
    x0[128, 128] = height
    axes = (("15N", "1H"), (0.1, 0.02))
    clean = degrade.simulate(x0, 2.25, model="physical", axes=axes, high_mhz=900, noise=False)
    y = degrade.simulate(x0, 2.25, model="physical", axes=axes, high_mhz=900, rng=3, input_noise=False)
    assert (y - clean).std() == pytest.approx(height * 0.01 * 2.25**1.5, rel=0.02)
    # x0 carrying the high-field noise: the total (blurred input noise + added) has sigma_low
    noisy = x0 + np.random.default_rng(4).normal(0, 0.01 * height, x0.shape)
    height_noisy = np.abs(noisy).max()
    blurred_input = degrade.simulate(noisy, 2.25, model="physical", axes=axes, high_mhz=900, noise=False)
    y2 = degrade.simulate(noisy, 2.25, model="physical", axes=axes, high_mhz=900, rng=5)
    total = y2 - clean
    assert total.std() == pytest.approx(height_noisy * 0.01 * 2.25**1.5, rel=0.03)
    assert (blurred_input - clean).std() < 0.01 * height  # the blur did shrink the input noise


def test_unproducible_broadening_is_flagged_and_clamped():
    axes = (("13C", "1H"), (0.05, 0.01))
    csa_only = {"13C": (0.0, 30.0)}  # CSA-dominated: narrower in ppm at low field
    info = degrade.simulate_physical_info(2.0, axes=axes, high_mhz=800, linewidths=csa_only)
    assert not info.producible
    assert info.added_fwhm_px[0] < 0 and info.applied_fwhm_px[0] == 0.0
    lw_800, lw_400 = 30 * (800 / 900) ** 2, 30 * (400 / 900) ** 2  # CSA stated at 900 MHz
    g13 = GYROMAGNETIC_RATIO_TO_1H["13C"]
    expected = (lw_400 / (400 * g13) - lw_800 / (800 * g13)) / 0.05
    assert info.added_fwhm_px[0] == pytest.approx(expected)
    with pytest.warns(degrade.UnproducibleBroadeningWarning, match="13C"):
        y = degrade.simulate(_delta((31, 31)), 2.0, model="physical", axes=axes, high_mhz=800,
                             linewidths=csa_only, noise=False)
    # only the 1H axis (1) was broadened: every other row stays exactly zero
    assert np.abs(np.delete(y, 15, axis=0)).max() < 1e-12
    assert y[15].sum() == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        degrade.simulate(_delta((31, 31)), 2.0, model="physical", axes=axes, high_mhz=800, noise=False)


def test_physical_psf_matches_simulate_on_a_delta():
    axes = (Axis.from_ppm_window("15N", 900, 135, 105, 64), Axis.from_ppm_window("1H", 900, 11, 6, 128))
    k = degrade.psf(2.25, model="physical", axes=axes, shape=(64, 128))
    y = degrade.simulate(_delta((64, 128)), 2.25, model="physical", axes=axes, noise=False)
    assert k.sum() == pytest.approx(1.0) and k.min() >= 0
    # equal up to the edge reflections of the heavy Lorentzian tails
    np.testing.assert_allclose(k, y, atol=5e-3)
    assert np.abs(k - y).max() < 0.02 * y.max()
    small = degrade.psf(2.25, model="physical", axes=axes)
    assert small.shape[0] % 2 == 1 and small.shape[1] % 2 == 1 and small.sum() == pytest.approx(1.0)


def test_physical_requires_axes_and_field():
    with pytest.raises(ValueError, match="axes"):
        degrade.simulate(np.zeros((8, 8)), 2.0, model="physical")
    with pytest.raises(ValueError, match="high_mhz"):
        degrade.simulate(np.zeros((8, 8)), 2.0, model="physical", axes=(("15N", "1H"), (0.1, 0.01)))
    with pytest.raises(ValueError, match="linewidths"):
        degrade.simulate(np.zeros((8, 8)), 2.0, model="physical", axes=(("19F", "1H"), (0.1, 0.01)), high_mhz=900)


# ---------------------------------------------------------------------------------------------
# validation


def test_validation_names_the_parameter():
    with pytest.raises(ValueError, match="x0"):
        degrade.simulate(np.zeros((2, 8, 8)), 2.0)
    with pytest.raises(TypeError, match="x0"):
        degrade.simulate(np.zeros((8, 8), dtype=np.int32), 2.0)
    with pytest.raises(ValueError, match="factor"):
        degrade.simulate(np.zeros((8, 8)), -1.0)
    with pytest.raises(ValueError, match="model"):
        degrade.simulate(np.zeros((8, 8)), 2.0, model="gauss")
    with pytest.raises(TypeError, match="sigma_high"):
        degrade.simulate(np.zeros((8, 8)), 2.0, model="paper", sigma_high=0.1)
    with pytest.raises(TypeError, match="rng"):
        degrade.simulate(np.zeros((8, 8)), 2.0, rng="seed")


# ---------------------------------------------------------------------------------------------
# precompute


def test_precompute_is_keyed_by_factor_and_sample_not_by_position():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(4, 12, 10)).astype(np.float32)
    factors = [Fraction(9, 8), Fraction(3, 2), Fraction(9, 4)]
    full = degrade.precompute(x0, factors, seed=7)
    assert full.shape == (3, 4, 12, 10) and full.dtype == np.float32
    subset = degrade.precompute(x0[[1, 3]], [2.25], seed=7, sample_ids=[1, 3])
    np.testing.assert_array_equal(subset[0], full[2, [1, 3]])
    # floats of Table-1 ratios give the Fraction's stream
    np.testing.assert_array_equal(degrade.precompute(x0[:1], [8 / 7], seed=7)[0],
                                  degrade.precompute(x0[:1], [Fraction(8, 7)], seed=7)[0])
    again = degrade.precompute(x0, factors, seed=7)
    np.testing.assert_array_equal(full, again)
    assert not np.array_equal(full, degrade.precompute(x0, factors, seed=8))
    # every (factor, sample) has its own noise: residuals of two samples are uncorrelated
    resid = full[0] - degrade.precompute(x0, factors[:1], seed=7, noise=False)[0]
    assert abs(np.corrcoef(resid[0].ravel(), resid[1].ravel())[0, 1]) < 0.3
    assert not np.array_equal(resid[0], resid[1])


def test_precompute_physical_reads_each_samples_axes():
    axes_a = (Axis.from_ppm_window("15N", 900, 135, 105, 16), Axis.from_ppm_window("1H", 900, 11, 6, 16))
    axes_b = (Axis.from_ppm_window("15N", 600, 125, 115, 16), Axis.from_ppm_window("1H", 600, 9, 7, 16))
    headers = [{"axes": [a.to_dict() for a in axes_a]}, {"axes": [a.to_dict() for a in axes_b]}]
    x0 = np.zeros((2, 16, 16))
    x0[:, 8, 8] = 1.0
    out = degrade.precompute(x0, [1.5], model="physical", seed=0, headers=headers, noise=False)
    np.testing.assert_allclose(out[0, 0], degrade.simulate(x0[0], 1.5, model="physical", axes=axes_a, noise=False))
    np.testing.assert_allclose(out[0, 1], degrade.simulate(x0[1], 1.5, model="physical", axes=axes_b, noise=False))
    assert not np.allclose(out[0, 0], out[0, 1])
    with pytest.raises(ValueError, match="headers"):
        degrade.precompute(x0, [1.5], model="physical", seed=0)
