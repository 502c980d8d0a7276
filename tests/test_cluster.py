"""The real workflow through ``snakemake --profile cluster`` on a real single-node SLURM.

The micro configuration (tests/data/micro_cluster.yaml) runs as SLURM jobs with the cluster
profile stacked with the CI override profile (tests/data/ci_profile), on the test cluster of
tests/slurm_harness.py (2 fake GPUs, so ``gpu=1`` is really scheduled). The same configuration
runs locally (``snakemake -c 2``) at the same time, as the reference the cluster results must
equal. A second case cancels the MSSR training job mid-way and reruns the same command.

Needs root on Debian and the executor plugin (the ``slurm_cluster`` fixture of conftest.py);
skipped elsewhere, except in CI (``CI=true``), where it must run. Every Snakemake run is bounded
by ``timeout -s KILL``: a Snakemake whose status command fails waits forever, ignoring SIGTERM.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import slurm_harness

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"
CLUSTER_PROFILE = REPO / "cluster"
CI_PROFILE = REPO / "tests" / "data" / "ci_profile"
MICRO = REPO / "tests" / "data" / "micro_cluster.yaml"
OUT = "results/micro_cluster"

#: Bound (s) on one Snakemake run of the micro pipeline; a loaded 2-core machine needs ~4 min.
KILL_AFTER_S = 600
#: Bound (s) on a dry run.
DRY_RUN_KILL_AFTER_S = 120

GPU_RULES = {"train_mssr", "train_baseline", "train_continuous", "infer", "sweep", "heldout", "samplers"}
# The `localrules:` of workflow/rules/common.smk.
LOCAL_RULES = {"all", "fetch", "tracking_store", "split", "tables", "plot", "provenance"}
# Jobs of the micro configuration: 2 factors, 2 test sets (blur, physical), 2 learned methods
# (mssr, baseline) and 1 classical one (identity).
CLUSTER_JOBS = {
    "project": 1,
    "preprocess": 1,
    "testset": 2,
    "classical_params": 2,
    "train_mssr": 1,
    "train_baseline": 2,
    "classical": 2,
    "infer": 8,
    "sweep": 1,
    "metrics": 1,
    "train_continuous": 1,
    "heldout": 1,
    "samplers": 1,
}
# 12 training spectra, batch 4, 20 epochs.
MSSR_STEPS = 60

# Tolerance of "equal" results: relative, on every metric of every (test set, method, factor,
# sample). Training and sampling are seeded and run on one CPU thread in both runs.
RTOL = 1e-9

HEADER = re.compile(r"^(local)?rule (\w+):$", re.MULTILINE)
JOBID = re.compile(r"^\s+jobid: (\d+)$", re.MULTILINE)
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RESUMED = re.compile(r"resuming \S+ from (\S+): epoch (\d+), step (\d+) of (\d+)")


# ----------------------------------------------------------------------------- helpers


def _environment() -> dict[str, str]:
    """The caller's environment without what would leak into the jobs (sbatch exports it all)."""
    env = dict(os.environ)
    # Each run's own MLflow store (results/<run>/mlflow.db), not a server of the caller's.
    env.pop("MLFLOW_TRACKING_URI", None)
    # A GPU job must get its device from SLURM, a CPU job none.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.yaml", path / "config.yaml")
    shutil.copy(MICRO, path / "micro_cluster.yaml")
    return path


def _snakemake(workdir: Path, *args: str, kill_after_s: int = KILL_AFTER_S) -> list[str]:
    return [
        "timeout", "-s", "KILL", str(kill_after_s),
        sys.executable, "-m", "snakemake",
        "-s", str(SNAKEFILE), "-d", str(workdir),
        "--configfile", "micro_cluster.yaml",
        *args,
    ]


def _on_cluster(workdir: Path, *args: str, kill_after_s: int = KILL_AFTER_S) -> list[str]:
    return _snakemake(
        workdir, "--profile", str(CLUSTER_PROFILE), "--profile", str(CI_PROFILE), *args,
        kill_after_s=kill_after_s,
    )


@dataclasses.dataclass
class Run:
    """A finished Snakemake run: its folder, exit status, combined output and wall time (s)."""

    workdir: Path
    returncode: int
    output: str
    wall_s: float


