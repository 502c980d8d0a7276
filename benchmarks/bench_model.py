"""Sampling and training throughput of the MSSR network against the device's limit.

Measures, for one model size on one device, in one process:

- FLOP per forward and per training step (``torch.utils.flop_counter.FlopCounterMode`` on the meta
  device: shapes only, no arithmetic). The counter has no formula for the CPU attention kernel
  (``_scaled_dot_product_flash_attention_for_cpu``), so the attention FLOP
  (QK^T and AV: ``4 B heads L^2 head_dim``, L = H x W tokens of the level) are added from the
  model config and checked against a count with the math backend of
  ``scaled_dot_product_attention``, whose matmuls the counter sees. Normalizations, activations
  and the softmax are not counted (the usual MFU convention).
- The device's peak: for a CPU, cores x nominal clock x FMA width from ``/proc/cpuinfo``, and a
  large fp32 matmul as the practical ceiling; for a GPU, the vendor's dense peak and a large
  bf16 matmul.
- Network evaluations per second against the batch size (forward only), then the options of
  :class:`mssr.model.network.NoisePredictor` (channels-last, ``torch.compile``) at the best batch size.
- Sampling with the paper's protocol (DDPM respaced to 500 steps, 5 repeats per spectrum):
  :meth:`mssr.model.diffusion.Diffusion.sample` advancing spectra x repeats chains together in network
  calls of the best batch size (one call per step where it holds them all), bf16 autocast on CUDA.
  Only the last ``--timed-steps`` steps of the 500-step schedule are run
  (``start_step``) and timed, setup included; a step costs the same at every timestep, so
  spectra/s = chain evaluations/s / (500 x 5).
- The same against a naive reference in the same process: one spectrum and one repeat at a time,
  fp32, eager, a Python loop over a diffusers ``DDPMScheduler`` as the tutorials write it.
- Training: the real step (:meth:`~mssr.model.diffusion.Diffusion.training_loss`, backward, gradient
  clipping, AdamW, the EMA of :mod:`mssr.model.train`), bf16 autocast on CUDA.
- Where the time goes: ``torch.profiler`` over a few sampling steps, top operators.
- The paper grid's compute (15 trainings; 350 test spectra x 14 factors x 2 model families x 500
  steps x 5 repeats) from the FLOP counts of the paper network, as device-hours at a peak and at
  an assumed MFU: an estimate, not a measurement.

Sizes: ``demo`` is the network of the demo pipeline (``config.yaml``: model section at
``data.size`` px, its diffusion section); ``paper`` is :data:`mssr.model.network.PAPER_CONFIG` at 256 px
with T = 2000; ``release`` is ``configs/release.yaml`` applied on top of ``config.yaml`` (the shipped
model's native network at its patch side, through :func:`mssr.config.native_configs`, as its
training reads it).

On CUDA everything runs under bf16 autocast; the targets (``targets`` in the record) are set against
the measured bf16 matmul ceiling (``torch.mm`` of two random 8192 x 8192 bf16 matrices, best of repeats),
and the MFU against the vendor's nominal dense peak (H200 SXM: 989.4 TFLOP/s, see ``GPU_PEAKS``).
``--budget-seconds`` bounds the run: stages that would not fit are skipped and say so, and the JSON
is rewritten after every stage (``complete: false`` until the end), so a run stopped from outside
still leaves what it measured.

    python benchmarks/bench_model.py --size demo --device cpu --out benchmarks/results/model_cpu_demo.json
    python benchmarks/bench_model.py --size paper --device cpu --out benchmarks/results/model_cpu_paper.json
    python benchmarks/bench_model.py --size paper --device cuda --budget-seconds 300 \
        --out benchmarks/results/model_cuda_paper.json                  # benchmarks/gpu.sh runs this
    python benchmarks/bench_model.py --size release --device cuda --only training \
        --out benchmarks/results/model_cuda_release.json                # configs/release.yaml's network
    python benchmarks/bench_model.py --size demo --device cpu --smoke --out /tmp/model_smoke.json   # seconds
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import common  # noqa: E402  (this folder is on sys.path when run as a script)

import torch
import yaml

from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.factors import FACTORS, factor_to_class
from mssr.model.network import PAPER_CONFIG, ModelConfig, NoisePredictor, build_unet, count_parameters

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG_FILE = ROOT / "config.yaml"
PAPER_CONFIG_FILE = ROOT / "configs" / "paper.yaml"
RELEASE_CONFIG_FILE = ROOT / "configs" / "release.yaml"

# The paper's evaluation grid: 350 test spectra, the 14 factors of Table 1, two
# model families (MSSR and the single-factor baselines), 15 trained networks (MSSR + 14 baselines).
PAPER_TEST_SPECTRA = 350
PAPER_FAMILIES = 2
PAPER_MODELS = 1 + len(FACTORS)
# Training spectra: the 80/10/10 split by protein makes the training set ~8x the test set.
PAPER_TRAIN_SPECTRA = 8 * PAPER_TEST_SPECTRA
ASSUMED_MFU = 0.40
# GroupNorm, SiLU and the elementwise ops are memory-bound; a UNet that does not fuse them may reach less.
PESSIMISTIC_MFU = 0.25

# Dense peaks from the vendors' data sheets, FLOP/s: (bf16, tf32, fp32 non-tensor). The sheets give
# tensor-core rates "with sparsity" (2:4); the dense rate is half. Matched in this order on the
# name torch reports, so the longer names come first.
GPU_PEAKS = {
    "H100 PCIe": (756e12, 378e12, 51.2e12),
    "H100 NVL": (835e12, 418e12, 60e12),
    "H100": (989.4e12, 494.7e12, 66.9e12),  # SXM5
    # H200 NVL: 1671 TFLOP/s bf16 with sparsity. H200 SXM ("NVIDIA H200"): 1979 sparse = 989.4 dense,
    # the H100 SXM's tensor cores (NVIDIA H200 Tensor Core GPU data sheet).
    "H200 NVL": (835.5e12, 417.5e12, 60e12),
    "H200": (989.4e12, 494.7e12, 66.9e12),
    "A100": (312e12, 156e12, 19.5e12),
}
GPU_PEAK_SOURCE = ("NVIDIA data sheet (H100 / H200 Tensor Core GPU), dense = half the 'with sparsity' tensor "
                   "rate")
H100_SXM_BF16 = GPU_PEAKS["H100"][0]
# Targets of the GPU issue, as fractions of the measured bf16 matmul ceiling, and the batched/naive ratio.
TARGET_FRACTION_OF_MATMUL = 0.40
TARGET_BATCHED_OVER_NAIVE = 20.0

# ---------------------------------------------------------------------------------------------- setup


def read_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def merged(base: dict, overlay: dict) -> dict:
    """``overlay`` on top of ``base``, nested mappings merged key by key (as Snakemake's --configfile)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def size_config(size: str) -> dict:
    """The pipeline config of a demo or release run (config.yaml, with configs/release.yaml on top)."""
    cfg = read_yaml(DEMO_CONFIG_FILE)
    if size == "release":
        if not RELEASE_CONFIG_FILE.is_file():
            raise SystemExit(f"--size release: {RELEASE_CONFIG_FILE.relative_to(ROOT)} does not exist")
        cfg = merged(cfg, read_yaml(RELEASE_CONFIG_FILE))
    return cfg


def model_setup(size: str) -> tuple[ModelConfig, DiffusionConfig, str]:
    """The network and schedule of ``size`` and where they come from."""
    if size == "paper":
        return PAPER_CONFIG, DiffusionConfig(timesteps=2000), "mssr.model.network.PAPER_CONFIG at 256 px, T = 2000"
    from mssr.config import diffusion_config, model_config, native_configs

    cfg = size_config(size)
    if size == "release":
        native = native_configs(cfg)
        return (native["model"], native["diffusion"],
                f"{DEMO_CONFIG_FILE.name} + configs/{RELEASE_CONFIG_FILE.name}: the native model "
                f"(mssr.config.native_configs: native.model at the {native['model'].sample_size}-point patch side)")
    return (model_config(cfg), diffusion_config(cfg),
            f"{DEMO_CONFIG_FILE.name}: model section at data.size = {cfg['data']['size']} px, diffusion section")


def train_batch_size(size: str) -> int:
    """Spectra (patches for the native model) per optimizer step of ``size``'s training."""
    if size == "paper":
        return paper_protocol()["train_batch_size"]
    cfg = size_config(size)
    if size == "release":
        from mssr.config import native_configs

        return int(native_configs(cfg)["train"].batch_size)
    return int(cfg["train"]["batch_size"])


def paper_protocol() -> dict:
    """Steps, repeats and epochs of configs/paper.yaml (the paper's values)."""
    cfg = read_yaml(PAPER_CONFIG_FILE)
    return {"sampler": cfg["sample"]["sampler"], "steps": int(cfg["sample"]["steps"]),
            "repeats": int(cfg["sample"]["repeats"]), "epochs": int(cfg["train"]["epochs"]),
            "baseline_epochs": int(cfg["baseline"]["epochs"]), "train_batch_size": int(cfg["train"]["batch_size"])}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def example_inputs(cfg: ModelConfig, n: int, device: torch.device, seed: int = 0):
    """n low-field-like spectra in [-1, 1] (N, 1, S, S) and their Table-1 factors (float64, CPU)."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.sample_size
    x_lr = torch.tanh(torch.randn((n, 1, s, s), generator=g)).to(device)
    factors = torch.tensor([float(FACTORS[i % len(FACTORS)]) for i in range(n)], dtype=torch.float64)
    return x_lr, factors


# ---------------------------------------------------------------------------------------------- FLOP


def attention_flops(cfg: ModelConfig, batch: int = 1) -> int:
    """QK^T and AV FLOP of every self-attention layer of the UNet: sum of 4 B L^2 C (C = heads x head_dim).

    Down levels have ``layers_per_block`` attention layers, up levels one more, the bottleneck one;
    level k works on (S / 2^k)^2 tokens of ``block_out_channels[k]`` channels.
    """
    total = 0
    for level, (channels, attended) in enumerate(zip(cfg.block_out_channels, cfg.attention_levels)):
        if attended:
            tokens = (cfg.sample_size // 2**level) ** 2
            total += (2 * cfg.layers_per_block + 1) * 4 * batch * tokens**2 * channels
    if cfg.mid_attention:
        tokens = (cfg.sample_size // 2 ** (cfg.levels - 1)) ** 2
        total += 4 * batch * tokens**2 * cfg.block_out_channels[-1]
    return total


def _flop_inputs(cfg: ModelConfig, device) -> tuple:
    s = cfg.sample_size
    x = torch.zeros((1, 1, s, s), device=device)
    return x, torch.zeros(1, dtype=torch.int64, device=device), torch.tensor([2.0], dtype=torch.float64)


def _count_forward(predictor: NoisePredictor, inputs: tuple, *, math_attention: bool) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    backend = sdpa_kernel([SDPBackend.MATH]) if math_attention else contextlib.nullcontext()
    with torch.inference_mode(), backend, counter:
        x, t, f = inputs
        predictor(x, x, t, f)
    return counter.get_total_flops()


def count_flops(cfg: ModelConfig, diffusion_cfg: DiffusionConfig) -> dict:
    """FLOP per sample of a forward and of a training step (forward + backward), on the meta device.

    On the meta device ``scaled_dot_product_attention`` is decomposed into matmuls, which
    ``FlopCounterMode`` counts, so these totals include the attention; see
    :func:`check_flops_on_device` for the count on the real device.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        predictor = NoisePredictor(build_unet(cfg))
    inputs = _flop_inputs(cfg, "meta")
    forward = _count_forward(predictor, inputs, math_attention=False)
    predictor.train()
    counter = FlopCounterMode(display=False)
    with counter:
        x, _, f = inputs
        Diffusion(diffusion_cfg).training_loss(predictor, x, x, f).backward()
    return {"forward_per_sample": forward, "training_step_per_sample": counter.get_total_flops(),
            "attention_per_sample_by_hand": attention_flops(cfg, 1)}


def check_flops_on_device(predictor: NoisePredictor, cfg: ModelConfig, device: torch.device, meta_forward: int) -> dict:
    """Count one forward (batch 1) on ``device`` with the default attention kernel and with the math backend.

    ``FlopCounterMode`` has no formula for the CPU attention kernel
    (``_scaled_dot_product_flash_attention_for_cpu``): on the CPU the default count misses the
    attention, and the default count plus :func:`attention_flops` must equal the math-backend
    count and the meta-device count. On CUDA the flash/efficient kernels are counted.
    """
    inputs = _flop_inputs(cfg, device)
    default = _count_forward(predictor, inputs, math_attention=False)
    math_backend = _count_forward(predictor, inputs, math_attention=True)
    by_hand = attention_flops(cfg, 1)
    missed = math_backend - default
    return {
        "counted_default_kernel": default,
        "counted_math_backend": math_backend,
        "attention_by_hand": by_hand,
        "attention_missed_by_counter": missed,
        "default_plus_missing_attention": default + (by_hand if missed else 0),
        "agrees_with_meta_count": default + (by_hand if missed else 0) == meta_forward == math_backend,
        "note": ("FlopCounterMode does not count the CPU attention kernel; its FLOP (4 B heads L^2 head_dim "
                 "per layer) are added by hand and checked against the math backend" if missed else
                 "the default attention kernel is counted by FlopCounterMode on this device"),
    }


# ---------------------------------------------------------------------------------------------- peaks


def _matmul_rate(device: torch.device, dtype: torch.dtype, n: int, min_seconds: float, *,
                 median: list | None = None) -> float:
    """Best achieved FLOP/s of an n x n x n matmul (2 n^3 FLOP) of random matrices, over repeats adding
    up to ``min_seconds`` after three untimed ones; the median rate is appended to ``median`` if given."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn((n, n), generator=g, device=device).to(dtype)
    b = torch.randn((n, n), generator=g, device=device).to(dtype)
    out = torch.empty((n, n), device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b, out=out)
    times = time_calls(lambda: torch.mm(a, b, out=out), device, min_seconds=min_seconds, min_calls=3)
    if median is not None:
        median.append(2.0 * n**3 / statistics.median(times))
    return 2.0 * n**3 / min(times)


def gpu_peak(name: str) -> tuple[str | None, tuple[float, float, float] | None]:
    """(key of :data:`GPU_PEAKS`, its (bf16, tf32, fp32) dense peaks in FLOP/s) for a device name, or (None, None)."""
    matched = next((k for k in GPU_PEAKS if k in name), None)
    return matched, GPU_PEAKS[matched] if matched else None


def device_peaks(device: torch.device, *, smoke: bool) -> dict:
    """Theoretical and measured (matmul) peaks of ``device`` per precision, FLOP/s."""
    if device.type == "cpu":
        info = common.cpu_info()
        theory = common.cpu_peak_fp32(info, threads=torch.get_num_threads())
        n = 256 if smoke else 2048
        measured = _matmul_rate(device, torch.float32, n, 0.05 if smoke else 2.0)
        fp32 = {"theoretical_flops": theory["flops"], "theoretical_source": theory["source"],
                "matmul_flops": measured, "matmul": f"torch.mm fp32 {n} x {n} x {n}, best of repeats",
                "matmul_fraction_of_theoretical": measured / theory["flops"],
                # Above 1 x the nominal clock means the cores run boosted: the clock the matmul implies.
                "matmul_implied_clock_ghz": measured / (theory["cores"] * theory["flop_per_cycle"] * 1e9)}
        return {"fp32": fp32, "bf16": None, "cpu": info}
    name = torch.cuda.get_device_name(device)
    matched, peak = gpu_peak(name)
    n = 2048 if smoke else 8192
    source = f"{GPU_PEAK_SOURCE}: {matched!r} matched on the device name {name!r}"
    median: list = []
    bf16 = {"theoretical_flops": peak[0] if peak else None, "theoretical_source": source if peak else "unknown device",
            "matmul_flops": _matmul_rate(device, torch.bfloat16, n, 0.2 if smoke else 2.0, median=median),
            "matmul": f"torch.mm bf16 {n} x {n} x {n} of random matrices, best of repeats (the ceiling the "
                      "targets are set against)"}
    bf16["matmul_flops_median"] = median[0]
    if peak:
        bf16["matmul_fraction_of_theoretical"] = bf16["matmul_flops"] / peak[0]
    # cuDNN convolutions, most of the network's FLOP, run fp32 inputs in TF32 by default
    # (torch.backends.cudnn.allow_tf32): fp32 runs are set against the TF32 peak, and the matmul
    # ceiling is taken in TF32 too.
    tf32_matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        fp32_matmul = _matmul_rate(device, torch.float32, n // 2, 0.2 if smoke else 2.0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_matmul
    fp32 = {"theoretical_flops": peak[1] if peak else None,
            "theoretical_source": (source + "; TF32 tensor-core peak (cuDNN convolutions use TF32 by default); "
                                   f"non-tensor fp32 peak {peak[2]:.3g}") if peak else "unknown device",
            "matmul_flops": fp32_matmul, "matmul": f"torch.mm fp32 inputs in TF32, {n // 2}^3, best of repeats"}
    props = torch.cuda.get_device_properties(device)
    return {"fp32": fp32, "bf16": bf16, "gpu": {"name": name, "memory_gib": props.total_memory / 2**30,
                                                  "capability": f"{props.major}.{props.minor}"}}


def utilization(flops_per_s: float, peak: dict | None) -> dict:
    """Achieved FLOP/s as a fraction of the theoretical peak and of the measured matmul rate."""
    if not peak:
        return {"achieved_flops": flops_per_s, "mfu": None, "fraction_of_matmul": None}
    theory = peak.get("theoretical_flops")
    return {"achieved_flops": flops_per_s, "mfu": flops_per_s / theory if theory else None,
            "fraction_of_matmul": flops_per_s / peak["matmul_flops"]}


# ---------------------------------------------------------------------------------------------- timing


def time_calls(fn, device: torch.device, *, min_seconds: float, min_calls: int = 2,
               max_calls: int = 10_000) -> list[float]:
    """Wall seconds of successive calls of ``fn`` (device synchronized around each), until both
    ``min_calls`` calls and ``min_seconds`` in total are reached."""
    times: list[float] = []
    while len(times) < min_calls or (sum(times) < min_seconds and len(times) < max_calls):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


class MemoryPeak:
    """Peak memory over a ``with`` block: CUDA ``max_memory_allocated``, or the process RSS on the CPU.

    On the CPU the C heap's free pages are handed back to the OS and ``VmHWM`` is reset first, so
    ``peak_increase_mib`` (peak minus the RSS before) is the memory the block itself needed.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.result: dict = {}

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            self.trimmed = common.release_free_memory()
            self.reset = common.reset_peak_rss()
            self.before = common.rss_mib()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
            kind = "torch.cuda.max_memory_allocated"
        else:
            peak = common.peak_rss_mib()
            kind = ("process peak RSS (VmHWM), reset after malloc_trim" if self.reset and self.trimmed else
                    "process peak RSS (VmHWM reset before)" if self.reset else "process peak RSS since start")
        self.result = {"peak_memory_mib": peak, "memory_before_mib": self.before,
                       "peak_increase_mib": peak - self.before, "memory_kind": kind}
        return False


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------- variants


def parse_variant(name: str) -> dict:
    """Options of a variant name: ``+``-joined channels_last, compile, cudagraphs (compile in mode
    'reduce-overhead'), bf16 (CPU autocast), cudnn_benchmark (``torch.backends.cudnn.benchmark``:
    cuDNN times its algorithms per shape and keeps the fastest); ``eager`` is none of them."""
    tokens = set(name.split("+")) - {"eager"}
    unknown = tokens - {"channels_last", "compile", "cudagraphs", "bf16", "cudnn_benchmark"}
    if unknown:
        raise ValueError(f"unknown variant option(s) {sorted(unknown)} in {name!r}")
    return {"channels_last": "channels_last" in tokens, "compile": bool(tokens & {"compile", "cudagraphs"}),
            "compile_mode": "reduce-overhead" if "cudagraphs" in tokens else "default", "bf16": "bf16" in tokens,
            "cudnn_benchmark": "cudnn_benchmark" in tokens}


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool):
    """``torch.backends.cudnn.benchmark`` set to ``enabled`` inside the block, restored after it."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def make_predictor(base_unet, variant: dict, device: torch.device) -> NoisePredictor:
    """A predictor over a copy of ``base_unet`` with the variant's options, in eval mode."""
    unet = copy.deepcopy(base_unet).to(device)
    return NoisePredictor(unet, channels_last=variant["channels_last"], compile=variant["compile"],
                          compile_mode=variant["compile_mode"]).eval()


