"""The native mode of the pipeline: baselines at one factor, the per-factor study on measured planes, its tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mssr.evaluation.nativestudy import summarize

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _table(path: Path, label: str, rows: list[dict]) -> Path:
    df = pd.DataFrame(rows)
    df["factor_label"] = label
    df.to_csv(path, index=False)
    return path


def _row(protein, method, mse, *, found=10, steps=None, hall=0.0):
    return {"protein": protein, "plane": 0, "method": method, "mse": mse, "found": found, "strong_true": 12,
            "hallucinated": hall, "fwhm_15n_hz": 20.0, "fwhm_1h_hz": 15.0, "seconds": 1.0, "train_steps": steps}


def test_summary_means_over_planes_and_states_equal_budgets(tmp_path):
    a = _table(tmp_path / "a.csv", "1.500", [
        _row("protein_L", "identity", 4e-4), _row("Ddx4", "identity", 2e-4),
        _row("protein_L", "mssr", 1e-4, found=12, steps=192), _row("Ddx4", "mssr", 3e-4, found=9, steps=192, hall=0.1),
        _row("protein_L", "baseline", 5e-5, steps=192), _row("Ddx4", "baseline", 5e-5, steps=192)])
    b = _table(tmp_path / "b.csv", "2.250", [
        _row("protein_L", "identity", 1e-3), _row("Ddx4", "identity", 1e-3),
        _row("protein_L", "mssr", 2e-4, steps=192), _row("Ddx4", "mssr", 2e-4, steps=192),
        _row("protein_L", "baseline", 6e-4, steps=192), _row("Ddx4", "baseline", 8e-4, steps=192)])
    means = summarize([a, b], tmp_path / "native.csv", tmp_path / "native.md").set_index(["factor_label", "method"])
    assert means.loc[("1.500", "mssr"), "mse"] == pytest.approx(2e-4)
    assert means.loc[("1.500", "mssr"), "found"] == pytest.approx(10.5)
    assert means.loc[("2.250", "baseline"), "mse"] == pytest.approx(7e-4)
    assert means.loc[("1.500", "identity"), "planes"] == 2
    assert len(pd.read_csv(tmp_path / "native.csv")) == 12
    md = (tmp_path / "native.md").read_text()
    assert "trained for 192 optimizer steps (the same budget)" in md
    # lowest mean MSE in bold: the baseline at 1.5, MSSR at 2.25
    assert re.search(r"\| 1\.500 \| 0\.0003 \| 0\.0002 \| \*\*5e-05\*\* \|", md)
    assert re.search(r"\| 2\.250 \| 0\.001 \| \*\*0\.0002\*\* \| 0\.0007 \|", md)
    assert "| 10.5 / 12.0 | 5.0% |" in md


def test_summary_says_in_its_header_when_budgets_differ(tmp_path):
    a = _table(tmp_path / "a.csv", "1.500", [_row("protein_L", "mssr", 1e-4, steps=1050),
                                             _row("protein_L", "baseline", 1e-4, steps=140)])
    summarize([a], tmp_path / "native.csv", tmp_path / "native.md")
    md = (tmp_path / "native.md").read_text()
    assert "did not get the same training budget" in md and "baseline: 140" in md and "mssr: 1050" in md


def _plan(workdir: Path, *args) -> dict[str, int]:
    proc = subprocess.run(SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n", *args],
                          capture_output=True, text=True, timeout=600, cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)}


def test_the_default_target_is_native_mode_and_the_paper_mode_stays_selectable(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    native = _plan(tmp_path)
    assert native["train_native"] == 1 and native["train_native_baseline"] == 14 and native["native_evaluate"] == 14
    assert "train_mssr" not in native and "infer" not in native
    paper = _plan(tmp_path, "--config", "mode=paper")
    assert paper["train_mssr"] == 1 and paper["train_baseline"] == 14
    assert "train_native_baseline" not in paper


@pytest.fixture(scope="module")
def native_run(tmp_path_factory, micro_workdir):
    """A micro native-mode run: 2 factors, micro models, both proteins' plane 0."""
    workdir = micro_workdir(tmp_path_factory.mktemp("native"), "micro_native.yaml")
    proc = subprocess.run(SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
                                       str(workdir / "micro.yaml"), "--cores", "2"],
                          capture_output=True, text=True, timeout=1500, cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return workdir / "results" / "micro_native"