class _Started:
    """A Snakemake run in the background, its output going to a file beside its folder."""

    def __init__(self, command: list[str], workdir: Path, name: str):
        self.workdir = workdir
        self.log_path = workdir.parent / f"{name}.out"
        self._log = self.log_path.open("w")
        self.start = time.monotonic()
        self.ended: float | None = None
        self.process = subprocess.Popen(
            command, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, text=True,
            env=_environment(),
        )

    def wait(self) -> Run:
        try:
            # timeout -s KILL bounds the run itself; this only guards against timeout hanging.
            returncode = self.process.wait(timeout=KILL_AFTER_S + 60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._log.close()
        wall_s = (self.ended or time.monotonic()) - self.start
        return Run(self.workdir, returncode, self.log_path.read_text(), wall_s)


def _wait_all(*started: _Started) -> list[Run]:
    """Wait for runs going on side by side, noting when each ended."""
    deadline = time.monotonic() + KILL_AFTER_S + 60
    while time.monotonic() < deadline and any(s.ended is None for s in started):
        for run in started:
            if run.ended is None and run.process.poll() is not None:
                run.ended = time.monotonic()
        time.sleep(0.5)
    return [run.wait() for run in started]


def _run(command: list[str], workdir: Path) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=_environment(),
    )
    return Run(workdir, done.returncode, done.stdout, time.monotonic() - start)


def _ok(run: Run) -> None:
    assert run.returncode == 0, f"snakemake exited {run.returncode}:\n{run.output[-6000:]}"


def _jobs(output: str) -> dict[str, tuple[str, bool]]:
    """Snakemake job id -> (rule, run locally) from the job headers of a run's output."""
    headers = list(HEADER.finditer(output))
    jobs = {}
    for header, following in zip(headers, headers[1:] + [None]):
        block = output[header.end() : following.start() if following else len(output)]
        jobid = JOBID.search(block)
        if jobid is not None:
            jobs[jobid.group(1)] = (header.group(2), header.group(1) == "local")
    return jobs


def _submissions(output: str) -> dict[str, str]:
    """Snakemake job id -> SLURM job id."""
    return {m.group(1): m.group(2) for m in SUBMITTED.finditer(output)}


def _slurm_jobs_by_rule(output: str) -> dict[str, list[str]]:
    jobs = _jobs(output)
    by_rule: dict[str, list[str]] = {}
    for jobid, slurm_id in _submissions(output).items():
        by_rule.setdefault(jobs[jobid][0], []).append(slurm_id)
    return by_rule