def _forward_call(predictor, cfg: ModelConfig, batch: int, device: torch.device, autocast_dtype, timestep: int,
                  benchmark: bool = False):
    x_lr, factors = example_inputs(cfg, batch, device)
    x_t = torch.randn(x_lr.shape, generator=torch.Generator().manual_seed(1)).to(device)
    t = torch.full((batch,), timestep, dtype=torch.int64, device=device)

    def call():
        with torch.inference_mode(), _autocast(device, autocast_dtype), cudnn_benchmark(benchmark):
            return predictor(x_t, x_lr, t, factors)

    return call


def _interleaved(calls: dict, device: torch.device, *, min_seconds: float, min_calls: int, rounds: int = 3) -> dict:
    """Per-call seconds of each named call, timed in ``rounds`` alternating rounds so that a drift
    of the machine's speed (clock, neighbours) touches every call alike."""
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name] += time_calls(call, device, min_seconds=min_seconds / rounds,
                                      min_calls=max(1, math.ceil(min_calls / rounds)))
    return times


def forward_sweep(predictors: dict, cfg: ModelConfig, device: torch.device, batch_sizes, *, autocast_dtype,
                  timestep: int, flops: float, peak: dict | None, min_seconds: float, min_calls: int,
                  rounds: int) -> dict:
    """Network evaluations per second of each predictor at each batch size (forward only, inference mode).

    The predictors are timed alternately at each batch size. Stops at the first out-of-memory
    error, and on CUDA once two batch sizes in a row gain less than 2 % over the best so far.
    """
    rows = {name: [] for name in predictors}
    stalled = 0
    for batch in batch_sizes:
        calls = {name: _forward_call(p, cfg, batch, device, autocast_dtype, timestep) for name, p in predictors.items()}
        try:
            for call in calls.values():
                call()  # warm-up: allocator, oneDNN/cuDNN algorithm choice
            times = _interleaved(calls, device, min_seconds=min_seconds, min_calls=min_calls, rounds=rounds)
        except RuntimeError as exc:
            if not _is_oom(exc):
                raise
            for name in predictors:
                rows[name].append({"batch": batch, "out_of_memory": True})
            if device.type == "cuda":
                torch.cuda.empty_cache()
            break
        best_so_far = max((r["evaluations_per_s"] for rs in rows.values() for r in rs if "evaluations_per_s" in r),
                          default=0.0)
        for name in predictors:
            seconds = statistics.median(times[name])
            rate = batch / seconds
            rows[name].append({"batch": batch, "seconds_per_call": seconds, "calls": len(times[name]),
                               "evaluations_per_s": rate, **utilization(rate * flops, peak)})
        top = max(rs[-1]["evaluations_per_s"] for rs in rows.values())
        stalled = stalled + 1 if top < 1.02 * best_so_far else 0
        if device.type == "cuda" and stalled >= 2:
            break
    return rows


