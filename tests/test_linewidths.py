"""Linewidth rules per experiment: the anchor's kernel of a named HSQC/TROSY, the training patches' rule."""

from __future__ import annotations

import numpy as np
import pytest

from mssr.data.linewidths import (EXPERIMENTS, TYPICAL, experiment_of_pulse_program, linewidth_15n_hz,
                                  validate_experiment, width_ratio)
from mssr.data.patches import PatchConfig, render_patch
from mssr.enhance.options import resolve_experiment, validate_experiment_option
from mssr.model import anchor
from test_anchor import PEAKS, _plane


def test_width_ratios_are_the_typical_rules_closed_form():
    # HSQC 15N: d + c (B/900)^2 with d = 7.5, c = 2.25: 8.5 Hz at 600 MHz, 11.5 Hz at 1200 MHz
    assert width_ratio("hsqc", ("15N", "1H"), 600.0, 1200.0) == pytest.approx((8.5 / 11.5, 1.0), rel=1e-12)
    # TROSY 15N: e + d (1 - B/B_opt)^2 with e = 5.5, d = 25, B_opt = 1000: 9.5 Hz at 600, 5.75 Hz at 900
    assert width_ratio("trosy", ("1H", "15N"), 600.0, 900.0) == pytest.approx((1.0, 9.5 / 5.75), rel=1e-12)
    assert width_ratio("fixed", ("15N", "1H"), 400.0, 900.0) == (1.0, 1.0)
    # 13C and 1H lines are field independent in every rule
    assert width_ratio("trosy", ("13C", "1H"), 600.0, 900.0) == (1.0, 1.0)
    # in ppm (r f): HSQC lines narrow 1.48x from 600 to 1200 MHz, TROSY 2.48x from 600 to 900 MHz
    assert width_ratio("hsqc", ("15N",), 600.0, 1200.0)[0] * 2.0 == pytest.approx(1.478, abs=1e-3)
    assert width_ratio("trosy", ("15N",), 600.0, 900.0)[0] * 1.5 == pytest.approx(2.478, abs=1e-3)


def test_linewidth_model_matches_its_formula():
    assert linewidth_15n_hz(900.0, {"experiment": "hsqc", **TYPICAL["hsqc"]}) == pytest.approx(9.75)
    assert linewidth_15n_hz(1000.0, {"experiment": "trosy", **TYPICAL["trosy"]}) == pytest.approx(5.5)


@pytest.mark.parametrize("bad", ["noesy", "", None, 3])
def test_unknown_experiments_are_refused_naming_the_choices(bad):
    with pytest.raises(ValueError, match="fixed, hsqc, trosy"):
        validate_experiment(bad)
    with pytest.raises(ValueError, match="--experiment"):
        validate_experiment_option(bad)


def test_width_ratio_refuses_bad_fields():
    with pytest.raises(ValueError, match="positive"):
        width_ratio("hsqc", ("15N", "1H"), 0.0, 900.0)


@pytest.mark.parametrize("program, rule", [("trosyetf3gpsi", "trosy"), ("hsqcetf3gpsi2", "hsqc"),
                                           ("HSQCFPF3GPPHWG", "hsqc"), ("hsqctrosyf3gpsi", "trosy"),
                                           ("zgpr", None), (None, None)])
def test_pulse_program_names_the_rule(program, rule):
    assert experiment_of_pulse_program(program) == rule


def test_auto_takes_the_pulse_program_else_fixed():
    assert resolve_experiment("auto", {"pulse_program": "trosyetf3gpsi"}) == ("trosy", "pulse program trosyetf3gpsi")
    assert resolve_experiment("auto", {"format": "pipe"})[0] == "fixed"
    assert resolve_experiment("HSQC", {"pulse_program": "trosyetf3gpsi"}) == ("hsqc", "--experiment")  # named wins
    assert set(EXPERIMENTS) == {"fixed", "hsqc", "trosy"}


