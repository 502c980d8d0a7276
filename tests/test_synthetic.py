import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from mssr.data import physics, synthetic
from mssr.spectrum import Axis

NAN = np.nan


def hand_table(extra_unassigned: int = 0) -> pd.DataFrame:
    """Seven residues: N-terminal Met without amide shifts, Gly, Pro, Asn, Ala, Trp, and Leu 8
    after a numbering gap (residue 7 absent), so its i-1 peaks cannot exist."""
    rows = [
        # seq aa   H     N      CA    CB    C
        (1, "M", NAN, NAN, 55.0, 32.0, 176.0),
        (2, "G", 8.50, 109.0, 45.0, NAN, 174.0),
        (3, "P", NAN, 137.0, 63.0, 32.0, 177.0),
        (4, "N", 8.30, 118.0, 53.0, 39.0, 175.0),
        (5, "A", 8.10, 123.0, 52.5, 19.0, 177.5),
        (6, "W", 7.90, 121.0, 57.0, 29.5, 176.0),
        (8, "L", 8.00, 125.0, 55.5, 42.0, 177.0),
    ]
    rows += [(100 + i, "A", NAN, NAN, NAN, NAN, NAN) for i in range(extra_unassigned)]
    df = pd.DataFrame(rows, columns=["seq_id", "aa", "H", "N", "CA", "CB", "C"])
    df.insert(0, "bmrb_id", 99999)
    return df


# Residue rule by hand: amides of residues 2, 4, 5, 6, 8 (Pro 3 and the N-terminus have none).
# HSQC: 5 backbone + Asn NH2 (2) + Trp indole (1). HNCA: 5 CA(i) + 4 CA(i-1) (residue 8 has no i-1).
# HNCO: 4 C'(i-1). HNCACB: 5 CA(i) + 4 CB(i) (no Gly CB) + 4 CA(i-1) + 4 CB(i-1). CBCA(CO)NH: 4 + 4.
EXPECTED_COUNTS = {"hsqc_15n": 8, "hnca": 9, "hnco": 4, "hncacb": 17, "cbcaconh": 8}


@pytest.mark.parametrize("experiment", sorted(EXPECTED_COUNTS))
def test_peak_count_follows_residue_rule(experiment):
    peaks = synthetic.peak_list(hand_table(), experiment, rng=np.random.default_rng(0))
    assert len(peaks) == EXPECTED_COUNTS[experiment]
    assert set(peaks["residue"]) <= {2, 4, 5, 6, 8}


def test_peak_list_shifts_signs_and_strip_intensities():
    peaks = synthetic.peak_list(hand_table(), "hncacb", rng=np.random.default_rng(1))
    strip = peaks[peaks["residue"] == 4].set_index("label")
    # Ca/Cb of residue 4 and of its predecessor, the Pro 3; 15N/1H of residue 4's amide
    assert strip.loc["CA(i)", "ppm_0"] == 53.0 and strip.loc["CB(i)", "ppm_0"] == 39.0
    assert strip.loc["CA(i-1)", "ppm_0"] == 63.0 and strip.loc["CB(i-1)", "ppm_0"] == 32.0
    assert (strip["ppm_1"] == 118.0).all() and (strip["ppm_2"] == 8.30).all()
    assert (peaks.loc[peaks["atom_0"] == "CB", "weight"] < 0).all()
    assert (peaks.loc[peaks["atom_0"] == "CA", "weight"] > 0).all()
    # one intensity factor per strip: i-1 at half the Ca(i) intensity, Cb at 0.6 of it
    assert strip.loc["CA(i-1)", "weight"] == pytest.approx(0.5 * strip.loc["CA(i)", "weight"])
    assert strip.loc["CB(i)", "weight"] == pytest.approx(-0.6 * strip.loc["CA(i)", "weight"])


