"""Wall time and peak memory of ``mssr enhance`` on a full-size 1H-15N HSQC plane, as a user runs it.

What is measured: one ``python -m mssr.cli enhance FILE --from-mhz 600 --to-mhz 900 --model DIR
-o OUT`` per run, as a child process (interpreter start, imports, reading, model load, CUDA
initialisation, sampling, writing: everything a user waits for), its wall time, the sampling time
that ``mssr enhance`` itself prints, and the child's peak resident memory (``ru_maxrss`` of that
child, read by a small launcher process; on CUDA the GPU memory is not in it).

The plane: a synthetic 1H-15N HSQC of a real protein's assigned shifts
(:func:`mssr.data.synthetic.render_spectrum`, RefDB via ``makeshift-nmr``) recorded at 600 MHz,
2048 points in 1H (direct) x 1496 points in 15N, over the demo windows: 1H 11.5 .. 5.5 ppm
(6 ppm = 3600 Hz at 600 MHz: the amide region extracted after processing a typical 16 ppm
acquisition) and 15N 134 .. 104 ppm (30 ppm = 1824 Hz at 60.8 MHz, the usual HSQC 15N width),
written as an NMRPipe file through :func:`mssr.io.write`.

Protocols: ``default`` is whatever ``mssr enhance`` does without sampler options
(:func:`mssr.enhance.run.sample_config` is read for its sampler, steps and repeats); ``paper`` is
``--sampler ddpm --steps 500 --repeats 5``. Where a protocol has more steps than ``--max-steps``
(default: none on CUDA, 8 on the CPU), it is not run whole: the command is timed with two small
step counts k1 < k2 at the same sampler and repeats, every step costing one network call per
chain, and the wall time of the full protocol is extrapolated linearly,
``t(steps) = t(k1) + (steps - k1) (s(k2) - s(k1)) / (k2 - k1)`` with ``s`` the sampling seconds
that ``mssr enhance`` reports; the record says so (``extrapolated``). On CUDA a protocol of more
than 50 steps is probed the same way first and run whole only when the estimate fits the time limit
of one command. Peak memory does not grow with the step count.

The model: ``--model DIR``; else the shipped model (``mssr/enhance/model``) or the model ``mssr
enhance`` uses by default (:data:`mssr.enhance.run.DEFAULT_MODEL_DIR`, under the repository), the
first that exists; else a model
with untrained, seeded weights is built for the timing (``--build-model paper``: the paper's
network, :data:`mssr.model.network.PAPER_CONFIG`, T = 2000; ``tiny``: 16 px, for the smoke run).
Weights do not change the time of a network call; the outputs of an untrained model are not
estimates and are not looked at.

    python benchmarks/bench_enhance.py --device cpu --threads 2 --model results/release/models/mssr \\
        --out benchmarks/results/enhance_cpu.json
    python benchmarks/bench_enhance.py --device cuda --out benchmarks/results/enhance_cuda.json
    python benchmarks/bench_enhance.py --device cpu --smoke --out /tmp/enhance_smoke.json   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from pathlib import Path

import common  # noqa: E402  (this folder is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL_DIR = Path("mssr/enhance/model")  # where scripts/ship_model.sh puts the release model

FROM_MHZ = 600.0
TO_MHZ = 900.0
PLANE_SHAPE = (1496, 2048)  # (15N, 1H) points: 1H direct, last
SMOKE_SHAPE = (96, 128)
PAPER_ARGS = {"sampler": "ddpm", "steps": 500, "repeats": 5, "paper": True}
PROBE_ABOVE_STEPS = 50  # on CUDA, protocols of more steps are probed before they are run whole
# Targets of the GPU issue, checked against the measured wall time of the whole command.
TARGET_SECONDS = {("cuda", "paper"): 30.0}
TARGET_CPU_DEFAULT = {"seconds": 180.0, "peak_rss_mib": 4096.0, "threads": 2}


# ---------------------------------------------------------------------------------------------- input


def write_plane(path: Path, shape: tuple[int, int], *, seed: int) -> dict:
    """Render a 600 MHz 1H-15N HSQC of one RefDB protein on ``shape`` (15N, 1H) points; write it as NMRPipe.

    Returns the plane's description (protein, peaks, axes with ppm limits and spectral widths in Hz).
    """
    import numpy as np

    from mssr import io as mssr_io
    from mssr.data import synthetic

    protein = synthetic.pick_proteins(1, seed=seed)[0]
    table = synthetic.protein_table(None, protein)
    spectrum = synthetic.render_spectrum(table, "hsqc_15n", FROM_MHZ, sizes=shape, rng=np.random.default_rng(seed))
    mssr_io.write(spectrum, path, format="pipe")
    return {
        "file": path.name, "format": "pipe", "bytes": path.stat().st_size, "shape": list(spectrum.shape),
        "points": {a.nucleus: a.size for a in spectrum.axes},
        "experiment": "1H-15N HSQC (synthetic, mssr.data.synthetic.render_spectrum)",
        "protein": spectrum.meta["protein"], "n_peaks": spectrum.meta["n_peaks"], "field_mhz": FROM_MHZ,
        "axes": [{"nucleus": a.nucleus, "points": a.size, "ppm_limits": list(a.ppm_limits), "sw_hz": a.sw_hz,
                  "obs_mhz": a.obs_mhz} for a in spectrum.axes],
        "windows_note": "1H 11.5..5.5 ppm (the amide region of a typical 16 ppm acquisition), "
                        "15N 134..104 ppm (the usual 30 ppm HSQC width)",
    }


# ---------------------------------------------------------------------------------------------- model


def build_model(directory: Path, kind: str, *, seed: int) -> dict:
    """An untrained, seeded MSSR model (all 14 Table-1 factors) saved with :func:`mssr.model.network.save_model`."""
    import torch

    from mssr.factors import FACTORS
    from mssr.model.diffusion import DiffusionConfig
    from mssr.model.network import PAPER_CONFIG, ModelConfig, build_unet, count_parameters, save_model

    if kind == "paper":
        cfg, diffusion = PAPER_CONFIG, DiffusionConfig(timesteps=2000)
    elif kind == "tiny":
        cfg = ModelConfig(sample_size=16, block_out_channels=(8, 16), layers_per_block=1,
                          attention_levels=(False, True), mid_attention=True, attention_head_dim=8,
                          conditioning="class", norm_num_groups=4)
        diffusion = DiffusionConfig(timesteps=1000)
    else:
        raise ValueError(f"build_model: kind must be 'paper' or 'tiny', got {kind!r}")
    torch.manual_seed(seed)
    unet = build_unet(cfg)
    save_model(unet, cfg, directory, extra={"diffusion": diffusion.to_dict(), "factors": [float(f) for f in FACTORS],
                                            "kind": "mssr", "untrained": True, "built_by": "benchmarks/bench_enhance.py"})
    return {"dir": str(directory), "built": kind, "trained": False, "parameters": count_parameters(unet),
            "config": cfg.to_dict(), "diffusion": diffusion.to_dict(),
            "note": "untrained, seeded weights built for the timing: the time of a network call does not depend "
                    "on the weights; the outputs are not estimates"}


def describe_model(directory: Path) -> dict:
    """What the model directory's config.json says (architecture, diffusion, provenance)."""
    from mssr.model.network import CONFIG_FILE

    document = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    extra = document.get("extra", {})
    return {"dir": str(directory), "built": None, "trained": not extra.get("untrained", False),
            "config": document.get("model"), "diffusion": extra.get("diffusion"), "weights": document.get("weights"),
            "kind": extra.get("kind"), "git_commit": extra.get("git_commit"),
            "mlflow_run_id": extra.get("mlflow_run_id")}