@pytest.mark.parametrize("rule, factor", [("trosy", 1.5), ("hsqc", 2.0)])
def test_anchor_kernel_of_a_named_experiment_is_the_true_broadening(rule, factor):
    # Lorentzian lines whose 15N width changed in Hz by the rule's ratio r: at the low field the 15N line
    # is r f times its high-field width (points of the high-field grid), the 1H line f times
    r15n = width_ratio(rule, ("15N", "1H"), 900.0 / factor, 900.0)[0]
    high = (6.0, 4.0)
    low = (high[0] * r15n * factor, high[1] * factor)
    x_lr = _plane((256, 224), PEAKS, low) / 8.0
    truth = [low[0] - high[0], low[1] - high[1]]
    named = anchor.added_widths_px(x_lr, factor, ratio=(r15n, 1.0))
    assert named == pytest.approx(truth, rel=0.03)
    fixed = anchor.added_widths_px(x_lr, factor)
    # the fixed-in-Hz rule takes the same low-field line for a wider (HSQC) or narrower (TROSY) high-field one
    assert abs(fixed[0] - truth[0]) > 0.15 * truth[0]
    assert fixed[1] == pytest.approx(truth[1], rel=0.03)


def test_anchor_ratio_is_checked():
    x_lr = _plane((128, 128), PEAKS[:1], (6.0, 6.0))
    with pytest.raises(ValueError, match="ratio"):
        anchor.added_widths_px(x_lr, 1.5, ratio=(0.0, 1.0))


PEAK = np.array([[118.0, 8.2, 1.0], [120.0, 8.0, 0.5]])


@pytest.mark.parametrize("experiment", ["trosy", "hsqc"])
def test_training_anchor_follows_the_patch_experiment(experiment):
    # the same key with the two rules draws the same patch: only the kernel differs, by (r f - 1) / (f - 1)
    base = dict(size=64, anchor=True, trosy_fraction=1.0 if experiment == "trosy" else 0.0)
    kernels = {}
    for rule in ("fixed", "experiment"):
        info: dict = {}
        _, _, factor = render_patch(PEAK, PatchConfig(**base, anchor_rule=rule), np.random.default_rng(5), info=info)
        kernels[rule] = info["added_fwhm_px"]
    rng = np.random.default_rng(5)
    high_mhz = float(rng.uniform(600.0, 1200.0))
    low = high_mhz / factor
    r15n = width_ratio(experiment, ("15N",), low, high_mhz)[0]
    assert kernels["experiment"][0] / kernels["fixed"][0] == pytest.approx(
        max(r15n * factor - 1.0, 0.0) / (factor - 1.0), rel=1e-9)
    assert kernels["experiment"][1] == pytest.approx(kernels["fixed"][1], rel=1e-12)


def test_patch_config_refuses_a_bad_rule_and_ranges():
    with pytest.raises(ValueError, match="anchor_rule"):
        PatchConfig.from_dict({"anchor_rule": "trosy"})
    with pytest.raises(ValueError, match="lw_1h_hz"):
        PatchConfig.from_dict({"lw_1h_hz": [40, 12]})
    with pytest.raises(ValueError, match="noise_corr_px"):
        PatchConfig.from_dict({"noise_corr_px": [-1, 2]})


def _lag1(x: np.ndarray, axis: int) -> float:
    x = x - x.mean()
    a = np.take(x, range(x.shape[axis] - 1), axis=axis)
    b = np.take(x, range(1, x.shape[axis]), axis=axis)
    return float((a * b).mean() / (x * x).mean())


@pytest.mark.parametrize("sd", [0.0, 1.0, 2.0])
def test_correlated_noise_has_the_gaussian_correlation(sd):
    # no peak inside the patch: the low-field patch is the noise alone. Gaussian-smoothed white noise of
    # SD s points has the lag-1 correlation exp(-1 / (4 s^2)) (0 for white noise)
    # (two peaks 70 ppm apart: the patch is drawn anywhere between them, and holds neither)
    far = np.array([[100.0, 0.0, 1.0], [200.0, 70.0, 1.0]])
    cfg = PatchConfig(size=256, on_peak=0.0, extra_peaks=0.0, noise_corr_px=(sd, sd))
    x_hr, x = render_patch(far, cfg, np.random.default_rng(3), raw=True)[:2]
    assert not np.any(x_hr) and np.all(x != 0)
    expected = np.exp(-1.0 / (4 * sd**2)) if sd else 0.0
    for axis in (0, 1):
        assert _lag1(x, axis) == pytest.approx(expected, abs=0.03)