def test_hsqc_side_chain_peaks():
    peaks = synthetic.peak_list(hand_table(), "hsqc_15n", rng=np.random.default_rng(2))
    nh2 = peaks[peaks["label"] == "NH2"]
    assert len(nh2) == 2 and nh2["ppm_0"].nunique() == 1  # two protons on one nitrogen
    assert 105 < nh2["ppm_0"].iloc[0] < 120
    assert sorted(nh2["ppm_1"]) == pytest.approx([6.85, 7.50], abs=0.8)  # Z and E protons, 4 SD
    indole = peaks[peaks["label"] == "indole"]
    assert len(indole) == 1 and 122 < indole["ppm_0"].iloc[0] < 137 and 8.5 < indole["ppm_1"].iloc[0] < 11.7


def _lorentz(x, height, centre, fwhm):
    return height / (1.0 + (2.0 * (x - centre) / fwhm) ** 2)


def test_single_peak_centre_and_fwhm():
    n_axis = Axis.from_ppm_window("15N", 600.0, 134.0, 104.0, 400)
    h_axis = Axis.from_ppm_window("1H", 600.0, 12.0, 0.0, 2048)
    peaks = pd.DataFrame({"ppm_0": [118.3], "ppm_1": [8.21], "height": [2.0]})
    widths = (40.0, 60.0)  # Hz: ~8.8 points on 15N, ~17 points on 1H
    data = synthetic.render(peaks, (n_axis, h_axis), linewidths_hz=widths, noise_sd=0.0, rng=None)
    assert data.dtype == np.float32 and data.shape == (400, 2048)
    i, j = np.unravel_index(np.argmax(data), data.shape)
    assert i == round(float(n_axis.ppm_to_index(118.3))) and j == round(float(h_axis.ppm_to_index(8.21)))
    for axis_index, axis, line in ((1, h_axis, data[i, :]), (0, n_axis, data[:, j])):
        x = np.arange(axis.size, dtype=float)
        (height, centre, fwhm), _ = curve_fit(_lorentz, x, line.astype(float), p0=(line.max(), x[line.argmax()], 5.0))
        assert centre == pytest.approx(float(axis.ppm_to_index(peaks[f"ppm_{axis_index}"][0])), abs=1e-3)
        assert fwhm * axis.hz_per_point == pytest.approx(widths[axis_index], rel=1e-3)
    # half-maximum crossings measured directly on the 1H row (linear interpolation)
    row = data[i].astype(float)
    half = row.max() / 2
    left = np.flatnonzero(row >= half)[0]
    right = np.flatnonzero(row >= half)[-1]
    x_left = left - 1 + (half - row[left - 1]) / (row[left] - row[left - 1])
    x_right = right + (row[right] - half) / (row[right] - row[right + 1])
    assert (x_right - x_left) * h_axis.hz_per_point == pytest.approx(60.0, rel=0.01)


def test_render_3d_matches_brute_force_sum():
    axes = (Axis.from_ppm_window("13C", 800, 70, 40, 9), Axis.from_ppm_window("15N", 800, 134, 104, 7),
            Axis.from_ppm_window("1H", 800, 11, 6, 11))
    peaks = pd.DataFrame({"ppm_0": [55.0, 61.3, 45.2], "ppm_1": [120.0, 110.5, 128.0],
                          "ppm_2": [8.0, 9.1, 7.2], "height": [1.0, -0.4, 0.7]})
    widths = np.array([[300.0, 150.0, 40.0], [500.0, 90.0, 80.0], [250.0, 200.0, 60.0]])
    data = synthetic.render(peaks, axes, linewidths_hz=widths, noise_sd=0.0, rng=None)
    expected = np.zeros((9, 7, 11))
    for p in range(3):
        for i in range(9):
            for j in range(7):
                for k in range(11):
                    value = peaks["height"][p]
                    for d, idx in enumerate((i, j, k)):
                        c = (axes[d].ppm_first - peaks[f"ppm_{d}"][p]) / axes[d].ppm_per_point
                        w = widths[p, d] / (axes[d].sw_hz / axes[d].size)
                        value /= 1 + (2 * (idx - c) / w) ** 2
                    expected[i, j, k] += value
    np.testing.assert_allclose(data, expected, rtol=1e-5, atol=1e-7)


