"""The figure of ``mssr enhance --plot``: the recorded spectrum, its MSSR estimate and the uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mssr.figures import plots
from mssr.spectrum import Spectrum


def _validate_panels(x_in, mean, std, plane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(plane, Spectrum) or plane.ndim != 2:
        raise TypeError(f"plane must be a 2D mssr.spectrum.Spectrum, got {type(plane).__name__}")
    arrays = []
    for name, value in (("x_in", x_in), ("mean", mean), ("std", std)):
        array = np.asarray(value)
        if array.shape != plane.shape:
            raise ValueError(f"{name} must have the plane's shape {plane.shape}, got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN/Inf values")
        arrays.append(array)
    return arrays[0], arrays[1], arrays[2]


def figure_enhanced(x_in, mean, std, plane: Spectrum, *, from_mhz: float, to_mhz: float):
    """Three panels on the plane's ppm axes: input and estimate as contours, the std as an image.

    Parameters
    ----------
    x_in, mean, std : ndarray
        The recorded plane, the estimate and its per-point standard deviation, each of the
        plane's shape (indirect, direct), input intensity units.
    plane : Spectrum
        Gives the ppm limits and nuclei (direct axis last).
    from_mhz, to_mhz : float
        1H fields of the input and of the estimate, MHz (panel titles).

    Returns
    -------
    matplotlib.figure.Figure
        NMR orientation (ppm falling to the right and downwards); each contour panel's levels
        start 5 noise SD above its own zero (:func:`panel_levels`), as a spectroscopist sets the
        base level of each spectrum, and the estimate's title says how much noisier it is than the
        input (a deconvolution amplifies the noise: at the input's levels the estimate's noise
        would cover the plane).
    """
    from matplotlib.figure import Figure

    x_in, mean, std = _validate_panels(x_in, mean, std, plane)
    ppm_y, ppm_x = plane.axes[0].ppm_limits, plane.axes[1].ppm_limits
    nuclei = plane.nuclei
    levels_in, levels_out, ratio = panel_levels(x_in, mean)
    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    ax_in, ax_out, ax_std = fig.subplots(1, 3, sharex=True, sharey=True)
    panels = ((ax_in, x_in, levels_in, f"input, {from_mhz:g} MHz"),
              (ax_out, mean, levels_out, f"MSSR estimate, {to_mhz:g} MHz\n(noise {ratio:.1f}x the input's)"))
    for ax, data, levels, title in panels:
        plots.draw_contours(ax, data, levels, ppm_x, ppm_y)
        plots.set_nmr_axes(ax, ppm_x, ppm_y, nuclei, label_y=ax is ax_in)
        ax.set_title(title)
    x_edges = plots.ppm_edges(ppm_x, std.shape[1])
    y_edges = plots.ppm_edges(ppm_y, std.shape[0])
    image = ax_std.imshow(np.asarray(std, dtype=float), origin="upper", aspect="auto", cmap="magma", vmin=0.0,
                          extent=(x_edges[0], x_edges[1], y_edges[1], y_edges[0]), interpolation="nearest")
    plots.set_nmr_axes(ax_std, ppm_x, ppm_y, nuclei, label_y=False)
    ax_std.set_title("uncertainty (std of repeats)")
    fig.colorbar(image, ax=ax_std, shrink=0.85, label="intensity (input units)")
    return fig


def panel_levels(x_in, mean) -> tuple[np.ndarray, np.ndarray, float]:
    """Contour levels of the input and of the estimate panels, each from its own noise.

    Parameters
    ----------
    x_in, mean : ndarray
        The recorded plane and the estimate, input intensity units.

    Returns
    -------
    levels_in, levels_out : ndarray
        :func:`mssr.figures.plots.contour_levels` of each (lowest level 5 robust noise SD).
    noise_ratio : float
        Robust noise SD of the estimate over the input's (nan where the input has none).
    """
    from mssr.spectrum import robust_noise_sd

    sd_in, sd_out = robust_noise_sd(x_in), robust_noise_sd(mean)
    ratio = sd_out / sd_in if sd_in > 0 else float("nan")
    return plots.contour_levels(np.asarray(x_in)), plots.contour_levels(np.asarray(mean)), float(ratio)


def plot_enhanced(x_in, mean, std, plane: Spectrum, out_path, *, from_mhz: float, to_mhz: float,
                  dpi: int = 150) -> Path:
    """Draw :func:`figure_enhanced` and write it as a PNG (atomically, :func:`mssr.figures.plots.save_figure`).

    Returns
    -------
    Path
        ``out_path``.
    """
    fig = figure_enhanced(x_in, mean, std, plane, from_mhz=from_mhz, to_mhz=to_mhz)
    return plots.save_figure(fig, out_path, dpi)
