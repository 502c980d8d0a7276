"""Contour plots of a real pair: the low-field input, estimates, and the measured high-field truth."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mssr.figures.plots import contour_levels, draw_contours, save_figure, set_nmr_axes  # noqa: E402


def plot_real_pair(panels: Sequence[tuple[str, np.ndarray]], axes, out_path, *, window_ppm=None,
                   title: str | None = None):
    """One contour panel per (title, spectrum), the same levels for all, NMR orientation.

    Parameters
    ----------
    panels : sequence of (str, ndarray)
        Title and spectrum (on ``axes``' points, one intensity unit) of each panel; the levels
        are those of the last panel (the truth, by convention), starting 5 noise SD above zero,
        factor 1.3.
    axes : (Axis, Axis)
        Indirect (15N) and direct (1H) axes of every panel.
    out_path : path
        PNG file.
    window_ppm : ((float, float), (float, float)), optional
        ((1H high, 1H low), (15N high, 15N low)) zoom; default the whole plane.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``out_path``.
    """
    if not panels:
        raise ValueError("panels must hold at least one (title, spectrum) pair")
    ppm_y = axes[0].ppm_limits
    ppm_x = axes[1].ppm_limits
    levels = contour_levels(np.asarray(panels[-1][1], dtype=float), n_levels=14, factor=1.3, start_sd=5.0)
    fig, grid = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.0), sharey=True, squeeze=False)
    for k, (name, data) in enumerate(panels):
        ax = grid[0, k]
        draw_contours(ax, np.asarray(data, dtype=float), levels, ppm_x, ppm_y)
        set_nmr_axes(ax, ppm_x, ppm_y, (axes[0].nucleus, axes[1].nucleus), label_y=k == 0)
        if window_ppm is not None:
            ax.set_xlim(*window_ppm[0])
            ax.set_ylim(*window_ppm[1])
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return save_figure(fig, out_path, dpi=130)
    finally:
        plt.close(fig)


__all__ = ["plot_real_pair"]