# ---------------------------------------------------------------------------------------------- runs


# A small Python between this process and the timed one: a child's ru_maxrss includes the RSS of
# the process it was forked from (Linux carries the forking process's high-water mark across exec),
# so the timed command is started from this ~10 MB launcher, never from the benchmark (hundreds of
# MB with torch imported). The launcher reports its one child's RUSAGE_CHILDREN.ru_maxrss.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    json.dump({"returncode": code, "wall_seconds": wall,
               "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, f)
"""


def run_child(command: list[str], *, log_path: Path, timeout: float, env: dict) -> dict:
    """Run ``command`` with stdout and stderr to ``log_path``: wall seconds, exit status, the child's peak RSS.

    The command runs under a small launcher process (see ``_LAUNCHER``) that times it and reads
    ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (KiB on Linux) after it exits: the peak
    resident memory of that command alone. After ``timeout`` seconds its process group is killed.
    """
    report = log_path.with_suffix(".rusage.json")
    report.unlink(missing_ok=True)
    timed_out = False
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), *command], stdout=log,
                                 stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        outer = time.perf_counter() - start
    measured = json.loads(report.read_text()) if report.is_file() else {}
    returncode = measured.get("returncode", child.returncode)
    text = log_path.read_text(errors="replace")
    sampling = None
    for line in text.splitlines():
        if line.startswith("seconds:"):
            try:
                sampling = float(line.split(":", 1)[1])
            except ValueError:
                pass
    return {"wall_seconds": measured.get("wall_seconds", outer), "returncode": returncode, "timed_out": timed_out,
            "sampling_seconds": sampling,
            "peak_rss_mib": measured["ru_maxrss_kib"] / 1024 if "ru_maxrss_kib" in measured else None,
            "log_tail": text[-1500:] if returncode else None}


def enhance_command(plane: Path, model: Path, output: Path, *, device: str, threads: int | None,
                    sampler_args: dict) -> list[str]:
    command = [sys.executable, "-m", "mssr.cli", "enhance", str(plane), "--from-mhz", f"{FROM_MHZ:g}",
               "--to-mhz", f"{TO_MHZ:g}", "--model", str(model), "-o", str(output), "--device", device,
               "--force", "--quiet"]
    if threads:
        command += ["--threads", str(threads)]
    if sampler_args.get("paper"):
        command.append("--paper")  # pure noise: also for a native model, whose default starts from the input
    for key in ("sampler", "steps", "repeats"):
        if sampler_args.get(key) is not None:
            command += [f"--{key}", str(sampler_args[key])]
    return command


def time_protocol(name: str, sampler_args: dict, full: dict, *, plane: Path, model: Path, work: Path, device: str,
                  threads: int | None, max_steps: int | None, probe_steps: tuple[int, int], runs: int,
                  timeout: float, env: dict, probe_above: int | None = None) -> dict:
    """Time one protocol: whole when its steps fit ``max_steps``, else extrapolated from two probe step counts.

    With ``probe_above``, a protocol of more steps is probed first even when it may run whole, and
    run whole only when the extrapolated wall time fits in 80 % of ``timeout``; otherwise the
    extrapolation is the result (``not_run_whole`` says why).
    """
    output = work / f"hsqc_{name}_mssr900.ft2"

    def timed(args: dict) -> list[dict]:
        rows = []
        for _ in range(runs):
            command = enhance_command(plane, model, output, device=device, threads=threads, sampler_args=args)
            row = run_child(command, log_path=work / f"{name}.log", timeout=timeout, env=env)
            row["arguments"] = command[3:]
            rows.append(row)
            if row["returncode"] != 0:
                break
        return rows

    steps = full["steps"]
    record = {"protocol": name, "sampler": full["sampler"], "steps": steps, "repeats": full["repeats"],
              "options": {k: v for k, v in sampler_args.items() if v is not None}}
    whole = max_steps is None or steps <= max_steps
    probe = not whole or (probe_above is not None and steps > probe_above)
    if probe:
        estimate = _extrapolate(timed, full, probe_steps)
        if not estimate["ok"]:
            record.update({"extrapolated": True, **estimate})
            return record
        if whole and estimate["wall_seconds"] > 0.8 * timeout:
            whole = False
            estimate["not_run_whole"] = (f"the extrapolated {estimate['wall_seconds']:.0f} s exceed 80 % of the "
                                         f"{timeout:.0f} s limit of one command")
        if not whole:
            record.update({"extrapolated": True, **estimate})
            return record
        record["estimate_from_probes"] = estimate
    rows = timed(sampler_args)
    ok = [r for r in rows if r["returncode"] == 0]
    record.update({"extrapolated": False, "runs": rows, "ok": len(ok) == len(rows)})
    if ok:
        best = min(ok, key=lambda r: r["wall_seconds"])
        record.update({"wall_seconds": best["wall_seconds"], "sampling_seconds": best["sampling_seconds"],
                       "peak_rss_mib": max(r["peak_rss_mib"] for r in ok)})
    return record


def _extrapolate(timed, full: dict, probe_steps: tuple[int, int]) -> dict:
    """Time ``full``'s sampler and repeats at two step counts; the full protocol's times, extrapolated linearly."""
    k1, k2 = probe_steps
    probes = {}
    for k in (k1, k2):
        rows = timed({**full, "steps": k})
        probes[k] = rows
        if any(r["returncode"] != 0 for r in rows):
            return {"probes": {str(s): r for s, r in probes.items()}, "ok": False}
    steps = full["steps"]
    wall = {k: min(r["wall_seconds"] for r in rows) for k, rows in probes.items()}
    sampled = {k: min(r["sampling_seconds"] or 0.0 for r in rows) for k, rows in probes.items()}
    # The step cost comes from the sampler's own time: the start of a process (imports) varies by
    # more than a few steps cost, and it does not grow with the steps.
    per_step = max(0.0, (sampled[k2] - sampled[k1]) / (k2 - k1))
    return {
        "ok": True,
        "how": f"{full['sampler']} x {full['repeats']} repeats timed at {k1} and {k2} steps; per_step = "
               f"(sampling({k2}) - sampling({k1})) / {k2 - k1} from the sampling seconds mssr enhance reports; "
               f"wall(steps) = wall({k1}) + (steps - {k1}) x per_step and likewise sampling(steps); one network "
               "call per chain and step",
        "probes": {str(k): rows for k, rows in probes.items()},
        "seconds_per_step": per_step,
        "wall_seconds": wall[k1] + (steps - k1) * per_step,
        "sampling_seconds": sampled[k1] + (steps - k1) * per_step,
        "peak_rss_mib": max(r["peak_rss_mib"] or 0.0 for rows in probes.values() for r in rows),
    }


def default_protocol(model_dir: Path) -> dict:
    """What ``mssr enhance`` runs without sampler options: a native model's own setting, else the paper's.

    For a native model ``steps`` counts the network calls per chain (the schedule's timesteps at or
    below its ``start_step``), so that the extrapolation and the whole-run limit count what costs.
    """
    from mssr.enhance.run import sample_config

    extra = json.loads((Path(model_dir) / "config.json").read_text()).get("extra", {})
    native = extra.get("native")
    if not native:
        defaults = sample_config()
        return {"sampler": defaults.sampler, "steps": defaults.steps, "repeats": defaults.repeats}
    s = native["sample"]
    timesteps = extra["diffusion"]["timesteps"]
    schedule = np.round(np.arange(timesteps, 0, -timesteps / s["steps"])).astype(int) - 1
    calls = int(np.sum(schedule <= s["start_step"])) if s.get("start_step") is not None else int(s["steps"])
    return {"sampler": s["sampler"], "steps": calls, "repeats": s["repeats"]}


# ---------------------------------------------------------------------------------------------- main


def _protocol_used(work: Path, name: str) -> dict | None:
    """Sampler, steps and repeats of the last run of protocol ``name``, from its output's sidecar."""
    sidecar = work / f"hsqc_{name}_mssr900.ft2.json"
    if not sidecar.is_file():
        return None
    protocol = json.loads(sidecar.read_text()).get("protocol") or {}
    return {k: protocol.get(k) for k in ("sampler", "steps", "repeats", "batch_size", "device")}


