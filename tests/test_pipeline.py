"""End-to-end: the whole DAG on the micro configuration, in a temporary directory."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mssr.factors import FACTORS
from mssr.evaluation.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

RANGES = {
    "mse": (0.0, 4.0),
    "r2": (-np.inf, 1.0),
    "hallucination_ratio": (0.0, 1.0),
    "missed_peak_ratio": (0.0, 1.0),
    "peak_mse": (0.0, 4.0),
    "peak_r2": (-np.inf, 1.0),
    "peak_intensity_diff": (0.0, 1.0),
    "peak_shift_diff": (0.0, 1.0),
    "ssim": (-1.0, 1.0),
}

# Metrics whose fill where no peak pair matched is -inf (mssr.evaluation.metrics.NO_MATCH_WORST);
# every other metric is finite (a prediction without peaks has hallucination_ratio 1).
MAY_BE_MINUS_INF = ("peak_r2",)

TESTSETS = {"blur", "physical", "real"}


def _assert_metric_values(df: pd.DataFrame, where: str) -> None:
    values = df[list(METRIC_NAMES)]
    finite = values.drop(columns=list(MAY_BE_MINUS_INF))
    assert np.isfinite(finite.to_numpy()).all(), f"{where}: non-finite values"
    for name in MAY_BE_MINUS_INF:
        assert not df[name].isna().any() and (df[name] < np.inf).all(), f"{where}: {name} NaN or +inf"


def _snakemake(workdir: Path, *args, check=True, timeout=1500):
    cmd = SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
                       str(workdir / "micro.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory, micro_workdir):
    workdir = micro_workdir(tmp_path_factory.mktemp("micro"), "micro.yaml")
    _snakemake(workdir, "--cores", "2")
    return workdir


@pytest.mark.slow
def test_metrics_table_has_every_method_factor_and_finite_values_in_range(micro_run):
    df = pd.read_csv(micro_run / "results/micro/tables/metrics.csv")
    for column in ("method", "factor", "sample", *METRIC_NAMES):
        assert column in df.columns
    assert set(df["method"]) == {"mssr", "baseline", "identity", "richardson_lucy", "wiener"}
    assert sorted(df["factor"].round(6).unique()) == sorted(round(float(f), 6) for f in FACTORS)
    assert set(df["testset"]) == TESTSETS
    _assert_metric_values(df, "metrics.csv")
    for name, (lo, hi) in RANGES.items():
        assert df[name].between(lo, hi).all(), name
    # Every method is scored on the same spectra for every factor.
    counts = df.groupby(["testset", "method", "factor"]).size()
    assert counts.groupby("testset").nunique().eq(1).all()


@pytest.mark.slow
def test_outputs_models_and_rerun_is_a_no_op(micro_run):
    out = micro_run / "results/micro"
    for name in ("fig3_example", "fig4_global", "fig5_local", "fig6_sweep", "uncertainty", "loss_curves",
                 "heldout", "samplers"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "models/mssr/model.safetensors").exists()
    assert len(list(out.glob("models/baseline_*/model.safetensors"))) == 14
    for table in ("heldout", "samplers"):
        df = pd.read_csv(out / f"tables/{table}.csv")
        assert len(df), table
        _assert_metric_values(df, f"{table}.csv")
    held = pd.read_csv(out / "tables/heldout.csv")
    assert set(held.loc[~held["table1"], "method"]) <= {"mssr_continuous", "identity", "richardson_lucy"}
    summary = pd.read_csv(out / "tables/summary.csv")
    assert {"mean", "ci_low", "ci_high", "n"} <= set(summary.columns)
    assert set(summary["testset"]) == TESTSETS
    paired = pd.read_csv(out / "tables/paired.csv")
    assert set(paired["testset"]) == TESTSETS
    # the real test set: 4 planes of 2 proteins in the micro config, so its CIs by protein exist
    real = summary[(summary["testset"] == "real") & summary["metric"].isin(METRIC_NAMES)]
    assert set(real["n"]) == {4}
    real_paired = paired[(paired["testset"] == "real") & paired["metric"].isin(METRIC_NAMES)]
    assert len(real_paired) and set(real_paired["n_proteins"]) == {2}
    real_truths = pd.read_csv(out / "tables/metrics.csv").query("testset == 'real'")
    assert set(real_truths["protein"]) == {"protein_L", "Ddx4"}
    proc = _snakemake(micro_run, "--cores", "2", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _chromium() -> str:
    """Debian's headless Chromium, installed with apt-get where we may (CI runs as root)."""
    path = shutil.which("chromium")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                       capture_output=True, timeout=600)
        path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is needed to render the report in CI and could not be installed")
        pytest.skip("chromium is not installed and cannot be installed here (not root or no apt-get)")
    return path


@pytest.mark.slow
def test_report_renders_in_a_browser(micro_run, tmp_path):
    report = micro_run / "report.html"
    _snakemake(micro_run, "--report", str(report))
    text = report.read_text(errors="replace")
    assert "metrics.csv" in text and "fig4_global.png" in text and "provenance.json" in text
    shot = tmp_path / "report.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", "--virtual-time-budget=5000",
         f"--screenshot={shot}", report.as_uri()],
        capture_output=True, timeout=120,
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (900, 1280)
    # A rendered page has text and panels; a blank or failed page is one flat colour.
    assert pixels.std() > 5


@pytest.mark.slow
def test_bad_config_value_stops_with_the_key_named(micro_run, tmp_path):
    proc = _snakemake(micro_run, "-n", "--config", "data={'size': 3}", check=False)
    assert proc.returncode != 0
    assert "size" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_ctrl_c_during_training_then_rerun_resumes_without_redoing_finished_jobs(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    micro = yaml.safe_load((ROOT / "tests" / "data" / "micro.yaml").read_text())
    micro["train"].update(epochs=60, checkpoint_every=2)  # long enough to be interrupted mid-way
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(micro))
    out = tmp_path / "results/micro"
    target = "results/micro/models/mssr/model.safetensors"
    cmd = SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
                       str(tmp_path / "micro.yaml"), "--cores", "1", target]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    checkpoint = out / "models/mssr/checkpoint.pt"
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert not (out / "models/mssr/model.safetensors").exists()
    finished = {p: p.stat().st_mtime_ns for p in (out / "data").glob("*.h5")}
    assert out / "data/train.h5" in finished

    rerun = _snakemake(tmp_path, "--cores", "1", target)
    log = (out / "logs/train_mssr.log").read_text()
    assert re.search(r"resuming mssr_\w+ from .*checkpoint\.pt: epoch \d+, step [1-9]\d*", log), log[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished jobs were redone"
    from mssr.model.network import load_model

    load_model(out / "models/mssr")  # complete and consistent (checksummed weights)
    assert "train_mssr" in rerun.stdout + rerun.stderr
