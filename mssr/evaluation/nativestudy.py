"""The native-mode study: MSSR, each factor's single-factor baseline and the classical methods, factor by factor.

For every factor f of the run, the measured 800.3 MHz planes of peakipy's series
(:mod:`mssr.data.real`) are broadened physically to ``800.3 / f`` MHz
(:func:`mssr.evaluation.realpairs.make_pair`) and given to every method on the plane's own points:
the native MSSR (one model for every field pair), the native baseline trained at f alone with the
same budget, the classical methods with the known kernel (tuned on the other protein,
:func:`mssr.evaluation.realstudy.run`) and the anchor alone. One job per factor writes its rows;
:func:`summarize` gathers them into the run's table, per (factor, method) means over the planes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mssr.factors import as_factor, factor_label

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ("mse", "found", "strong_true", "hallucinated", "fwhm_15n_hz", "fwhm_1h_hz", "seconds")
"""Columns averaged over the planes of each (factor, method) in :func:`summarize`."""


def evaluate_factor(factor, *, model_dir, baseline_dir, out_csv, planes: dict,
                    methods: Sequence[str], seed: int = 1234, out_figure=None, cache=None,
                    threads: int | None = None) -> pd.DataFrame:
    """Score every method at one factor; rows as :func:`mssr.evaluation.realstudy.run`'s.

    Parameters
    ----------
    factor : str or float
        A Table-1 factor ``B_high / B_low`` or its label (``'1.143'`` is 8/7).
    model_dir : path
        The native MSSR model (method 'mssr').
    baseline_dir : path
        The native baseline trained at this factor (method 'baseline').
    out_csv : path
        The factor's table, written atomically; ``train_steps`` per learned row.
    planes : dict
        Plane indices per protein.
    methods : sequence of str
        Methods to run (:data:`mssr.evaluation.realstudy.METHODS` and 'baseline').
    seed : int
        Seed of the low-field noise.
    out_figure : path, optional
        Contours of protein L (input, MSSR, baseline, best classical, truth), PNG.
    cache : path, optional
        Where the peakipy sdist is cached.
    threads : int, optional
        CPU threads of torch.
    """
    from mssr.atomic import atomic_path
    from mssr.config import set_threads
    from mssr.data.real import measured_planes
    from mssr.enhance.models import load_enhancer, model_dir_of
    from mssr.evaluation.realpairs import make_pair
    from mssr.evaluation.realstudy import contour_figure, run

    set_threads(threads)
    value = float(as_factor(factor))
    baseline = load_enhancer(model_dir_of(baseline_dir), "cpu") if "baseline" in methods else None
    if baseline is not None:
        trained = (baseline.extra.get("native") or {}).get("factor")
        if trained is None or abs(trained - value) > 1e-6 * value:
            raise ValueError(f"{baseline_dir}: a baseline for f = {factor_label(value)} must be trained at that factor "
                             f"alone (its config.json says factor {trained})")
    enhancer = load_enhancer(model_dir_of(model_dir), "cpu") if "mssr" in methods else None
    pairs = [make_pair(p.protein, p.plane, p.spectrum, value, seed=seed) for p in measured_planes(planes, cache=cache)]
    estimates: dict = {}
    table = run(pairs, enhancer=enhancer, methods=methods, keep=estimates,
                baselines={round(value, 4): baseline} if baseline is not None else None)
    steps = {"mssr": _train_steps(model_dir), "baseline": _train_steps(baseline_dir)}
    table["factor_label"] = factor_label(value)
    table["train_steps"] = [steps.get(m) for m in table["method"]]
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    if out_figure is not None:
        Path(out_figure).parent.mkdir(parents=True, exist_ok=True)
        contour_figure(pairs, table, estimates, out_figure, low=pairs[0].x_lr.axes[1].field_mhz)
    return table


def _train_steps(model_dir) -> int | None:
    """Optimizer steps a model was trained for (its ``config.json``), None without a model."""
    if model_dir is None:
        return None
    record = json.loads((Path(model_dir) / "config.json").read_text())
    steps = ((record.get("extra") or {}).get("final") or {}).get("steps")
    return int(steps) if steps is not None else None


def summarize(tables: Sequence, out_csv, out_md) -> pd.DataFrame:
    """The run's native table: every factor's rows, and per (factor, method) means over the planes.

    Parameters
    ----------
    tables : sequence of path
        :func:`evaluate_factor` tables.
    out_csv : path
        Every row, written atomically.
    out_md : path
        Markdown: per factor, the mean MSE of each method (the lowest in bold), the strong peaks found
        and hallucinated by MSSR and the baseline, under a header stating each learned model's
        training steps (equal budgets, or that they differ).

    Returns
    -------
    DataFrame
        The means (factor, method, :data:`SUMMARY_COLUMNS`, ``planes``).
    """
    from mssr.atomic import atomic_path

    rows = pd.concat([pd.read_csv(p, dtype={"factor_label": str}) for p in tables], ignore_index=True)
    means = (rows.groupby(["factor_label", "method"], sort=False)[list(SUMMARY_COLUMNS)].mean()
             .join(rows.groupby(["factor_label", "method"], sort=False).size().rename("planes")).reset_index())
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_csv) as tmp:
        rows.to_csv(tmp, index=False)
    with atomic_path(Path(out_md)) as tmp:
        Path(tmp).write_text(_markdown(rows, means))
    return means


def _markdown(rows: pd.DataFrame, means: pd.DataFrame) -> str:
    from mssr.evaluation.tables import budget_line

    learned = rows[rows.method.isin(["mssr", "baseline"])].dropna(subset=["train_steps"])
    steps = learned.groupby("method", sort=False)["train_steps"].agg(["min", "max"])
    header = budget_line({m: (r["min"], r["max"]) for m, r in steps.iterrows()}, "optimizer steps") \
        or "No learned model in this table."
    methods = list(dict.fromkeys(rows["method"]))
    planes = rows.groupby(["protein", "plane"]).ngroups
    lines = [f"# Native mode: measured 800 MHz planes broadened to 800.3 / f MHz ({planes} planes)", "", header, "",
             "MSE against the measured plane (mean over planes; lowest in bold); found / strong true peaks and "
             "hallucinated strong peaks of MSSR and the baseline (mean).", "",
             "| f | " + " | ".join(methods) + " | MSSR found | MSSR halluc. | baseline found | baseline halluc. |",
             "|---" * (len(methods) + 5) + "|"]
    for label, group in means.groupby("factor_label", sort=False):
        by = group.set_index("method")
        best = by["mse"].idxmin()
        cells = [f"**{by.at[m, 'mse']:.3g}**" if m == best else f"{by.at[m, 'mse']:.3g}" if m in by.index else ""
                 for m in methods]
        extra = []
        for m in ("mssr", "baseline"):
            if m in by.index:
                extra += [f"{by.at[m, 'found']:.1f} / {by.at[m, 'strong_true']:.1f}", f"{by.at[m, 'hallucinated']:.1%}"]
            else:
                extra += ["", ""]
        lines.append(f"| {label} | " + " | ".join(cells + extra) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["SUMMARY_COLUMNS", "evaluate_factor", "summarize"]
