"""Tests of the non-learned baselines on Gaussian-blurred synthetic peaks with a known kernel."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import signal
from skimage import restoration

from mssr.evaluation import classical

SHAPE = (64, 64)
POSITIVE, NEGATIVE = (16, 16), (45, 25)
CENTRES = [POSITIVE, (20, 40), NEGATIVE, (44, 47)]
AMPLITUDES = [1.0, 0.8, -0.9, 0.6]


def _blobs(centres, amplitudes, width=0.8):
    rows, cols = np.indices(SHAPE)
    x = np.zeros(SHAPE)
    for (r, c), a in zip(centres, amplitudes):
        x += a * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * width**2))
    return x


def _gaussian_psf(sigma=1.5, radius=5):
    axis = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    psf = np.outer(axis, axis)
    return psf / psf.sum()


PSF = _gaussian_psf()
TRUTH = _blobs(CENTRES, AMPLITUDES)
BLURRED = signal.convolve(TRUTH, PSF, mode="same")  # peaks are far from the edges


def _mse(x):
    return np.mean((x - TRUTH) ** 2)


def _half_max_area(x, centre, radius=4):
    """Pixels within ``radius`` of ``centre`` above half of the peak's height (sign-aware)."""
    r, c = centre
    patch = np.sign(x[centre]) * x[r - radius : r + radius + 1, c - radius : c + radius + 1]
    return np.count_nonzero(patch > patch.max() / 2)


@pytest.mark.parametrize(
    "method, kwargs, max_mse_ratio",
    [
        ("richardson_lucy", {"iterations": 30}, 0.1),  # measured 0.019
        ("wiener", {"balance": 0.001}, 0.5),  # measured 0.37
        ("unsupervised_wiener", {}, 0.1),  # measured 0.023
    ],
)
def test_deconvolution_sharpens_noise_free_peaks(method, kwargs, max_mse_ratio):
    out = classical.enhance(BLURRED, PSF, method=method, **kwargs)
    assert _mse(out) < max_mse_ratio * _mse(BLURRED)
    for centre in (POSITIVE, NEGATIVE):
        # Blurred: 13 px above half maximum; measured 5 (RL, unsupervised Wiener) and 9 (Wiener).
        assert _half_max_area(out, centre) < 0.75 * _half_max_area(BLURRED, centre)
    # Negative peaks stay negative and grow back towards their true height.
    assert out[NEGATIVE] < BLURRED[NEGATIVE] < 0
    assert out[POSITIVE] > BLURRED[POSITIVE] > 0


def test_richardson_lucy_with_mild_noise_still_improves():
    rng = np.random.default_rng(0)
    noisy = BLURRED + rng.normal(0.0, 0.01, SHAPE)
    out = classical.enhance(noisy, PSF, method="richardson_lucy", iterations=30)
    assert _mse(out) < 0.5 * _mse(noisy)  # measured 0.17


def test_richardson_lucy_equals_skimage_on_non_negative_input():
    positive = np.clip(BLURRED, 0.0, None)
    expected = restoration.richardson_lucy(positive, PSF, num_iter=12, clip=False)
    assert_allclose(classical.enhance(positive, PSF, method="richardson_lucy", iterations=12), np.clip(expected, -1, 1))


@pytest.mark.parametrize("method", ["identity", "richardson_lucy", "wiener"])
def test_methods_are_odd_in_the_sign_of_the_spectrum(method):
    out = classical.enhance(BLURRED, PSF, method=method, iterations=10)
    flipped = classical.enhance(-BLURRED, PSF, method=method, iterations=10)
    assert_allclose(flipped, -out, atol=1e-12)


def test_identity_returns_the_input_clipped():
    x = BLURRED.astype(np.float32)
    out = classical.enhance(x, PSF, method="identity")
    assert out.dtype == np.float32
    assert_array_equal(out, x)
    assert out is not x
    loud = x * 5
    assert_array_equal(classical.enhance(loud, PSF, method="identity"), np.clip(loud, -1, 1))


