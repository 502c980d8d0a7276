"""The ``real`` test set: measured 800 MHz planes on the S x S grid, broadened physically per factor."""

import math
import tempfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mssr import degrade
from mssr.data import preprocess, real
from mssr.evaluation import realpairs, testsets
from mssr.factors import factor_label
from mssr.spectrum import Axis

SIZE = 32
SEED = 1234
FACTORS = ["1.125", "1.500", "2.250"]
PLANES = {"protein_L": [0, 3], "Ddx4": [1]}


@pytest.fixture(scope="module")
def native_planes(peakipy_sdist):
    with tempfile.TemporaryDirectory() as tmp:
        planes = real.read_real_planes(real.extract_series(peakipy_sdist, tmp), planes=PLANES)
    return {(p.protein, p.plane): p.spectrum for p in planes}


@pytest.fixture(scope="module")
def real_set(peakipy_sdist, tmp_path_factory):
    """Built through the pipeline's entry point, with the config sections of a run."""
    out = tmp_path_factory.mktemp("real") / "testset_real.h5"
    data = {"size": SIZE, "real_testset": {"enabled": True, "planes": PLANES, "cache": str(peakipy_sdist.parent)}}
    testsets.build_testset("real", None, out, factors=FACTORS, degrade={"model": "paper", "test_seed": SEED},
                           data=data)
    return testsets.read_testset(out)


def _keys(s):
    return [(h["meta"]["protein"], h["meta"]["plane"]) for h in s.headers]


def test_holds_the_chosen_planes_with_protein_labels_for_every_factor(real_set):
    x, x_lr, labels, s = real_set
    assert labels == [factor_label(f) for f in FACTORS]
    assert _keys(s) == [("protein_L", 0), ("protein_L", 3), ("Ddx4", 1)]
    assert s.attrs["testset"] == "real" and s.attrs["proteins"] == ["protein_L", "protein_L", "Ddx4"]
    assert x.shape == (3, SIZE, SIZE) and x_lr.shape == (len(FACTORS), 3, SIZE, SIZE)
    assert x.dtype == np.float32 and x_lr.dtype == np.float32
    for h in s.headers:
        assert [a["nucleus"] for a in h["axes"]] == ["15N", "1H"]
        assert [a["size"] for a in h["axes"]] == [SIZE, SIZE]
        assert_allclose(h["axes"][1]["obs_mhz"], 800.304, atol=1e-3)


def test_truths_are_the_measured_planes_preprocessed_like_training_data(real_set, native_planes):
    x, _, _, s = real_set
    for i, key in enumerate(_keys(s)):
        expected = preprocess.preprocess(native_planes[key], size=SIZE)
        assert_allclose(x[i], expected.data, rtol=0, atol=1e-6)
        assert np.max(np.abs(x[i])) == pytest.approx(1.0)
        # the stored scale maps the truth back to the resized measured intensities
        resized = preprocess.resize(native_planes[key], SIZE).data
        assert_allclose(x[i] * s.headers[i]["meta"]["scale"], resized, rtol=1e-5, atol=1e-6 * np.abs(resized).max())


def test_stored_parameters_are_the_native_linewidths_and_the_resized_noise(real_set, native_planes):
    x, _, _, s = real_set
    for i, key in enumerate(_keys(s)):
        params = s.headers[i]["meta"]["physical_params"]
        widths = realpairs.measured_linewidths_hz(native_planes[key])
        assert params["linewidths"] == pytest.approx({"15N": widths[0], "1H": widths[1]}, rel=1e-12)
        assert params["lineshape"] == "lorentzian"
        assert params["sigma_high"] == pytest.approx(realpairs.noise_sd(x[i]) / np.max(np.abs(x[i])), rel=1e-5)
    # protein L's 15N lines are wider than Ddx4's, its 1H lines narrower (measured: ~20 / 15 Hz vs ~14 / 44 Hz)
    lw = {k: s.headers[i]["meta"]["physical_params"]["linewidths"] for i, k in enumerate(_keys(s))}
    assert lw[("protein_L", 0)]["15N"] > lw[("Ddx4", 1)]["15N"]
    assert lw[("protein_L", 0)]["1H"] < lw[("Ddx4", 1)]["1H"]


@pytest.mark.parametrize("factor", FACTORS)
def test_added_widths_are_the_closed_form_for_widths_fixed_in_hz(real_set, factor):
    """A width fixed in Hz is LW / (gamma B) ppm: the kernel adds LW (f - 1) / (Hz per point at B_high)."""
    _, _, _, s = real_set
    f = float(factor)
    for h in s.headers:
        axes = tuple(Axis.from_dict(a) for a in h["axes"])
        params = h["meta"]["physical_params"]
        info = degrade.simulate_physical_info(f, axes=axes, **params)
        for k, a in enumerate(h["axes"]):
            hz_per_point = a["sw_hz"] / a["size"]
            expected = params["linewidths"][a["nucleus"]] * (f - 1.0) / hz_per_point
            # rel 1e-3: the model takes a nucleus' frequency as gamma / gamma_1H x B_1H, which differs
            # from the file's 15N obs_mhz by ~1e-4
            assert info.applied_fwhm_px[k] == pytest.approx(expected, rel=1e-3)
            # the same width in Hz at both fields: Hz per point at B_low is (sw_hz / size) / f
            assert info.linewidth_low_hz[k] == pytest.approx(info.linewidth_high_hz[k])
            assert info.fwhm_low_px[k] * hz_per_point / f == pytest.approx(params["linewidths"][a["nucleus"]], rel=1e-3)
        # S/N rule: equal Hz widths, so the noise / height grows as f^1.5 exactly
        assert info.sigma_low == pytest.approx(params["sigma_high"] * f**1.5, rel=1e-12)


