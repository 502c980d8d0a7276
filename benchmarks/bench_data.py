"""Throughput and memory of the data stages (read -> project -> preprocess) on a large 3D spectrum.

A 3D HNCA of a real RefDB protein is rendered at 800 MHz on a grid of realistic size (default
128 x 128 x 1024 float32 in array order 13C x 15N x 1H, 64 MiB), written with ``mssr.io.write``
as NMRPipe (``.ft3``, read lazily as a memory map) and as UCSF (``.ucsf``), and each file goes
through ``mssr.io.read(lazy=True)`` -> ``mssr.data.project.project`` (signed max, all default
planes) -> ``mssr.data.preprocess.preprocess`` (S x S) in a fresh Python process per format, so
that its peak resident memory (``VmHWM``, else ``ru_maxrss``) belongs to that work alone; the
peak after the imports alone is reported beside it. Allocation peaks are
measured with ``tracemalloc`` in a separate untimed pass (numpy reports its buffers to it;
memory-mapped file pages are not allocations and are not counted).

    python benchmarks/bench_data.py --out benchmarks/results/data_cpu.json
    python benchmarks/bench_data.py --smoke --out /tmp/data_smoke.json     # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (puts the package beside this folder on sys.path too)

FULL_SHAPE = (128, 128, 1024)
SMOKE_SHAPE = (16, 16, 64)


def make_files(folder: Path, shape: tuple[int, int, int], *, seed: int) -> tuple[dict, float, dict]:
    """Render the HNCA, write it in both formats: ({format: path}, render seconds, spectrum meta)."""
    from mssr import io as mssr_io
    from mssr.data import synthetic

    refdb = synthetic.load_refdb()
    (bmrb_id,) = synthetic.pick_proteins(1, seed=seed, refdb=refdb, min_residues=150, max_residues=200)
    table = synthetic.protein_table(refdb, bmrb_id)
    t0 = time.perf_counter()
    spectrum = synthetic.render_spectrum(table, "hnca", 800.0, sizes=shape, rng=np.random.default_rng(seed))
    render_s = time.perf_counter() - t0
    paths = {"pipe": folder / "hnca.ft3", "ucsf": folder / "hnca.ucsf"}
    for path in paths.values():
        mssr_io.write(spectrum, path)
    return {k: str(v) for k, v in paths.items()}, render_s, spectrum.meta


def _one_pass(path: str, size: int, method: str) -> int:
    from mssr import io as mssr_io
    from mssr.data.preprocess import preprocess
    from mssr.data.project import project

    spectrum = mssr_io.read(path, lazy=True)
    samples = [preprocess(plane, size=size) for plane in project(spectrum, method=method)]
    return len(samples)


def measure(path: str, size: int, method: str, repeats: int) -> dict:
    """Time ``repeats`` passes over one file, then one traced pass (run in a fresh process)."""
    from mssr import io as _io  # noqa: F401  the baseline: interpreter and libraries loaded
    from mssr.data import preprocess as _pre, project as _proj  # noqa: F401

    baseline_mib = common.peak_rss_mib()
    _one_pass(path, size, method)  # page cache warm; not timed
    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n_planes = _one_pass(path, size, method)
        timings.append(time.perf_counter() - t0)
    tracemalloc.start()
    _one_pass(path, size, method)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mib = common.peak_rss_mib()
    return {
        "n_planes": n_planes,
        "seconds_per_spectrum": round(min(timings), 4),
        "seconds_all_repeats": [round(t, 4) for t in timings],
        "spectra_per_s": round(1.0 / min(timings), 3),
        "tracemalloc_peak_mib": round(traced_peak / 2**20, 2),
        "peak_rss_mib": round(peak_mib, 1),
        "peak_rss_after_imports_mib": round(baseline_mib, 1),
    }


def run(shape, *, size: int, method: str, repeats: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        paths, render_s, meta = make_files(Path(tmp), shape, seed=seed)
        results = {}
        for fmt, path in paths.items():
            cmd = [sys.executable, __file__, "--measure", path, "--size", str(size), "--method", method,
                   "--repeats", str(repeats)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[fmt] = {"file_mib": round(os.path.getsize(path) / 2**20, 2), **json.loads(out.stdout)}
    return {
        "benchmark": "mssr.io.read(lazy=True) -> mssr.data.project.project -> mssr.data.preprocess.preprocess",
        "device": "cpu",
        **common.machine(),
        "versions": common.versions("numpy", "scipy", "pandas", "h5py", "nmrglue", "mssr"),
        "date": common.utc_now(),
        "spectrum": {"experiment": "hnca", "shape": list(shape), "nuclei": ["13C", "15N", "1H"], "dtype": "float32",
                     "protein": meta["protein"], "n_peaks": meta["n_peaks"], "field_mhz": meta["field_mhz"]},
        "size": size,
        "method": method,
        "repeats": repeats,
        "seed": seed,
        "render_seconds": round(render_s, 3),
        "by_format": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--shape", type=int, nargs=3, default=None, help="13C 15N 1H points (default 128 128 1024)")
    parser.add_argument("--size", type=int, default=None, help="S of the S x S samples (default 256; smoke 32)")
    parser.add_argument("--method", default="signed_max", choices=("sum", "max", "signed_max"))
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per file; the fastest is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny spectrum, one repeat")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure one file, print JSON
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.size, args.method, args.repeats)))
        return 0
    if args.out is None:
        parser.error("--out is required")
    shape = tuple(args.shape) if args.shape else (SMOKE_SHAPE if args.smoke else FULL_SHAPE)
    size = args.size or (32 if args.smoke else 256)
    repeats = 1 if args.smoke else args.repeats
    if min(shape) < 2 or size < 1 or repeats < 1:
        parser.error("need --shape entries >= 2, --size >= 1, --repeats >= 1")
    record = run(shape, size=size, method=args.method, repeats=repeats, seed=args.seed)
    record["smoke"] = bool(args.smoke)

    common.write_json(args.out, record)
    print(json.dumps({fmt: {k: r[k] for k in ("spectra_per_s", "tracemalloc_peak_mib", "peak_rss_mib")}
                      for fmt, r in record["by_format"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