def test_hncacb_cb_peaks_are_negative():
    spectrum = synthetic.render_spectrum(hand_table(), "hncacb", 800.0, sizes=(120, 64, 256),
                                         rng=np.random.default_rng(3), noise_sd=0.0)
    a13c, a15n, a1h = spectrum.axes
    at = lambda c, n, h: spectrum.data[int(round(float(a13c.ppm_to_index(c)))),
                                        int(round(float(a15n.ppm_to_index(n)))),
                                        int(round(float(a1h.ppm_to_index(h))))]
    assert at(19.0, 123.0, 8.10) < 0  # Cb(i) of Ala 5
    assert at(39.0, 123.0, 8.10) < 0  # Cb(i-1) of Ala 5 (Asn 4)
    assert at(52.5, 123.0, 8.10) > 0  # Ca(i)
    assert spectrum.meta["n_peaks"] == 17 and spectrum.meta["protein"] == "bmrb99999"


def _fit_fwhm_ppm(line, axis):
    x = np.arange(axis.size, dtype=float)
    (_, _, fwhm), _ = curve_fit(_lorentz, x, line.astype(float), p0=(line.max(), x[line.argmax()], 3.0))
    return fwhm * axis.ppm_per_point


def test_low_field_pair_broader_by_expected_ratio_and_lower_snr():
    table = hand_table(extra_unassigned=179)
    table = table[table["seq_id"].isin([5]) | (table["seq_id"] >= 100)]  # 180 residues (19.8 kDa), one amide: Ala 5
    high, low = synthetic.render_pair(table, "hsqc_15n", 900.0, 450.0, rng=np.random.default_rng(4),
                                      sizes=(512, 2048), noise_sd=0.0, domain="frequency")
    assert high.meta["n_peaks"] == low.meta["n_peaks"] == 1
    for a_hi, a_lo in zip(high.axes, low.axes):
        np.testing.assert_allclose(a_hi.ppm_scale(), a_lo.ppm_scale())
    mass_scale = 180 * 0.110 / 20.0
    # LW(B) = (dipolar + CSA_900 (B/900)^2) * M/20kDa + 1/t_max; 15N t_max 64 ms, 1H 100 ms
    lw = {("15N", 900): (3.657 + 2.243) * mass_scale + 1000 / 64,
          ("15N", 450): (3.657 + 2.243 / 4) * mass_scale + 1000 / 64,
          ("1H", 900): (17 + 3) * mass_scale + 10.0, ("1H", 450): (17 + 3 / 4) * mass_scale + 10.0}
    i_hi, j_hi = np.unravel_index(np.argmax(high.data), high.shape)
    i_lo, j_lo = np.unravel_index(np.argmax(low.data), low.shape)
    widths = {}
    for name, spec, i, j in (("hi", high, i_hi, j_hi), ("lo", low, i_lo, j_lo)):
        widths[name] = (_fit_fwhm_ppm(spec.data[:, j], spec.axes[0]), _fit_fwhm_ppm(spec.data[i, :], spec.axes[1]))
    for d, nucleus in enumerate(("15N", "1H")):
        obs_hi, obs_lo = high.axes[d].obs_mhz, low.axes[d].obs_mhz
        expected_ratio = (lw[(nucleus, 450)] / obs_lo) / (lw[(nucleus, 900)] / obs_hi)
        assert widths["lo"][d] / widths["hi"][d] == pytest.approx(expected_ratio, rel=2e-3)
        assert 1.5 < expected_ratio < 2.0  # broader in ppm, less than the field ratio (CSA part)
    # volume conserved: height falls by the product of the ppm width ratios
    ratio = np.prod([widths["lo"][d] / widths["hi"][d] for d in range(2)])
    assert low.data.max() / high.data.max() == pytest.approx(1 / ratio, rel=0.02)

    noisy_hi, noisy_lo = synthetic.render_pair(table, "hsqc_15n", 900.0, 450.0, rng=np.random.default_rng(5),
                                               sizes=(512, 2048), domain="frequency")
    empty = (slice(None), slice(1700, 2048))  # 1H below 2 ppm: no peak
    sd_hi, sd_lo = noisy_hi.data[empty].std(), noisy_lo.data[empty].std()
    assert sd_hi == pytest.approx(physics.NOISE_SD_900, rel=0.02)
    # volume-kept heights in 2D: noise SD ~ B^(2 - 3/2) (noise_sd_volume_scale) ...
    assert sd_lo / sd_hi == pytest.approx(0.5**0.5, rel=0.03)
    # ... so that the peak-height S/N falls as f^1.5 times the Hz-width ratio (not f^1.5 x f^2)
    hz_ratio = np.prod([lw[(n, 450)] / lw[(n, 900)] for n in ("15N", "1H")])
    snr_ratio = (high.data.max() / sd_hi) / (low.data.max() / sd_lo)
    assert snr_ratio == pytest.approx(2.0**1.5 * hz_ratio, rel=0.04)


