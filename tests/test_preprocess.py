import numpy as np
import pytest
from skimage.measure import block_reduce

from mssr.data.preprocess import normalize, preprocess, preprocess_file, resample_matrix, resize
from mssr.data.store import read_samples, write_planes
from mssr.spectrum import Axis, Spectrum


def spectrum(data, field=600.0):
    data = np.asarray(data)
    return Spectrum(data, (Axis.from_ppm_window("15N", field, 134.0, 104.0, data.shape[0]),
                           Axis.from_ppm_window("1H", field, 11.0, 6.0, data.shape[1])),
                    meta={"protein": "p1", "experiment": "hnca", "projection": "15N-1H"})


def test_normalize_hand_values_and_dtype():
    x = np.array([[0.0, -2.0], [1.0, 4.0]], dtype=np.float32)
    x_norm, scale = normalize(x)
    np.testing.assert_array_equal(x_norm, [[0.0, -0.5], [0.25, 1.0]])
    assert scale == 4.0 and x_norm.dtype == np.float32
    np.testing.assert_array_equal(x_norm * scale, x)
    neg, s = normalize(np.array([0.5, -3.0, 0.0]))
    np.testing.assert_array_equal(neg, [0.5 / 3, -1.0, 0.0])
    assert s == 3.0
    zeros, s0 = normalize(np.zeros((2, 3), dtype=np.float32))
    assert s0 == 1.0 and not zeros.any()
    ints, _ = normalize(np.array([2, -4]))
    assert ints.dtype == np.float64
    with pytest.raises(ValueError, match="NaN"):
        normalize(np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match="x"):
        normalize([1.0, 2.0])


def test_integer_factor_downsampling_is_block_mean():
    x = np.random.default_rng(0).normal(size=(64, 96)).astype(np.float32)
    out = resize(spectrum(x), (16, 32))
    np.testing.assert_allclose(out.data, block_reduce(x, (4, 3), np.mean), rtol=1e-5, atol=1e-6)
    assert out.data.dtype == np.float32


def test_axes_keep_window_and_integral_kept_for_any_ratio():
    x = np.random.default_rng(1).random(size=(100, 130))
    s = spectrum(x)
    out = resize(s, (37, 41))
    for before, after in zip(s.axes, out.axes):
        assert after.ppm_first + after.ppm_per_point / 2 == pytest.approx(before.ppm_first + before.ppm_per_point / 2)
        assert after.ppm_last - after.ppm_per_point / 2 == pytest.approx(before.ppm_last - before.ppm_per_point / 2)
        assert after.nucleus == before.nucleus and after.obs_mhz == before.obs_mhz
    area = lambda sp: sp.data.sum() * sp.axes[0].ppm_per_point * sp.axes[1].ppm_per_point
    assert area(out) == pytest.approx(area(s), rel=1e-12)
    m = resample_matrix(100, 37)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)  # a constant stays constant


def test_narrow_peak_survives_unlike_naive_subsampling():
    x = np.zeros((64, 64), dtype=np.float32)
    x[13, 27] = 1.0  # one point wide, between the points that x[::4, ::4] keeps
    naive = x[::4, ::4]
    assert naive.max() == 0.0  # plain subsampling loses the peak
    out = resize(spectrum(x), 16)
    assert out.data.sum() * 16 == pytest.approx(1.0)  # integral: sum x pixel area (16 input px)
    assert np.unravel_index(out.data.argmax(), out.shape) == (13 // 4, 27 // 4)
    assert preprocess(spectrum(x), size=16).data[13 // 4, 27 // 4] == 1.0
    # a non-integer ratio splits it between neighbours, still keeping its integral
    odd = resize(spectrum(x), 23)
    assert odd.data.sum() * (64 / 23) ** 2 == pytest.approx(1.0, rel=1e-6)
    assert odd.data.max() > 0.5 * (23 / 64) ** 2


def test_upsampling_interpolates_linearly():
    row = np.array([0.0, 1.0, 3.0, 2.0])
    x = np.tile(row, (4, 1))
    out = resize(spectrum(x), (4, 10))
    centres = (np.arange(10) + 0.5) * 4 / 10 - 0.5
    np.testing.assert_allclose(out.data[0], np.interp(centres, np.arange(4), row))
    np.testing.assert_allclose(out.data, np.tile(out.data[0], (4, 1)))


def test_preprocess_max_is_one_and_scale_maps_back():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(50, 70)) * 30).astype(np.float32)
    x[10, 10] = -500.0
    out = preprocess(spectrum(x), size=32)
    resized = resize(spectrum(x), 32)
    assert np.abs(out.data).max() == 1.0 and out.data.min() == -1.0
    assert out.meta["scale"] == pytest.approx(float(np.abs(resized.data).max()))
    np.testing.assert_allclose(out.data * out.meta["scale"], resized.data, rtol=1e-6)
    assert out.meta["protein"] == "p1" and out.shape == (32, 32) and out.data.dtype == np.float32


def test_preprocess_file(tmp_path):
    rng = np.random.default_rng(3)
    planes = [spectrum(rng.normal(size=(40, 90)).astype(np.float32)),
              spectrum(rng.normal(size=(12, 20)).astype(np.float32), field=800.0).with_data(
                  rng.normal(size=(12, 20)).astype(np.float32), protein="p2", projection="13C-1H")]
    write_planes(tmp_path / "planes.h5", planes)
    preprocess_file(tmp_path / "planes.h5", tmp_path / "samples.h5", size=16)
    samples = read_samples(tmp_path / "samples.h5")
    assert samples.x.shape == (2, 16, 16) and samples.x.dtype == np.float32
    assert samples.meta("protein") == ["p1", "p2"] and samples.meta("projection") == ["15N-1H", "13C-1H"]
    for i, plane in enumerate(planes):
        expected = preprocess(plane, size=16)
        np.testing.assert_allclose(samples.x[i], expected.data, rtol=1e-6)
        assert samples.headers[i]["meta"]["scale"] == pytest.approx(expected.meta["scale"])
        s = samples.spectrum(i)
        assert s.axes[1].size == 16 and s.field_mhz == pytest.approx(plane.field_mhz)
        assert np.abs(samples.x[i]).max() == 1.0
    assert samples.attrs["size"] == [16, 16]


def test_resize_validation():
    with pytest.raises(ValueError, match="2D"):
        resize(Spectrum(np.zeros((2, 2, 2)), tuple(Axis.from_ppm_window("1H", 600, 10, 0, 2) for _ in range(3))), 4)
    with pytest.raises(ValueError, match="size"):
        resize(spectrum(np.zeros((4, 4))), 0)
    with pytest.raises(TypeError, match="size"):
        resize(spectrum(np.zeros((4, 4))), 4.0)