def _gain(kernel: np.ndarray) -> float:
    """How a blur with this kernel scales white noise's SD: its L2 norm."""
    return float(np.sqrt(np.sum(kernel**2)))


@pytest.mark.parametrize("k", range(len(FACTORS)))
def test_inputs_are_the_broadened_truth_plus_noise_of_the_sn_rule(real_set, k):
    x, x_lr, labels, s = real_set
    f = float(labels[k])
    for i, h in enumerate(s.headers):
        axes = tuple(Axis.from_dict(a) for a in h["axes"])
        params = h["meta"]["physical_params"]
        x0 = x[i].astype(np.float64)
        blurred = degrade.simulate(x0, f, model="physical", noise=False, axes=axes, **params)
        residual = x_lr[k, i].astype(np.float64) - blurred
        # noise to bring the total to sigma_low x the broadened height, less what the truth carries
        target = params["sigma_high"] * f**1.5 * np.max(np.abs(blurred))
        carried = params["sigma_high"] * np.max(np.abs(x0)) * _gain(degrade.psf(f, model="physical", axes=axes, **params))
        expected_sd = math.sqrt(max(target**2 - carried**2, 0.0))
        assert residual.mean() == pytest.approx(0.0, abs=4 * expected_sd / SIZE)
        assert residual.std() == pytest.approx(expected_sd, rel=0.12)


def test_inputs_are_seeded_per_plane_and_factor(real_set, peakipy_sdist, tmp_path):
    """Each input is reproducible from (seed, factor, plane) alone: a subset rebuild gives the same ones."""
    x, x_lr, labels, s = real_set
    # recomputed directly from the stored truth with the documented stream
    k, i = labels.index("2.250"), 2
    h = s.headers[i]
    rng = degrade.sample_rng(SEED, 2.25, testsets.real_sample_id("Ddx4", 1))
    again = degrade.simulate(x[i].astype(np.float64), 2.25, model="physical", rng=rng,
                             axes=tuple(Axis.from_dict(a) for a in h["axes"]), **h["meta"]["physical_params"])
    assert_allclose(x_lr[k, i], again.astype(np.float32), rtol=0, atol=2e-7)
    # a rebuild of one plane and one factor reproduces it; another seed does not
    sub = testsets.build_real(tmp_path / "sub.h5", factors=["2.250"], size=SIZE, seed=SEED,
                              planes={"Ddx4": [1]}, cache=peakipy_sdist.parent)
    x_sub, x_lr_sub, _, s_sub = testsets.read_testset(sub)
    assert _keys(s_sub) == [("Ddx4", 1)]
    assert_array_equal(x_sub[0], x[i])
    assert_array_equal(x_lr_sub[0, 0], x_lr[k, i])
    other = degrade.simulate(x[i].astype(np.float64), 2.25, model="physical",
                             rng=degrade.sample_rng(SEED + 1, 2.25, testsets.real_sample_id("Ddx4", 1)),
                             axes=tuple(Axis.from_dict(a) for a in h["axes"]), **h["meta"]["physical_params"])
    assert not np.allclose(other, x_lr[k, i], atol=1e-6)


def test_sample_ids_are_stable_and_distinct():
    ids = {testsets.real_sample_id(p, k) for p, n in (("protein_L", 4), ("Ddx4", 6)) for k in range(n)}
    assert len(ids) == 10
    assert testsets.real_sample_id("protein_L", 0) == 3263557832  # CRC-32 of b"protein_L/0"


@pytest.mark.parametrize("planes, error", [
    ({"ubiquitin": [0]}, ValueError),
    ({"protein_L": [-1]}, ValueError),
    ({"protein_L": [1.5]}, ValueError),
    ({"protein_L": "0"}, TypeError),
    ([0, 1], TypeError),
    ({"protein_L": [], "Ddx4": []}, ValueError),
])
def test_bad_planes_are_refused_naming_the_parameter(planes, error, tmp_path):
    with pytest.raises(error, match="planes"):
        testsets.build_real(tmp_path / "x.h5", factors=["1.500"], size=SIZE, planes=planes)


def test_missing_plane_is_refused(peakipy_sdist, tmp_path):
    with pytest.raises(ValueError, match=r"protein_L\[4\]"):
        testsets.build_real(tmp_path / "x.h5", factors=["1.500"], size=SIZE, planes={"protein_L": [4]},
                            cache=peakipy_sdist.parent)


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'real'"):
        testsets.build_testset("measured", None, tmp_path / "x.h5", factors=["1.500"], degrade={}, data={"size": SIZE})
