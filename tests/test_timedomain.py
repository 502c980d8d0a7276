"""Time-domain renderer: relaxation, FWHM and S/N rules at two fields, axes, grids, the physical test set."""

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize

from mssr.data import physics, synthetic
from mssr.data import timedomain as td
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis, Spectrum

GAMMA_N = GYROMAGNETIC_RATIO_TO_1H["15N"]
HSQC = td.ACQUISITIONS["hsqc_15n"]


def _one_peak(ppm_n=119.0, ppm_h=4.7, weight=1.0):
    return pd.DataFrame({"ppm_0": [ppm_n], "ppm_1": [ppm_h], "weight": [weight]})


def _fwhm_hz(spectrum: Spectrum):
    i, j = np.unravel_index(np.argmax(spectrum.data), spectrum.shape)
    return (td.half_height_width(spectrum.data[:, j]) * spectrum.axes[0].hz_per_point,
            td.half_height_width(spectrum.data[i, :]) * spectrum.axes[1].hz_per_point)


def _fine(acq, zf=16):
    return replace(acq, windows=tuple(replace(w, zf_factor=zf) for w in acq.windows))


# --------------------------------------------------------------------------- relaxation


def test_correlation_time_matches_ubiquitin():
    # ubiquitin (8.6 kDa): tau_c = 4.1 ns at 27 C (Tjandra et al., JACS 117, 12562, 1995); water 0.851 mPa s
    tau = td.rotational_correlation_time_s(8.6, temperature_k=300.15, viscosity_pa_s=0.851e-3)
    assert tau == pytest.approx(4.1e-9, rel=0.10)
    # Stokes-Einstein: tau_c grows with the hydrated volume, slower than linearly with the mass
    assert 1.5 < td.rotational_correlation_time_s(40) / td.rotational_correlation_time_s(20) < 2.0


def test_hsqc_and_trosy_narrow_differently_with_the_field():
    def ppm_width(kind, nucleus, field):
        lw = td.amide_relaxation(kind, field, mass_kda=20)[nucleus] / math.pi
        return lw / (field * GYROMAGNETIC_RATIO_TO_1H[nucleus])

    # NMR_NOTES.md: 15N HSQC lines narrow only 10-25% in ppm from 600 to 1200 MHz ...
    assert 0.75 <= ppm_width("hsqc", "15N", 1200) / ppm_width("hsqc", "15N", 600) <= 0.92
    # ... TROSY lines about 2x
    assert ppm_width("trosy", "15N", 600) / ppm_width("trosy", "15N", 1200) > 1.8
    # the 15N TROSY line is narrowest in Hz near 900-1000 MHz; the HSQC line broadens in Hz (CSA ~ B0^2)
    fields = np.arange(500, 1301, 25)
    trosy_hz = [td.amide_relaxation("trosy", float(b), mass_kda=20)["15N"] for b in fields]
    assert 850 <= fields[int(np.argmin(trosy_hz))] <= 1100
    hsqc_hz = [td.amide_relaxation("hsqc", float(b), mass_kda=20)["15N"] for b in fields]
    assert np.all(np.diff(hsqc_hz) > 0)
    # amide 1H of a 20 kDa protein: 15-30 Hz (est.); lines grow with the mass
    assert 15 <= td.natural_linewidths_hz("hsqc_15n", 900, mass_kda=20)["1H"] <= 30
    assert td.amide_relaxation("hsqc", 900, mass_kda=40)["15N"] > 1.5 * td.amide_relaxation("hsqc", 900, mass_kda=20)["15N"]


# --------------------------------------------------------------------------- FWHM and S/N at two fields