@pytest.mark.parametrize("method", ["richardson_lucy", "wiener", "unsupervised_wiener"])
def test_output_keeps_dtype_shape_and_range(method):
    x = (BLURRED * 4).astype(np.float32)  # deconvolved peaks overshoot 1: must be clipped
    out = classical.enhance(x, PSF, method=method, iterations=10)
    assert out.dtype == np.float32 and out.shape == SHAPE
    assert out.max() <= 1.0 and out.min() >= -1.0
    assert out.max() == 1.0


def test_enhance_many_equals_enhance_per_spectrum():
    stack = np.stack([BLURRED, -0.5 * BLURRED, np.roll(BLURRED, 5, axis=1)]).astype(np.float32)
    for method in ("richardson_lucy", "wiener"):
        many = classical.enhance_many(stack, PSF, method=method, iterations=5)
        for spectrum, out in zip(stack, many):
            assert_array_equal(out, classical.enhance(spectrum, PSF, method=method, iterations=5))
    first = classical.enhance_many(stack[:2], PSF, method="unsupervised_wiener", seed=3)
    again = classical.enhance_many(stack[:2], PSF, method="unsupervised_wiener", seed=3)
    assert_array_equal(first, again)
    assert_array_equal(first[0], classical.enhance(stack[0], PSF, method="unsupervised_wiener", seed=3))


@pytest.mark.parametrize(
    "psf, message",
    [
        (PSF * 2, "sum to 1"),
        (np.full((4, 4), 1 / 16), "odd sides"),
        (np.full((65, 3), 1 / 195), "larger than"),
        (np.array([[0.0, -0.5, 0.0], [0.0, 2.0, 0.0], [0.0, -0.5, 0.0]]), "non-negative"),
        (np.ones(3) / 3, "2D"),
    ],
)
def test_bad_psf_is_rejected(psf, message):
    with pytest.raises(ValueError, match=message):
        classical.enhance(BLURRED, psf, method="wiener")


def test_bad_input_and_options_are_rejected():
    with pytest.raises(ValueError, match="method"):
        classical.enhance(BLURRED, PSF, method="deblur")
    with pytest.raises(ValueError, match="iterations"):
        classical.enhance(BLURRED, PSF, method="richardson_lucy", iterations=0)
    with pytest.raises(ValueError, match="balance"):
        classical.enhance(BLURRED, PSF, method="wiener", balance=0.0)
    with pytest.raises(TypeError, match="x_lr must have a float dtype"):
        classical.enhance(np.zeros(SHAPE, dtype=np.int16), PSF, method="identity")
    bad = BLURRED.copy()
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="x_lr contains NaN or inf"):
        classical.enhance(bad, PSF, method="identity")
    with pytest.raises(ValueError, match="x_lr must be 3D"):
        classical.enhance_many(BLURRED, PSF, method="identity")


# --------------------------------------------------------------------------- test-set plumbing

from mssr import degrade  # noqa: E402
from mssr.data.store import read_samples, write_samples  # noqa: E402
from mssr.evaluation import predictions  # noqa: E402
from mssr.spectrum import Axis  # noqa: E402


def _tiny_testset(tmp_path, model, name="testset.h5"):
    """Two 32 x 32 1H-15N spectra with Lorentzian peaks, degraded by ``model`` at two factors."""
    rows, cols = np.indices((32, 32))
    x = np.stack([sum(a / ((1 + 4 * ((rows - r) / 2.0) ** 2) * (1 + 4 * ((cols - c) / 2.0) ** 2))
                      for r, c, a in [(10, 12, 1.0), (20, 22, -0.6)]) for _ in range(2)]).astype(np.float32)
    axes = [Axis.from_ppm_window("15N", 600.0, 121.0, 117.0, 32), Axis.from_ppm_window("1H", 600.0, 8.6, 8.0, 32)]
    headers = [{"axes": [a.to_dict() for a in axes], "meta": {}} for _ in range(2)]
    params = {"sigma_high": 0.0, "lineshape": "lorentzian"} if model == "physical" else {"sigma_lr": 0.0}
    factors = [1.5, 2.25]
    x_lr = degrade.precompute(x, factors, model=model, seed=0, headers=headers, **params)
    attrs = {"testset": "blur", "factors": ["1.500", "2.250"], "degrade_model": model, "params": params}
    return write_samples(tmp_path / name, x, headers, attrs=attrs, extra={"x_lr": x_lr}), x, axes, params