def best_batch(rows: list[dict]) -> int:
    """The smallest batch within 3 % of the highest evaluations/s (less memory and latency for the same rate)."""
    measured = [r for r in rows if "evaluations_per_s" in r]
    top = max(r["evaluations_per_s"] for r in measured)
    return min(r["batch"] for r in measured if r["evaluations_per_s"] >= 0.97 * top)


def measure_variants(base_unet, names, cfg: ModelConfig, device: torch.device, batch: int, *, default_autocast,
                     timestep: int, flops: float, peaks: dict, min_seconds: float, min_calls: int,
                     rounds: int, budget: "Budget | None" = None) -> dict:
    """Forward throughput of each predictor variant at ``batch`` (timed alternately), its first-call
    (compile) time, its deviation from the eager result, and whether a compile fell back to eager.
    A compiled variant is skipped when ``budget`` has less than :data:`COMPILE_SECONDS` left."""
    results, predictors, calls, reference, skipped = {}, {}, {}, None, {}
    for name in names:
        variant = parse_variant(name)
        if variant["bf16"] and device.type == "cuda":
            continue  # the CUDA variants run under bf16 autocast already
        if variant["compile"] and budget is not None and not budget.allows(COMPILE_SECONDS):
            skipped[name] = {**variant, "skipped": f"time budget: {budget.left():.0f} s left, a compile may take "
                                                   f"{COMPILE_SECONDS:.0f} s"}
            continue
        autocast_dtype = torch.bfloat16 if variant["bf16"] else default_autocast
        precision = "bf16" if autocast_dtype is not None else "fp32"
        predictor = make_predictor(base_unet, variant, device)
        call = _forward_call(predictor, cfg, batch, device, autocast_dtype, timestep, variant["cudnn_benchmark"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            synchronize(device)
            start = time.perf_counter()
            out = call()
            synchronize(device)
            first_call = time.perf_counter() - start
            call()
        fallback = [str(w.message) for w in caught if "torch.compile" in str(w.message)]
        out = out.float().cpu()
        if reference is None and name == "eager":
            reference = out
        results[name] = {
            **variant, "precision": precision, "batch": batch, "first_call_seconds": first_call,
            "compiled": predictor.compiled, "compile_fallback": fallback[0] if fallback else None,
            "max_abs_diff_vs_eager": float((out - reference).abs().max()) if reference is not None else None,
        }
        predictors[name], calls[name] = predictor, call
    times = _interleaved(calls, device, min_seconds=min_seconds, min_calls=min_calls, rounds=rounds)
    for name, row in results.items():
        seconds = statistics.median(times[name])
        rate = batch / seconds
        row.update({"seconds_per_call": seconds, "calls": len(times[name]), "evaluations_per_s": rate,
                    **utilization(rate * flops, peaks[row["precision"]])})
    eager = results.get("eager", {}).get("evaluations_per_s")
    for row in results.values():
        row["speedup_vs_eager"] = row["evaluations_per_s"] / eager if eager else None
    return {"results": results, "predictors": predictors, "skipped": skipped}


# ---------------------------------------------------------------------------------------------- sampling


def time_sampling(predictor, diffusion: Diffusion, cfg: ModelConfig, device: torch.device, *, chains: int,
                  batch_size: int, repeats: int, steps: int, timed_steps: int, autocast_dtype, flops: float,
                  peak: dict | None, benchmark: bool = False) -> dict:
    """Diffusion.sample on ``chains`` = spectra x repeats chains, network calls of ``batch_size``
    chains: the last ``timed_steps`` steps of the ``steps``-step DDPM schedule, timed with the
    setup included."""
    spectra = chains // repeats
    x_lr, factors = example_inputs(cfg, spectra, device)
    timesteps = diffusion.schedule_timesteps("ddpm", steps)

    def run(k: int):
        generator = torch.Generator(device=device).manual_seed(0)
        with cudnn_benchmark(benchmark):
            return diffusion.sample(predictor, x_lr, factors, sampler="ddpm", steps=steps, repeats=repeats,
                                    batch_size=batch_size, start_step=timesteps[-k], generator=generator,
                                    progress=False, autocast_dtype=autocast_dtype)

    run(1)  # warm-up (and compilation for this shape)
    with MemoryPeak(device) as memory:
        synchronize(device)
        start = time.perf_counter()
        mean, _ = run(timed_steps)
        synchronize(device)
        seconds = time.perf_counter() - start
    if not torch.isfinite(mean).all():
        raise FloatingPointError("the sampler returned non-finite values")
    rate = chains * timed_steps / seconds
    per_spectrum = steps * repeats
    return {
        "path": "Diffusion.sample (ddpm): spectra x repeats chains advanced together, network calls of batch_size",
        "spectra": spectra, "repeats": repeats, "chains": chains, "batch_size": batch_size,
        "precision": "bf16" if autocast_dtype is not None else "fp32", "cudnn_benchmark": benchmark,
        "timed_steps": timed_steps, "seconds": seconds, "seconds_per_step": seconds / timed_steps,
        "evaluations_per_s": rate, "spectra_per_s": rate / per_spectrum,
        "seconds_per_spectrum": per_spectrum / rate,
        **utilization(rate * flops, peak), **memory.result,
    }


def time_naive(base_unet, diffusion_cfg: DiffusionConfig, cfg: ModelConfig, device: torch.device, *, steps: int,
               timed_steps: int, repeats: int, flops: float, peak: dict | None) -> dict:
    """The tutorial loop: one spectrum, one repeat, fp32, eager, a diffusers DDPMScheduler.

    Runs ``timed_steps`` of the ``steps``-step schedule after two untimed ones.
    """
    from diffusers import DDPMScheduler

    unet = copy.deepcopy(base_unet).to(device).eval()
    scheduler = DDPMScheduler(num_train_timesteps=diffusion_cfg.timesteps, beta_start=diffusion_cfg.beta_start,
                              beta_end=diffusion_cfg.beta_end, beta_schedule="linear")
    scheduler.set_timesteps(steps)
    x_lr, factors = example_inputs(cfg, 1, device)
    label = torch.tensor([factor_to_class(float(factors[0]))], device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    sample = torch.randn(x_lr.shape, generator=generator, device=device)

    def loop(timesteps):
        nonlocal sample
        for t in timesteps:
            with torch.no_grad():
                noise_pred = unet(torch.cat([sample, x_lr], dim=1), t, class_labels=label).sample
            sample = scheduler.step(noise_pred, t, sample, generator=generator).prev_sample

    loop(scheduler.timesteps[:2])
    with MemoryPeak(device) as memory:
        synchronize(device)
        start = time.perf_counter()
        loop(scheduler.timesteps[2 : 2 + timed_steps])
        synchronize(device)
        seconds = time.perf_counter() - start
    rate = timed_steps / seconds
    per_spectrum = steps * repeats
    return {
        "path": "naive: for t in DDPMScheduler.timesteps: unet(cat(x, x_lr), t) under no_grad; scheduler.step "
                "-- one spectrum, one repeat at a time, fp32, eager",
        "batch_size": 1, "precision": "fp32", "timed_steps": timed_steps, "seconds": seconds,
        "seconds_per_step": seconds / timed_steps, "evaluations_per_s": rate,
        "spectra_per_s": rate / per_spectrum, "seconds_per_spectrum": per_spectrum / rate,
        **utilization(rate * flops, peak), **memory.result,
    }


# ---------------------------------------------------------------------------------------------- training


def time_training(base_unet, variant: dict, diffusion: Diffusion, cfg: ModelConfig, device: torch.device, *,
                  batch: int, warmup_steps: int, timed_steps: int, autocast_dtype, flops: float,
                  peak: dict | None, profile_steps: int = 0) -> dict:
    """The training step of :func:`mssr.model.train.train`: loss, backward, clipping at norm 1, AdamW, EMA.

    With ``profile_steps``, that many more steps run under ``torch.profiler`` (``profile`` in the result)."""
    from mssr.model.train import EMA

    unet = copy.deepcopy(base_unet).to(device)
    predictor = NoisePredictor(unet, channels_last=variant["channels_last"], compile=variant["compile"]).train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    ema = EMA(unet, 0.999)
    x0, factors = example_inputs(cfg, batch, device, seed=2)
    x_lr = (x0 + 0.01 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)).to(device)).clamp(-1, 1)
    generator = torch.Generator(device=device)
    losses: list[float] = []

    def step(i: int):
        generator.manual_seed(i)
        with _autocast(device, autocast_dtype):
            loss = diffusion.training_loss(predictor, x0, x_lr, factors, generator=generator)
        losses.append(float(loss.detach()))  # the training loop reads every loss (NaN check, history)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        ema.update(unet, i)

    benchmark = bool(variant.get("cudnn_benchmark"))
    with warnings.catch_warnings(record=True) as caught, cudnn_benchmark(benchmark):
        warnings.simplefilter("always", RuntimeWarning)
        for i in range(warmup_steps):
            step(i + 1)
        with MemoryPeak(device) as memory:
            synchronize(device)
            start = time.perf_counter()
            for i in range(timed_steps):
                step(warmup_steps + i + 1)
            synchronize(device)
            seconds = time.perf_counter() - start
        profiled = None
        if profile_steps:
            from torch.profiler import ProfilerActivity, profile

            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=activities) as prof:
                for i in range(profile_steps):
                    step(warmup_steps + timed_steps + i + 1)
                synchronize(device)
            profiled = top_ops(prof, device, f"{profile_steps} training steps at batch {batch} (after the timed "
                                             "ones)")
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"non-finite training loss: {losses}")
    rate = batch * timed_steps / seconds
    fallback = [str(w.message) for w in caught if "torch.compile" in str(w.message)]
    return {
        "path": "Diffusion.training_loss + backward + clip_grad_norm_(1.0) + AdamW.step + EMA.update",
        "batch_size": batch, "precision": "bf16" if autocast_dtype is not None else "fp32",
        "channels_last": variant["channels_last"], "cudnn_benchmark": benchmark, "compile": predictor.compiled,
        "compile_fallback": fallback[0] if fallback else None,
        "warmup_steps": warmup_steps, "timed_steps": timed_steps, "seconds": seconds,
        "seconds_per_step": seconds / timed_steps, "samples_per_s": rate,
        **utilization(rate * flops, peak), **memory.result, **({"profile": profiled} if profiled else {}),
    }