@pytest.mark.parametrize("field", [900.0, 600.0])
def test_fwhm_without_window_is_r2_over_pi(field):
    # long acquisitions (0.5 s, 1H and 15N), no apodization: the line is the Lorentzian of R2 (truncation
    # e^-R2 T < 1e-3), FWHM = R2 / pi Hz; narrow spectral windows keep the FIDs small
    acq = replace(HSQC, sw_ppm=(4.0, 1.0), t_acq_s=(0.5, 0.5),
                  windows=(td.Window(kind="none", zf_factor=4), td.Window(kind="none", zf_factor=4)))
    s = td.render(_one_peak(), acq, field, mass_kda=20, noise_sd=0)
    r2 = td.amide_relaxation("hsqc", field, mass_kda=20)
    fw_n, fw_h = _fwhm_hz(s)
    assert fw_n == pytest.approx(r2["15N"] / math.pi, rel=0.05)
    assert fw_h == pytest.approx(r2["1H"] / math.pi, rel=0.05)


def _continuous_fwhm_hz(r2, t_acq, off=0.5, end=0.98, power=2.0):
    """FWHM of Re FT[w(t) exp(-R2 t)] over [0, t_acq] with the continuous sine bell w, by quadrature."""

    def spectrum(nu):
        w = lambda t: math.sin(math.pi * (off + (end - off) * t / t_acq)) ** power * math.exp(-r2 * t)
        return integrate.quad(lambda t: w(t) * math.cos(2 * math.pi * nu * t), 0, t_acq, limit=200)[0]

    peak = spectrum(0.0)
    half = optimize.brentq(lambda nu: spectrum(nu) - peak / 2, 0.1, 200.0)
    return 2 * half


@pytest.mark.parametrize("field", [900.0, 600.0])
def test_fwhm_with_cos2_window_matches_an_independent_integral(field):
    acq = _fine(HSQC, 8)
    s = td.render(_one_peak(), acq, field, mass_kda=20, noise_sd=0, crop_ppm=[(121.0, 117.0), (4.9, 4.5)])
    r2 = td.amide_relaxation("hsqc", field, mass_kda=20)
    fw_n, fw_h = _fwhm_hz(s)
    n1, n2 = HSQC.points(field)
    sw1, sw2 = HSQC.sw_hz(field)
    # the discrete window of nmrglue's sp spans (n - 1) dwells
    expected_n = _continuous_fwhm_hz(r2["15N"], (n1 - 1) / sw1)
    expected_h = _continuous_fwhm_hz(r2["1H"], (n2 - 1) / sw2)
    assert fw_n == pytest.approx(expected_n, rel=0.05)
    assert fw_h == pytest.approx(expected_h, rel=0.05)
    assert td.processed_fwhm_hz("hsqc_15n", field, mass_kda=20)["1H"] == pytest.approx(expected_h, rel=0.05)


def _snr(acq, field, widths, seed):
    clean = td.render(_one_peak(), acq, field, linewidths_hz=widths, noise_sd=0)
    noisy = td.render(_one_peak(), acq, field, linewidths_hz=widths, noise_sd=0.02, rng=np.random.default_rng(seed))
    return clean.data.max() / (noisy.data - clean.data).std(), clean


def test_peak_height_snr_scales_as_b0_three_halves_for_equal_hz_widths():
    widths = {"15N": 15.0, "1H": 25.0}  # Hz, the same at both fields
    snr_900, clean_900 = _snr(HSQC, 900.0, widths, 1)
    snr_600, clean_600 = _snr(HSQC, 600.0, widths, 2)
    # calibration: S/N = 1 / noise_sd at 900 MHz for a unit-weight line of these widths
    assert snr_900 == pytest.approx(50.0, rel=0.03)
    assert snr_900 / snr_600 == pytest.approx(1.5**1.5, rel=0.05)
    # equal Hz widths at both fields (the stated rule), measured on each field's own grid
    for a, b in zip(_fwhm_hz(clean_900), _fwhm_hz(clean_600)):
        assert a == pytest.approx(b, rel=0.05)


