"""Tests of mssr.figures.plots: contour levels, NMR axis orientation, ppm mapping, PNG output."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from numpy.testing import assert_allclose
from PIL import Image
from scipy import stats

from mssr.evaluation import tables
from mssr.figures import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PPM_X = (10.5, 6.0)  # 1H, centres of the first and last column
PPM_Y = (134.0, 104.0)  # 15N, centres of the first and last row


def _spectrum(shape=(16, 24), *, peaks=((3, 10, 1.0),), noise=0.01, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    x = noise * rng.standard_normal(shape)
    for row, col, height in peaks:
        x += height * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * 1.2**2))
    return x.astype(dtype)


def _contour_sets(ax, gid):
    return [c for c in ax.collections if c.get_gid() == gid]


def _assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


# -- contour levels --------------------------------------------------------------------------------


def test_contour_levels_geometric_from_robust_noise():
    x = _spectrum((64, 64), peaks=((20, 30, 1.0), (40, 10, -0.6)), noise=0.05, seed=1, dtype=np.float64)
    levels = plots.contour_levels(x, n_levels=10, factor=1.3, start_sd=5.0)
    noise_sd = stats.median_abs_deviation(x, axis=None, scale="normal")
    assert levels.shape == (10,)
    assert_allclose(levels[0], 5.0 * noise_sd, rtol=1e-9)
    assert_allclose(levels[1:] / levels[:-1], 1.3, rtol=1e-9)
    # The robust estimate is close to the true noise SD despite the peaks, so the first level
    # sits well above the noise.
    assert_allclose(noise_sd, 0.05, rtol=0.1)
    assert levels[0] > 4 * 0.05


def test_contour_levels_dtype_and_noise_free_fallback():
    x = _spectrum(noise=0.02, seed=2, dtype=np.float32)
    assert plots.contour_levels(x).dtype == np.float32
    flat = np.zeros((8, 8))
    flat[4, 4] = 2.0
    levels = plots.contour_levels(flat, n_levels=5, factor=1.25)
    assert_allclose(levels[-1], 2.0 / 1.25, rtol=1e-12)
    assert_allclose(levels[1:] / levels[:-1], 1.25)


def test_contour_levels_rejects_bad_input():
    with pytest.raises(ValueError, match="zero everywhere"):
        plots.contour_levels(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="factor"):
        plots.contour_levels(_spectrum(), factor=1.0)
    with pytest.raises(TypeError, match="x"):
        plots.contour_levels([[1.0, 2.0]])


# -- Fig. 3 ----------------------------------------------------------------------------------------


def test_spectra_axes_follow_nmr_convention():
    x = _spectrum()
    fig = plots._figure_spectra([("original", x), ("low field", 0.5 * x)], ppm_x=PPM_X, ppm_y=PPM_Y)
    axes = fig.axes
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xlim() == PPM_X
        assert ax.get_xlim()[0] > ax.get_xlim()[1]
        assert ax.get_ylim() == PPM_Y
        assert ax.get_ylim()[0] > ax.get_ylim()[1]
        assert ax.get_xlabel() == "$^{1}$H (ppm)"
    assert axes[0].get_ylabel() == "$^{15}$N (ppm)"
    assert [ax.get_title() for ax in axes] == ["original", "low field"]


def test_spectra_peak_drawn_at_its_pixel_ppm():
    row, col = 3, 10
    x = _spectrum((16, 24), peaks=((row, col, 1.0),), noise=0.01)
    fig = plots._figure_spectra([("original", x)], ppm_x=PPM_X, ppm_y=PPM_Y)
    (positive,) = _contour_sets(fig.axes[0], "positive")
    innermost = positive.get_paths()[-1].vertices
    # Pixel centre j of W sits at hi - j * (hi - lo) / (W - 1).
    expected_x = 10.5 - col * (10.5 - 6.0) / 23
    expected_y = 134.0 - row * (134.0 - 104.0) / 15
    assert_allclose(innermost[:, 0].mean(), expected_x, atol=0.25 * 4.5 / 23)
    assert_allclose(innermost[:, 1].mean(), expected_y, atol=0.25 * 30.0 / 15)


def test_spectra_negative_contours_have_their_own_colour():
    x = _spectrum((20, 20), peaks=((5, 5, 1.0), (14, 12, -0.8)), noise=0.01)
    levels = plots.contour_levels(x)
    fig = plots._figure_spectra([("original", x)], ppm_x=PPM_X, ppm_y=PPM_Y)
    ax = fig.axes[0]
    (positive,) = _contour_sets(ax, "positive")
    (negative,) = _contour_sets(ax, "negative")
    assert np.all(positive.levels > 0) and np.all(negative.levels < 0)
    assert np.all(positive.levels >= levels[0] - 1e-7)
    assert_allclose(np.sort(-negative.levels), levels[levels < 0.8], rtol=1e-6)
    assert_allclose(positive.get_edgecolor()[0], to_rgba(plots.POSITIVE_COLOR))
    assert_allclose(negative.get_edgecolor()[0], to_rgba(plots.NEGATIVE_COLOR))
    assert not np.allclose(positive.get_edgecolor()[0], negative.get_edgecolor()[0])


def test_spectra_share_the_reference_levels():
    x = _spectrum(noise=0.02)
    clean = _spectrum(noise=1e-4)
    fig = plots._figure_spectra([("original", x), ("prediction", clean)], ppm_x=PPM_X, ppm_y=PPM_Y)
    first = _contour_sets(fig.axes[0], "positive")[0].levels
    second = _contour_sets(fig.axes[1], "positive")[0].levels
    # The clean panel's own noise would give far lower levels; it is drawn with the reference's.
    assert second.min() >= first.min() - 1e-7


def test_plot_spectra_writes_png(tmp_path):
    x = _spectrum()
    out = plots.plot_spectra(
        [("original", x), ("low field", x), ("MSSR", x), ("baseline", x)],
        ppm_x=PPM_X, ppm_y=PPM_Y, out_path=tmp_path / "fig3.png", dpi=40,
    )
    assert out == tmp_path / "fig3.png"
    _assert_png(out, (round((3.0 * 4 + 0.6) * 40), round(3.4 * 40)))


def test_plot_spectra_validates():
    x = _spectrum()
    with pytest.raises(ValueError, match="ppm_x"):
        plots.plot_spectra([("a", x)], ppm_x=(6.0, 10.5), ppm_y=PPM_Y, out_path="unused.png")
    with pytest.raises(ValueError, match="out_path"):
        plots.plot_spectra([("a", x)], ppm_x=PPM_X, ppm_y=PPM_Y, out_path="fig.pdf")
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_spectra([("a", x[0])], ppm_x=PPM_X, ppm_y=PPM_Y, out_path="unused.png")
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_spectra([("a", np.full((4, 4), np.nan))], ppm_x=PPM_X, ppm_y=PPM_Y, out_path="unused.png")


# -- Figs. 4 and 5 ---------------------------------------------------------------------------------


def _summary(seed=0, methods=("wiener", "mssr", "baseline"), factors_=(2.25, 1.125, 1.5)):
    rng = np.random.default_rng(seed)
    rows = [
        {"method": m, "factor": f, "sample": s, **{k: rng.normal() for k in tables.METRICS}}
        for m in methods
        for f in factors_
        for s in range(5)
    ]
    return tables.summarize(pd.DataFrame(rows), n_boot=50)


def test_metrics_vs_factor_lines_and_bands():
    summary = _summary()
    fig = plots.figure_metrics_vs_factor(summary, list(tables.GLOBAL_METRICS))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    for ax, metric in zip(visible, tables.GLOBAL_METRICS):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["mssr", "baseline", "wiener"]
        for line in lines:
            rows = summary[(summary["metric"] == metric) & (summary["method"] == line.get_label())]
            rows = rows.sort_values("factor")
            assert_allclose(line.get_xdata(), [1.125, 1.5, 2.25])
            assert_allclose(line.get_ydata(), rows["mean"])
        assert len(ax.collections) == 3  # one CI band per method
    assert visible[0].get_lines()[0].get_color() == plots.METHOD_COLORS["mssr"]


def test_plot_metrics_vs_factor_writes_png(tmp_path):
    out = plots.plot_metrics_vs_factor(
        _summary(), tables.LOCAL_METRICS, tmp_path / "fig5.png", methods=["mssr"], dpi=20
    )
    # Six metrics: a 2 x 3 grid of 3.6 x 2.9 inch panels plus 0.5 inch for the legend.
    _assert_png(out, (round(3.6 * 3 * 20), round((2.9 * 2 + 0.5) * 20)))


def test_metrics_vs_factor_validates():
    summary = _summary()
    with pytest.raises(ValueError, match="identity"):
        plots.figure_metrics_vs_factor(summary, ["mse"], methods=["identity"])
    with pytest.raises(ValueError, match="psnr"):
        plots.figure_metrics_vs_factor(summary, ["psnr"])
    mixed = pd.concat([summary.assign(testset="blur"), summary.assign(testset="physical")])
    with pytest.raises(ValueError, match="testset"):
        plots.figure_metrics_vs_factor(mixed, ["mse"])


# -- Fig. 6 ----------------------------------------------------------------------------------------


def _sweep(seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"method": "mssr", "steps": steps, "repeats": repeats, "sample": s,
             "mse": 1.0 / steps + 0.01 * rng.random()}
            for steps in (100, 10, 50, 500)
            for repeats in (10, 3, 5)
            for s in range(4)
        ]
    )


def test_steps_sweep_lines_per_repeats(tmp_path):
    df = _sweep()
    fig = plots._figure_steps_sweep(df, metric="mse", n_boot=50)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["3 repeats", "5 repeats", "10 repeats"]
    expected = df.groupby(["repeats", "steps"])["mse"].mean()
    for line, repeats in zip(lines, (3, 5, 10)):
        assert_allclose(line.get_xdata(), [10, 50, 100, 500])
        assert_allclose(line.get_ydata(), expected.loc[repeats].to_numpy())
    assert len(ax.collections) == 3
    assert ax.get_xscale() == "log"
    out = plots.plot_steps_sweep(df, tmp_path / "fig6.png", n_boot=50, dpi=30)
    _assert_png(out, (round(4.8 * 30), round(3.6 * 30)))


def test_steps_sweep_validates():
    df = _sweep()
    with pytest.raises(ValueError, match="ssim"):
        plots._figure_steps_sweep(df, metric="ssim")
    with pytest.raises(ValueError, match="several methods"):
        plots._figure_steps_sweep(pd.concat([df, df.assign(method="baseline")]))


# -- uncertainty -----------------------------------------------------------------------------------


def test_uncertainty_figure_extent_and_orientation(tmp_path):
    truth = _spectrum((12, 20), noise=0.01)
    rng = np.random.default_rng(4)
    std = np.abs(0.02 * rng.standard_normal(truth.shape)).astype(np.float32)
    mean = truth + (std * rng.standard_normal(truth.shape)).astype(np.float32)
    fig = plots._figure_uncertainty(mean, std, truth, ppm_x=PPM_X, ppm_y=PPM_Y)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 2
    half_x = (10.5 - 6.0) / 19 / 2
    half_y = (134.0 - 104.0) / 11 / 2
    for ax in image_axes:
        # Pixel edges: half a pixel beyond the first and last centres; row 0 at the top value.
        assert_allclose(ax.images[0].get_extent(), [10.5 + half_x, 6.0 - half_x, 104.0 - half_y, 134.0 + half_y])
        assert ax.get_xlim()[0] > ax.get_xlim()[1]
        assert ax.get_ylim()[0] > ax.get_ylim()[1]
    assert_allclose(image_axes[1].images[0].get_array(), np.abs(mean.astype(float) - truth))
    out = plots.plot_uncertainty(mean, std, truth, ppm_x=PPM_X, ppm_y=PPM_Y, out_path=tmp_path / "u.png", dpi=20)
    _assert_png(out, (round(14.0 * 20), round(3.5 * 20)))


def test_binned_calibration_of_gaussian_errors():
    rng = np.random.default_rng(5)
    std = rng.uniform(0.01, 0.1, size=20000)
    abs_err = np.abs(std * rng.standard_normal(std.size))
    binned_std, binned_err = plots._binned_calibration(std, abs_err, 8)
    assert binned_std.size == 8
    assert np.all(np.diff(binned_std) > 0)
    # E|N(0, s^2)| = sqrt(2 / pi) * s.
    assert_allclose(binned_err, np.sqrt(2 / np.pi) * binned_std, rtol=0.08)


def test_uncertainty_validates():
    x = _spectrum((8, 8))
    with pytest.raises(ValueError, match="one shape"):
        plots.plot_uncertainty(x, np.abs(x), x[:, :4], ppm_x=PPM_X, ppm_y=PPM_Y, out_path="u.png")
    with pytest.raises(ValueError, match="std"):
        plots.plot_uncertainty(x, -np.abs(x) - 1, x, ppm_x=PPM_X, ppm_y=PPM_Y, out_path="u.png")


# -- loss curves -----------------------------------------------------------------------------------


def test_loss_curves(tmp_path):
    steps = np.arange(50)
    history = pd.concat(
        [
            pd.DataFrame(
                {
                    "step": steps,
                    "loss": scale / (steps + 1),
                    "val_loss": np.where(steps % 10 == 0, 1.1 * scale / (steps + 1), np.nan),
                    "model": model,
                }
            )
            for model, scale in (("mssr", 1.0), ("baseline_2.250", 2.0))
        ]
    )
    fig = plots._figure_loss_curves(history)
    train_ax, val_ax = fig.axes
    assert [line.get_label() for line in train_ax.get_lines()] == ["mssr", "baseline_2.250"]
    assert_allclose(train_ax.get_lines()[1].get_ydata(), 2.0 / (steps + 1))
    assert_allclose(val_ax.get_lines()[0].get_xdata(), [0, 10, 20, 30, 40])
    assert train_ax.get_yscale() == "log"
    out = plots.plot_loss_curves(history, tmp_path / "loss.png", dpi=30)
    _assert_png(out, (round(4.6 * 2 * 30), round(3.6 * 30)))
    with pytest.raises(ValueError, match="step"):
        plots.plot_loss_curves(history.drop(columns="step"), tmp_path / "x.png")


def test_enhanced_figure_levels_start_above_each_panels_own_noise():
    # an estimate with 6x the input's noise (a deconvolution's): at the input's levels its noise would
    # cross the lowest contour all over the plane; its own levels start 5 of its noise SD up
    from mssr.figures.enhance import panel_levels

    x_in = _spectrum((128, 128), peaks=((40, 50, 1.0), (90, 80, 0.6)), noise=0.005, seed=3, dtype=np.float64)
    mean = _spectrum((128, 128), peaks=((40, 50, 2.0), (90, 80, 1.2)), noise=0.03, seed=4, dtype=np.float64)
    levels_in, levels_out, ratio = panel_levels(x_in, mean)
    assert ratio == pytest.approx(6.0, rel=0.1)
    assert levels_out[0] == pytest.approx(5 * 0.03, rel=0.1)
    assert levels_in[0] == pytest.approx(5 * 0.005, rel=0.1)
    noise = mean - _spectrum((128, 128), peaks=((40, 50, 2.0), (90, 80, 1.2)), noise=0.0, seed=4, dtype=np.float64)
    assert np.mean(np.abs(noise) > levels_in[0]) > 0.3      # the input's levels: noise everywhere
    assert np.mean(np.abs(noise) > levels_out[0]) < 1e-4    # its own: none