def test_time_domain_pair_on_one_grid_with_processed_widths():
    from mssr.data import timedomain

    table = hand_table(extra_unassigned=179)
    table = table[table["seq_id"].isin([5]) | (table["seq_id"] >= 100)]  # one amide, 19.8 kDa
    high, low = synthetic.render_pair(table, "hsqc_15n", 900.0, 600.0, rng=np.random.default_rng(4),
                                      sizes=(512, 2048), noise_sd=0.0)
    assert high.meta["domain"] == low.meta["domain"] == "time" and high.meta["source"] == "timedomain"
    assert high.meta["n_peaks"] == 1 and (high.meta["pair"], low.meta["pair"]) == ("high", "low")
    for a_hi, a_lo in zip(high.axes, low.axes):
        np.testing.assert_allclose(a_hi.ppm_scale(), a_lo.ppm_scale())
    assert low.field_mhz == pytest.approx(600.0)
    i_hi, j_hi = np.unravel_index(np.argmax(high.data), high.shape)
    assert (i_hi, j_hi) == np.unravel_index(np.argmax(low.data), low.shape)
    mass = 180 * 0.110
    w_hi = timedomain.processed_fwhm_hz("hsqc_15n", 900.0, mass_kda=mass)
    w_lo = timedomain.processed_fwhm_hz("hsqc_15n", 600.0, mass_kda=mass)
    for d, nucleus in enumerate(("15N", "1H")):
        prof_hi = high.data[:, j_hi] if d == 0 else high.data[i_hi]
        prof_lo = low.data[:, j_hi] if d == 0 else low.data[i_hi]
        ratio = timedomain.half_height_width(prof_lo) / timedomain.half_height_width(prof_hi)
        expected = (w_lo[nucleus] / low.axes[d].obs_mhz) / (w_hi[nucleus] / high.axes[d].obs_mhz)
        assert ratio == pytest.approx(expected, rel=0.08)  # ~3 grid points per 15N FWHM at 900 MHz
        assert 1.3 < expected < 1.6  # broader in ppm at low field, about the field ratio (window-limited)
    with pytest.raises(ValueError, match="time-domain"):
        synthetic.render_pair(table, "hnca", 900.0, 600.0, rng=np.random.default_rng(0))