def machine(device: str) -> dict:
    import platform

    import torch

    record = {"cpu": common.cpu_info(), "platform": platform.platform(), "load_average": common.load_average()}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        record["gpu"] = {"name": props.name, "memory_gib": props.total_memory / 2**30,
                         "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    return record


def targets(record: dict) -> dict:
    """The issue's targets against what was measured (None where this run does not bear on them)."""
    found = {}
    device = record["settings"]["device"]
    for row in record["protocols"]:
        limit = TARGET_SECONDS.get((device, row["protocol"]))
        if limit is not None and not record["smoke"]:
            found[f"{row['protocol']}_protocol_seconds"] = {
                "target": f"<= {limit:g} s wall for the {'x'.join(map(str, PLANE_SHAPE))} plane",
                "measured": row.get("wall_seconds"), "extrapolated": row.get("extrapolated"),
                "met": row.get("wall_seconds") is not None and row["wall_seconds"] <= limit}
        if (device == "cpu" and row["protocol"] == "default" and not record["smoke"]
                and record["settings"]["threads"] == TARGET_CPU_DEFAULT["threads"]):
            found["cpu_default_2_threads"] = {
                "target": f"<= {TARGET_CPU_DEFAULT['seconds']:g} s and peak RSS < "
                          f"{TARGET_CPU_DEFAULT['peak_rss_mib']:g} MiB on 2 cores (shipped model)",
                "measured_seconds": row.get("wall_seconds"), "measured_peak_rss_mib": row.get("peak_rss_mib"),
                "met": (row.get("wall_seconds") or 1e9) <= TARGET_CPU_DEFAULT["seconds"]
                and (row.get("peak_rss_mib") or 1e9) < TARGET_CPU_DEFAULT["peak_rss_mib"]}
    return found


def run(args) -> dict:
    from mssr.enhance.run import DEFAULT_MODEL_DIR, sample_config

    started = time.perf_counter()
    shape = SMOKE_SHAPE if args.smoke else PLANE_SHAPE
    max_steps = args.max_steps if args.max_steps is not None else (8 if args.smoke or args.device == "cpu" else None)
    if max_steps == 0:
        max_steps = None
    work = Path(tempfile.mkdtemp(prefix="bench_enhance_"))
    try:
        plane = work / "hsqc_600.ft2"
        start = time.perf_counter()
        plane_record = write_plane(plane, shape, seed=args.seed)
        plane_record["render_seconds"] = time.perf_counter() - start
        log(f"plane {plane_record['shape']} ({plane_record['n_peaks']} peaks) written")
        found = next((d for d in (ROOT / SHIPPED_MODEL_DIR, ROOT / DEFAULT_MODEL_DIR)
                      if (d / "config.json").is_file() and (d / "model.safetensors").is_file()), None)
        if args.model is not None:
            model_dir = Path(args.model).resolve()
            model = describe_model(model_dir)
        elif found is not None and not args.smoke and args.build_model is None:
            model_dir = found
            model = {**describe_model(model_dir), "source": f"found at {model_dir.relative_to(ROOT)}"}
        else:
            model_dir = work / "model"
            model = build_model(model_dir, args.build_model or ("tiny" if args.smoke else "paper"), seed=args.seed)
        log(f"model {model_dir}")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        protocols = {"default": ({}, default_protocol(model_dir)),
                     "paper": (dict(PAPER_ARGS), dict(PAPER_ARGS))}
        rows = []
        for name in args.protocols:
            given, full = protocols[name]
            same = next((r for r in rows if (r["sampler"], r["steps"], r["repeats"]) ==
                         (full["sampler"], full["steps"], full["repeats"])), None)
            if same is not None:  # the default protocol is the paper's: one timing serves both
                rows.append({**same, "protocol": name, "options": {k: v for k, v in given.items() if v is not None},
                             "same_as": same["protocol"]})
                log(f"{name}: the same sampler, steps and repeats as {same['protocol']}: not run again")
                continue
            row = time_protocol(name, given, full, plane=plane, model=model_dir, work=work, device=args.device,
                                threads=args.threads, max_steps=max_steps, probe_steps=tuple(args.probe_steps),
                                runs=args.runs, timeout=args.timeout, env=env,
                                probe_above=None if args.smoke or args.device == "cpu" else PROBE_ABOVE_STEPS)
            used = _protocol_used(work, name)
            if used is not None:  # what the sidecar of the last run (a probe, if extrapolated) records
                row["protocol_of_last_run" if row.get("extrapolated") else "protocol_used"] = used
            rows.append(row)
            log(f"{name}: {row.get('wall_seconds', float('nan')):.1f} s wall"
                f"{' (extrapolated)' if row.get('extrapolated') else ''}, ok={row['ok']}")
        sidecars = sorted(work.glob("*.ft2.json"))
        processing = json.loads(sidecars[-1].read_text()).get("processing") if sidecars else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "benchmark": "mssr enhance on a full-size 1H-15N HSQC plane: wall time and peak memory of the command",
        "smoke": bool(args.smoke),
        "date": common.utc_now(),
        "machine": machine(args.device),
        "versions": common.versions("torch", "diffusers", "numpy", "nmrglue", "mssr"),
        "settings": {"device": args.device, "threads": args.threads, "from_mhz": FROM_MHZ, "to_mhz": TO_MHZ,
                     "runs_per_protocol": args.runs, "max_steps_run_whole": max_steps,
                     "probe_steps": list(args.probe_steps), "timeout_seconds": args.timeout},
        "plane": plane_record,
        "model": model,
        "what_is_timed": "the whole `python -m mssr.cli enhance` child process (start, imports, read, model load, "
                         "device init, sampling, writing); sampling_seconds is what mssr enhance reports for the "
                         "sampler alone; peak_rss_mib is that child's ru_maxrss (host memory only)",
        "enhance_processing": processing,
        "protocols": rows,
        "elapsed_seconds": time.perf_counter() - started,
    }
    record["targets"] = targets(record)
    return record