def test_physical_kernels_come_from_each_spectrum_axes(tmp_path):
    path, _, axes, params = _tiny_testset(tmp_path, "physical")
    kernels = predictions.low_field_kernels(read_samples(path), "2.250")
    info = degrade.simulate_physical_info(2.25, axes=tuple(axes), **params)
    assert kernels[0].lineshape == "lorentzian"
    assert_allclose(kernels[0].added_fwhm_px, info.applied_fwhm_px)
    assert kernels[0].added_fwhm_px[1] > 1.0  # 0.01875 ppm/px 1H: a visible broadening
    full = degrade.psf(2.25, model="physical", axes=tuple(axes), **params)
    expected = full if max(full.shape) <= 31 else degrade.psf(2.25, model="physical", axes=tuple(axes),
                                                             shape=tuple(min(n, 31) for n in full.shape), **params)
    assert_allclose(kernels[0].psf, expected)


def test_paper_kernel_is_the_gaussian_and_lorentz_gauss_leaves_it(tmp_path):
    path, _, _, _ = _tiny_testset(tmp_path, "paper")
    s = read_samples(path)
    kernels = predictions.low_field_kernels(s, "1.500")
    assert kernels[0].lineshape == "gaussian"
    assert_allclose(kernels[0].added_fwhm_px, [2 * np.sqrt(2 * np.log(2)) / 1.5] * 2)
    x_lr = s.extra["x_lr"][0]
    assert_array_equal(predictions.apply_method("lorentz_gauss", x_lr, kernels, {"g2_ratio": 1.0}), x_lr)


def test_parameters_are_chosen_on_validation_and_used(tmp_path):
    path, x, _, _ = _tiny_testset(tmp_path, "physical")
    grid = {"wiener": {"balance": [1e-4, 10.0]}, "lorentz_gauss": {"g2_ratio": [0.5, 2.0]},
            "peak_fit": {"alpha": [3.0], "keep_residual": [False]}}
    chosen = predictions.choose_parameters(path, ["identity", "wiener", "lorentz_gauss", "peak_fit"], grid=grid)
    assert chosen["_pairs"] == 4
    # noise-free pairs: the weak regularizer wins; every grid point is recorded with its MSE
    assert chosen["wiener"]["chosen"] == {"balance": 1e-4}
    assert [r["params"]["balance"] for r in chosen["wiener"]["scores"]] == [1e-4, 10.0]
    # noise-free Lorentzians: the peak fit beats identity
    identity_mse = chosen["identity"]["scores"][0]["mse"]
    assert chosen["peak_fit"]["scores"][0]["mse"] < 0.2 * identity_mse
    params_json = tmp_path / "classical_params.json"
    params_json.write_text(__import__("json").dumps({"methods": {k: v for k, v in chosen.items() if k != "_pairs"}}))
    out = {"1.500": tmp_path / "p1.h5", "2.250": tmp_path / "p2.h5"}
    predictions.classical_files("wiener", path, out, params_json=params_json)
    written = read_samples(out["2.250"])
    assert written.attrs["params"] == {"balance": 1e-4}
    assert "physical model" in written.attrs["kernel"]
    assert np.mean((written.x - x) ** 2) < 0.5 * np.mean((read_samples(path).extra["x_lr"][1] - x) ** 2)
