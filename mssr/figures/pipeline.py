"""The pipeline's figure set, drawn from its result files (uses :mod:`mssr.figures.plots` for every plot)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mssr.figures import plots
from mssr.atomic import write_text
from mssr.data.store import read_samples
from mssr.factors import as_factor, factor_label
from mssr.evaluation.metrics import GLOBAL_METRICS, LOCAL_METRICS
from mssr.evaluation.testsets import factor_inputs

log = logging.getLogger(__name__)


def _prediction(predictions, method: str, label: str):
    for path in predictions:
        if Path(path).parent.name == method and Path(path).stem == label:
            return read_samples(path)
    return None


def _example_index(truth: np.ndarray) -> int:
    # The test spectrum with the most signal above its noise: a readable example, chosen by rule.
    sd = np.array([plots.robust_noise_sd(x) for x in truth]) + 1e-12
    return int(np.argmax((np.abs(truth) > 5 * sd[:, None, None]).sum(axis=(1, 2))))


def pipeline_figures(inputs: dict, outputs: dict, *, factors) -> dict:
    """Draw every figure of the report.

    Parameters
    ----------
    inputs : dict
        Paths: ``summary`` (tables/summary.csv), ``sweep`` (tables/sweep.csv), ``testset`` (blur test
        set), ``predictions`` (prediction files of the blur test set), ``histories`` (history.csv of
        each model).
    outputs : dict
        PNG paths: ``example``, ``global_metrics``, ``local_metrics``, ``sweep``, ``uncertainty``,
        ``loss``; and ``index`` (JSON listing every figure with the inputs behind it).
    factors : sequence
        The run's factors; the example and uncertainty figures use the largest.
    """
    label = factor_label(max(as_factor(f) for f in factors))
    truth, x_lr, s = factor_inputs(inputs["testset"], label)
    i = _example_index(truth)
    spectrum = s.spectrum(i)
    ppm_y, ppm_x = spectrum.axes[0].ppm_limits, spectrum.axes[1].ppm_limits
    nuclei = spectrum.nuclei
    mssr_pred = _prediction(inputs["predictions"], "mssr", label)
    panels = [("high field (truth)", truth[i]), (f"low field, f = {label}", x_lr[i])]
    for method, title in (("mssr", "MSSR"), ("baseline", "baseline"), ("richardson_lucy", "Richardson-Lucy")):
        pred = mssr_pred if method == "mssr" else _prediction(inputs["predictions"], method, label)
        if pred is not None:
            panels.append((title, pred.x[i]))
    meta = spectrum.meta
    title = f"{meta.get('protein', '')} {meta.get('experiment', '')} {meta.get('projection', '')}".strip()
    plots.plot_spectra(panels, ppm_x=ppm_x, ppm_y=ppm_y, nuclei=nuclei, out_path=outputs["example"], title=title)

    summary = pd.read_csv(inputs["summary"])
    if "testset" in summary.columns:
        summary = summary[summary["testset"] == "blur"].drop(columns="testset")
    plots.plot_metrics_vs_factor(summary, GLOBAL_METRICS, outputs["global_metrics"])
    plots.plot_metrics_vs_factor(summary, LOCAL_METRICS, outputs["local_metrics"])

    sweep = pd.read_csv(inputs["sweep"])
    plots.plot_steps_sweep(sweep, outputs["sweep"], metric="mse")

    if mssr_pred is not None:
        plots.plot_uncertainty(mssr_pred.x[i], mssr_pred.extra["std"][i], truth[i], ppm_x=ppm_x, ppm_y=ppm_y,
                               nuclei=nuclei, out_path=outputs["uncertainty"])

    histories = []
    for path in inputs["histories"]:
        h = pd.read_csv(path)
        h["model"] = Path(path).parent.name
        histories.append(h)
    plots.plot_loss_curves(pd.concat(histories, ignore_index=True), outputs["loss"])

    index = {
        "example": {"factor": label, "sample": i, "protein": meta.get("protein"), "testset": inputs["testset"]},
        "figures": {k: str(v) for k, v in outputs.items() if k != "index"},
        "inputs": {k: v if isinstance(v, str) else list(map(str, v)) for k, v in inputs.items()},
    }
    write_text(outputs["index"], json.dumps(index, indent=2) + "\n")
    return index