def log(message: str) -> None:
    print(f"[bench_enhance {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _pair(text: str) -> tuple[int, int]:
    try:
        k1, k2 = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected two comma-separated step counts, got {text!r}") from exc
    if not 1 <= k1 < k2:
        raise argparse.ArgumentTypeError(f"expected 1 <= k1 < k2, got {text!r}")
    return k1, k2


def _protocols(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = set(names) - {"default", "paper"}
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"protocols are 'default' and 'paper', got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda (passed to mssr enhance --device)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--model", default=None, help="model directory (default: enhance's default model, else built)")
    parser.add_argument("--build-model", dest="build_model", choices=("paper", "tiny"), default=None,
                        help="time an untrained model of this size (default when no model is found: paper)")
    parser.add_argument("--protocols", type=_protocols, default=["default", "paper"], help="default,paper")
    parser.add_argument("--threads", type=int, default=None, help="mssr enhance --threads (CPU)")
    parser.add_argument("--max-steps", dest="max_steps", type=int, default=None,
                        help="protocols with more steps are extrapolated (default: 8 on the CPU, none on CUDA; "
                             "0: run everything whole)")
    parser.add_argument("--probe-steps", dest="probe_steps", type=_pair, default=(2, 6),
                        help="the two step counts an extrapolation is timed at (default 2,6)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per protocol or probe (the fastest is kept)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one enhance command may take")
    parser.add_argument("--smoke", action="store_true", help="seconds: a 96 x 128 plane and a tiny model (CI)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        parser.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    for key in ("threads", "runs"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            parser.error(f"--{key} must be >= 1")
    if args.max_steps is not None and args.max_steps < 0:
        parser.error("--max-steps must be >= 0")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available")
    record = run(args)
    common.write_json(args.out, record)
    print(json.dumps({row["protocol"]: {"wall_seconds": row.get("wall_seconds"),
                                        "sampling_seconds": row.get("sampling_seconds"),
                                        "peak_rss_mib": row.get("peak_rss_mib"),
                                        "extrapolated": row.get("extrapolated"), "ok": row["ok"]}
                      for row in record["protocols"]} | {"targets": record["targets"]}, indent=1))
    return 0 if all(row["ok"] for row in record["protocols"]) else 1


if __name__ == "__main__":
    sys.exit(main())
