"""Time the nine metrics (``mssr.evaluation.metrics.compute_many``) on realistic synthetic spectrum pairs.

Each true spectrum holds a few dozen 2D Lorentzian peaks (about one in ten negative) plus
Gaussian noise, normalized to [-1, 1]; its "prediction" moves, rescales, drops and adds peaks
and has its own noise, so that every metric, the matching included, does real work.

    python benchmarks/bench_metrics.py --pairs 1000 --size 256 --out benchmarks/results/metrics_cpu.json
    python benchmarks/bench_metrics.py --pairs 8 --size 64 --out /tmp/smoke.json      # smoke run

Only the metric computation is timed, not the generation of the spectra.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (puts the package beside this folder on sys.path too)

TARGET_SECONDS = 60.0
"""Budget for 1000 pairs of 256 x 256 spectra on a 2-core CPU."""


def _lorentzian(grid: np.ndarray, centre: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """Unit-height Lorentzians, shape centre.shape + grid.shape, in pixels."""
    return 1.0 / (1.0 + ((grid - centre[..., None]) / (fwhm[..., None] / 2.0)) ** 2)


def _render(centres: np.ndarray, fwhm: np.ndarray, amplitudes: np.ndarray, size: int) -> np.ndarray:
    """Sum of separable 2D Lorentzians: (N, K) peaks -> (N, size, size) float64."""
    grid = np.arange(size, dtype=np.float64)
    rows = _lorentzian(grid, centres[..., 0], fwhm[..., 0]) * amplitudes[..., None]  # (N, K, H)
    cols = _lorentzian(grid, centres[..., 1], fwhm[..., 1])  # (N, K, W)
    return np.matmul(rows.transpose(0, 2, 1), cols)


def synthetic_pairs(pairs: int, size: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of (true, predicted) spectra, float32 (pairs, size, size) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    max_peaks = 48
    count = rng.integers(24, max_peaks + 1, size=pairs)
    present = np.arange(max_peaks) < count[:, None]  # (N, K): padded peak slots are off
    margin = 4.0
    centres = rng.uniform(margin, size - 1 - margin, size=(pairs, max_peaks, 2))
    fwhm = rng.uniform(1.5, 4.0, size=(pairs, max_peaks, 2))
    amplitudes = rng.uniform(0.2, 1.0, size=(pairs, max_peaks))
    amplitudes *= np.where(rng.random((pairs, max_peaks)) < 0.1, -1.0, 1.0)
    true = _render(centres, fwhm, amplitudes * present, size)
    true += rng.normal(0.0, 0.01, size=true.shape)
    true /= np.abs(true).max(axis=(1, 2), keepdims=True)

    kept = present & (rng.random((pairs, max_peaks)) > 0.1)
    spurious = rng.random((pairs, max_peaks)) < 0.1
    pred_centres = np.where(
        spurious[..., None],
        rng.uniform(margin, size - 1 - margin, size=centres.shape),
        centres + rng.normal(0.0, 0.7, size=centres.shape),
    )
    pred_fwhm = fwhm * rng.uniform(0.8, 1.3, size=fwhm.shape)
    pred_amplitudes = amplitudes * rng.uniform(0.8, 1.2, size=amplitudes.shape) * (kept | spurious)
    pred = _render(pred_centres, pred_fwhm, pred_amplitudes, size)
    pred /= np.abs(pred).max(axis=(1, 2), keepdims=True)
    pred += rng.normal(0.0, 0.02, size=pred.shape)
    return true.astype(np.float32), np.clip(pred, -1.0, 1.0).astype(np.float32)


def run(pairs: int, size: int, *, seed: int = 0, chunk_size: int = 64, workers: int = 1, repeats: int = 1) -> dict:
    """Generate the pairs, time ``compute_many`` ``repeats`` times, return the record."""
    from mssr.evaluation import metrics, peaks

    t0 = time.perf_counter()
    hr, sr = synthetic_pairs(pairs, size, seed=seed)
    generation_s = time.perf_counter() - t0

    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        table = metrics.compute_many(hr, sr, chunk_size=chunk_size, workers=workers)
        timings.append(time.perf_counter() - t0)
    seconds = min(timings)

    sample = slice(0, min(pairs, 50))
    true_counts = [len(p.coords) for p in peaks.detect_many(hr[sample])]
    pred_counts = [len(p.coords) for p in peaks.detect_many(sr[sample])]
    return {
        "benchmark": "mssr.evaluation.metrics.compute_many, nine metrics, default options",
        "device": "cpu",
        **common.machine(),
        "versions": common.versions("numpy", "scipy", "skimage", "pandas", "mssr", labels={"skimage": "scikit-image"}),
        "date": common.utc_now(),
        "pairs": pairs,
        "size": size,
        "chunk_size": chunk_size,
        "workers": workers,
        "seed": seed,
        "repeats": repeats,
        "seconds": round(seconds, 3),
        "seconds_all_repeats": [round(t, 3) for t in timings],
        "pairs_per_s": round(pairs / seconds, 2),
        "generation_seconds": round(generation_s, 3),
        "target_seconds_1000x256": TARGET_SECONDS,
        # The target is stated for the full run only; smoke runs do not extrapolate to it.
        "target_met": bool(seconds < TARGET_SECONDS) if (pairs, size) == (1000, 256) else None,
        "peaks_per_spectrum_first50": {
            "true_mean": float(np.mean(true_counts)),
            "pred_mean": float(np.mean(pred_counts)),
        },
        # JSON has no infinities: a mean that is not finite (peak R^2 fills -inf) is null
        "metric_means": {name: round(m, 6) if np.isfinite(m := float(table[name].mean())) else None
                         for name in metrics.METRIC_NAMES},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="number of spectrum pairs")
    parser.add_argument("--size", type=int, default=256, help="spectrum side, pixels")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=64, help="spectra per filter batch")
    parser.add_argument("--workers", type=int, default=1, help="threads of compute_many")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; the fastest is reported")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.size < 16 or args.repeats < 1 or args.workers < 1:
        parser.error("need --pairs >= 1, --size >= 16, --repeats >= 1, --workers >= 1")
    record = run(
        args.pairs, args.size, seed=args.seed, chunk_size=args.chunk_size, workers=args.workers, repeats=args.repeats
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    common.write_json(args.out, record)
    print(json.dumps({k: record[k] for k in ("pairs", "size", "workers", "seconds", "pairs_per_s", "target_met")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
