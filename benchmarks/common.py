"""Helpers shared by the benchmark scripts: machine description, peak memory, load, JSON output.

Imported by the scripts in this folder as ``common`` (they put this folder on ``sys.path``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import sys
from pathlib import Path

# The package beside this folder, importable from a checkout even when it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# fp32 FLOP per cycle and core of the FMA units, by micro-architecture. /proc/cpuinfo names the
# vector extensions but not how many FMA pipes execute them; these are the vendors' published
# widths (AMD Zen 4 optimization guide: two 256-bit FMA pipes, AVX-512 executed in two halves;
# Intel Xeon Scalable: two 512-bit FMA units on Gold 6xxx / Platinum parts).
_ZEN4 = "AMD Zen 4 (family 25 with AVX-512): 2 FMA pipes x 256 bit = 2 x 8 fp32 lanes x 2 FLOP"


def cpu_info() -> dict:
    """The CPU as /proc/cpuinfo and the scheduler describe it.

    Returns
    -------
    dict
        ``model``, ``vendor``, ``family``, ``model_number``, ``mhz`` (the ``cpu MHz`` line: the
        nominal clock in a virtual machine, MHz), ``cores_usable`` (CPUs this process may run on),
        ``threads_per_core``, and the vector ``flags`` that bound the FLOP rate.
    """
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                key, value = (part.strip() for part in line.split(":", 1))
                fields.setdefault(key, value)
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    siblings = int(fields.get("siblings", 0) or 0)
    physical = int(fields.get("cpu cores", 0) or 0)
    return {
        "model": fields.get("model name") or platform.processor() or "unknown",
        "vendor": fields.get("vendor_id", "unknown"),
        "family": int(fields["cpu family"]) if "cpu family" in fields else None,
        "model_number": int(fields["model"]) if fields.get("model", "").isdigit() else None,
        "mhz": float(fields["cpu MHz"]) if "cpu MHz" in fields else None,
        "cores_usable": cores,
        "threads_per_core": siblings // physical if siblings and physical else 1,
        "flags": sorted(flags & {"fma", "avx", "avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"}),
    }


def fp32_flop_per_cycle(info: dict) -> tuple[int, str]:
    """fp32 FLOP per cycle and core (FMA = 2 FLOP) of the CPU described by ``info``, with the reason."""
    flags, vendor, family = set(info["flags"]), info["vendor"], info["family"]
    if vendor == "AuthenticAMD":
        if family == 26:
            return 64, "AMD Zen 5 (family 26): 2 FMA pipes x 512 bit = 2 x 16 fp32 lanes x 2 FLOP"
        if family == 25 and "avx512f" in flags:
            return 32, _ZEN4
        if family in (23, 25) and "avx2" in flags:
            return 32, "AMD Zen 2/3: 2 FMA pipes x 256 bit = 2 x 8 fp32 lanes x 2 FLOP"
    if "avx512f" in flags:
        return 64, "AVX-512 with 2 FMA units x 512 bit = 2 x 16 fp32 lanes x 2 FLOP (1-unit parts: half)"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2 + FMA, 2 FMA units x 256 bit = 2 x 8 fp32 lanes x 2 FLOP"
    return 8, "SSE: 4 fp32 lanes x (1 add + 1 mul) per cycle"


def cpu_peak_fp32(info: dict, threads: int | None = None) -> dict:
    """Theoretical fp32 peak of the usable cores: cores x clock x FLOP/cycle.

    Parameters
    ----------
    info : dict
        From :func:`cpu_info`.
    threads : int, optional
        Compute threads in use; fewer threads than physical cores use fewer cores.

    Returns
    -------
    dict
        ``flops`` (FLOP/s), ``cores``, ``ghz``, ``flop_per_cycle`` and ``source`` (how it was derived).
    """
    per_cycle, why = fp32_flop_per_cycle(info)
    ghz = (info["mhz"] or 0.0) / 1000.0
    cores = info["cores_usable"] // max(1, info["threads_per_core"]) or 1
    if threads is not None:
        cores = max(1, min(cores, threads))
    return {
        "flops": cores * ghz * 1e9 * per_cycle,
        "cores": cores,
        "ghz": ghz,
        "flop_per_cycle": per_cycle,
        "source": f"/proc/cpuinfo: {info['model']}, {cores} cores x {ghz:.3f} GHz ('cpu MHz', the nominal clock; "
                  f"boost may exceed it) x {per_cycle} FLOP/cycle ({why})",
    }


def machine() -> dict:
    """What a benchmark record says about the machine: ``cpu_model``, ``cpu_count`` (CPUs of the
    machine), ``cpus_usable`` (CPUs this process may run on) and ``platform``."""
    return {
        "cpu_model": cpu_info()["model"],
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def peak_rss_mib() -> float:
    """Peak resident memory of this process (``VmHWM``, else ``ru_maxrss``), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident memory of this process (``VmRSS``), MiB; the peak where that is unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def release_free_memory() -> bool:
    """Collect garbage and hand the C heap's free pages back to the OS (glibc ``malloc_trim``), so that
    the RSS is the memory in use; False where ``malloc_trim`` is not available."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def versions(*names: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """``__version__`` of each named module, and Python's; ``labels`` renames keys (e.g.
    ``{'skimage': 'scikit-image'}``)."""
    import importlib

    labels = labels or {}
    found = {"python": platform.python_version()}
    for name in names:
        found[labels.get(name, name)] = str(getattr(importlib.import_module(name), "__version__", "unknown"))
    return found


def utc_now() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_json(path, record: dict) -> None:
    """Write ``record`` as indented JSON, atomically."""
    from mssr.atomic import write_text

    write_text(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
