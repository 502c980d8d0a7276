"""Tests of the nine metrics against independent computations and hand-built peak cases."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from skimage.metrics import structural_similarity

from mssr.evaluation import metrics
from mssr.evaluation.peaks import Peaks

SHAPE = (48, 48)
# Well separated (> threshold + smoothing) so that peaks never interact.
CENTRES = [(8, 8), (10, 30), (25, 18), (38, 38), (40, 9)]
AMPLITUDES = [1.0, 0.8, 0.9, 0.7, 0.85]


def _blobs(centres, amplitudes, shape=SHAPE, width=1.0):
    rows, cols = np.indices(shape)
    x = np.zeros(shape)
    for (r, c), a in zip(centres, amplitudes):
        x += a * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * width**2))
    return x


def _peak_part(result):
    return {k: result[k] for k in ("hallucination_ratio", "missed_peak_ratio", "peak_shift_diff")}


def _random_pair(seed, shape=(40, 36)):
    rng = np.random.default_rng(seed)
    hr = np.clip(_blobs(rng.integers(2, 34, (10, 2)), rng.uniform(-1, 1, 10), shape) + rng.normal(0, 0.05, shape), -1, 1)
    sr = np.clip(hr + rng.normal(0, 0.1, shape), -1, 1)
    return hr, sr


def test_metric_names_and_default_keys():
    assert metrics.METRIC_NAMES == (
        "mse",
        "r2",
        "hallucination_ratio",
        "missed_peak_ratio",
        "peak_mse",
        "peak_r2",
        "peak_intensity_diff",
        "peak_shift_diff",
        "ssim",
    )
    hr, sr = _random_pair(0)
    result = metrics.compute(hr, sr)
    assert tuple(result) == metrics.METRIC_NAMES
    assert all(isinstance(v, float) for v in result.values())


@pytest.mark.parametrize("seed", range(3))
def test_mse_and_r2_against_numpy(seed):
    hr, sr = _random_pair(seed)
    result = metrics.compute(hr.astype(np.float32), sr.astype(np.float32))
    h, s = hr.astype(np.float32).astype(float).ravel(), sr.astype(np.float32).astype(float).ravel()
    assert result["mse"] == pytest.approx(np.mean((h - s) ** 2), rel=1e-12)
    expected_r2 = 1 - np.sum((h - s) ** 2) / (np.var(h) * h.size)
    assert result["r2"] == pytest.approx(expected_r2, rel=1e-10)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_ssim_matches_skimage(seed, window):
    hr, sr = _random_pair(seed)
    kwargs = {"gaussian_weights": True, "sigma": 1.5} if window == "gaussian" else {}
    expected = structural_similarity(hr, sr, data_range=2.0, **kwargs)
    assert metrics.ssim(hr, sr, window=window) == pytest.approx(expected, abs=1e-6)
    assert metrics.compute(hr, sr, ssim_window=window)["ssim"] == pytest.approx(expected, abs=1e-6)
    # float32 input: this module works in float64, skimage in float32.
    expected32 = structural_similarity(hr.astype(np.float32), sr.astype(np.float32), data_range=2.0, **kwargs)
    assert metrics.ssim(hr.astype(np.float32), sr.astype(np.float32), window=window) == pytest.approx(
        expected32, abs=1e-4
    )


def test_ssim_rejects_too_small_spectra():
    with pytest.raises(ValueError, match="at least 7 x 7"):
        metrics.ssim(np.zeros((6, 20)), np.zeros((6, 20)))


def test_identical_spectra_are_perfect():
    hr = _blobs(CENTRES, AMPLITUDES)
    result = metrics.compute(hr, hr.copy())
    assert result == {
        "mse": 0.0,
        "r2": 1.0,
        "hallucination_ratio": 0.0,
        "missed_peak_ratio": 0.0,
        "peak_mse": 0.0,
        "peak_r2": 1.0,
        "peak_intensity_diff": 0.0,
        "peak_shift_diff": 0.0,
        "ssim": pytest.approx(1.0, abs=1e-12),
    }


@pytest.mark.parametrize("step, distance", [((0, 2), 2.0), ((1, 1), np.sqrt(2)), ((2, -2), np.sqrt(8))])
def test_one_peak_moved_within_threshold(step, distance):
    hr = _blobs([(20, 20)], [0.9])
    sr = _blobs([(20 + step[0], 20 + step[1])], [0.9])
    result = metrics.compute(hr, sr, threshold_px=3.0)
    assert result["peak_shift_diff"] == pytest.approx(distance / 3.0, rel=1e-12)
    assert result["hallucination_ratio"] == result["missed_peak_ratio"] == 0.0
    assert result["peak_mse"] == 0.0 and result["peak_intensity_diff"] == 0.0

    # Among K peaks only one moves: the mean distance is d / K.
    moved = list(CENTRES)
    moved[2] = (CENTRES[2][0] + step[0], CENTRES[2][1] + step[1])
    result = metrics.compute(_blobs(CENTRES, AMPLITUDES), _blobs(moved, AMPLITUDES), threshold_px=3.0)
    assert result["peak_shift_diff"] == pytest.approx(distance / (3.0 * len(CENTRES)), rel=1e-12)


def test_peak_shift_in_ppm_is_opt_in():
    hr = _blobs([(20, 20)], [0.9])
    sr = _blobs([(21, 22)], [0.9])
    assert metrics.PPM_METRIC not in metrics.compute(hr, sr)
    result = metrics.compute(hr, sr, ppm_per_px=(0.1, 0.02))
    assert tuple(result)[:9] == metrics.METRIC_NAMES
    assert result["peak_shift_ppm"] == pytest.approx(np.hypot(0.1 * 1, 0.02 * 2), rel=1e-12)
    assert result["peak_shift_diff"] == pytest.approx(np.sqrt(5) / 3.0)


def test_extra_predicted_peak_is_a_hallucination():
    k = len(CENTRES)
    result = metrics.compute(_blobs(CENTRES, AMPLITUDES), _blobs(CENTRES + [(25, 40)], AMPLITUDES + [0.9]))
    assert result["hallucination_ratio"] == pytest.approx(1 / (k + 1))
    assert result["missed_peak_ratio"] == 0.0
    assert result["peak_shift_diff"] == 0.0


def test_missing_peak_is_missed():
    k = len(CENTRES)
    result = metrics.compute(_blobs(CENTRES, AMPLITUDES), _blobs(CENTRES[1:], AMPLITUDES[1:]))
    assert result["missed_peak_ratio"] == pytest.approx(1 / k)
    assert result["hallucination_ratio"] == 0.0


def test_peak_moved_beyond_threshold_is_missed_and_hallucinated():
    k = len(CENTRES)
    moved = list(CENTRES)
    moved[1] = (CENTRES[1][0] + 4, CENTRES[1][1])
    result = metrics.compute(_blobs(CENTRES, AMPLITUDES), _blobs(moved, AMPLITUDES), threshold_px=3.0)
    assert result["missed_peak_ratio"] == pytest.approx(1 / k)
    assert result["hallucination_ratio"] == pytest.approx(1 / k)
    assert result["peak_shift_diff"] == 0.0
    # A wider tolerance takes the same peak back in.
    result = metrics.compute(_blobs(CENTRES, AMPLITUDES), _blobs(moved, AMPLITUDES), threshold_px=4.0)
    assert result["missed_peak_ratio"] == 0.0
    assert result["peak_shift_diff"] == pytest.approx(4.0 / (4.0 * k))


def test_optimal_matching_not_greedy_in_metrics():
    # Greedy would pair pred (13, 20) with true (15, 20) (2 px) and strand true (10, 20) (8 px
    # from pred (18, 20)); the optimal matching pairs both at exactly the 3 px tolerance.
    hr = _blobs([(10, 20), (15, 20)], [0.9, 0.9])
    sr = _blobs([(13, 20), (18, 20)], [0.9, 0.9])
    result = metrics.compute(hr, sr, threshold_px=3.0)
    assert result["missed_peak_ratio"] == 0.0
    assert result["hallucination_ratio"] == 0.0
    assert result["peak_shift_diff"] == pytest.approx(1.0)


def test_peak_amplitude_metrics_by_hand():
    hr = _blobs(CENTRES, AMPLITUDES)
    changed = list(AMPLITUDES)
    changed[0], changed[3] = 0.6, 0.9
    sr = _blobs(CENTRES, changed)
    result = metrics.compute(hr, sr)
    a_true = hr[tuple(np.array(CENTRES).T)]
    a_pred = sr[tuple(np.array(CENTRES).T)]
    error = a_true - a_pred
    assert_allclose(np.abs(error), [0.4, 0, 0, 0.2, 0], atol=1e-6)
    assert result["peak_mse"] == pytest.approx(np.mean(error**2))
    assert result["peak_intensity_diff"] == pytest.approx(np.mean(np.abs(error)) / 2)
    assert result["peak_r2"] == pytest.approx(1 - np.sum(error**2) / np.sum((a_true - a_true.mean()) ** 2))


def test_no_peaks_anywhere():
    zeros = np.zeros(SHAPE)
    result = metrics.compute(zeros, zeros)
    assert result["hallucination_ratio"] == result["missed_peak_ratio"] == 0.0
    assert (result["peak_mse"], result["peak_r2"], result["peak_intensity_diff"], result["peak_shift_diff"]) == (
        0.0,
        1.0,
        0.0,
        0.0,
    )
    assert result["r2"] == 1.0  # constant hr, exact prediction


def test_no_predicted_peaks_and_no_true_peaks():
    hr = _blobs(CENTRES, AMPLITUDES)
    flat = np.full(SHAPE, 0.1)
    worst = {"peak_mse": 4.0, "peak_r2": -np.inf, "peak_intensity_diff": 1.0, "peak_shift_diff": 1.0}

    result = metrics.compute(hr, flat)
    assert result["missed_peak_ratio"] == 1.0 and result["hallucination_ratio"] == 1.0  # 0/0: worst
    assert {k: result[k] for k in worst} == worst

    result = metrics.compute(flat, hr)
    assert result["hallucination_ratio"] == 1.0 and result["missed_peak_ratio"] == 1.0
    assert {k: result[k] for k in worst} == worst
    assert result["r2"] == 0.0  # constant hr, inexact prediction

    result = metrics.compute(hr, flat, no_match="nan", ppm_per_px=(0.1, 0.02))
    assert all(np.isnan(result[k]) for k in list(worst) + ["peak_shift_ppm"])
    assert result["missed_peak_ratio"] == 1.0
    assert metrics.compute(hr, flat, ppm_per_px=(0.1, 0.02))["peak_shift_ppm"] == pytest.approx(3.0 * 0.1)


def test_single_pair_and_equal_amplitudes_r2():
    one = Peaks(np.array([[5.0, 5.0]]), np.array([0.5]), np.array([1], np.int8))
    same = metrics.peak_metrics(one, one)
    assert same["peak_r2"] == 1.0 and same["peak_mse"] == 0.0
    other = Peaks(np.array([[5.0, 6.0]]), np.array([0.4]), np.array([1], np.int8))
    result = metrics.peak_metrics(one, other)
    assert result["peak_r2"] == 0.0
    assert result["peak_mse"] == pytest.approx(0.01)
    assert result["peak_intensity_diff"] == pytest.approx(0.05)
    assert result["peak_shift_diff"] == pytest.approx(1 / 3)


def test_signs_never_match_across():
    hr = _blobs([(10, 10), (30, 30)], [0.9, -0.9])
    sr = _blobs([(10, 10), (30, 31)], [0.9, 0.9])  # the negative peak came out positive
    result = metrics.compute(hr, sr, sign="both")
    assert result["missed_peak_ratio"] == pytest.approx(0.5)
    assert result["hallucination_ratio"] == pytest.approx(0.5)
    moved = metrics.compute(hr, _blobs([(10, 10), (30, 31)], [0.9, -0.9]), sign="both")
    assert moved["missed_peak_ratio"] == 0.0
    assert moved["peak_shift_diff"] == pytest.approx(1 / 6)


def test_compute_many_equals_looping_compute():
    pairs = [_random_pair(seed) for seed in range(7)]
    hr = np.stack([p[0] for p in pairs]).astype(np.float32)
    sr = np.stack([p[1] for p in pairs]).astype(np.float32)
    sr[4] = hr[4]  # one exact prediction
    hr[5] = 0.2  # one constant truth
    options = {"sigma": 0.8, "window": 5, "alpha": 2.0, "threshold_px": 2.5, "sign": "both"}
    ppm = np.random.default_rng(3).uniform(0.01, 0.2, (7, 2))
    expected = pd.DataFrame(
        [metrics.compute(h, s, ppm_per_px=p, **options) for h, s, p in zip(hr, sr, ppm)]
    )
    for chunk_size, workers in [(3, 1), (2, 2), (64, 1)]:
        table = metrics.compute_many(hr, sr, ppm_per_px=ppm, chunk_size=chunk_size, workers=workers, **options)
        assert list(table.columns) == list(metrics.METRIC_NAMES) + ["peak_shift_ppm"]
        pd.testing.assert_frame_equal(table, expected, check_exact=True)
    plain = metrics.compute_many(hr, sr, **options)
    assert tuple(plain.columns) == metrics.METRIC_NAMES
    assert len(plain) == 7 and not plain.isna().any().any()


def test_compute_many_empty_stack():
    table = metrics.compute_many(np.zeros((0, 16, 16)), np.zeros((0, 16, 16)))
    assert table.shape == (0, 9)


def test_input_validation_names_the_argument():
    hr = np.zeros((16, 16))
    bad = hr.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="sr contains NaN"):
        metrics.compute(hr, bad)
    with pytest.raises(ValueError, match="hr contains NaN"):
        metrics.compute(bad, hr)
    with pytest.raises(ValueError, match="same shape"):
        metrics.compute(hr, np.zeros((16, 15)))
    with pytest.raises(ValueError, match="hr must be 2D"):
        metrics.compute(hr[None], hr[None])
    with pytest.raises(ValueError, match="hr must be 3D"):
        metrics.compute_many(hr, hr)
    with pytest.raises(ValueError, match="ppm_per_px"):
        metrics.compute_many(hr[None], hr[None], ppm_per_px=(0.1, -0.1))
    with pytest.raises(ValueError, match="no_match"):
        metrics.compute(hr, hr, no_match="zero")
    with pytest.raises(ValueError, match="window"):
        metrics.compute(hr, hr, window=2)
    with pytest.raises(TypeError, match="workers"):
        metrics.compute_many(hr[None], hr[None], workers=1.5)


# -- worst-value fills, one test per metric ------------------------------------------------------


def _lorentz_image(centres, amplitudes, fwhm, shape=(48, 64)):
    """Sum of 2D Lorentzian products, FWHM ``fwhm = (axis 0, axis 1)`` px (closed form)."""
    rows, cols = np.arange(shape[0]), np.arange(shape[1])
    x = np.zeros(shape)
    for (r, c), a in zip(centres, amplitudes):
        x += a * np.outer(1 / (1 + 4 * (rows - r) ** 2 / fwhm[0] ** 2), 1 / (1 + 4 * (cols - c) ** 2 / fwhm[1] ** 2))
    return x


@pytest.mark.parametrize("name", sorted(metrics.NO_MATCH_WORST) + ["peak_shift_ppm"])
def test_no_match_fill_is_the_worst_value_of_each_metric(name):
    hr = _blobs(CENTRES, AMPLITUDES)
    far = _blobs([(r + 6, c) for r, c in CENTRES[:3]], AMPLITUDES[:3])  # peaks, none within 3 px
    ppm = (0.1, 0.02)
    fill = metrics.compute(hr, far, ppm_per_px=ppm)[name]
    worst = {**metrics.NO_MATCH_WORST, "peak_shift_ppm": 3.0 * 0.1}[name]
    assert fill == worst
    assert metrics.compute(hr, np.full(SHAPE, 0.1), ppm_per_px=ppm)[name] == worst  # no predicted peak
    # Random predictions that match something never score worse than the fill.
    rng = np.random.default_rng(0)
    lower_is_better = name != "peak_r2"
    for trial in range(20):
        sr = np.clip(hr * rng.uniform(-1, 2) + rng.normal(0, 0.3, SHAPE), -1, 1)
        value = metrics.compute(hr, sr, ppm_per_px=ppm)[name]
        assert (value <= fill) if lower_is_better else (value >= fill)
    if name == "peak_r2":
        # A matched prediction far off in height has a very negative R^2; the old fill 0 beat it.
        bad = metrics.compute(hr, _blobs(CENTRES, [0.1, 0.9, 0.2, 0.95, 0.1]))["peak_r2"]
        assert -np.inf < bad < 0


def test_no_peaks_anywhere_keeps_the_perfect_values():
    zeros = np.zeros(SHAPE)
    result = metrics.compute(zeros, zeros)
    assert {k: result[k] for k in metrics.NO_PEAKS_PERFECT} == metrics.NO_PEAKS_PERFECT


# -- line widths in Hz, resolved pairs, per-peak rows -----------------------------------------------


def test_evaluate_many_linewidths_in_hz_against_known_lorentzians():
    centres = [(10, 12), (30, 40), (20, 52)]
    hr = _lorentz_image(centres, [1.0, 0.8, 0.6], (4.0, 5.0))
    sr = _lorentz_image(centres, [0.9, 0.7, 0.5], (6.0, 7.5))  # 1.5 x wider on both axes
    hz = (12.0, 25.0)  # Hz per px on axis 0 (x, e.g. 15N) and axis 1 (1H)
    spectra, rows = metrics.evaluate_many(hr[None], sr[None], hz_per_px=hz, ppm_per_px=(0.13, 0.028))
    s = spectra.iloc[0]
    assert list(spectra.columns) == list(metrics.EVALUATION_COLUMNS)
    assert_allclose([s["true_fwhm_x_hz"], s["true_fwhm_1h_hz"]], [4.0 * 12, 5.0 * 25], rtol=0.03)
    assert_allclose([s["fwhm_x_hz"], s["fwhm_1h_hz"]], [6.0 * 12, 7.5 * 25], rtol=0.02)
    assert_allclose([s["fwhm_x_ratio"], s["fwhm_1h_ratio"]], 1.5, rtol=0.03)
    assert list(rows.columns) == list(metrics.PEAK_COLUMNS) and len(rows) == 3
    assert_allclose(rows[["true_row", "true_col"]].to_numpy(), sorted(centres))
    assert_allclose(rows["fwhm_1h_hz"], 7.5 * 25, rtol=0.03)  # the other lines' tails add a little
    # The pooling sums reproduce the spectrum's own peak R^2.
    a_t, a_p = rows["true_amplitude"].to_numpy(), rows["pred_amplitude"].to_numpy()
    assert s["n_pairs"] == 3 and s["peak_ss_res"] == pytest.approx(np.square(a_t - a_p).sum())
    assert s["peak_sum_true"] == pytest.approx(a_t.sum()) and s["peak_sumsq_true"] == pytest.approx(np.square(a_t).sum())
    # Without a low-field width there is nothing to call a close pair.
    assert np.isnan(s["resolved_pairs"]) and np.isnan(s["n_close_pairs"])
    # The nine metrics agree with compute_many.
    nine = metrics.compute_many(hr[None], sr[None], ppm_per_px=(0.13, 0.028))
    assert_allclose(spectra[nine.columns].to_numpy(), nine.to_numpy())


def test_evaluate_many_resolved_pairs():
    # Two close pairs, 5 px apart on the 1H axis: resolved at high field (FWHM 3 px), one blend at low
    # field (FWHM 7.5 px, so the pairs are closer than the low-field line width).
    centres = [(12, 20), (12, 25), (34, 30), (34, 35), (24, 55)]
    amplitudes = [1.0, 0.9, 0.8, 0.8, 0.7]
    hr = _lorentz_image(centres, amplitudes, (3.0, 3.0))
    lr = _lorentz_image(centres, amplitudes, (7.5, 7.5))
    half = _lorentz_image(centres[:2] + [(34, 32.5), (24, 55)], [1.0, 0.9, 1.4, 0.7], (3.0, 3.0))
    stack_hr, stack_sr = np.stack([hr, hr, hr]), np.stack([hr, lr, half])
    spectra, _ = metrics.evaluate_many(stack_hr, stack_sr, hz_per_px=(10.0, 10.0), ppm_per_px=(0.1, 0.01),
                                       lowfield_fwhm_px=(7.5, 7.5))
    assert spectra["n_close_pairs"].tolist() == [2.0, 2.0, 2.0]
    assert spectra["resolved_pairs"].tolist() == [1.0, 0.0, 0.5]
    unknown, _ = metrics.evaluate_many(stack_hr, stack_sr, hz_per_px=(10.0, 10.0), ppm_per_px=(0.1, 0.01),
                                       lowfield_fwhm_px=[[7.5, 7.5], [np.nan, np.nan], [7.5, 7.5]])
    assert np.isnan(unknown["resolved_pairs"][1]) and unknown["resolved_pairs"][2] == 0.5
    # The low-field width is the median over the input's peaks: isolated lines outnumber blends.
    isolated = _lorentz_image([(8, 8), (8, 56), (40, 8), (40, 56), (24, 30), (24, 36)], [1.0] * 6, (6.0, 7.5))
    assert_allclose(metrics.median_linewidth_px(isolated[None])[0], [6.0, 7.5], rtol=0.03)


def test_evaluate_many_validates():
    hr = _lorentz_image([(10, 12)], [1.0], (4.0, 5.0))[None]
    with pytest.raises(ValueError, match="hz_per_px"):
        metrics.evaluate_many(hr, hr, hz_per_px=(0.0, 1.0), ppm_per_px=(0.1, 0.1))
    with pytest.raises(ValueError, match="resolve_dip"):
        metrics.evaluate_many(hr, hr, hz_per_px=(1.0, 1.0), ppm_per_px=(0.1, 0.1), resolve_dip=1.5)
    with pytest.raises(TypeError, match="options"):
        metrics.evaluate_many(hr, hr, hz_per_px=(1.0, 1.0), ppm_per_px=(0.1, 0.1), options={"sigma": 1.0})


def test_compute_defaults_are_the_peak_options():
    import inspect

    from mssr.evaluation.peaks import DEFAULT_OPTIONS

    for fn in (metrics.compute, metrics.compute_many):
        params = inspect.signature(fn).parameters
        for name in ("sigma", "window", "alpha", "threshold_px", "sign"):
            assert params[name].default == getattr(DEFAULT_OPTIONS, name)
    assert inspect.signature(metrics.peak_metrics).parameters["threshold_px"].default == DEFAULT_OPTIONS.threshold_px


def test_scoring_options_default_and_sign_per_projection():
    from mssr.evaluation import scoring
    from mssr.evaluation.peaks import DEFAULT_OPTIONS

    options = scoring.metric_options({})
    assert (options["sigma"], options["window"], options["alpha"], options["threshold_px"]) == (
        DEFAULT_OPTIONS.sigma, DEFAULT_OPTIONS.window, DEFAULT_OPTIONS.alpha, DEFAULT_OPTIONS.threshold_px)
    assert options["sign"] == "auto" and options["resolve_dip"] == metrics.DEFAULT_RESOLVE_DIP
    assert scoring.peak_sign({"meta": {"method": "signed_max"}}) == "both"
    assert scoring.peak_sign({"meta": {"method": "max"}}) == "positive"
    assert scoring.peak_sign({"meta": {"method": "signed_max"}}, "positive") == "positive"
    with pytest.raises(ValueError, match="peak_sign"):
        scoring.metric_options({"peak_sign": "negative"})


def test_scoring_scores_negative_peaks_of_signed_projections_and_reports_ppm():
    from mssr.evaluation import scoring

    hr = _lorentz_image([(10, 12), (30, 40)], [1.0, -0.8], (4.0, 4.0))
    sr = _lorentz_image([(10, 12), (30, 41)], [1.0, -0.8], (4.0, 4.0))
    axes = [{"nucleus": "15N", "obs_mhz": 91.2, "sw_hz": 2736.0, "ppm_first": 134.0, "size": 48},
            {"nucleus": "1H", "obs_mhz": 900.0, "sw_hz": 10800.0, "ppm_first": 12.0, "size": 64}]
    headers = [{"axes": axes, "meta": {"protein": "p1", "experiment": "hncacb", "method": method}}
               for method in ("signed_max", "max")]
    spectra, rows = scoring.evaluate(np.stack([hr, hr]), np.stack([sr, sr]), headers, scoring.metric_options({}))
    assert spectra["n_true_peaks"].tolist() == [2.0, 1.0]  # the max projection's negative peak is not scored
    assert spectra["protein"].tolist() == ["p1", "p1"]
    negative = rows[rows["sign"] == -1].iloc[0]
    assert negative["sample"] == 0
    ppm_x, ppm_h = 2736.0 / 91.2 / 48, 10800.0 / 900.0 / 64
    assert negative["true_x_ppm"] == pytest.approx(134.0 - 30 * ppm_x)
    assert negative["pred_1h_ppm"] == pytest.approx(12.0 - 41 * ppm_h)
    assert_allclose(spectra["fwhm_1h_hz"], 4.0 * 10800.0 / 64, rtol=0.035)