def test_snr_with_relaxation_gains_from_narrower_lines():
    # the model's 600 MHz lines are narrower in Hz (less CSA): S/N falls a little less than f^1.5, by
    # the ratio of the processed widths (heights of lines of fixed area go as 1 / FWHM)
    def snr(field, seed):
        clean = td.render(_one_peak(), HSQC, field, mass_kda=20, noise_sd=0)
        noisy = td.render(_one_peak(), HSQC, field, mass_kda=20, noise_sd=0.02, rng=np.random.default_rng(seed))
        return clean.data.max() / (noisy.data - clean.data).std()

    w900 = td.processed_fwhm_hz("hsqc_15n", 900.0, mass_kda=20)
    w600 = td.processed_fwhm_hz("hsqc_15n", 600.0, mass_kda=20)
    expected = (600 / 900) ** 1.5 * (w900["15N"] / w600["15N"]) * (w900["1H"] / w600["1H"])
    ratio = snr(600.0, 4) / snr(900.0, 5)
    assert ratio == pytest.approx(expected, rel=0.05)
    assert ratio > (600 / 900) ** 1.5


# --------------------------------------------------------------------------- axes, TROSY, grids


@pytest.mark.parametrize("field", [900.0, 600.0])
def test_peak_sits_at_its_ppm_and_trosy_moves_by_half_j(field):
    acq = _fine(HSQC, 4)
    peak = _one_peak(121.3, 8.27)
    crop = [(123.0, 119.0), (8.6, 8.0)]
    s = td.render(peak, acq, field, mass_kda=20, noise_sd=0, crop_ppm=crop)
    i, j = np.unravel_index(np.argmax(s.data), s.shape)
    assert s.axes[0].index_to_ppm(i) == pytest.approx(121.3, abs=s.axes[0].ppm_per_point)
    assert s.axes[1].index_to_ppm(j) == pytest.approx(8.27, abs=s.axes[1].ppm_per_point)
    assert s.axes[1].field_mhz == pytest.approx(field)
    assert s.axes[0].obs_mhz == pytest.approx(field * GAMMA_N)
    assert s.meta["points"] == [round(0.064 * 36.0 * field * GAMMA_N), round(0.085 * 16.0 * field)]
    t = td.render(peak, _fine(td.ACQUISITIONS["trosy_15n"], 4), field, mass_kda=20, noise_sd=0, crop_ppm=crop)
    i, j = np.unravel_index(np.argmax(t.data), t.shape)
    assert t.axes[0].index_to_ppm(i) == pytest.approx(121.3 - 46.0 / (field * GAMMA_N), abs=t.axes[0].ppm_per_point)
    assert t.axes[1].index_to_ppm(j) == pytest.approx(8.27 + 46.0 / field, abs=t.axes[1].ppm_per_point)


def test_to_grid_keeps_ppm_and_heights():
    # the line on the carrier is on a source point; the target grid has a point there too
    s = td.render(_one_peak(119.0, 4.7), _fine(HSQC, 4), 800.0, mass_kda=15, noise_sd=0,
                  crop_ppm=[(125.0, 113.0), (5.9, 3.5)])
    grid = (Axis("15N", 800 * GAMMA_N, 64 * 0.15 * 800 * GAMMA_N, 119.0 + 20 * 0.15, 64),
            Axis("1H", 800.0, 128 * 0.015 * 800, 4.7 + 50 * 0.015, 128))
    g = td.to_grid(s, grid)
    assert g.axes == grid and g.data.dtype == s.data.dtype
    assert np.unravel_index(np.argmax(g.data), g.shape) == (20, 50)
    assert g.data[20, 50] == pytest.approx(s.data.max(), rel=1e-3)
    # off the peak: the grid's profile is the source's profile at those ppm (cubic spline on a fine source)
    src_rows = s.axes[0].ppm_to_index(grid[0].ppm_scale())
    column = s.data[:, int(np.argmax(s.data.max(axis=0)))]
    np.testing.assert_allclose(g.data[:, 50], np.interp(src_rows, np.arange(column.size), column),
                               atol=0.01 * column.max())


