"""Time the demo as a newcomer runs it: a fresh clone, `bash scripts/demo.sh` (``.venv`` setup included).

    python benchmarks/bench_demo.py --out benchmarks/results/demo_cpu.json            # clone HEAD, run, record
    python benchmarks/bench_demo.py --workdir /tmp/clone --wall-s 1073 --out ...      # record a finished run

The record holds the wall time, the commit, the machine and every job's Snakemake benchmark
(``results/demo/benchmarks/*.tsv``: wall seconds, max RSS), summed by rule. Target: 20 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def collect(workdir: Path, wall_s: float) -> dict:
    """The record of a finished demo run in ``workdir``."""
    jobs = {}
    by_rule: dict[str, float] = defaultdict(float)
    for tsv in sorted((workdir / "results/demo/benchmarks").glob("*.tsv")):
        header, row = tsv.read_text().splitlines()[:2]
        values = dict(zip(header.split("\t"), row.split("\t")))
        seconds = float(values["s"])
        jobs[tsv.stem] = {"s": seconds, "max_rss_mb": float(values["max_rss"]) if values["max_rss"] != "-" else None}
        rule = tsv.stem.rsplit("_", 1)[0] if tsv.stem[-5:].replace(".", "").isdigit() else tsv.stem
        by_rule[rule] += seconds
    commit = subprocess.run(["git", "-C", str(workdir), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "benchmark": "bash scripts/demo.sh on a fresh clone (.venv setup included)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "cpu_count": os.cpu_count(),
        "wall_s": round(wall_s, 1),
        "target_s": 1200,
        "job_seconds_by_rule": {k: round(v, 1) for k, v in sorted(by_rule.items())},
        "job_seconds_total": round(sum(by_rule.values()), 1),
        "jobs": jobs,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON record to write")
    parser.add_argument("--workdir", type=Path, help="a clone where the demo already ran (with --wall-s)")
    parser.add_argument("--wall-s", type=float, help="its measured wall time, seconds")
    args = parser.parse_args(argv)
    if (args.workdir is None) != (args.wall_s is None):
        parser.error("--workdir and --wall-s go together")
    if args.workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="mssr-demo-"))
        subprocess.run(["git", "clone", "-q", str(REPO), str(workdir)], check=True)
        start = time.perf_counter()
        subprocess.run(["bash", "scripts/demo.sh"], cwd=workdir, check=True)
        wall = time.perf_counter() - start
    else:
        workdir, wall = args.workdir, args.wall_s
    record = collect(workdir, wall)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"demo: {record['wall_s']:.0f} s wall (target {record['target_s']} s), "
          f"jobs {record['job_seconds_total']:.0f} s; {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
