"""The cluster profile against a real single-node SLURM started on this machine.

The SLURM tests need root on Debian (see tests/slurm_harness.py) and the executor plugin
(``pip install "mssr[cluster]"``); elsewhere they are skipped with the reason (the
``slurm_cluster`` fixture of conftest.py, shared with tests/test_cluster.py). Each
Snakemake run is bounded by ``timeout -s KILL``: a Snakemake whose status command fails
waits forever and ignores SIGTERM.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import slurm_harness

REPO = Path(__file__).resolve().parent.parent
CLUSTER_PROFILE = REPO / "cluster"
CI_PROFILE = REPO / "tests" / "data" / "ci_profile"
SNAKEMAKE_KILL_AFTER_S = 150

WORKFLOW = textwrap.dedent(
    """\
    configfile: "config.yaml"

    rule all:
        input: "cpu.txt", "gpu.txt", "slow.txt"

    rule on_cpu:
        output: "cpu.txt"
        params: scale=config["scale"]
        shell: "echo job=$SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-unset}} scale={params.scale} > {output}"

    rule on_gpu:
        output: "gpu.txt"
        resources: gpu=1
        shell: "echo job=$SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-unset}} > {output}"

    # First attempt: records its job id and sleeps until cancelled. Later attempts finish.
    rule slow:
        output: "slow.txt"
        shell:
            "if [ -e attempted ]; then echo done > {output}; "
            "else echo $SLURM_JOB_ID > attempted.tmp && mv attempted.tmp attempted; "
            "sleep 120; echo late > {output}; fi"
    """
)


# ----------------------------------------------------------------------- config texts


@pytest.mark.parametrize(
    ("n_gpus", "gres_line"),
    [
        (1, "NodeName=localhost Name=gpu File=/etc/slurm/fakegpu/gpu0"),
        (2, "NodeName=localhost Name=gpu File=/etc/slurm/fakegpu/gpu[0-1]"),
        (4, "NodeName=localhost Name=gpu File=/etc/slurm/fakegpu/gpu[0-3]"),
    ],
)
def test_gres_conf_binds_one_device_file_per_gpu(n_gpus, gres_line):
    lines = slurm_harness.gres_conf_text(n_gpus).splitlines()
    assert lines == [slurm_harness.CONF_MARKER, gres_line]


def test_slurm_conf_node_line_and_no_gres_without_gpus():
    with_gpus = slurm_harness.slurm_conf_text(3, 2048, 2).splitlines()
    assert with_gpus[0] == slurm_harness.CONF_MARKER
    assert (
        "NodeName=localhost NodeAddr=127.0.0.1 CPUs=3 RealMemory=2048 Gres=gpu:2 "
        "State=UNKNOWN"
    ) in with_gpus
    assert "GresTypes=gpu" in with_gpus
    without = slurm_harness.slurm_conf_text(3, 2048, 0)
    assert "Gres" not in without
    assert "NodeName=localhost NodeAddr=127.0.0.1 CPUs=3 RealMemory=2048 State=UNKNOWN" in (
        without.splitlines()
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"cpus": 0, "mem_mb": 10}, ValueError, "cpus"),
        ({"cpus": 2.0, "mem_mb": 10}, TypeError, "cpus"),
        ({"cpus": 2, "mem_mb": True}, TypeError, "mem_mb"),
        ({"cpus": 2, "mem_mb": 10, "n_gpus": -1}, ValueError, "n_gpus"),
    ],
)
def test_slurm_conf_rejects_bad_sizes(kwargs, error, name):
    with pytest.raises(error, match=name):
        slurm_harness.slurm_conf_text(**kwargs)


def test_machine_resources_match_proc_meminfo():
    cpus, mem_mb = slurm_harness.machine_resources()
    assert cpus == os.cpu_count()
    total_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    assert mem_mb == pytest.approx(0.9 * total_kib / 1024, abs=2)


def test_slurm_conf_runs_the_task_prolog_that_records_gpu_variables():
    conf = slurm_harness.slurm_conf_text(2, 1024, 2).splitlines()
    assert f"TaskProlog={slurm_harness.TASK_PROLOG}" in conf
    assert "CUDA_VISIBLE_DEVICES" in slurm_harness.TASK_ENV_VARS


def test_task_prolog_writes_only_the_set_variables(tmp_path):
    script = tmp_path / "prolog.sh"
    records = tmp_path / "records"
    script.write_text(
        slurm_harness.task_prolog_text().replace(str(slurm_harness.TASK_ENV_DIR), str(records))
    )
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "41", "SLURM_JOB_NAME": "mssr a=b",
           "CUDA_VISIBLE_DEVICES": "1", "OTHER": "x"}
    batch = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    step = subprocess.run(["sh", str(script)], env={**env, "SLURM_STEP_ID": "0",
                          "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True)
    # slurmstepd would execute anything printed: nothing is.
    assert (batch.returncode, batch.stdout, step.returncode, step.stdout) == (0, "", 0, "")
    assert sorted(p.name for p in records.iterdir()) == ["41.0.env", "41.batch.env"]
    assert (records / "41.batch.env").read_text() == (
        "SLURM_JOB_ID=41\nSLURM_JOB_NAME=mssr a=b\nCUDA_VISIBLE_DEVICES=1\n"
    )
    # Set but empty is recorded as such; unset variables are left out.
    assert (records / "41.0.env").read_text() == (
        "SLURM_JOB_ID=41\nSLURM_STEP_ID=0\nSLURM_JOB_NAME=mssr a=b\nCUDA_VISIBLE_DEVICES=\n"
    )


def test_task_env_rejects_a_job_id_that_is_not_digits():
    with pytest.raises(ValueError, match="job_id"):
        slurm_harness.task_env("12*")


# ----------------------------------------------------------------------- real cluster


@pytest.fixture
def slurm(slurm_cluster):
    return slurm_cluster


def _scontrol_node() -> str:
    return subprocess.run(
        ["scontrol", "show", "node", "localhost"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout


def _scontrol_job(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout


@pytest.mark.slurm
def test_node_offers_the_configured_resources(slurm):
    cpus, mem_mb = slurm_harness.machine_resources()
    node = _scontrol_node()
    assert f"CfgTRES=cpu={cpus},mem={mem_mb}M," in node
    assert "Gres=gpu:2" in node
    assert re.search(r"State=IDLE\b", node)


@pytest.mark.slurm
def test_start_leaves_running_daemons_to_their_owner(slurm):
    again = slurm_harness.start()
    assert again.pids == {}
    slurm_harness.stop(again)
    # The daemons of the fixture still run and still serve the node.
    for daemon in slurm_harness.DAEMONS:
        assert slurm_harness.running_pid(daemon) == slurm.pids[daemon.name]
    assert slurm_harness.node_state() == "idle"


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    (tmp_path / "config.yaml").write_text("scale: demo\n")
    # Stands in for the repository's configs/paper.yaml that the cluster profile loads.
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "paper.yaml").write_text("scale: paper\n")
    return tmp_path


def _snakemake(workdir: Path, *targets: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "timeout",
        "-s",
        "KILL",
        str(SNAKEMAKE_KILL_AFTER_S),
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(CLUSTER_PROFILE),
        "--profile",
        str(CI_PROFILE),
        *extra,
        *targets,
    ]


def _fields(path: Path) -> dict[str, str]:
    return dict(item.split("=", 1) for item in path.read_text().split())


@pytest.mark.slurm
def test_profile_runs_cpu_and_gpu_rules_as_slurm_jobs(slurm, tmp_path):
    workdir = _workdir(tmp_path)
    start = time.monotonic()
    run = subprocess.run(
        _snakemake(workdir, "cpu.txt", "gpu.txt"),
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    wall_s = time.monotonic() - start
    print(f"two SLURM jobs through the profiles: {wall_s:.1f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    cpu = _fields(workdir / "cpu.txt")
    gpu = _fields(workdir / "gpu.txt")
    # Real SLURM job ids, one job per rule.
    assert cpu["job"].isdigit() and gpu["job"].isdigit()
    assert cpu["job"] != gpu["job"]
    # SLURM bound one of the 2 fake GPUs to the gpu=1 job, and none to the other.
    assert gpu["cuda"] in {"0", "1"}
    assert cpu["cuda"] == "unset"
    # The TaskProlog saw the same in the job's srun step (where the rule runs).
    assert slurm_harness.task_env(gpu["job"])["0"]["CUDA_VISIBLE_DEVICES"] == gpu["cuda"]
    assert "CUDA_VISIBLE_DEVICES" not in slurm_harness.task_env(cpu["job"])["0"]
    # configs/paper.yaml from the cluster profile overrode the Snakefile's config.yaml.
    assert cpu["scale"] == "paper"
    # What SLURM allocated (ended jobs stay visible for MinJobAge): the GPU request, and
    # mem_mb from the CI profile's default-resources.
    gpu_job, cpu_job = _scontrol_job(gpu["job"]), _scontrol_job(cpu["job"])
    assert "TresPerJob=gres:gpu:1" in gpu_job
    assert "TresPerJob" not in cpu_job
    assert re.search(r"TRES=cpu=1,mem=1000M,", cpu_job)


@pytest.mark.slurm
def test_cancelled_job_fails_the_run_and_a_rerun_completes(slurm, tmp_path):
    workdir = _workdir(tmp_path)
    command = _snakemake(workdir, "slow.txt")
    start = time.monotonic()
    first = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        attempted = workdir / "attempted"
        deadline = time.monotonic() + 60
        while not attempted.exists():
            assert first.poll() is None, first.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the slow job never started"
            time.sleep(0.2)
        job_id = attempted.read_text().strip()
        subprocess.run(["scancel", job_id], check=True, timeout=20)
        log, _ = first.communicate(timeout=SNAKEMAKE_KILL_AFTER_S + 10)
    finally:
        if first.poll() is None:
            first.kill()
    failed_s = time.monotonic() - start
    assert first.returncode not in (0, -9, 137), log[-3000:]
    assert f"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED'" in log
    assert not (workdir / "slow.txt").exists()

    start = time.monotonic()
    rerun = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    rerun_s = time.monotonic() - start
    print(f"cancelled run failed after {failed_s:.1f} s; rerun took {rerun_s:.1f} s")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (workdir / "slow.txt").read_text() == "done\n"