@pytest.mark.slow
def test_native_run_trains_each_baseline_at_its_factor_and_scores_every_method(native_run):
    for label in ("1.500", "2.000"):
        record = json.loads((native_run / f"models/native_baseline_{label}/config.json").read_text())
        assert record["extra"]["native"]["factor"] == pytest.approx(float(label))
    mssr = json.loads((native_run / "models/mssr_native/config.json").read_text())
    assert mssr["extra"]["native"]["factor"] is None
    table = pd.read_csv(native_run / "tables/native.csv", dtype={"factor_label": str})
    assert set(table["factor_label"]) == {"1.500", "2.000"}
    assert set(table["method"]) == {"identity", "wiener", "anchor", "mssr", "baseline"}
    assert set(table["protein"]) == {"protein_L", "Ddx4"}
    # the low field of each row is 800.3 MHz / f
    for row in table.itertuples():
        assert row.low_mhz == pytest.approx(800.3 / float(row.factor_label), abs=0.2)
    # every learned model had the same budget, and the table's header says so
    steps = table.loc[table["method"].isin(["mssr", "baseline"]), "train_steps"]
    assert steps.nunique() == 1 and steps.iloc[0] == mssr["extra"]["final"]["steps"]
    assert "(the same budget)" in (native_run / "tables/native_summary.md").read_text()
    # whole planes scored
    ident = table[table["method"] == "identity"].set_index("protein")
    assert ident.loc["protein_L", "strong_true"].min() == 71  # protein L plane 0: 71 strong peaks
    # Wiener with the known kernel sharpens the broadened input (lower MSE than identity at every factor)
    wide = table.pivot_table(index=["protein", "factor_label"], columns="method", values="mse")
    assert (wide["wiener"] < wide["identity"]).all()
    for label in ("1.500", "2.000"):
        assert (native_run / f"figures/native/protein_L_{label}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_baseline_trained_at_another_factor_is_refused(native_run, tmp_path, peakipy_sdist):
    from mssr.evaluation.nativestudy import evaluate_factor

    models = native_run / "models"
    for wrong, says in ((models / "native_baseline_2.000", "factor 2.0"), (models / "mssr_native", "factor None")):
        with pytest.raises(ValueError, match=f"trained at that factor alone .*{says}"):
            evaluate_factor("1.500", model_dir=models / "mssr_native", baseline_dir=wrong, out_csv=tmp_path / "t.csv",
                            planes={"protein_L": [0]}, methods=["identity", "baseline"], cache=peakipy_sdist.parent)
    assert not (tmp_path / "t.csv").exists()


def test_enhance_notes_a_single_factor_baseline_used_at_another_factor():
    from types import SimpleNamespace

    from mssr.enhance.models import native_range_notes

    info = {"high_mhz": [600, 1200], "low_min_mhz": 300, "max_factor": 4.0}
    baseline = SimpleNamespace(extra={"native": {**info, "factor": 1.5}})
    assert native_range_notes(baseline, 600.0, 900.0) == []  # f = 1.5 exactly
    notes = native_range_notes(baseline, 400.0, 900.0)
    assert len(notes) == 1 and "single-factor baseline (f = 1.5)" in notes[0] and "2.25" in notes[0]
    assert native_range_notes(SimpleNamespace(extra={"native": {**info, "factor": None}}), 400.0, 900.0) == []


def test_a_native_baseline_config_is_the_native_config_at_the_exact_factor():
    from mssr.config import native_baseline_config

    cfg = {"native": {"patches": {"size": 32}, "epoch_length": 8}, "train": {"epochs": 3}}
    out = native_baseline_config(cfg, "1.143")
    assert out["native"]["patches"] == {"size": 32, "factor": 8 / 7}
    assert out["train"] == cfg["train"] and out["native"]["epoch_length"] == 8
    assert "factor" not in cfg["native"]["patches"]  # the run's own config is not changed
    with pytest.raises(ValueError):
        native_baseline_config(cfg, "1.780")
