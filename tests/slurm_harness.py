"""A real single-node SLURM cluster on the test machine, for tests of the cluster profile.

The cluster is Debian's ``slurm-wlm`` (slurmctld + slurmd on ``localhost``) with munge
authentication, no accounting database, no cgroups and no systemd, and with ``n_gpus``
fake GPUs (character devices) so that jobs requesting ``--gpus`` are scheduled and get
``CUDA_VISIBLE_DEVICES``. It needs root on Debian; :func:`slurm_available` says whether
this machine qualifies and why not.

A ``TaskProlog`` records, for every task SLURM starts (the batch script and each
``srun`` step), the job's id, name and GPU variables as SLURM set them, so that a test
can check which jobs really received a GPU without touching the jobs' commands
(:func:`task_env`).

The order matters: :func:`write_config` must run before any SLURM client tool (or
Snakemake with the SLURM executor plugin, which calls ``scontrol show config`` at start)
runs, because without ``/etc/slurm/slurm.conf`` those tools look the configuration up
over DNS (``_slurmctld._tcp`` SRV records).

Typical use::

    with running_slurm(n_gpus=2) as started:
        subprocess.run(["sbatch", "--wrap", "true"], check=True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SLURM_PACKAGES: tuple[str, ...] = ("munge", "slurmd", "slurmctld", "slurm-client")

SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
FAKE_GPU_DIR = Path("/etc/slurm/fakegpu")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")
STATE_DIR = Path("/var/spool/slurmctld")
SPOOL_DIR = Path("/var/spool/slurmd")
LOG_DIR = Path("/var/log/slurm")
TASK_PROLOG = Path("/etc/slurm/task_env.sh")
TASK_ENV_DIR = LOG_DIR / "task_env"

#: Variables the TaskProlog records per task (those SLURM left unset are left out).
TASK_ENV_VARS: tuple[str, ...] = (
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_GPUS",
    "CUDA_VISIBLE_DEVICES",
)

#: First line of every configuration file this module writes; a slurm.conf without it
#: belongs to a real site and is never overwritten.
CONF_MARKER = "# Single-node test cluster written by tests/slurm_harness.py"

#: Character-device major number of NVIDIA GPUs (/dev/nvidiaN); slurmd only needs the
#: device files to exist to hand them out, nothing ever opens them.
NVIDIA_MAJOR = 195

#: Seconds a job may outlive SIGTERM before SLURM sends SIGKILL (default 30); short so
#: that a cancelled test job frees the node quickly.
KILL_WAIT_S = 5

#: Jobs stay visible to ``squeue`` this long (s) after they end. The executor plugin's
#: ``squeue`` status command needs at least 3 x its first status-check delay.
MIN_JOB_AGE_S = 300

#: Seconds a SLURM RPC may take (default 10); generous for a controller on localhost.
MESSAGE_TIMEOUT_S = 3

_APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@dataclasses.dataclass(frozen=True)
class Daemon:
    """One SLURM-side daemon: how to start it and where it records its pid.

    Parameters
    ----------
    name : str
        Process name as in ``/proc/<pid>/comm`` (``munged``, ``slurmctld``, ``slurmd``).
    command : tuple of str
        Command line that starts it in the background.
    pid_file : Path
        File in which the daemon writes its pid once started.
    """

    name: str
    command: tuple[str, ...]
    pid_file: Path


DAEMONS: tuple[Daemon, ...] = (
    Daemon(
        "munged",
        ("runuser", "-u", "munge", "--", "/usr/sbin/munged"),
        MUNGE_RUN_DIR / "munged.pid",
    ),
    # -c: start from an empty job table, so a job left by an interrupted test run does
    # not occupy the node.
    Daemon("slurmctld", ("/usr/sbin/slurmctld", "-c"), Path("/run/slurmctld.pid")),
    Daemon("slurmd", ("/usr/sbin/slurmd", "-N", "localhost"), Path("/run/slurmd.pid")),
)


@dataclasses.dataclass(frozen=True)
class StartedDaemons:
    """Pids of the daemons that :func:`start` launched (not those it found running).

    Parameters
    ----------
    pids : dict of str to int
        Daemon name -> pid.
    """

    pids: dict[str, int]


# ----------------------------------------------------------------------------- checks


def _os_release() -> dict[str, str]:
    path = Path("/etc/os-release")
    if not path.is_file():
        return {}
    fields = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


def _is_debian() -> bool:
    release = _os_release()
    families = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    return "debian" in families


def slurm_available() -> tuple[bool, str]:
    """Say whether this machine can host the test cluster.

    Returns
    -------
    ok : bool
        True when the machine is Debian (or derived), the process is root, ``apt-get``
        exists and no foreign SLURM configuration would be overwritten.
    reason : str
        Why not (empty when ``ok``); suitable for ``pytest.skip``.
    """
    if os.name != "posix" or os.geteuid() != 0:
        return False, "a test SLURM cluster needs root"
    if shutil.which("apt-get") is None:
        return False, "a test SLURM cluster needs apt-get"
    if not _is_debian():
        return False, "a test SLURM cluster needs Debian (slurm-wlm packages)"
    if SLURM_CONF.exists() and not _written_here(SLURM_CONF):
        return False, f"{SLURM_CONF} belongs to a real SLURM installation; not touching it"
    return True, ""


def _written_here(path: Path) -> bool:
    with path.open() as handle:
        return handle.readline().rstrip("\n") == CONF_MARKER


def missing_packages() -> list[str]:
    """Return the packages of :data:`SLURM_PACKAGES` that dpkg does not list as installed."""
    missing = []
    for package in SLURM_PACKAGES:
        query = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if query.returncode != 0 or not query.stdout.endswith("install ok installed"):
            missing.append(package)
    return missing


# ----------------------------------------------------------------------------- install


def install_slurm(*, update_timeout_s: float = 300.0, install_timeout_s: float = 600.0) -> None:
    """Install munge, slurmctld, slurmd and the client tools with apt-get, if missing.

    Parameters
    ----------
    update_timeout_s, install_timeout_s : float
        Bounds (s) on ``apt-get update`` and ``apt-get install``.

    Raises
    ------
    RuntimeError
        If apt-get fails; the message carries the tail of its output.
    """
    missing = missing_packages()
    if not missing:
        return
    _run_apt(["apt-get", "update", "-q"], timeout_s=update_timeout_s)
    _run_apt(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *SLURM_PACKAGES],
        timeout_s=install_timeout_s,
    )
    still_missing = missing_packages()
    if still_missing:
        raise RuntimeError(f"apt-get install left packages missing: {still_missing}")


def _run_apt(command: list[str], *, timeout_s: float) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s, env=_APT_ENV
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")


# ----------------------------------------------------------------------------- config


def _validate_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _validate_n_gpus(n_gpus: object) -> int:
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int):
        raise TypeError(f"n_gpus must be an int, got {type(n_gpus).__name__}")
    if not 0 <= n_gpus <= 16:
        raise ValueError(f"n_gpus must be in [0, 16], got {n_gpus}")
    return n_gpus


def slurm_conf_text(cpus: int, mem_mb: int, n_gpus: int = 2) -> str:
    """Return the text of slurm.conf for a single node ``localhost``.

    Parameters
    ----------
    cpus : int
        CPUs the node offers (at most what ``slurmd -C`` reports).
    mem_mb : int
        Memory the node offers (MiB); at most the machine's, else slurmd drains the node.
    n_gpus : int, optional
        Fake GPUs on the node (0 for none).

    Returns
    -------
    str
    """
    cpus = _validate_positive_int(cpus, "cpus")
    mem_mb = _validate_positive_int(mem_mb, "mem_mb")
    n_gpus = _validate_n_gpus(n_gpus)
    gres_node = f" Gres=gpu:{n_gpus}" if n_gpus else ""
    lines = [
        CONF_MARKER,
        "ClusterName=localcluster",
        "SlurmctldHost=localhost",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        # No cgroups in containers: track processes through /proc, bind no tasks.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        # Without a default a job without --mem is given the whole node's memory.
        "DefMemPerCPU=512",
        # A node that was down comes back as soon as slurmd registers.
        "ReturnToService=2",
        f"MinJobAge={MIN_JOB_AGE_S}",
        f"KillWait={KILL_WAIT_S}",
        # A client retries an unreachable controller for MessageTimeout - 1 s. Once the
        # daemons are stopped, every Snakemake start pays that (the SLURM executor
        # plugin runs `scontrol show config` when it is imported): 2 s instead of 9 s.
        f"MessageTimeout={MESSAGE_TIMEOUT_S}",
        "MpiDefault=none",
        f"StateSaveLocation={STATE_DIR}",
        f"SlurmdSpoolDir={SPOOL_DIR}",
        "SlurmctldPidFile=/run/slurmctld.pid",
        "SlurmdPidFile=/run/slurmd.pid",
        f"SlurmctldLogFile={LOG_DIR / 'slurmctld.log'}",
        f"SlurmdLogFile={LOG_DIR / 'slurmd.log'}",
        f"TaskProlog={TASK_PROLOG}",
    ]
    if n_gpus:
        lines.append("GresTypes=gpu")
    lines += [
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb}"
        f"{gres_node} State=UNKNOWN",
        "PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


def gres_conf_text(n_gpus: int) -> str:
    """Return gres.conf binding ``n_gpus`` fake GPU device files to node ``localhost``.

    Without ``File=`` slurmd cannot bind GPUs to jobs and the node becomes unusable.
    """
    n_gpus = _validate_n_gpus(n_gpus)
    lines = [CONF_MARKER]
    if n_gpus:
        files = "gpu0" if n_gpus == 1 else f"gpu[0-{n_gpus - 1}]"
        lines.append(f"NodeName=localhost Name=gpu File={FAKE_GPU_DIR / files}")
    return "\n".join(lines) + "\n"


def task_prolog_text() -> str:
    """Return the TaskProlog script: it writes ``<job id>.<step id>.env`` into
    :data:`TASK_ENV_DIR` (step ``batch`` for the batch script) with one ``NAME=value``
    line per variable of :data:`TASK_ENV_VARS` that is set in the task's environment.

    slurmstepd reads a TaskProlog's standard output as commands (``export``, ``unset``),
    so the script prints nothing; it always exits 0 so that it never fails a job.
    """
    names = " ".join(TASK_ENV_VARS)
    return "\n".join(
        [
            "#!/bin/sh",
            CONF_MARKER,
            f"dir={TASK_ENV_DIR}",
            'step="${SLURM_STEP_ID:-batch}"',
            'target="$dir/$SLURM_JOB_ID.$step.env"',
            'mkdir -p "$dir" || exit 0',
            f"for name in {names}; do",
            '    eval "isset=\\${$name+x} value=\\${$name-}"',
            '    if [ -n "$isset" ]; then printf \'%s=%s\\n\' "$name" "$value"; fi',
            'done > "$target.tmp" 2>/dev/null && mv "$target.tmp" "$target"',
            "exit 0",
        ]
    ) + "\n"


def task_env(job_id: str) -> dict[str, dict[str, str]]:
    """Return what the TaskProlog recorded for a job: step id -> {variable: value}.

    Parameters
    ----------
    job_id : str
        SLURM job id (digits).

    Returns
    -------
    dict of str to dict of str to str
        ``'batch'`` for the batch script, ``'0'``, ``'1'``, ... for its ``srun`` steps;
        empty if no task of the job started.
    """
    if not isinstance(job_id, str) or not job_id.isdigit():
        raise ValueError(f"job_id must be a string of digits, got {job_id!r}")
    steps = {}
    for path in TASK_ENV_DIR.glob(f"{job_id}.*.env"):
        step = path.name[len(job_id) + 1 : -len(".env")]
        steps[step] = dict(
            line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
        )
    return steps


def machine_resources() -> tuple[int, int]:
    """Return (cpus, mem_mb) to offer: all CPUs and 90 % of physical memory (MiB).

    The margin keeps ``RealMemory`` below what slurmd measures, which would otherwise
    drain the node.
    """
    cpus = os.cpu_count() or 1
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return cpus, max(1, int(0.9 * pages / 2**20))


def write_config(cpus: int, mem_mb: int, n_gpus: int = 2) -> None:
    """Write slurm.conf, gres.conf, the TaskProlog, fake GPU devices, munge key and dirs.

    Parameters
    ----------
    cpus : int
        CPUs the node offers.
    mem_mb : int
        Memory the node offers (MiB).
    n_gpus : int, optional
        Fake GPUs: character devices ``/etc/slurm/fakegpu/gpuN`` (major 195, minor N).

    Raises
    ------
    RuntimeError
        If ``/etc/slurm/slurm.conf`` exists and was not written by this module.
    """
    text = slurm_conf_text(cpus, mem_mb, n_gpus)
    if SLURM_CONF.exists() and not _written_here(SLURM_CONF):
        raise RuntimeError(f"{SLURM_CONF} belongs to a real SLURM installation")
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(text)
    GRES_CONF.write_text(gres_conf_text(n_gpus))
    _make_fake_gpus(n_gpus)
    TASK_PROLOG.write_text(task_prolog_text())
    TASK_PROLOG.chmod(0o755)
    for directory in (STATE_DIR, SPOOL_DIR, LOG_DIR, TASK_ENV_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    # A controller started with a cleared state (slurmctld -c) may hand out old job ids
    # again: old records would be read as the new jobs'.
    for old in TASK_ENV_DIR.glob("*.env"):
        old.unlink()
    _ensure_munge_key()


def _make_fake_gpus(n_gpus: int) -> None:
    FAKE_GPU_DIR.mkdir(parents=True, exist_ok=True)
    for minor in range(n_gpus):
        path = FAKE_GPU_DIR / f"gpu{minor}"
        device = os.makedev(NVIDIA_MAJOR, minor)
        if path.exists() or path.is_symlink():
            info = path.lstat()
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == device:
                continue
            path.unlink()
        os.mknod(path, stat.S_IFCHR | 0o666, device)


def _ensure_munge_key() -> None:
    munge_uid = pwd.getpwnam("munge").pw_uid
    munge_gid = grp.getgrnam("munge").gr_gid
    if not MUNGE_KEY.exists():
        MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
        # munged refuses keys readable by others; create it closed, then fill it.
        fd = os.open(MUNGE_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(1024))
    os.chown(MUNGE_KEY, munge_uid, munge_gid)
    os.chmod(MUNGE_KEY, 0o400)
    MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
    os.chown(MUNGE_RUN_DIR, munge_uid, munge_gid)


# ----------------------------------------------------------------------------- daemons


def running_pid(daemon: Daemon) -> int | None:
    """Return the pid in the daemon's pid file if that process runs and is that daemon."""
    try:
        pid = int(daemon.pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    return pid if comm == daemon.name and not _exited(pid) else None


def _wait_for(condition, *, timeout_s: float, what: str, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s")
        time.sleep(poll_s)


def node_state() -> str:
    """Return the node's state as ``sinfo -h -o %T`` prints it ('' if unreachable)."""
    result = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def start(*, timeout_s: float = 30.0) -> StartedDaemons:
    """Start munged, slurmctld and slurmd unless running; wait for an idle node.

    Requires :func:`write_config` first.

    Parameters
    ----------
    timeout_s : float
        Bound (s) on each daemon's start and on the wait for the node.

    Returns
    -------
    StartedDaemons
        The daemons launched here; pass it to :func:`stop`.

    Raises
    ------
    RuntimeError
        If a daemon exits with an error (the message names its log).
    TimeoutError
        If a daemon writes no pid file or the node does not become idle in time.
    """
    if not (SLURM_CONF.exists() and _written_here(SLURM_CONF)):
        raise RuntimeError(f"{SLURM_CONF} is missing; call write_config() first")
    pids: dict[str, int] = {}
    try:
        for daemon in DAEMONS:
            if running_pid(daemon) is not None:
                continue
            daemon.pid_file.unlink(missing_ok=True)
            launched = subprocess.run(
                daemon.command, capture_output=True, text=True, timeout=timeout_s
            )
            if launched.returncode != 0:
                raise RuntimeError(
                    f"{daemon.name} exited {launched.returncode}: "
                    f"{launched.stderr.strip()} (see {LOG_DIR} or /var/log/munge)"
                )
            pids[daemon.name] = _wait_for(
                lambda d=daemon: running_pid(d),
                timeout_s=timeout_s,
                what=f"{daemon.name} pid file {daemon.pid_file}",
            )
        _wait_for(
            lambda: node_state() == "idle",
            timeout_s=timeout_s,
            what="node state 'idle' in sinfo",
            poll_s=0.5,
        )
    except BaseException:
        stop(StartedDaemons(pids))
        raise
    return StartedDaemons(pids)


def stop(started: StartedDaemons, *, timeout_s: float = 20.0) -> None:
    """Stop the daemons in ``started`` (SIGTERM, then SIGKILL after ``timeout_s``).

    Daemons found already running by :func:`start` are left alone, and so is slurm.conf:
    removing it would send the installed client tools to DNS. If slurmctld is ours, its
    jobs are cancelled first: slurmd's job steps would outlive slurmd.
    """
    if "slurmctld" in started.pids and running_pid(DAEMONS[1]) == started.pids["slurmctld"]:
        _cancel_all_jobs(timeout_s=timeout_s)
    # The SLURM daemons may still talk through munge while they shut down.
    slurm_daemons, munge_daemons = DAEMONS[1:], DAEMONS[:1]
    for group in (slurm_daemons, munge_daemons):
        signalled = []
        for daemon in group:
            pid = started.pids.get(daemon.name)
            # The pid file and the process name must both still agree: never signal a
            # recycled pid.
            if pid is not None and running_pid(daemon) == pid:
                os.kill(pid, signal.SIGTERM)
                signalled.append(pid)
        try:
            _wait_for(
                lambda pids=signalled: all(_exited(pid) for pid in pids),
                timeout_s=timeout_s,
                what="daemon exit",
            )
        except TimeoutError:
            for pid in signalled:
                if not _exited(pid):
                    os.kill(pid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """True if ``pid`` is gone or a zombie (an init that never reaps must not block us)."""
    try:
        stat_fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return stat_fields[0] in ("Z", "X")


def _cancel_all_jobs(*, timeout_s: float) -> None:
    def job_ids() -> list[str]:
        listing = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=20
        )
        return listing.stdout.split() if listing.returncode == 0 else []

    ids = job_ids()
    if not ids:
        return
    subprocess.run(["scancel", *ids], capture_output=True, timeout=20)
    try:
        # Ended jobs stay listed for MinJobAge; only running ones matter here.
        _wait_for(
            lambda: subprocess.run(
                ["squeue", "-h", "-t", "RUNNING,COMPLETING", "-o", "%i"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
            == "",
            timeout_s=timeout_s,
            what="cancelled jobs to end",
            poll_s=0.5,
        )
    except TimeoutError:
        pass  # stopping the daemons is still better than leaving them up


@contextlib.contextmanager
def running_slurm(
    *, cpus: int | None = None, mem_mb: int | None = None, n_gpus: int = 2
) -> Iterator[StartedDaemons]:
    """Install (if needed), configure and start the test cluster; stop it on exit.

    Parameters
    ----------
    cpus, mem_mb : int, optional
        Node size; default :func:`machine_resources`.
    n_gpus : int, optional
        Fake GPUs on the node.

    Yields
    ------
    StartedDaemons
    """
    ok, reason = slurm_available()
    if not ok:
        raise RuntimeError(reason)
    machine_cpus, machine_mem_mb = machine_resources()
    install_slurm()
    write_config(
        machine_cpus if cpus is None else cpus,
        machine_mem_mb if mem_mb is None else mem_mb,
        n_gpus,
    )
    started = start()
    try:
        yield started
    finally:
        stop(started)