def test_render_is_deterministic_per_seed():
    table = hand_table()
    a = synthetic.render_spectrum(table, "hnca", 700.0, rng=np.random.default_rng(7))
    b = synthetic.render_spectrum(table, "hnca", 700.0, rng=np.random.default_rng(7))
    c = synthetic.render_spectrum(table, "hnca", 700.0, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    assert a.shape == physics.EXPERIMENTS["hnca"].sizes and a.nuclei == ("13C", "15N", "1H")
    assert a.field_mhz == pytest.approx(700.0)


def test_pick_proteins_real_refdb():
    refdb = synthetic.load_refdb()
    ids = synthetic.pick_proteins(4, seed=11, refdb=refdb)
    assert ids == synthetic.pick_proteins(4, seed=11, refdb=refdb)
    assert len(set(ids)) == 4
    for bmrb_id in ids:
        t = synthetic.protein_table(refdb, f"bmrb{bmrb_id}")
        assert 50 <= len(t) <= 200
        expected = (t["aa"] != "P").sum() + (t["aa"] != "G").sum() + 3 * len(t)
        assigned = (t.loc[t["aa"] != "P", "H"].notna().sum() + t.loc[t["aa"] != "G", "CB"].notna().sum()
                    + t[["N", "CA", "C"]].notna().sum().sum())
        assert assigned / expected >= 0.8
    with pytest.raises(ValueError, match="proteins have"):
        synthetic.pick_proteins(5, seed=0, refdb=refdb, min_residues=50, max_residues=51, min_assigned=1.0)


def test_validation_names_the_parameter():
    with pytest.raises(ValueError, match="experiment"):
        synthetic.render_spectrum(hand_table(), "hmqc", 600.0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        synthetic.render_spectrum(hand_table(), "hnca", 600.0, rng=0)
    with pytest.raises(ValueError, match="high_mhz"):
        synthetic.render_pair(hand_table(), "hnca", 400.0, 600.0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="linewidths_hz"):
        synthetic.render(pd.DataFrame({"ppm_0": [1.0], "height": [1.0]}),
                         (Axis.from_ppm_window("1H", 600, 10, 0, 8),), linewidths_hz=(-1.0,), noise_sd=0.0, rng=None)


def test_custom_windows_and_sizes():
    windows = ((119.0, 30.0), (8.25, 5.5))  # amide 1H region only: 11.0 .. 5.5 ppm
    s = synthetic.render_spectrum(hand_table(), "hsqc_15n", 600.0, sizes=(20, 40), windows=windows,
                                  rng=np.random.default_rng(9))
    h = s.axes[1]
    assert h.ppm_first + h.ppm_per_point / 2 == pytest.approx(11.0)
    assert h.ppm_last - h.ppm_per_point / 2 == pytest.approx(5.5)
    assert s.shape == (20, 40) and s.meta["n_peaks"] == 8
    # 8.45 .. 7.95 ppm holds the backbone amides at 8.30, 8.10 and 8.00 ppm (8.50 and 7.90 lie outside)
    narrow = synthetic.render_spectrum(hand_table(), "hsqc_15n", 600.0, windows=((119.0, 30.0), (8.2, 0.5)),
                                       rng=np.random.default_rng(9))
    assert narrow.meta["n_peaks"] == 3


def test_protein_without_amides_renders_noise_only():
    prolines = pd.DataFrame({"seq_id": [1, 2], "aa": ["P", "P"], "H": [NAN, NAN], "N": [NAN, NAN],
                             "CA": [63.0, 62.5], "CB": [32.0, 31.8], "C": [176.8, 177.0]})
    s = synthetic.render_spectrum(prolines, "hnca", 900.0, sizes=(8, 8, 16), rng=np.random.default_rng(0))
    assert s.meta["n_peaks"] == 0
    assert s.data.std() == pytest.approx(physics.NOISE_SD_900, rel=0.1)
    quiet = synthetic.render_spectrum(prolines, "hnca", 900.0, sizes=(8, 8, 16), rng=np.random.default_rng(0),
                                      noise_sd=0.0)
    assert not quiet.data.any()
