"""Which config changes retrain models: only what training reads (workflow/rules/common.smk TRAIN_CONFIG).

A finished run is simulated without running it: every output is created empty and recorded by
``snakemake --touch`` (which stores each job's params as a real run does); then ``snakemake -n``
with a changed config shows which jobs a rerun would plan.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING_RULES = {"train_mssr", "train_baseline", "train_continuous"}


def _snakemake(workdir: Path, *args) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "micro.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=workdir)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def _planned(workdir: Path, change: str) -> dict[str, int]:
    """{rule: job count} that ``snakemake -n`` plans after merging ``change`` (YAML) into the config."""
    (workdir / "change.yaml").write_text(change)
    out = _snakemake(workdir, "--configfile", str(workdir / "micro.yaml"), str(workdir / "change.yaml"), "-n")
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reruns")
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    shutil.copy(ROOT / "tests" / "data" / "micro.yaml", workdir / "micro.yaml")
    summary = _snakemake(workdir, "--summary")
    outputs = [line.split("\t")[0] for line in summary.splitlines() if line.startswith("results/")]
    assert any("/models/mssr/" in p for p in outputs)
    for path in outputs:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    _snakemake(workdir, "--touch", "--cores", "1")
    assert _planned(workdir, "{}\n") == {}
    return workdir


@pytest.mark.slow
def test_tracking_uri_and_test_seed_retrain_nothing(finished_run):
    planned = _planned(finished_run, 'tracking:\n  uri: "sqlite:///elsewhere.db"\ndegrade:\n  test_seed: 7\n')
    assert planned.get("testset", 0) >= 1  # the test inputs do depend on the seed
    assert not TRAINING_RULES & set(planned), planned


@pytest.mark.slow
def test_baseline_epochs_retrain_the_baselines_only(finished_run):
    planned = _planned(finished_run, "baseline:\n  epochs: 3\n")
    assert planned.get("train_baseline") == 14
    assert "train_mssr" not in planned and "train_continuous" not in planned


@pytest.mark.slow
def test_the_low_field_model_retrains_every_model(finished_run):
    planned = _planned(finished_run, "degrade:\n  sigma_lr: 0.02\n")
    assert planned.get("train_mssr") == 1 and planned.get("train_baseline") == 14
    assert planned.get("train_continuous") == 1