def test_render_pair_shares_the_grid_and_peaks():
    axes = physics.experiment_axes("hsqc_15n", 900.0)
    peaks = pd.DataFrame({"ppm_0": [118.0, 125.0], "ppm_1": [8.0, 9.2], "weight": [1.0, 0.5]})
    hi, lo = td.render_pair(peaks, "hsqc_15n", 900.0, 600.0, axes, mass_kda=20, noise_sd=0)
    for a_hi, a_lo in zip(hi.axes, lo.axes):
        np.testing.assert_allclose(a_hi.ppm_scale(), a_lo.ppm_scale())
    assert hi.axes[1].field_mhz == pytest.approx(900) and lo.axes[1].field_mhz == pytest.approx(600)
    assert hi.meta["pair"] == "high" and lo.meta["pair"] == "low"
    assert np.unravel_index(np.argmax(hi.data), hi.shape) == np.unravel_index(np.argmax(lo.data), lo.shape)


def test_validation_names_the_parameter():
    with pytest.raises(ValueError, match="experiment"):
        td.render(_one_peak(), "hnca", 900.0, mass_kda=20)
    with pytest.raises(TypeError, match="field_mhz"):
        td.render(_one_peak(), "hsqc_15n", "900", mass_kda=20)
    with pytest.raises(ValueError, match="mass_kda"):
        td.render(_one_peak(), "hsqc_15n", 900.0, mass_kda=-1, noise_sd=0)
    with pytest.raises(TypeError, match="rng"):
        td.render(_one_peak(), "hsqc_15n", 900.0, mass_kda=20, noise_sd=0.1, rng=0)
    with pytest.raises(ValueError, match="linewidths_hz"):
        td.render(_one_peak(), "hsqc_15n", 900.0, linewidths_hz={"1H": 20.0}, noise_sd=0)
    with pytest.raises(ValueError, match="peaks lacks"):
        td.render(pd.DataFrame({"ppm_0": [1.0]}), "hsqc_15n", 900.0, mass_kda=20)
    with pytest.raises(ValueError, match="high_mhz"):
        td.render_pair(_one_peak(), "hsqc_15n", 600.0, 900.0, physics.experiment_axes("hsqc_15n", 600.0), mass_kda=20)
    with pytest.raises(ValueError, match="TROSY"):
        td.degrade_linewidths("trosy_15n", 900.0, 600.0, mass_kda=20)


# --------------------------------------------------------------------------- the physical test set


def test_physical_testset_has_heldout_proteins_never_in_the_split(tmp_path):
    from mssr.evaluation import testsets

    ids = synthetic.pick_proteins(10, seed=0)
    names = [synthetic.protein_name(b) for b in ids]
    assignment = {n: ("test" if k < 2 else "train" if k < 8 else "val") for k, n in enumerate(names)}
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"assignment": assignment}))
    chosen = testsets.physical_proteins(split, n_proteins=6, seed=1)
    assert [p for p, o in chosen if o == "test_split"] == sorted(names[:2])
    heldout = [p for p, o in chosen if o == "heldout"]
    assert len(heldout) == 4 and not set(heldout) & set(names)
    out = testsets.build_physical(split, None, tmp_path / "physical.h5", factors=["1.500", "2.250"], size=16,
                                  n_proteins=6)
    x, x_lr, labels, s = testsets.read_testset(out)
    assert x.shape == (6, 16, 16) and x_lr.shape == (2, 6, 16, 16) and labels == ["1.500", "2.250"]
    assert s.attrs["renderer"] == "mssr.data.timedomain"
    assert np.abs(x).max(axis=(1, 2)) == pytest.approx(1.0)
    # the same peaks at both factors: the inputs differ from the truth and from each other
    assert not np.allclose(x_lr[0], x_lr[1]) and not np.allclose(x_lr[0], x)