# ---------------------------------------------------------------------------------------------- profile

# Operator names on the CPU, kernel names on CUDA (cuDNN's convolutions: *fprop*/*dgrad*/*wgrad*,
# implicit GEMM; attention: flash/fmha).
_OP_GROUPS = (
    ("convolution", ("conv", "cudnn", "fprop", "dgrad", "wgrad", "implicit_gemm", "implicit_convolve")),
    ("attention", ("scaled_dot_product", "flash", "attention", "fmha")),
    ("matmul", ("mm", "addmm", "bmm", "linear", "gemm", "matmul")),
    ("group_norm", ("group_norm", "native_group_norm")),
    ("activation", ("silu", "sigmoid")),
)


def _group(name: str) -> str:
    lowered = name.lower()
    for group, keys in _OP_GROUPS:
        if any(k in lowered for k in keys):
            return group
    return "other (elementwise, copies, scheduler)"


def profile_sampling(predictor, diffusion: Diffusion, cfg: ModelConfig, device: torch.device, *, chains: int,
                     batch_size: int, repeats: int, steps: int, profile_steps: int, autocast_dtype,
                     top: int = 15, benchmark: bool = False) -> dict:
    """torch.profiler over ``profile_steps`` sampling steps: top operators by self time, and groups."""
    from torch.profiler import ProfilerActivity, profile

    x_lr, factors = example_inputs(cfg, chains // repeats, device)
    timesteps = diffusion.schedule_timesteps("ddpm", steps)

    def run(k):
        diffusion.sample(predictor, x_lr, factors, sampler="ddpm", steps=steps, repeats=repeats, batch_size=batch_size,
                         start_step=timesteps[-k], generator=torch.Generator(device=device).manual_seed(0),
                         progress=False, autocast_dtype=autocast_dtype)

    with cudnn_benchmark(benchmark):
        run(1)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            run(profile_steps)
            synchronize(device)
    return top_ops(prof, device, f"{profile_steps} sampling steps of {chains} chains; the predictor runs eagerly "
                                 "here (compiled code hides the operators)", top=top)


def top_ops(prof, device: torch.device, what: str, top: int = 15) -> dict:
    """Top operators of a finished ``torch.profiler.profile`` by self time (CUDA time on a GPU), and groups."""
    events = prof.key_averages()
    on_gpu = device.type == "cuda"

    def self_us(e) -> float:
        if on_gpu:
            return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)))
        return float(e.self_cpu_time_total)

    rows = sorted(((e.key, self_us(e), e.count) for e in events), key=lambda r: -r[1])
    total = sum(r[1] for r in rows) or 1.0
    groups: dict[str, float] = {}
    for name, us, _ in rows:
        groups[_group(name)] = groups.get(_group(name), 0.0) + us
    return {
        "what": f"{what}: {'self CUDA' if on_gpu else 'self CPU'} time per operator",
        "total_self_ms": total / 1e3,
        "top_ops": [{"name": name, "self_ms": us / 1e3, "percent": 100 * us / total, "calls": count}
                    for name, us, count in rows[:top]],
        "groups_percent": {k: 100 * v / total for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
    }


# ---------------------------------------------------------------------------------------------- estimate


def grid_estimate(paper_flops: dict, protocol: dict, *, peak_flops: float = H100_SXM_BF16, mfu: float = ASSUMED_MFU,
                  measured: dict | None = None, peak_source: str | None = None) -> dict:
    """Compute of the paper's grid from FLOP counts, in device-hours at ``peak_flops`` and at ``mfu``."""
    evaluations = PAPER_TEST_SPECTRA * len(FACTORS) * PAPER_FAMILIES * protocol["steps"] * protocol["repeats"]
    train_samples = (protocol["epochs"] + len(FACTORS) * protocol["baseline_epochs"]) * PAPER_TRAIN_SPECTRA
    inference = evaluations * paper_flops["forward_per_sample"]
    training = train_samples * paper_flops["training_step_per_sample"]

    def hours(flop, rate):
        return flop / rate / 3600.0

    record = {
        "what": "ESTIMATE from FLOP counts, not a measurement: no GPU was measured for it",
        "grid": {"test_spectra": PAPER_TEST_SPECTRA, "factors": len(FACTORS), "model_families": PAPER_FAMILIES,
                 "steps": protocol["steps"], "repeats": protocol["repeats"], "trained_models": PAPER_MODELS,
                 "epochs": protocol["epochs"], "baseline_epochs": protocol["baseline_epochs"],
                 "train_spectra": PAPER_TRAIN_SPECTRA,
                 "train_spectra_assumption": "8 x the 350 test spectra (80/10/10 split by protein)"},
        "network_evaluations": evaluations, "training_samples": train_samples,
        "inference_flop": inference, "training_flop": training, "total_flop": inference + training,
        "peak_flops": peak_flops,
        "peak_source": peak_source or ("H100 SXM dense bf16, NVIDIA data sheet" if peak_flops == H100_SXM_BF16
                                       else "given"),
        "assumed_mfu": mfu,
        "hours_at_peak": {"inference": hours(inference, peak_flops), "training": hours(training, peak_flops),
                          "total": hours(inference + training, peak_flops)},
        "hours_at_assumed_mfu": {"inference": hours(inference, mfu * peak_flops),
                                 "training": hours(training, mfu * peak_flops),
                                 "total": hours(inference + training, mfu * peak_flops)},
        "pessimistic_mfu": PESSIMISTIC_MFU,
        "hours_at_pessimistic_mfu": {"inference": hours(inference, PESSIMISTIC_MFU * peak_flops),
                                     "training": hours(training, PESSIMISTIC_MFU * peak_flops),
                                     "total": hours(inference + training, PESSIMISTIC_MFU * peak_flops)},
        "not_counted": "validation passes, the steps x repeats sweep, data preparation, checkpoints",
    }
    if measured:
        inf_h = evaluations / measured["evaluations_per_s"] / 3600.0
        train_h = train_samples / measured["samples_per_s"] / 3600.0
        record["hours_at_measured_rates"] = {"device": measured["device"], "inference": inf_h, "training": train_h,
                                             "total": inf_h + train_h}
    return record


# ---------------------------------------------------------------------------------------------- main


COMPILE_SECONDS = 100.0
"""Time budget a torch.compile'd variant needs (first compile of the paper network with a cold
cache, plus its timing); compiled variants are skipped when less is left."""


class Budget:
    """Seconds left of ``seconds`` (None: unbounded) counted from ``started`` (``time.perf_counter``)."""

    def __init__(self, seconds: float | None, started: float):
        self.seconds, self.started = seconds, started

    def left(self) -> float:
        return math.inf if self.seconds is None else self.seconds - (time.perf_counter() - self.started)

    def allows(self, need: float) -> bool:
        return self.left() >= need


def plan(size: str, device: torch.device, smoke: bool, repeats: int, train_batch: int) -> dict:
    """Batch sizes, variants and step counts for a size/device; smoke runs in seconds."""
    cuda = device.type == "cuda"
    if smoke:
        return {"batch_sizes": [1, repeats], "sweep_variants": ["eager"], "variants": ["eager", "channels_last"],
                "timed_steps": 2, "naive_steps": 2, "train_batch": 1 if size == "paper" else 4, "train_warmup": 1,
                "train_steps": 1, "train_batches": [], "profile_steps": 1, "min_seconds": 0.05, "min_calls": 1,
                "rounds": 1}
    # CUDA graphs (compile mode 'reduce-overhead') before plain compile: if the budget holds one compile
    # only, it is the one that also removes the launch gaps.
    gpu_variants = ["eager", "channels_last", "channels_last+cudnn_benchmark",
                    "channels_last+cudnn_benchmark+cudagraphs", "channels_last+cudnn_benchmark+compile"]
    if size in ("paper", "release") and not cuda:
        # ~280 GFLOP per evaluation: seconds per forward on a few CPU cores.
        return {"batch_sizes": [1, 2, 4], "sweep_variants": ["eager"], "variants": ["eager", "channels_last"],
                "timed_steps": 1, "naive_steps": 1, "train_batch": 1, "train_warmup": 1, "train_steps": 1,
                "train_batches": [], "profile_steps": 1, "min_seconds": 0.0, "min_calls": 1, "rounds": 1}
    top = {("demo", False): 8, ("demo", True): 12, ("paper", True): 8, ("release", True): 10}[(size, cuda)]
    return {"batch_sizes": [1] + [repeats * 2**k for k in range(top + 1)],
            "sweep_variants": ["eager", "channels_last"],
            "variants": gpu_variants if cuda else
            ["eager", "channels_last", "compile", "channels_last+compile", "bf16", "channels_last+bf16"],
            "timed_steps": 20, "naive_steps": 100, "train_batch": train_batch,
            # Beside the configured batch, larger ones: where the step stops gaining, the GPU is full.
            "train_batches": [4 * train_batch] if cuda else [],
            "train_warmup": 3, "train_steps": 10 if cuda else 15, "profile_steps": 3,
            "min_seconds": 1.5, "min_calls": 3, "rounds": 3}


def targets(record: dict) -> dict:
    """The GPU issue's targets against the measured figures; where one is missed, the top kernels.

    Sampling and training: achieved FLOP/s at least :data:`TARGET_FRACTION_OF_MATMUL` of the
    measured bf16 matmul ceiling; batched sampling at least :data:`TARGET_BATCHED_OVER_NAIVE`
    times the naive loop's network evaluations per second.
    """
    if record["device"] != "cuda" or record["smoke"]:
        return {"note": "the targets are set for the paper network on CUDA; not evaluated here"}
    ceiling = (record["peaks"].get("bf16") or {}).get("matmul_flops")
    found: dict = {"ceiling": {"what": "measured bf16 matmul (torch.mm 8192^3, random data, best of repeats)",
                               "flops": ceiling}}
    sampling, training = record.get("sampling"), record.get("training")

    def gap(profile: dict | None) -> dict:
        if not profile:
            return {}
        groups = profile["groups_percent"]
        first = next(iter(groups), None)
        hints = {
            "convolution": "the convolutions (cuDNN) dominate: channels_last + cudnn.benchmark, larger batches per "
                           "call, and fewer small-channel convolutions at the full-resolution level",
            "group_norm": "GroupNorm is memory-bound: fuse GroupNorm + SiLU (torch.compile does) and keep bf16",
            "activation": "SiLU and the elementwise ops are memory-bound: fuse them into the convolutions' "
                          "epilogues or the norms (torch.compile)",
            "attention": "attention at the 32 x 32 level: flash attention in bf16 (check the kernel chosen)",
            "other (elementwise, copies, scheduler)": "elementwise ops, copies and casts between the kernels: "
                          "fewer casts (bf16 throughout), fused elementwise code (torch.compile), CUDA graphs "
                          "against launch gaps",
            "matmul": "the linear layers (time embedding, attention projections) at small sizes",
        }
        return {"top_kernels": [{"name": r["name"], "percent": r["percent"]} for r in profile["top_ops"][:5]],
                "groups_percent": groups, "what_would_close_the_gap": hints.get(first, "see the top kernels"),
                "profile": profile["what"]}

    if sampling and ceiling:
        row = sampling["batched"]
        found["sampling_fraction_of_matmul"] = {
            "target": f">= {TARGET_FRACTION_OF_MATMUL:.0%} of the measured bf16 matmul ceiling",
            "measured": row["fraction_of_matmul"], "achieved_flops": row["achieved_flops"],
            "mfu_vs_nominal": row["mfu"], "variant": row.get("variant"), "batch_size": row["batch_size"],
            "met": row["fraction_of_matmul"] >= TARGET_FRACTION_OF_MATMUL}
        if not found["sampling_fraction_of_matmul"]["met"]:
            found["sampling_fraction_of_matmul"].update(gap(record.get("profile")))
        ratio = sampling["speedup_per_evaluation"]
        found["batched_over_naive"] = {
            "target": f">= {TARGET_BATCHED_OVER_NAIVE:g}x the naive loop's evaluations/s",
            "measured": ratio, "batched_evaluations_per_s": row["evaluations_per_s"],
            "naive_evaluations_per_s": sampling["naive"]["evaluations_per_s"],
            "met": ratio >= TARGET_BATCHED_OVER_NAIVE}
    if training and ceiling:
        found["training_fraction_of_matmul"] = {
            "target": f">= {TARGET_FRACTION_OF_MATMUL:.0%} of the measured bf16 matmul ceiling",
            "measured": training["fraction_of_matmul"], "achieved_flops": training["achieved_flops"],
            "mfu_vs_nominal": training["mfu"], "batch_size": training["batch_size"],
            "compile": training["compile"], "met": training["fraction_of_matmul"] >= TARGET_FRACTION_OF_MATMUL}
        if not found["training_fraction_of_matmul"]["met"]:
            found["training_fraction_of_matmul"].update(gap(record.get("training_profile")))
    return found


def run(args) -> dict:
    started = time.perf_counter()
    budget = Budget(args.budget_seconds, started)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = common.load_average()
    cfg, diffusion_cfg, source = model_setup(args.size)
    protocol = paper_protocol()
    steps, repeats = protocol["steps"], protocol["repeats"]
    train_batch = train_batch_size(args.size)
    p = plan(args.size, device, args.smoke, repeats, train_batch)
    for key in ("timed_steps", "naive_steps", "train_batch", "train_steps"):
        if getattr(args, key) is not None:
            p[key] = getattr(args, key)
    pipeline_batch = None
    if args.size == "demo":
        pipeline_batch = int(read_yaml(DEMO_CONFIG_FILE)["sample"]["batch_size"])
        if not args.smoke:
            p["batch_sizes"] = sorted(set(p["batch_sizes"]) | {pipeline_batch})
    if args.batch_sizes:
        p["batch_sizes"] = args.batch_sizes
    if args.variants:
        p["variants"] = args.variants
    # Eager first: the other variants' outputs are compared with it.
    p["variants"] = ["eager"] + [v for v in p["variants"] if v != "eager"]
    diffusion = Diffusion(diffusion_cfg)
    mid_t = diffusion_cfg.timesteps // 2
    default_autocast = torch.bfloat16 if device.type == "cuda" else None
    precision = "bf16" if default_autocast is not None else "fp32"
    skipped: list[str] = []

    import platform

    # Rewritten after every stage, so that a run stopped from outside leaves what it measured.
    record: dict = {
        "benchmark": "mssr network: sampling and training throughput against the device's peak",
        "complete": False, "size": args.size, "smoke": bool(args.smoke), "only": args.only, "device": device.type,
        "cpu": common.cpu_info(), "threads": torch.get_num_threads(), "platform": platform.platform(),
        "versions": common.versions("torch", "diffusers", "numpy", "mssr"), "date": common.utc_now(),
        "load_average_before": load_before, "budget_seconds": args.budget_seconds, "skipped": skipped,
    }

    def save() -> None:
        if args.out is not None:
            record["elapsed_seconds"] = time.perf_counter() - started
            common.write_json(args.out, record)

    torch.manual_seed(args.seed)
    base_unet = build_unet(cfg).eval()
    log(f"{args.size} network: {count_parameters(base_unet):,} parameters, {cfg.sample_size} px, {device}")

    flops = count_flops(cfg, diffusion_cfg)
    flops["on_device_check"] = check_flops_on_device(make_predictor(base_unet, parse_variant("eager"), device), cfg,
                                                     device, flops["forward_per_sample"])
    paper_flops = flops if args.size == "paper" else count_flops(PAPER_CONFIG, DiffusionConfig(timesteps=2000))
    fwd, train_flop = flops["forward_per_sample"], flops["training_step_per_sample"]
    peaks = device_peaks(device, smoke=args.smoke)
    record.update({
        "device_name": peaks["gpu"]["name"] if device.type == "cuda" else peaks["cpu"]["model"],
        "model": {"source": source, "config": cfg.to_dict(), "parameters": count_parameters(base_unet),
                  "sample_size_px": cfg.sample_size},
        "diffusion": diffusion_cfg.to_dict(),
        "protocol": {**protocol, "sampling_extrapolation": (
            f"the last {p['timed_steps']} of {steps} DDPM steps are run and timed (setup included); every step "
            f"costs one network evaluation per chain, so spectra/s = evaluations/s / ({steps} x {repeats})")},
        "plan": p, "flops": flops, "peaks": {k: v for k, v in peaks.items() if k in ("fp32", "bf16", "gpu")},
    })
    if device.type == "cuda":
        record["cuda"] = {"torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                          "cudnn_benchmark_default": torch.backends.cudnn.benchmark,
                          "conv_tf32": torch.backends.cudnn.allow_tf32,
                          "matmul_tf32": torch.backends.cuda.matmul.allow_tf32}
    save()
    log(f"forward {fwd / 1e9:.3f} GFLOP/sample; {precision} peak {peaks[precision]['theoretical_flops'] or 0:.3g}, "
        f"matmul {peaks[precision]['matmul_flops']:.3g} FLOP/s")

    chosen = args.train_variant or ("channels_last+cudnn_benchmark" if device.type == "cuda" else "eager")
    if args.only != "training":
        sweep_predictors = {name: make_predictor(base_unet, parse_variant(name), device)
                            for name in p["sweep_variants"]}
        swept = forward_sweep(sweep_predictors, cfg, device, p["batch_sizes"], autocast_dtype=default_autocast,
                              timestep=mid_t, flops=fwd, peak=peaks[precision], min_seconds=p["min_seconds"],
                              min_calls=p["min_calls"], rounds=p["rounds"])
        del sweep_predictors
        sweeps = {}
        for name, rows in swept.items():
            sweeps[name] = {"precision": precision, "rows": rows, "best_batch": best_batch(rows)}
            log(f"sweep {name}: " + ", ".join(f"{r['batch']}: {r.get('evaluations_per_s', 0):.1f}/s" for r in rows))
        fastest = max(sweeps.values(), key=lambda s: max(r.get("evaluations_per_s", 0.0) for r in s["rows"]))
        # The sampler advances spectra x repeats chains together; the network sees them in calls of the
        # best batch size (one call per step when the best batch holds all chains).
        chains = repeats * max(1, round(fastest["best_batch"] / repeats))
        call_batch = min(fastest["best_batch"], chains)
        record.update({"batch_sweep": sweeps, "pipeline_sample_batch_size": pipeline_batch,
                       "batch_rule": "best batch: the smallest within 3 % of the highest evaluations/s; the sampler "
                                     f"advances spectra x repeats = {chains} chains (the multiple of {repeats} "
                                     f"nearest to it) in network calls of {call_batch}"})
        save()

        measured = measure_variants(base_unet, p["variants"], cfg, device, call_batch,
                                    default_autocast=default_autocast, timestep=mid_t, flops=fwd, peaks=peaks,
                                    min_seconds=p["min_seconds"], min_calls=p["min_calls"], rounds=p["rounds"],
                                    budget=budget)
        variants = measured["results"]
        for name, row in variants.items():
            log(f"variant {name}: {row['evaluations_per_s']:.1f}/s (first call {row['first_call_seconds']:.1f} s)"
                + (f" FALLBACK {row['compile_fallback']}" if row["compile_fallback"] else ""))
        skipped += [f"variant {name}: {row['skipped']}" for name, row in measured["skipped"].items()]
        record["variants"] = {**variants, **measured["skipped"]}
        save()
        eligible = {k: v for k, v in variants.items() if not v["bf16"]}
        chosen = max(eligible, key=lambda k: eligible[k]["evaluations_per_s"])
        predictor = measured["predictors"][chosen]
        benchmark = parse_variant(chosen)["cudnn_benchmark"]

        # Batched and naive alternate, so that a drift of the machine's speed touches both alike; the
        # run with the median rate of each is kept.
        batched_runs, naive_runs = [], []
        for i in range(p["rounds"]):
            if i and not budget.allows(60):
                skipped.append(f"sampling rounds {i + 1}..{p['rounds']}: time budget")
                break
            batched_runs.append(time_sampling(predictor, diffusion, cfg, device, chains=chains,
                                              batch_size=call_batch, repeats=repeats, steps=steps,
                                              timed_steps=p["timed_steps"], autocast_dtype=default_autocast, flops=fwd,
                                              peak=peaks[precision], benchmark=benchmark))
            naive_runs.append(time_naive(base_unet, diffusion_cfg, cfg, device, steps=steps,
                                         timed_steps=p["naive_steps"], repeats=repeats, flops=fwd,
                                         peak=peaks["fp32"]))
        del measured, predictor
        batched, naive = _median_run(batched_runs), _median_run(naive_runs)
        batched["variant"] = chosen
        log(f"sampling: batched {batched['evaluations_per_s']:.1f} eval/s ({chosen}, {chains} chains), "
            f"naive {naive['evaluations_per_s']:.1f} eval/s")
        record["sampling"] = {"batched": batched, "naive": naive,
                              "speedup_per_evaluation": batched["evaluations_per_s"] / naive["evaluations_per_s"]}
        save()

        eager_flags = dict(parse_variant(chosen), compile=False, compile_mode="default")
        record["profile"] = profile_sampling(make_predictor(base_unet, eager_flags, device), diffusion, cfg, device,
                                             chains=chains, batch_size=call_batch, repeats=repeats, steps=steps,
                                             profile_steps=p["profile_steps"], autocast_dtype=default_autocast,
                                             benchmark=eager_flags["cudnn_benchmark"])
        save()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # Training: the chosen options without compile at the configured batch (and larger ones on CUDA),
    # then compiled at the best of those batches where the chosen variant compiles and time is left.
    train_variant = dict(parse_variant(chosen), compile=False, compile_mode="default")
    rows = []
    for i, batch in enumerate([p["train_batch"]] + [b for b in p["train_batches"] if b != p["train_batch"]]):
        try:
            rows.append(time_training(base_unet, train_variant, diffusion, cfg, device, batch=batch,
                                      warmup_steps=p["train_warmup"], timed_steps=p["train_steps"],
                                      autocast_dtype=default_autocast, flops=train_flop, peak=peaks[precision],
                                      profile_steps=0 if i else min(2, p["profile_steps"])))
        except RuntimeError as exc:
            if not _is_oom(exc) or not rows:
                raise
            rows.append({"batch_size": batch, "out_of_memory": True})
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if "samples_per_s" in rows[-1]:
            log(f"training: {rows[-1]['samples_per_s']:.1f} samples/s at batch {batch}")
    record["training_profile"] = rows[0].pop("profile", None)
    record["training_runs"] = rows
    record["training"] = max((r for r in rows if "samples_per_s" in r), key=lambda r: r["samples_per_s"])
    save()
    # On CUDA the compiled step is always tried (time allowing); on the CPU with --train-compile.
    wants_compile = device.type == "cuda" or (args.train_compile and parse_variant(chosen)["compile"])
    if wants_compile:
        if budget.allows(COMPILE_SECONDS):
            compiled = time_training(base_unet, dict(train_variant, compile=True), diffusion, cfg, device,
                                     batch=record["training"]["batch_size"], warmup_steps=p["train_warmup"],
                                     timed_steps=p["train_steps"], autocast_dtype=default_autocast, flops=train_flop,
                                     peak=peaks[precision])
            rows.append(compiled)
            log(f"training (compiled): {compiled['samples_per_s']:.1f} samples/s at batch {compiled['batch_size']}")
            if compiled["samples_per_s"] > record["training"]["samples_per_s"]:
                record["training"] = compiled
        else:
            skipped.append(f"compiled training: time budget ({budget.left():.0f} s left)")
        save()

    at_measured = None
    if args.size == "paper" and "sampling" in record:
        name = record["device_name"]
        at_measured = {"device": f"{device.type}: {name}", "evaluations_per_s": record["sampling"]["batched"][
            "evaluations_per_s"], "samples_per_s": record["training"]["samples_per_s"]}
    device_peak = (peaks.get("bf16") or {}).get("theoretical_flops") if device.type == "cuda" else None
    record["paper_grid_estimate"] = grid_estimate(
        paper_flops, protocol, measured=at_measured,
        **({"peak_flops": device_peak, "peak_source": peaks["bf16"]["theoretical_source"]} if device_peak else {}))
    record["targets"] = targets(record)
    record.update({
        "load_average_after": common.load_average(),
        "load_during": _LOAD_SAMPLES,
        "load_note": "load averages count runnable threads, this benchmark's own included (about "
                     f"{torch.get_num_threads()} while it computes); load_average_before is the machine without it",
        # Other work on the same cores shows as a 1-minute load well above this benchmark's threads.
        "disturbed": any(x["load_1min"] is not None and x["load_1min"] > torch.get_num_threads() + 0.75
                         for x in _LOAD_SAMPLES) or bool(load_before and load_before[0] > 0.5),
        "complete": True,
        "elapsed_seconds": time.perf_counter() - started,
    })
    return record


def _median_run(runs: list[dict]) -> dict:
    """The run with the median evaluations/s, with every run's rate beside it."""
    ordered = sorted(runs, key=lambda r: r["evaluations_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "evaluations_per_s_all_runs": [r["evaluations_per_s"] for r in runs]}


_LOAD_SAMPLES: list[dict] = []


def log(message: str) -> None:
    """Progress on stderr; the 1-minute load average at each message goes into the record."""
    load = common.load_average()
    _LOAD_SAMPLES.append({"after": message.split(":")[0], "load_1min": load[0] if load else None})
    print(f"[bench_model {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _variant_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    for name in names:
        try:
            parse_variant(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("demo", "paper", "release"), required=True,
                        help="demo: config.yaml's network at data.size px; paper: PAPER_CONFIG at 256 px; release: "
                             "configs/release.yaml on top of config.yaml")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: tiny sweeps, 1-2 steps (CI)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--batch-sizes", type=_int_list, default=None, help="forward sweep, e.g. 1,5,10,20")
    parser.add_argument("--variants", type=_variant_list, default=None,
                        help="predictor options to compare, e.g. eager,channels_last,compile,channels_last+compile, "
                             "channels_last+cudagraphs, channels_last+cudnn_benchmark (CUDA), bf16 (CPU autocast)")
    parser.add_argument("--timed-steps", dest="timed_steps", type=int, default=None, help="sampling steps timed")
    parser.add_argument("--naive-steps", dest="naive_steps", type=int, default=None, help="naive steps timed")
    parser.add_argument("--train-batch", dest="train_batch", type=int, default=None, help="training batch size")
    parser.add_argument("--train-steps", dest="train_steps", type=int, default=None, help="training steps timed")
    parser.add_argument("--train-compile", action="store_true",
                        help="on the CPU, also compile the training step when the best sampling variant compiles "
                             "(on CUDA it is always tried, time allowing)")
    parser.add_argument("--only", choices=("training",), default=None,
                        help="training: time the training step alone (no sweep, variants or sampling)")
    parser.add_argument("--train-variant", dest="train_variant", type=_variant_list, default=None,
                        help="options of the training step with --only training (default: "
                             "channels_last+cudnn_benchmark on CUDA, eager on the CPU)")
    parser.add_argument("--budget-seconds", dest="budget_seconds", type=float, default=None,
                        help="skip the stages (compiled variants, extra rounds) that would not fit in this many "
                             "seconds from the start")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train_variant is not None:
        if len(args.train_variant) != 1:
            parser.error("--train-variant takes one variant")
        args.train_variant = args.train_variant[0]
    for key in ("timed_steps", "naive_steps", "train_batch", "train_steps", "threads"):
        value = getattr(args, key)
        if value is not None and value < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.budget_seconds is not None and args.budget_seconds <= 0:
        parser.error("--budget-seconds must be > 0")
    record = run(args)
    common.write_json(args.out, record)
    s = record.get("sampling")
    summary = {}
    if s:
        summary.update({
            "evaluations_per_s": {"batched": s["batched"]["evaluations_per_s"],
                                  "naive": s["naive"]["evaluations_per_s"]},
            "speedup_per_evaluation": s["speedup_per_evaluation"], "spectra_per_s": s["batched"]["spectra_per_s"],
            "mfu_sampling": s["batched"]["mfu"], "sampling_fraction_of_matmul": s["batched"]["fraction_of_matmul"]})
    summary.update({
        "training_samples_per_s": record["training"]["samples_per_s"], "mfu_training": record["training"]["mfu"],
        "training_fraction_of_matmul": record["training"]["fraction_of_matmul"],
        "estimate_hours_at_40pct": record["paper_grid_estimate"]["hours_at_assumed_mfu"]["total"],
        "targets_met": {k: v["met"] for k, v in record["targets"].items() if isinstance(v, dict) and "met" in v},
        "skipped": record["skipped"]})
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
