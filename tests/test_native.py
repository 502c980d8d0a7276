"""Native-resolution mode: working grid, training patches, tiled sampling, whole-plane enhancement."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from mssr.data import grid
from mssr.data.patches import NETWORK_HEADROOM, PatchConfig, PatchPairs, draw_fields, network_scale, render_patch
from mssr.enhance.native import NativeSampling, enhance_plane
from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.model.tiles import TiledPredictor, blend_window, tile_starts
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis


def _lorentzian(n: int, centre: float, fwhm: float) -> np.ndarray:
    x = np.arange(n, dtype=np.float64)
    return 1.0 / (1.0 + ((x - centre) / (fwhm / 2)) ** 2)


def _fwhm(profile: np.ndarray, *, fine: int = 8) -> float:
    """FWHM in points at absolute half height, read off a band-limited 8x finer copy."""
    up = grid.resample(np.asarray(profile, dtype=np.float64), [fine * len(profile)])
    k = int(np.argmax(up))
    half = up[k] / 2
    right = k + int(np.argmax(up[k:] < half))
    left = k - int(np.argmax(up[k::-1] < half))
    # linear interpolation between the points straddling half height
    x_r = right - 1 + (up[right - 1] - half) / (up[right - 1] - up[right])
    x_l = left + 1 - (up[left + 1] - half) / (up[left + 1] - up[left])
    return float(x_r - x_l) / fine


def _axes(n15: int, n1h: int, *, field: float, hz_15n: float, hz_1h: float) -> tuple[Axis, Axis]:
    """1H-15N axes at ``field`` with the given point spacings in Hz."""
    obs_n = field * GYROMAGNETIC_RATIO_TO_1H["15N"]
    return (Axis("15N", obs_n, hz_15n * n15, 130.0, n15), Axis("1H", field, hz_1h * n1h, 10.5, n1h))


# --------------------------------------------------------------------------------------------
# working grid


def test_working_axis_resolves_the_narrowest_line_with_three_points():
    axes = _axes(256, 546, field=600.0, hz_15n=7.6, hz_1h=5.9)
    work = grid.working_axes(axes, target_mhz=900.0)
    for ax, w in zip(axes, work):
        # same ppm window (outer edges of the first and last points)
        assert_allclose(w.sw_hz / w.obs_mhz, ax.sw_hz / ax.obs_mhz)
        assert_allclose(w.ppm_first + w.ppm_per_point / 2, ax.ppm_first + ax.ppm_per_point / 2)
        # spacing in Hz at the target field
        hz_target = w.ppm_per_point * 900.0 * GYROMAGNETIC_RATIO_TO_1H[w.nucleus]
        assert hz_target <= grid.NARROWEST_FWHM_HZ[w.nucleus] / grid.POINTS_PER_FWHM + 1e-9
        assert hz_target > 0.99 * grid.NARROWEST_FWHM_HZ[w.nucleus] / grid.POINTS_PER_FWHM


@pytest.mark.parametrize("fwhm_pts", [3.0, 4.5])
@pytest.mark.parametrize("size,work", [(300, 700), (1200, 400)])
def test_narrow_lorentzian_round_trip_keeps_width_and_height(fwhm_pts, size, work):
    # a line of >= 3 points per FWHM on the coarser of the two grids
    coarse = min(size, work)
    fwhm_in = fwhm_pts * size / coarse
    y = _lorentzian(size, size * 0.437, fwhm_in)
    on_work = grid.resample(y, [work])
    back = grid.resample(on_work, [size])
    assert abs(back.max() - y.max()) / y.max() < 0.02
    assert abs(_fwhm(back) - _fwhm(y)) / _fwhm(y) < 0.02
    # and on the working grid itself the line has the width it should, in ppm (read off 8x finer)
    assert abs(_fwhm(on_work) * size / work - fwhm_in) / fwhm_in < 0.02


def test_refined_round_trip_is_exact():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 50)).astype(np.float32)
    back = grid.from_working(grid.resample(x, (97, 131)), _axes(40, 50, field=600, hz_15n=5, hz_1h=8))
    assert back.dtype == np.float32
    assert_allclose(back, x, atol=2e-5)


def test_grid_refuses_bad_input():
    with pytest.raises(ValueError, match="shape"):
        grid.resample(np.zeros((4, 4)), (4,))
    with pytest.raises(TypeError, match="floating"):
        grid.resample(np.zeros((4, 4), dtype=int), (4, 4))
    with pytest.raises(ValueError, match="target_mhz"):
        grid.working_axes(_axes(8, 8, field=600, hz_15n=5, hz_1h=5), target_mhz=-1)


# --------------------------------------------------------------------------------------------
# training patches


def _peaks() -> np.ndarray:
    # 15N ppm, 1H ppm, volume
    return np.array([[118.0, 8.20, 1.0], [118.3, 8.23, 0.6], [121.0, 7.90, 0.8]])


def _far_corner(x: np.ndarray, peak, box: int) -> np.ndarray:
    rows = slice(0, box) if peak[0] >= x.shape[0] / 2 else slice(x.shape[0] - box, x.shape[0])
    cols = slice(0, box) if peak[1] >= x.shape[1] / 2 else slice(x.shape[1] - box, x.shape[1])
    return x[rows, cols]


def test_patch_1h_lines_broaden_by_the_factor_in_working_points():
    # 1H lines are fixed in Hz: on a grid fixed in Hz at the target field they are f times wider
    cfg = PatchConfig(size=128, extra_peaks=0.0, on_peak=1.0, apod_1h_hz=(0.0, 0.0), apod_15n_hz=(0.0, 0.0),
                      snr=(1e7, 1e7))
    rng = np.random.default_rng(3)
    for _ in range(4):
        x0, x_lr, factor, _ = render_patch(_peaks()[:1], cfg, rng, raw=True)
        row, col = np.unravel_index(np.argmax(x0), x0.shape)
        if not (20 < col < 108 and 20 < row < 108):
            continue
        assert _fwhm(x_lr[row, :]) / _fwhm(x0[row, :]) == pytest.approx(factor, rel=0.03)
        assert _fwhm(x_lr[:, col]) >= _fwhm(x0[:, col]) * 0.99  # no axis narrows


def test_apodized_1h_lines_stay_fixed_in_hz():
    # the Gaussian (apodization) part is fixed in Hz too: a Voigt 1H line is f times wider in points
    cfg = PatchConfig(size=128, extra_peaks=0.0, on_peak=1.0, apod_1h_hz=(16.0, 16.0), apod_15n_hz=(0.0, 0.0),
                      snr=(1e7, 1e7))
    rng = np.random.default_rng(4)
    checked = 0
    for _ in range(6):
        x0, x_lr, factor, _ = render_patch(_peaks()[:1], cfg, rng, raw=True)
        row, col = np.unravel_index(np.argmax(x0), x0.shape)
        if not (30 < col < 98 and 20 < row < 108) or factor < 1.2:
            continue
        assert _fwhm(x_lr[row, :]) / _fwhm(x0[row, :]) == pytest.approx(factor, rel=0.03)
        checked += 1
    assert checked >= 2


def test_low_field_noise_follows_the_b0_three_halves_rule():
    # Lorentzian lines of equal Hz width on both axes are f wider per axis on the working grid, so
    # the reference height falls by f^2 and sigma_low = sigma_high * f^1.5 / f^2 = sigma_high / sqrt(f)
    cfg = PatchConfig(size=128, extra_peaks=0.0, on_peak=1.0, snr=(100.0, 100.0),
                      apod_1h_hz=(0.0, 0.0), apod_15n_hz=(0.0, 0.0))
    rng = np.random.default_rng(5)
    ratios = []
    for _ in range(6):
        x0, x_lr, factor, _ = render_patch(_peaks()[:1], cfg, rng, raw=True)
        peak = np.unravel_index(np.argmax(x0), x0.shape)
        sd = float(np.std(_far_corner(x_lr, peak, 40)))
        sigma_high = float(np.max(np.abs(x0))) / 100.0
        ratios.append(sd / (sigma_high / math.sqrt(factor)))
    assert np.median(ratios) == pytest.approx(1.0, rel=0.05)


def test_patch_items_depend_on_their_key_only():
    ds = PatchPairs([4032], PatchConfig(size=32), length=8, seed=1, refdb=_refdb())
    a, b = ds[(102, 3, 5)], ds[(102, 3, 5)]
    assert_allclose(a[0], b[0])
    assert_allclose(a[1], b[1])
    assert a[2] == b[2]
    c = ds[(102, 3, 6)]
    assert not np.allclose(a[1], c[1])
    assert a[0].dtype == np.float32 and a[0].shape == (32, 32)


def _refdb():
    import pandas as pd

    rows = []
    for i, (n, h) in enumerate([(118.0, 8.2), (120.5, 7.9), (123.1, 8.6), (110.2, 7.4), (126.0, 9.1)]):
        rows.append({"bmrb_id": 4032, "pdb_id": "1abc", "seq_id": i + 1, "aa": "A", "ss": "C", "H": h, "HA": 4.3,
                     "N": n, "CA": 52.0, "CB": 19.0, "C": 176.0})
    return pd.DataFrame(rows)


def test_network_scale_is_headroom_times_the_strongest_height():
    x = np.array([[0.0, -3.0], [2.0, 1.0]])
    assert network_scale(x) == NETWORK_HEADROOM * 3.0
    with pytest.raises(ValueError, match="all zero"):
        network_scale(np.zeros((3, 3)))


# --------------------------------------------------------------------------------------------
# tiles


def test_tile_starts_cover_the_plane_with_the_overlap():
    starts = tile_starts(1000, 256, 48)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 48 for a, b in zip(starts, starts[1:]))
    assert tile_starts(100, 256, 48) == [0]
    w = blend_window(64, 16)
    assert float(w[32]) == 1.0 and float(w[0]) < 0.01


class _SmoothingPredictor:
    """eps = a 7 x 7 box blur of (x_t - x_lr) with zero padding: wrong near tile edges, like a CNN."""

    def __init__(self):
        self.kernel = torch.ones(1, 1, 7, 7) / 49.0
        self.calls = []

    def __call__(self, x_t, x_lr, t, factors):
        self.calls.append(tuple(x_t.shape))
        return torch.nn.functional.conv2d(x_t - x_lr, self.kernel, padding=3)


def test_a_peak_across_a_tile_boundary_keeps_width_and_height():
    h, w = 150, 300
    peak = np.outer(_lorentzian(h, 70.0, 6.0), _lorentzian(w, 121.0, 5.0)).astype(np.float32)  # near a seam
    x_t = torch.as_tensor(peak)[None, None] * 0.5
    x_lr = torch.as_tensor(peak)[None, None] * 0.2
    t = torch.zeros(1, dtype=torch.int64)
    f = torch.ones(1, dtype=torch.float64) * 1.5
    whole = _SmoothingPredictor()(x_t, x_lr, t, f)[0, 0].numpy()
    tiled_predictor = TiledPredictor(_SmoothingPredictor(), tile=128, overlap=32, batch_size=3)
    tiled = tiled_predictor(x_t, x_lr, t, f)[0, 0].numpy()
    # the seam runs through the peak: tiles start at 0, ~86, 172 along the 1H axis
    assert any(s < 121 < s + 128 for s in tile_starts(w, 128, 32)[1:])
    row, col = np.unravel_index(np.argmax(whole), whole.shape)
    assert abs(tiled.max() - whole.max()) / whole.max() < 0.02
    assert abs(_fwhm(tiled[row]) - _fwhm(whole[row])) / _fwhm(whole[row]) < 0.02
    assert abs(_fwhm(tiled[:, col]) - _fwhm(whole[:, col])) / _fwhm(whole[:, col]) < 0.02


# --------------------------------------------------------------------------------------------
# whole-plane enhancement


class _OracleEnhancer:
    """An 'enhancer' whose predictor returns the true noise for a known map x0 = g(x_lr)."""

    class _Cfg:
        levels = 3

    def __init__(self, diffusion: Diffusion, truth_of, *, anchor: dict | None = None):
        self.diffusion = diffusion
        self.extra = {"native": {"anchor": anchor}}
        self.device = torch.device("cpu")
        self.model_config = self._Cfg()
        self.model_dir = "oracle"
        self.truth_of = truth_of
        abar = torch.as_tensor(np.cumprod(1.0 - diffusion.betas if hasattr(diffusion, "betas") else _betas(diffusion)))
        self.abar = abar
        self.seen = []

    def predictor(self, x_t, x_lr, t, factors):
        self.seen.append(x_lr.clone())
        x0 = self.truth_of(x_lr)
        if self.diffusion.config.prediction == "residual":
            return x0 - x_lr
        a = self.abar[t].to(torch.float32).view(-1, 1, 1, 1)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def _betas(diffusion: Diffusion) -> np.ndarray:
    from mssr.model.diffusion import make_betas

    return make_betas(diffusion.config)


@pytest.mark.parametrize("prediction", ["epsilon", "residual"])
def test_an_oracle_model_makes_enhance_return_the_truth_on_the_input_grid(prediction):
    axes = _axes(60, 90, field=600.0, hz_15n=7.0, hz_1h=6.0)
    rng = np.random.default_rng(0)
    x = (np.outer(_lorentzian(60, 25.3, 4.0), _lorentzian(90, 40.2, 4.0)) + rng.normal(0, 1e-3, (60, 90))) * 1e6
    gain = 1.7  # the oracle's 'high-field' truth: the working-grid input times a gain

    enhancer = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=100, prediction=prediction)),
                               lambda x_lr: gain * x_lr)
    sampling = NativeSampling(sampler="ddpm", steps=20, repeats=3, start_step=None, tile=64, overlap=16)
    mean, std = enhance_plane(x.astype(np.float32), axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling)
    # truth on the input grid: the working-grid truth brought back
    work, _ = grid.to_working(x, axes, target_mhz=900.0)
    truth = grid.from_working(gain * work, axes)
    assert mean.shape == x.shape and std.shape == x.shape
    assert_allclose(mean, truth, atol=1e-4 * np.abs(truth).max())
    assert np.abs(std).max() < 1e-4 * np.abs(truth).max()


def test_the_network_input_is_the_same_in_training_and_in_enhance():
    # a rendered low-field patch placed on a plane whose working grid is the patch's own grid
    cfg = PatchConfig(size=64, extra_peaks=0.0, on_peak=1.0)
    rng = np.random.default_rng(11)
    x0_raw, x_lr_raw, factor, ratio = render_patch(_peaks(), cfg, rng, raw=True)
    high = 900.0
    low = high / factor
    spacing = (grid.working_spacing_hz("15N"), grid.working_spacing_hz("1H"))
    # axes at the low field whose working grid at `high` has exactly 64 points
    obs_n = low * GYROMAGNETIC_RATIO_TO_1H["15N"]
    sw_n = 64 * spacing[0] / high * low  # Hz at the low field of a window of 64 working points
    axes = (Axis("15N", obs_n, sw_n, 125.0, 64), Axis("1H", low, 64 * spacing[1] / high * low, 9.0, 64))
    assert [a.size for a in grid.working_axes(axes, target_mhz=high)] == [64, 64]
    enhancer = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=50)), lambda x_lr: x_lr)
    enhance_plane(x_lr_raw.astype(np.float32), axes, target_mhz=high, enhancer=enhancer,
                  sampling=NativeSampling(steps=5, repeats=1, start_step=None, tile=64, overlap=0))
    seen = enhancer.seen[0][0, 0].numpy()
    # what training gives the network for the same patch, when it holds the plane's strongest peak
    expected = (x_lr_raw / network_scale(x_lr_raw)).astype(np.float32)
    assert_allclose(seen, expected, rtol=1e-5, atol=1e-7)


def test_an_anchored_model_sees_the_anchor_of_the_plane_in_the_network_unit():
    # the same patch through enhance with an anchored model: the network is given the anchor of
    # the scaled plane, with the widths the plane's own lines give (mssr.model.anchor)
    from mssr.model import anchor

    cfg = PatchConfig(size=128, extra_peaks=0.0, on_peak=1.0, snr=(1e4, 1e4))
    rng = np.random.default_rng(14)  # a draw whose peak is inside the patch
    _, x_lr_raw, factor, _ = render_patch(_peaks()[[0, 2]], cfg, rng, raw=True)
    high = 900.0
    low = high / factor
    spacing = (grid.working_spacing_hz("15N"), grid.working_spacing_hz("1H"))
    axes = (Axis("15N", low * GYROMAGNETIC_RATIO_TO_1H["15N"], 128 * spacing[0] / high * low, 125.0, 128),
            Axis("1H", low, 128 * spacing[1] / high * low, 9.0, 128))
    enhancer = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=50)), lambda x_lr: x_lr,
                               anchor={"balance": 1e-3})
    enhance_plane(x_lr_raw.astype(np.float32), axes, target_mhz=high, enhancer=enhancer,
                  sampling=NativeSampling(steps=5, repeats=1, start_step=None, tile=128, overlap=0))
    scaled = x_lr_raw / network_scale(x_lr_raw)
    expected, _ = anchor.anchor(scaled, factor, balance=1e-3)
    assert_allclose(enhancer.seen[0][0, 0].numpy(), expected.astype(np.float32), rtol=1e-4, atol=1e-6)
    assert not np.allclose(expected, scaled, atol=1e-3 * np.abs(scaled).max())  # it is not the input


@pytest.mark.parametrize("consistency", [True, False])
def test_data_consistency_removes_an_offset_the_network_adds(consistency):
    # an anchored 'network' that returns its anchor plus a constant 0.05 (network unit): the
    # low-level carpet of a model outside its training domain. Projected onto the data at every
    # step (mssr.model.anchor.Consistency), the estimate has no offset left against the anchor.
    from mssr.enhance.native import anchor_plane

    axes = _axes(60, 90, field=600.0, hz_15n=7.0, hz_1h=6.0)
    rng = np.random.default_rng(2)
    x = np.zeros((60, 90))
    for r, c, h in [(20.3, 30.2, 1.0), (41.6, 62.7, 0.7), (30.1, 75.5, 0.5)]:
        x += h * np.outer(_lorentzian(60, r, 6.0), _lorentzian(90, c, 5.0))
    x = (x + rng.normal(0, 1e-4, x.shape)) * 1e5
    enhancer = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=100, prediction="residual")),
                               lambda x_lr: x_lr + 0.05, anchor={"balance": 3e-3})
    sampling = NativeSampling(sampler="ddim", steps=10, repeats=1, start_step=40, tile=64, overlap=16,
                              consistency=consistency)
    mean, _ = enhance_plane(x.astype(np.float32), axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling)
    work, _ = grid.to_working(x, axes, target_mhz=900.0)
    offset = 0.05 * network_scale(work)
    shift = float(np.mean(mean - anchor_plane(x, axes, target_mhz=900.0, balance=3e-3)))
    if consistency:
        assert abs(shift) < 0.01 * offset
    else:
        assert shift == pytest.approx(offset, rel=0.02)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_network_weight_scales_the_correction_of_the_anchor(weight):
    # the same offset 'network', not projected: the estimate is anchor + w x offset, and w = 0 is
    # the anchor itself with zero uncertainty (nothing sampled)
    from mssr.enhance.native import anchor_plane

    axes = _axes(60, 90, field=600.0, hz_15n=7.0, hz_1h=6.0)
    x = np.zeros((60, 90))
    for r, c, h in [(20.3, 30.2, 1.0), (41.6, 62.7, 0.7)]:
        x += h * np.outer(_lorentzian(60, r, 6.0), _lorentzian(90, c, 5.0))
    x = (x + np.random.default_rng(3).normal(0, 1e-4, x.shape)) * 1e5
    enhancer = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=100, prediction="residual")),
                               lambda x_lr: x_lr + 0.05, anchor={"balance": 3e-3})
    sampling = NativeSampling(sampler="ddim", steps=10, repeats=2, start_step=40, tile=64, overlap=16,
                              consistency=False, network_weight=weight)
    info = {}
    mean, std = enhance_plane(x.astype(np.float32), axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling,
                              info=info)
    work, _ = grid.to_working(x, axes, target_mhz=900.0)
    offset = 0.05 * network_scale(work)
    alone = anchor_plane(x, axes, target_mhz=900.0)
    assert info["network_weight"] == weight
    assert_allclose(info["anchor"], alone, rtol=0, atol=1e-6 * np.abs(alone).max())
    if weight == 0.0:
        assert len(enhancer.seen) == 0 and np.all(std == 0)
        assert_allclose(mean, alone, rtol=0, atol=1e-6 * np.abs(alone).max())
    else:
        assert float(np.mean(mean - alone)) == pytest.approx(weight * offset, rel=0.02)


def _offset_plane(seed: int = 3):
    axes = _axes(60, 90, field=600.0, hz_15n=7.0, hz_1h=6.0)
    x = np.zeros((60, 90))
    for r, c, h in [(20.3, 30.2, 1.0), (41.6, 62.7, 0.7)]:
        x += h * np.outer(_lorentzian(60, r, 6.0), _lorentzian(90, c, 5.0))
    return (x + np.random.default_rng(seed).normal(0, 1e-4, x.shape)) * 1e5, axes


def test_given_kernel_widths_replace_the_estimate(monkeypatch):
    # widths estimated once (anchor_widths) and given back give what enhance_plane estimates
    # itself, without estimating again; other widths give the anchor of those widths
    from mssr.enhance.native import anchor_balance, anchor_plane, anchor_widths
    from mssr.model import anchor

    x, axes = _offset_plane()
    x = x.astype(np.float32)
    enhancer = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=100, prediction="residual")),
                               lambda x_lr: x_lr + 0.05, anchor={"balance": 3e-3})
    sampling = NativeSampling(sampler="ddim", steps=10, repeats=1, start_step=40, tile=64, overlap=16,
                              consistency=False, network_weight=0.3)
    info = {}
    mean, _ = enhance_plane(x, axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling, info=info)
    widths = anchor_widths(x, axes, target_mhz=900.0)
    assert list(widths) == info["anchor_fwhm_px"]
    assert 0.5 < widths[1] < 20  # a 1.5x field gap on 5-point lines: a kernel of a few points

    def refuse(*args, **kwargs):
        raise AssertionError("the kernel was estimated again")

    monkeypatch.setattr(anchor, "added_widths_px", refuse)
    again, _ = enhance_plane(x, axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling, added_fwhm_px=widths)
    assert_allclose(again, mean, rtol=0, atol=1e-6 * np.abs(mean).max())
    assert_allclose(anchor_plane(x, axes, target_mhz=900.0, added_fwhm_px=widths), info["anchor"],
                    rtol=0, atol=1e-6 * np.abs(mean).max())
    # the balance chosen once and given back: the same estimate, nothing chosen again
    balance = anchor_balance(x, axes, target_mhz=900.0, added_fwhm_px=widths)
    assert balance == info["anchor_balance"]
    monkeypatch.setattr(anchor, "estimate_balance", refuse)
    given, _ = enhance_plane(x, axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling, added_fwhm_px=widths,
                             anchor_balance=balance)
    assert_allclose(given, mean, rtol=0, atol=1e-6 * np.abs(mean).max())
    assert_allclose(anchor_plane(x, axes, target_mhz=900.0, added_fwhm_px=widths, balance=balance), info["anchor"],
                    rtol=0, atol=1e-6 * np.abs(mean).max())
    heavier, _ = enhance_plane(x, axes, target_mhz=900.0, enhancer=enhancer, sampling=sampling,
                               added_fwhm_px=widths, anchor_balance=30 * balance)
    assert np.abs(heavier - mean).max() > 1e-3 * np.abs(mean).max()  # the given balance is the one used
    with pytest.raises(ValueError, match="balance"):
        anchor_plane(x, axes, target_mhz=900.0, added_fwhm_px=widths, balance=float("nan"))
    wider = anchor_plane(x, axes, target_mhz=900.0, balance=3e-3, added_fwhm_px=(2 * widths[0], 2 * widths[1]))
    narrower = anchor_plane(x, axes, target_mhz=900.0, balance=3e-3, added_fwhm_px=widths)
    assert wider.max() > 1.1 * narrower.max()  # a wider kernel sharpens (and raises) the peaks more
    with pytest.raises(ValueError, match="added_fwhm_px"):
        anchor_plane(x, axes, target_mhz=900.0, added_fwhm_px=(1.0, float("nan")))



def test_network_weight_points_interpolate_in_log_factor():
    from mssr.enhance.native import network_weight_at

    points = [[1.5, 0.0], [3.0, 1.0]]
    assert network_weight_at(points, 1.2) == 0.0 and network_weight_at(points, 1.5) == 0.0
    assert network_weight_at(points, 4.5 ** 0.5) == pytest.approx(0.5)  # geometric mean of 1.5 and 3
    assert network_weight_at(points, 3.0) == 1.0 and network_weight_at(points, 4.0) == 1.0
    # interpolated weights are rounded to the calibration's step: a hair above 1.5 is 0, not 1e-4
    assert network_weight_at(points, 1.5001) == 0.0 and network_weight_at(points, 2.0) == pytest.approx(0.4)
    assert network_weight_at(0.3, 2.7) == 0.3
    sampling = NativeSampling.from_dict({"network_weight": points})
    assert sampling.network_weight == ((1.5, 0.0), (3.0, 1.0))
    for bad, named in [(1.5, "in \\[0, 1\\]"), ([[0.9, 0.5]], "factor must be a number > 1"),
                       ([[2.0, 0.5], [1.5, 1.0]], "factors must increase"), ([[2.0, 2.0]], "in \\[0, 1\\]"),
                       (True, "number in \\[0, 1\\]"), ([2.0], "pair")]:
        with pytest.raises((TypeError, ValueError), match=named):
            NativeSampling.from_dict({"network_weight": bad})


# --------------------------------------------------------------------------------------------
# the shipped model on a measured spectrum


@pytest.mark.parametrize("low_mhz, wiener_balance", [(600.0, 3e-3), (400.0, 3e-4)])
def test_shipped_model_enhances_a_real_low_field_plane(protein_l_files, low_mhz, wiener_balance):
    """A crop of the measured 800 MHz protein-L HSQC, broadened to 600 and 400 MHz, enhanced by the shipped model.

    Against the truth (README, 'The shipped model'): lower MSE than the input and than Wiener with
    the known kernel (its balance tuned on Ddx4 at that field, README), narrower lines on both axes,
    no hallucinated strong peak, the input's strong peaks kept but at most one. At 600 MHz (f = 1.33)
    the shipped network weight is 0 (network_weight.json): the anchor alone, with no uncertainty
    (measured: 19 of the crop's 19 strong peaks, MSE 0.34x Wiener's); at 400 MHz (f = 2) it is 1, the
    network's estimate (16 of 19 as the input, 0.48x Wiener's).
    """
    from mssr import io as mssr_io
    from mssr.enhance.models import DEFAULT_MODEL_DIR
    from mssr.enhance.native import default_sampling
    from mssr.evaluation import realpairs
    from mssr.model.sample import Enhancer
    from mssr.spectrum import Spectrum

    if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        pytest.fail(f"the shipped model is missing from {DEFAULT_MODEL_DIR}")
    plane = next(iter(mssr_io.iter_planes(protein_l_files["ft2"])))
    # a crowded 15N 125-115 ppm x 1H 9.0-7.8 ppm region, on the plane's own points
    rows = slice(int(plane.axes[0].ppm_to_index(125.0)), int(plane.axes[0].ppm_to_index(115.0)))
    cols = slice(int(plane.axes[1].ppm_to_index(9.0)), int(plane.axes[1].ppm_to_index(7.8)))
    crop_axes = tuple(
        Axis(a.nucleus, a.obs_mhz, a.hz_per_point * (sl.stop - sl.start), float(a.index_to_ppm(sl.start)),
             sl.stop - sl.start)
        for a, sl in zip(plane.axes, (rows, cols))
    )
    truth = Spectrum(np.asarray(plane.data[rows, cols], dtype=np.float64), crop_axes)
    pair = realpairs.make_pair("protein_L", 0, truth, 800.304 / low_mhz, seed=7)
    enhancer = Enhancer(DEFAULT_MODEL_DIR, device="cpu")
    mean, std = enhance_plane(pair.x_lr.data, pair.x_lr.axes, target_mhz=800.304, enhancer=enhancer,
                              sampling=default_sampling(enhancer.extra))
    got, given = realpairs.score(pair, mean), realpairs.score(pair, pair.x_lr.data)
    from mssr.evaluation import realstudy

    wiener = realpairs.score(pair, realstudy.classical_estimate(pair, "wiener", wiener_balance))
    assert got["mse"] < 0.7 * wiener["mse"] and wiener["mse"] < given["mse"]
    assert got["fwhm_1h_hz"] < given["fwhm_1h_hz"] - 1.0 and got["fwhm_15n_hz"] < given["fwhm_15n_hz"] - 1.0
    assert got["hallucinated"] == 0.0
    assert got["found"] >= given["found"] - 1
    if low_mhz == 600.0:
        assert np.all(std == 0)  # the anchor alone: nothing sampled
    else:
        assert np.all(std >= 0) and std.max() > 0


def test_the_real_study_estimates_each_pairs_kernel_once(monkeypatch):
    # the anchor, MSSR and a baseline all start from the plane's kernel: one estimate per pair
    # (a crowded plane's fits take about a minute each), the same anchor as estimated alone
    from mssr.enhance import native
    from mssr.evaluation import realpairs, realstudy
    from mssr.model import anchor
    from mssr.spectrum import Spectrum

    pairs = []
    for k, protein in enumerate(("A", "B")):
        x, axes = _offset_plane(seed=10 + k)
        truth = Spectrum(x, tuple(a.at_field(900.0) for a in axes))
        pairs.append(realpairs.make_pair(protein, 0, truth, 1.5, seed=k))
    expected = [native.anchor_plane(p.x_lr.data, p.x_lr.axes, target_mhz=900.0) for p in pairs]
    calls, balances = [], []
    estimate, choose = anchor.added_widths_px, anchor.estimate_balance

    def counted(*args, **kwargs):
        calls.append(1)
        return estimate(*args, **kwargs)

    def counted_balance(*args, **kwargs):
        balances.append(1)
        return choose(*args, **kwargs)

    monkeypatch.setattr(anchor, "added_widths_px", counted)
    monkeypatch.setattr(anchor, "estimate_balance", counted_balance)
    model = _OracleEnhancer(Diffusion(DiffusionConfig(timesteps=100, prediction="residual")),
                            lambda x_lr: x_lr, anchor={"balance": 3e-3})
    settings = {"sampler": "ddim", "steps": 4, "repeats": 1, "start_step": 40, "tile": 64, "overlap": 16,
                "network_weight": 0.5}
    model.extra["native"]["sample"] = settings  # what the baseline samples with
    sampling = NativeSampling.from_dict(settings)
    keep = {}
    table = realstudy.run(pairs, enhancer=model, sampling=sampling, methods=("anchor", "mssr", "baseline"),
                          baselines={1.5: model}, keep=keep)
    assert len(calls) == len(pairs)
    assert len(balances) == len(pairs)  # the anchor's balance too: once per pair, not once per method
    assert len(table) == 3 * len(pairs)
    for pair, alone in zip(pairs, expected):
        assert_allclose(keep[(pair.protein, 0, 1.5, "anchor")], alone, rtol=0, atol=1e-6 * np.abs(alone).max())


def test_the_real_study_makes_each_classical_estimate_once(monkeypatch):
    # protein A's plane tunes B's parameters and B's tunes A's: the estimates tuning makes include
    # the ones each is scored with; made once, the rows are those of estimating again
    from mssr.evaluation import realpairs, realstudy
    from mssr.spectrum import Spectrum

    pairs = []
    for k, protein in enumerate(("A", "B")):
        axes = _axes(200, 240, field=900.0, hz_15n=7.0, hz_1h=6.0)
        x = np.zeros((200, 240))
        for r, c, h in [(50.3 + 9 * k, 60.2, 1.0), (141.6, 162.7 - 7 * k, 0.7), (90.0, 120.5, 0.5)]:
            x += h * np.outer(_lorentzian(200, r, 4.0), _lorentzian(240, c, 3.0))
        x = (x + np.random.default_rng(20 + k).normal(0, 1e-3, x.shape)) * 1e5
        pairs.append(realpairs.make_pair(protein, 0, Spectrum(x, axes), 1.5, seed=k))
    made = []
    estimate = realstudy.classical_estimate

    def counted(pair, method, value):
        made.append((pair.protein, method, value))
        return estimate(pair, method, value)

    monkeypatch.setattr(realstudy, "classical_estimate", counted)
    table = realstudy.run(pairs, methods=("identity", "wiener", "lorentz_gauss"))
    grids = realstudy.CLASSICAL_GRIDS
    assert len(made) == len(set(made)) == 2 * (1 + len(grids["wiener"]) + len(grids["lorentz_gauss"]))  # was 2 x 13
    for row in table.itertuples():
        pair = pairs[0] if row.protein == "A" else pairs[1]
        again = realpairs.score(pair, estimate(pair, row.method, row.param))
        assert row.mse == again["mse"] and row.found == again["found"]
        if row.method != "identity":  # tuned on the other protein
            other = pairs[1] if row.protein == "A" else pairs[0]
            assert row.param == realstudy.tune(row.method, [other])[0]


def test_the_real_pairs_mse_is_the_scores_and_the_closed_form():
    # an estimate off by a constant c: MSE = c^2 / max|truth|^2, what score() reports too
    from mssr.evaluation import realpairs
    from mssr.spectrum import Spectrum

    x, axes = _offset_plane(seed=3)
    pair = realpairs.make_pair("A", 0, Spectrum(x, tuple(a.at_field(900.0) for a in axes)), 1.5, seed=0)
    truth = np.asarray(pair.truth.data, dtype=np.float64)
    c = 0.01 * np.abs(truth).max()
    assert realpairs.mse(pair, truth + c) == pytest.approx(1e-4, rel=1e-9)
    assert realpairs.score(pair, truth + c)["mse"] == realpairs.mse(pair, truth + c)
    with pytest.raises(ValueError, match="shape"):
        realpairs.mse(pair, truth[:-1])


def test_native_sampling_settings_refuse_bad_values_by_name():
    assert NativeSampling.from_dict({"consistency": False}).consistency is False
    assert NativeSampling().consistency is True  # the product's default
    with pytest.raises(TypeError, match="consistency"):
        NativeSampling.from_dict({"consistency": "yes"})
    with pytest.raises(ValueError, match="unknown key.*projection"):
        NativeSampling.from_dict({"projection": True})
    with pytest.raises(ValueError, match="repeats"):
        NativeSampling.from_dict({"repeats": 0})


def test_a_single_factor_patch_config_draws_that_factor_only():
    # a native baseline: every pair at f = 2.25, the target field uniform over what allows an input >= 300 MHz
    cfg = PatchConfig.from_dict({"factor": 2.25, "high_mhz": [600, 1200], "low_min_mhz": 300})
    rng = np.random.default_rng(0)
    fields = np.array([draw_fields(rng, cfg) for _ in range(400)])
    np.testing.assert_allclose(fields[:, 0] / fields[:, 1], 2.25, rtol=1e-12)
    assert fields[:, 0].min() >= 675.0 and fields[:, 0].max() <= 1200.0  # 2.25 x 300 MHz = 675 MHz
    assert fields[:, 0].min() < 700.0 and fields[:, 0].max() > 1170.0
    _, x_lr, factor, _ = render_patch(_peaks(), PatchConfig(size=32, factor=1.5), np.random.default_rng(1), raw=True)
    assert factor == pytest.approx(1.5, rel=1e-12)
    # without it the factor is drawn
    drawn = np.array([np.divide(*draw_fields(rng, PatchConfig())) for _ in range(200)])
    assert drawn.min() < 1.1 and drawn.max() > 3.0


@pytest.mark.parametrize("factor, named", [(1.0, "patches.factor"), (4.5, "patches.factor"), (True, "patches.factor"),
                                           (3.9, "no target field")])
def test_a_bad_single_factor_is_refused_by_name(factor, named):
    with pytest.raises(ValueError, match=named):
        PatchConfig.from_dict({"factor": factor, "high_mhz": [600, 1000], "low_min_mhz": 300, "max_factor": 4.0})