def _job_stats(output: str) -> dict[str, int]:
    """The "Job stats" table of a (dry) run: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or fields[0] == "total":
            break
        counts[fields[0]] = int(fields[1])
    return counts


# Each run logs to its own MLflow store: the models' run ids differ by design, not by result.
RUN_SPECIFIC_COLUMNS = ("mlflow_run_id",)


def _read_metrics(workdir: Path) -> pd.DataFrame:
    frame = pd.read_csv(workdir / OUT / "tables" / "metrics.csv")
    frame = frame.drop(columns=[c for c in RUN_SPECIFIC_COLUMNS if c in frame.columns])
    keys = [c for c in ("testset", "method", "factor", "sample") if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _compare_metrics(cluster: Path, local: Path) -> tuple[bool, float]:
    """Assert the metrics tables agree to RTOL; return (bitwise equal, largest relative difference)."""
    a, b = _read_metrics(cluster), _read_metrics(local)
    assert list(a.columns) == list(b.columns)
    assert a.shape == b.shape and len(a) > 0
    numeric = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c])]
    assert {"mse", "ssim", "factor"} <= set(numeric)
    others = [c for c in a.columns if c not in numeric]
    assert a[others].equals(b[others])
    x, y = a[numeric].to_numpy(float), b[numeric].to_numpy(float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    assert np.allclose(x, y, rtol=RTOL, atol=0.0, equal_nan=True)
    finite = np.isfinite(x) & np.isfinite(y)
    scale = np.maximum(np.abs(x[finite]), np.abs(y[finite]))
    diff = np.abs(x[finite] - y[finite])
    worst = float(np.max(diff / np.where(scale > 0, scale, 1.0), initial=0.0))
    bitwise = a.to_csv(index=False) == b.to_csv(index=False)  # every value and its text, run ids aside
    return bitwise, worst


def _models_bitwise_equal(cluster: Path, local: Path) -> dict[str, bool]:
    return {
        str(path.relative_to(local / OUT)): path.read_bytes()
        == (cluster / path.relative_to(local)).read_bytes()
        for path in sorted((local / OUT / "models").glob("*/model.safetensors"))
    }


# ----------------------------------------------------------------------------- the runs


@dataclasses.dataclass
class Runs:
    cluster: Run
    local: Run


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory) -> Runs:
    """The micro pipeline through the cluster profile, and locally up to metrics.csv, side by side."""
    root = tmp_path_factory.mktemp("cluster")
    cluster_dir, local_dir = _workdir(root / "cluster"), _workdir(root / "local")
    local = _Started(
        _snakemake(local_dir, "--cores", "2", f"{OUT}/tables/metrics.csv"), local_dir, "local"
    )
    cluster = _Started(_on_cluster(cluster_dir), cluster_dir, "cluster")
    cluster_run, local_run = _wait_all(cluster, local)
    result = Runs(cluster=cluster_run, local=local_run)
    print(f"\ncluster run {result.cluster.wall_s:.0f} s, local run {result.local.wall_s:.0f} s")
    return result


# ----------------------------------------------------------------------------- tests


@pytest.mark.slurm
def test_every_job_but_the_local_rules_ran_through_sbatch(runs):
    _ok(runs.cluster)
    jobs = _jobs(runs.cluster.output)
    submitted = _submissions(runs.cluster.output)
    local = {jobid for jobid, (_, is_local) in jobs.items() if is_local}
    assert {jobs[j][0] for j in local} == LOCAL_RULES
    assert set(submitted) == set(jobs) - local
    assert Counter(jobs[j][0] for j in submitted) == Counter(CLUSTER_JOBS)
    slurm_ids = list(submitted.values())
    assert all(s.isdigit() for s in slurm_ids) and len(set(slurm_ids)) == len(slurm_ids)
    # Each SLURM job left its log (kept by the CI profile) in the rule's folder.
    for match in SUBMITTED.finditer(runs.cluster.output):
        log = Path(match.group(3))
        rule = jobs[match.group(1)][0]
        assert log.is_file() and f"slurm_logs/rule_{rule}/" in log.as_posix()


@pytest.mark.slurm
def test_gpu_rules_ran_with_a_gpu_and_the_others_without(runs):
    _ok(runs.cluster)
    by_rule = _slurm_jobs_by_rule(runs.cluster.output)
    assert GPU_RULES <= set(by_rule)
    for rule, slurm_ids in by_rule.items():
        for slurm_id in slurm_ids:
            steps = slurm_harness.task_env(slurm_id)
            # The batch script, and the srun step in it (step 0) that runs the rule's job step.
            batch, rule_step = steps["batch"], steps["0"]
            assert batch["SLURM_JOB_ID"] == rule_step["SLURM_JOB_ID"] == slurm_id
            # slurm-jobname-prefix of the cluster profile.
            assert batch["SLURM_JOB_NAME"].startswith("mssr_")
            if rule in GPU_RULES:
                assert rule_step.get("CUDA_VISIBLE_DEVICES") in {"0", "1"}, (rule, slurm_id, steps)
                assert rule_step["CUDA_VISIBLE_DEVICES"] == batch["CUDA_VISIBLE_DEVICES"]
            else:
                assert "CUDA_VISIBLE_DEVICES" not in rule_step, (rule, slurm_id, steps)
                assert "CUDA_VISIBLE_DEVICES" not in batch, (rule, slurm_id, steps)


@pytest.mark.slurm
def test_cluster_results_equal_a_local_run(runs):
    _ok(runs.cluster)
    _ok(runs.local)
    # The local run really ran locally.
    assert _submissions(runs.local.output) == {}
    bitwise, worst = _compare_metrics(runs.cluster.workdir, runs.local.workdir)
    models = _models_bitwise_equal(runs.cluster.workdir, runs.local.workdir)
    assert len(models) == 3
    print(f"\nmetrics.csv bitwise equal: {bitwise}; largest relative difference {worst:.3g}; "
          f"models bitwise equal: {models}")


@pytest.mark.slurm
def test_rerunning_one_baseline_plans_it_and_what_depends_on_it(runs):
    _ok(runs.cluster)
    plan = _run(
        _on_cluster(
            runs.cluster.workdir, "-n", "--forcerun",
            f"{OUT}/models/baseline_1.500/model.safetensors",
            kill_after_s=DRY_RUN_KILL_AFTER_S,
        ),
        runs.cluster.workdir,
    )
    _ok(plan)
    assert _job_stats(plan.output) == {
        "train_baseline": 1, "infer": 2, "metrics": 1, "tables": 1, "plot": 1, "provenance": 1,
        "heldout": 1, "all": 1,
    }
    assert "wildcards: factor=1.500" in plan.output
    assert "factor=2.250" not in plan.output


@pytest.mark.slurm
def test_cancelled_training_resumes_from_its_checkpoint(runs, tmp_path):
    _ok(runs.cluster)
    _ok(runs.local)
    # A copy of the finished cluster run without MSSR's model folder (checkpoint included), run
    # with --forcerun train_mssr: MSSR trains from scratch and what uses it runs again, the rest
    # is up to date. (The copy's tracking store record names the first run's MLflow database.)
    workdir = tmp_path / "resume"
    shutil.copytree(
        runs.cluster.workdir, workdir, symlinks=True,
        ignore=shutil.ignore_patterns("slurm_logs", "log"),
    )
    model_dir = workdir / OUT / "models" / "mssr"
    shutil.rmtree(model_dir)
    checkpoint = model_dir / "checkpoint.pt"
    command = _on_cluster(workdir, "--forcerun", "train_mssr")

    job_ids: list[str] = []
    first = _Started(command, workdir, "cancelled")
    try:
        deadline = time.monotonic() + KILL_AFTER_S
        while not checkpoint.exists():
            assert first.process.poll() is None, first.log_path.read_text()[-6000:]
            assert time.monotonic() < deadline, "train_mssr wrote no checkpoint"
            time.sleep(0.1)
        running = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.split("\n")
        job_ids = [line.split()[0] for line in running if line.endswith(" rule_train_mssr")]
        assert len(job_ids) == 1, running
        subprocess.run(["scancel", job_ids[0]], check=True, timeout=20)
    finally:
        cancelled = first.wait()
    assert cancelled.returncode not in (0, 124, 137, -9), cancelled.output[-6000:]
    assert f"SLURM-job '{job_ids[0]}' failed, SLURM status is: 'CANCELLED'" in cancelled.output
    assert not (model_dir / "model.safetensors").exists()

    import torch

    saved_step = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < saved_step < MSSR_STEPS

    # The same command again: the forced training finds the checkpoint and resumes from it.
    rerun = _run(command, workdir)
    print(f"\ncancelled run {cancelled.wall_s:.0f} s (at step {saved_step}), rerun {rerun.wall_s:.0f} s")
    _ok(rerun)
    # The rerun submitted the training to SLURM again, and the training resumed.
    assert len(_slurm_jobs_by_rule(rerun.output)["train_mssr"]) == 1
    log = (workdir / OUT / "logs" / "train_mssr.log").read_text()
    resumed = RESUMED.search(log)
    assert resumed is not None, log[-3000:]
    assert Path(resumed.group(1)).name == "checkpoint.pt"
    assert (int(resumed.group(3)), int(resumed.group(4))) == (saved_step, MSSR_STEPS)
    assert len(pd.read_csv(model_dir / "history.csv")) > 0
    # A resumed training ends with the weights of an uninterrupted one: same results.
    bitwise, worst = _compare_metrics(workdir, runs.local.workdir)
    mssr_bitwise = (model_dir / "model.safetensors").read_bytes() == (
        runs.local.workdir / OUT / "models" / "mssr" / "model.safetensors"
    ).read_bytes()
    print(f"after resuming: metrics.csv bitwise equal {bitwise}, largest relative difference "
          f"{worst:.3g}, MSSR weights bitwise equal {mssr_bitwise}")


def test_cluster_profile_plans_the_paper_dag_from_the_repository_root():
    """``snakemake --profile cluster -n`` as documented: no SLURM needed, only the plugin."""
    import importlib.util

    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip('the SLURM executor plugin is missing: pip install "mssr[cluster]"')
    if shutil.which("scontrol") and not slurm_harness.SLURM_CONF.exists():
        # The plugin runs `scontrol show config`, which would look the controller up over DNS.
        pytest.skip("SLURM client tools without /etc/slurm/slurm.conf")
    plan = _run(
        ["timeout", "-s", "KILL", str(DRY_RUN_KILL_AFTER_S), sys.executable, "-m", "snakemake",
         "--profile", "cluster", "-n"],
        REPO,
    )
    _ok(plan)
    stats = _job_stats(plan.output)
    # configs/paper.yaml: the 14 factors of Table 1, ARTINA data: test sets "blur" and "real" (measured spectra).
    assert stats["train_mssr"] == 1 and stats["sweep"] == 1
    assert stats["train_baseline"] == 14
    assert stats["infer"] == 2 * 14 * 2
    assert "results/paper/models/baseline_2.250/model.safetensors" in plan.output
    # The GPU rules request what configs/paper.yaml's `resources` says.
    blocks = {m.group(2): plan.output[m.end():].split("\n\n", 1)[0] for m in HEADER.finditer(plan.output)}
    for rule in GPU_RULES:
        resources = dict(
            item.split("=", 1)
            for item in re.search(r"resources: (.*)", blocks[rule]).group(1).split(", ")
        )
        assert (resources["gpu"], resources["cpus_per_task"], resources["mem_mb"]) == ("1", "8", "64000")
        assert resources["runtime"] == str(720 * (4 if rule in ("train_mssr", "train_continuous") else 1))
    # Rules without GPU get the profile's default resources and no GPU.
    for rule in ("project", "metrics"):
        assert "gpu=" not in blocks[rule] and "mem_mb=8000" in blocks[rule]
