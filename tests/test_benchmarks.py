"""Tests of the benchmark harness (benchmarks/gpu.sh, bench_model.py, bench_enhance.py) and of the
performance options of :class:`mssr.model.network.NoisePredictor` it measures (channels-last,
torch.compile fallback, label cache).

No timing is asserted: one smoke run of ``benchmarks/gpu.sh --smoke`` (the GPU script's three parts
on the CPU with tiny sizes, what the device machine runs at full size) checks that every part runs
end to end and writes every figure as a positive finite number, and that the derived figures follow
from the measured ones.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.model.network import ModelConfig, NoisePredictor, build_unet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_enhance  # noqa: E402
import bench_model  # noqa: E402
import common  # noqa: E402

torch.set_num_threads(2)


def tiny(**overrides) -> ModelConfig:
    settings = dict(sample_size=16, block_out_channels=(8, 16), layers_per_block=1, attention_levels=(False, True),
                    mid_attention=True, attention_head_dim=8, conditioning="class", norm_num_groups=4)
    settings.update(overrides)
    return ModelConfig(**settings)


def tiny_predictor(seed=0, **options) -> NoisePredictor:
    torch.manual_seed(seed)
    return NoisePredictor(build_unet(tiny()), **options).eval()


def inputs(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, 1, 16, 16, generator=g)
    x_lr = torch.rand(batch, 1, 16, 16, generator=g) * 2 - 1
    t = torch.tensor([10, 500, 900][:batch])
    factors = torch.tensor([2.0, 1.125, 2.25][:batch], dtype=torch.float64)
    return x_t, x_lr, t, factors


# ------------------------------------------------------------------------------------ smoke run


def _numbers(node, path=""):
    """Every number in a JSON tree, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{path}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


@pytest.fixture(scope="module")
def gpu_smoke(tmp_path_factory):
    """One run of ``benchmarks/gpu.sh --smoke`` (all three parts on the CPU); its result folder and output."""
    out = tmp_path_factory.mktemp("gpu_smoke")
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, WHEELS=str(out / "no-wheels"))
    env.pop("MSSR_GPU_MODEL", None)
    start = time.perf_counter()
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--smoke"], capture_output=True, text=True,
                          timeout=1500, env=env, cwd=ROOT)
    return {"results": out / "benchmarks" / "results", "logs": out / "logs", "done": done,
            "seconds": time.perf_counter() - start}


def test_gpu_script_smoke_runs_every_part_and_summarizes(gpu_smoke):
    done = gpu_smoke["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = json.loads((gpu_smoke["results"] / "gpu_summary_smoke.json").read_text())
    parts = {row["part"]: row for row in summary["parts"]}
    assert list(parts) == ["setup", "model", "enhance", "training"]
    assert all(row["exit"] == "0" for row in parts.values()), parts
    for name in ("model", "enhance", "training"):
        assert parts[name]["written"] is True and parts[name]["complete"] is True, parts[name]
    # The table at the end of the output names each part.
    tail = done.stdout[-2000:]
    assert all(f"\n{name} " in tail for name in parts)


def test_gpu_script_summarizes_a_failed_setup(tmp_path):
    # A Python that cannot import mssr's needs: no part runs, the summary says so, the exit status is 1.
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = - ] && [ \"$2\" = cpu ]; then echo 'ImportError: no diffusers' >&2; "
                    f"exit 1; fi\nexec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=str(fake), WHEELS=str(tmp_path / "none"))
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--smoke"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 1
    assert "the import check failed" in done.stdout
    summary = json.loads((tmp_path / "out" / "benchmarks" / "results" / "gpu_summary_smoke.json").read_text())
    assert [row["part"] for row in summary["parts"]] == ["setup"] and summary["parts"][0]["exit"] == "1"


def test_smoke_run_writes_every_figure(gpu_smoke):
    out = gpu_smoke["results"] / "model_smoke_demo.json"
    assert out.is_file(), gpu_smoke["done"].stdout[-3000:]
    record = json.loads(out.read_text())
    for key in ("device", "cpu", "versions", "date", "load_average_before", "load_average_after", "model",
                "protocol", "flops", "peaks", "batch_sweep", "variants", "sampling", "training", "profile",
                "paper_grid_estimate", "training_profile", "targets"):
        assert key in record, key
    assert record["smoke"] is True and record["device"] == "cpu" and record["size"] == "demo"
    assert record["complete"] is True and record["skipped"] == []
    assert {"torch", "diffusers"} <= set(record["versions"])
    assert record["protocol"]["steps"] == 500 and record["protocol"]["repeats"] == 5

    # Every number the harness wrote is finite; the measured rates, FLOP and memory are positive.
    for path, value in _numbers(record):
        assert math.isfinite(value), path
    batched, naive = record["sampling"]["batched"], record["sampling"]["naive"]
    positive = [
        record["flops"]["forward_per_sample"], record["flops"]["training_step_per_sample"],
        record["peaks"]["fp32"]["theoretical_flops"], record["peaks"]["fp32"]["matmul_flops"],
        record["sampling"]["speedup_per_evaluation"], record["training"]["samples_per_s"],
        record["training"]["mfu"], record["training"]["peak_memory_mib"],
        record["paper_grid_estimate"]["hours_at_assumed_mfu"]["total"], record["profile"]["total_self_ms"],
    ]
    for row in (batched, naive):
        positive += [row["evaluations_per_s"], row["spectra_per_s"], row["achieved_flops"], row["mfu"],
                     row["fraction_of_matmul"], row["peak_memory_mib"]]
    for row in record["batch_sweep"]["eager"]["rows"]:
        positive += [row["evaluations_per_s"], row["seconds_per_call"]]
    assert all(value > 0 for value in positive), positive
    # Consistency of the derived figures (arithmetic, not timing).
    assert batched["spectra_per_s"] == pytest.approx(batched["evaluations_per_s"] / 2500)
    forward = record["flops"]["forward_per_sample"]
    assert batched["achieved_flops"] == pytest.approx(batched["evaluations_per_s"] * forward)
    assert record["flops"]["on_device_check"]["agrees_with_meta_count"] is True
    assert batched["chains"] == 5 * batched["spectra"]
    assert set(record["variants"]) == {"eager", "channels_last"}
    assert record["variants"]["channels_last"]["max_abs_diff_vs_eager"] < 1e-4
    assert record["training_profile"]["top_ops"] and record["training_profile"]["total_self_ms"] > 0


def test_training_only_smoke_times_the_step_alone(gpu_smoke):
    record = json.loads((gpu_smoke["results"] / "model_smoke_training.json").read_text())
    assert record["only"] == "training" and record["complete"] is True
    for key in ("batch_sweep", "variants", "sampling", "profile"):
        assert key not in record, key
    training = record["training"]
    assert training["samples_per_s"] > 0 and training["batch_size"] == 4
    assert training["samples_per_s"] == pytest.approx(training["batch_size"] * training["timed_steps"]
                                                      / training["seconds"])
    assert training["achieved_flops"] == pytest.approx(training["samples_per_s"]
                                                       * record["flops"]["training_step_per_sample"])


def test_enhance_smoke_record(gpu_smoke):
    record = json.loads((gpu_smoke["results"] / "enhance_smoke.json").read_text())
    assert record["smoke"] is True and record["settings"]["device"] == "cpu"
    plane = record["plane"]
    assert plane["shape"] == list(bench_enhance.SMOKE_SHAPE) and plane["points"] == {"15N": 96, "1H": 128}
    h, n = {a["nucleus"]: a for a in plane["axes"]}["1H"], {a["nucleus"]: a for a in plane["axes"]}["15N"]
    # 1H 11.5 .. 5.5 ppm at 600 MHz: 6 ppm = 3600 Hz; 15N 134 .. 104 ppm at 60.8 MHz.
    assert h["sw_hz"] == pytest.approx(6.0 * h["obs_mhz"]) and h["obs_mhz"] == pytest.approx(600.0, rel=1e-3)
    assert n["sw_hz"] == pytest.approx(30.0 * n["obs_mhz"]) and n["obs_mhz"] == pytest.approx(60.8, rel=1e-2)
    assert plane["n_peaks"] > 20
    assert record["model"]["built"] == "tiny" and record["model"]["trained"] is False
    assert {"torch", "diffusers", "nmrglue", "mssr"} <= set(record["versions"])
    default, paper = record["protocols"]
    assert (paper["sampler"], paper["steps"], paper["repeats"]) == ("ddpm", 500, 5)
    assert default["ok"] and paper["ok"]
    for row in (default, paper):
        if row.get("same_as"):
            continue
        # Extrapolated from two probe step counts: the arithmetic of the record.
        assert row["extrapolated"] is True
        (k1, runs1), (k2, runs2) = sorted(((int(k), v) for k, v in row["probes"].items()))
        s1, s2 = runs1[0]["sampling_seconds"], runs2[0]["sampling_seconds"]
        per_step = max(0.0, (s2 - s1) / (k2 - k1))
        assert row["seconds_per_step"] == pytest.approx(per_step)
        assert row["wall_seconds"] == pytest.approx(runs1[0]["wall_seconds"] + (row["steps"] - k1) * per_step)
        for run in runs1 + runs2:
            assert run["returncode"] == 0 and run["wall_seconds"] > run["sampling_seconds"] > 0
            assert 50 < run["peak_rss_mib"] < 4096  # a Python with torch, well under the CPU target
    assert paper.get("same_as") == "default" or paper["options"] == {"sampler": "ddpm", "steps": 500, "repeats": 5}
    assert record["targets"] == {}  # smoke runs are not held to the targets


def test_extrapolation_from_two_probe_step_counts():
    # Sampling costs 0.1 s a step after a 0.5 s setup; the process around it 2.5 s more.
    calls = []

    def timed(args):
        calls.append(args)
        k = args["steps"]
        return [{"returncode": 0, "wall_seconds": 3.0 + 0.1 * k, "sampling_seconds": 0.5 + 0.1 * k,
                 "peak_rss_mib": 100.0 + k}]

    full = {"sampler": "ddpm", "steps": 500, "repeats": 5}
    estimate = bench_enhance._extrapolate(timed, full, (2, 6))
    assert calls == [{"sampler": "ddpm", "steps": 2, "repeats": 5}, {"sampler": "ddpm", "steps": 6, "repeats": 5}]
    assert estimate["ok"] and estimate["seconds_per_step"] == pytest.approx(0.1)
    assert estimate["wall_seconds"] == pytest.approx(3.0 + 0.1 * 500)
    assert estimate["sampling_seconds"] == pytest.approx(0.5 + 0.1 * 500)
    assert estimate["peak_rss_mib"] == 106.0

    def failing(args):
        return [{"returncode": 1, "wall_seconds": 1.0, "sampling_seconds": None, "peak_rss_mib": 50.0}]

    assert bench_enhance._extrapolate(failing, full, (2, 6))["ok"] is False


def test_run_child_reports_that_childs_own_peak_memory(tmp_path):
    env = dict(os.environ)
    big = [sys.executable, "-c", "import numpy as np; a = np.ones(300 * 2**20 // 8); print('seconds: 0.5')"]
    small = [sys.executable, "-c", "print('hello')"]
    first = bench_enhance.run_child(big, log_path=tmp_path / "big.log", timeout=60, env=env)
    second = bench_enhance.run_child(small, log_path=tmp_path / "small.log", timeout=60, env=env)
    assert first["returncode"] == 0 and first["sampling_seconds"] == 0.5
    assert first["peak_rss_mib"] > 300
    # The second's own peak: neither the first's nor this (torch-sized) test process's, which a child
    # forked from it directly would report.
    assert second["peak_rss_mib"] < 100 and second["sampling_seconds"] is None
    assert common.peak_rss_mib() > 150
    slow = bench_enhance.run_child([sys.executable, "-c", "import time; time.sleep(30)"],
                                   log_path=tmp_path / "slow.log", timeout=1.0, env=env)
    assert slow["timed_out"] is True and slow["returncode"] == -9 and slow["wall_seconds"] < 10
    assert slow["peak_rss_mib"] is None


# ------------------------------------------------------------------------------------ FLOP


def test_attention_flops_by_hand():
    # Level 1 (8 x 8 px, 16 channels): 1 down + 2 up attention layers; bottleneck (8 x 8 px): 1 layer.
    # Each: 4 * B * L^2 * C with L = 64 tokens, C = 16 channels (heads x head_dim).
    per_layer = 4 * 64**2 * 16
    assert bench_model.attention_flops(tiny(), 1) == 4 * per_layer
    assert bench_model.attention_flops(tiny(), 3) == 12 * per_layer
    assert bench_model.attention_flops(tiny(mid_attention=False, attention_levels=(False, False)), 2) == 0


def test_flop_count_adds_the_attention_the_counter_misses_on_cpu():
    predictor = tiny_predictor()
    meta = bench_model.count_flops(tiny(), DiffusionConfig(timesteps=1000))
    check = bench_model.check_flops_on_device(predictor, tiny(), torch.device("cpu"), meta["forward_per_sample"])
    # The math backend's matmuls are what the CPU kernel does: the difference is the attention.
    assert check["attention_missed_by_counter"] == bench_model.attention_flops(tiny(), 1)
    assert check["agrees_with_meta_count"] is True
    # A training step is a forward and a backward (about twice the forward's FLOP).
    assert 2.5 * meta["forward_per_sample"] < meta["training_step_per_sample"] < 3.01 * meta["forward_per_sample"]


def test_cpu_peak_from_cpuinfo_fields():
    zen4 = {"model": "AMD EPYC", "vendor": "AuthenticAMD", "family": 25, "mhz": 2500.0, "cores_usable": 2,
            "threads_per_core": 1, "flags": ["avx2", "avx512f", "fma"]}
    assert common.cpu_peak_fp32(zen4)["flops"] == pytest.approx(2 * 2.5e9 * 32)
    smt = dict(zen4, cores_usable=4, threads_per_core=2)  # 4 logical CPUs on 2 physical cores
    assert common.cpu_peak_fp32(smt)["flops"] == pytest.approx(2 * 2.5e9 * 32)
    assert common.cpu_peak_fp32(zen4, threads=1)["flops"] == pytest.approx(2.5e9 * 32)
    intel = dict(zen4, vendor="GenuineIntel", family=6)
    assert common.fp32_flop_per_cycle(intel)[0] == 64
    assert common.fp32_flop_per_cycle(dict(intel, flags=["avx2", "fma"]))[0] == 32


def test_grid_estimate_arithmetic():
    flops = {"forward_per_sample": 1e11, "training_step_per_sample": 3e11}
    protocol = {"steps": 500, "repeats": 5, "epochs": 200, "baseline_epochs": 100}
    est = bench_model.grid_estimate(flops, protocol, peak_flops=1e15, mfu=0.5,
                                    measured={"device": "x", "evaluations_per_s": 1000.0, "samples_per_s": 100.0})
    evaluations = 350 * 14 * 2 * 500 * 5
    samples = (200 + 14 * 100) * 2800
    assert est["network_evaluations"] == evaluations == 24_500_000
    assert est["training_samples"] == samples
    assert est["hours_at_peak"]["inference"] == pytest.approx(evaluations * 1e11 / 1e15 / 3600)
    assert est["hours_at_assumed_mfu"]["training"] == pytest.approx(samples * 3e11 / 5e14 / 3600)
    assert est["hours_at_measured_rates"]["inference"] == pytest.approx(evaluations / 1000 / 3600)
    assert est["hours_at_measured_rates"]["training"] == pytest.approx(samples / 100 / 3600)


def test_best_batch_prefers_the_smallest_near_the_top():
    rows = [{"batch": 1, "evaluations_per_s": 10.0}, {"batch": 5, "evaluations_per_s": 98.0},
            {"batch": 10, "evaluations_per_s": 100.0}, {"batch": 20, "out_of_memory": True}]
    assert bench_model.best_batch(rows) == 5
    assert bench_model.best_batch(rows[:1] + rows[2:]) == 10


def test_parse_variant():
    assert bench_model.parse_variant("eager") == {"channels_last": False, "compile": False, "compile_mode": "default",
                                                  "bf16": False, "cudnn_benchmark": False}
    assert bench_model.parse_variant("channels_last+cudagraphs") == {
        "channels_last": True, "compile": True, "compile_mode": "reduce-overhead", "bf16": False,
        "cudnn_benchmark": False}
    assert bench_model.parse_variant("channels_last+cudnn_benchmark+compile")["cudnn_benchmark"] is True
    with pytest.raises(ValueError, match="fast"):
        bench_model.parse_variant("channels_last+fast")


def test_cudnn_benchmark_flag_is_restored():
    before = torch.backends.cudnn.benchmark
    with bench_model.cudnn_benchmark(not before):
        assert torch.backends.cudnn.benchmark is (not before)
    assert torch.backends.cudnn.benchmark is before


def test_gpu_peaks_match_the_device_name():
    # torch names the SXM part plainly "NVIDIA H200"; dense bf16 = half the data sheet's 1979 "with sparsity".
    assert bench_model.gpu_peak("NVIDIA H200") == ("H200", (989.4e12, 494.7e12, 66.9e12))
    assert bench_model.gpu_peak("NVIDIA H200 NVL")[0] == "H200 NVL"
    assert bench_model.gpu_peak("NVIDIA H100 80GB HBM3")[0] == "H100"
    assert bench_model.gpu_peak("NVIDIA H100 PCIe")[0] == "H100 PCIe"
    assert bench_model.gpu_peak("Tesla T4") == (None, None)


def test_budget():
    now = time.perf_counter()
    assert bench_model.Budget(None, now).allows(1e9)
    budget = bench_model.Budget(100.0, now - 30.0)
    assert 69.0 < budget.left() <= 70.0
    assert budget.allows(60) and not budget.allows(80)


def test_merged_config_overlays_nested_keys():
    base = {"model": {"a": 1, "b": 2}, "data": {"size": 32}, "x": 1}
    assert bench_model.merged(base, {"model": {"b": 3}, "y": 2}) == {"model": {"a": 1, "b": 3}, "data": {"size": 32},
                                                                     "x": 1, "y": 2}
    assert base["model"] == {"a": 1, "b": 2}


def _cuda_record(sampling_fraction, training_fraction, speedup):
    profile = {"what": "p", "top_ops": [{"name": f"k{i}", "percent": 50.0 / (i + 1), "self_ms": 1.0, "calls": 1}
                                        for i in range(7)],
               "groups_percent": {"group_norm": 40.0, "convolution": 35.0}}
    ceiling = 790e12
    return {
        "device": "cuda", "smoke": False, "peaks": {"bf16": {"matmul_flops": ceiling}},
        "sampling": {"batched": {"fraction_of_matmul": sampling_fraction, "achieved_flops": sampling_fraction * ceiling,
                                 "mfu": 0.3, "variant": "channels_last", "batch_size": 80,
                                 "evaluations_per_s": 1000.0 * speedup},
                     "naive": {"evaluations_per_s": 1000.0}, "speedup_per_evaluation": speedup},
        "training": {"fraction_of_matmul": training_fraction, "achieved_flops": training_fraction * ceiling,
                     "mfu": 0.3, "batch_size": 64, "compile": True},
        "profile": profile, "training_profile": profile,
    }


def test_targets_met_and_missed():
    met = bench_model.targets(_cuda_record(0.45, 0.41, 25.0))
    assert met["sampling_fraction_of_matmul"]["met"] and met["training_fraction_of_matmul"]["met"]
    assert met["batched_over_naive"]["met"] and met["batched_over_naive"]["measured"] == 25.0
    assert "top_kernels" not in met["sampling_fraction_of_matmul"]
    missed = bench_model.targets(_cuda_record(0.39, 0.2, 19.0))
    assert not any(missed[k]["met"] for k in ("sampling_fraction_of_matmul", "training_fraction_of_matmul",
                                              "batched_over_naive"))
    gap = missed["training_fraction_of_matmul"]
    assert [k["name"] for k in gap["top_kernels"]] == ["k0", "k1", "k2", "k3", "k4"]
    assert "GroupNorm" in gap["what_would_close_the_gap"]  # the largest group of the profile
    assert bench_model.targets({"device": "cpu", "smoke": False}) == {
        "note": "the targets are set for the paper network on CUDA; not evaluated here"}


# ------------------------------------------------------------------------------------ NoisePredictor options


def test_channels_last_predicts_the_same_noise():
    x_t, x_lr, t, f = inputs()
    with torch.inference_mode():
        plain = tiny_predictor()(x_t, x_lr, t, f)
        nhwc_predictor = tiny_predictor(channels_last=True)
        nhwc = nhwc_predictor(x_t, x_lr, t, f)
    conv = nhwc_predictor.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert nhwc.shape == plain.shape and nhwc.dtype == plain.dtype
    torch.testing.assert_close(nhwc, plain, rtol=1e-5, atol=1e-5)


def test_compile_failure_falls_back_to_eager_with_a_warning():
    x_t, x_lr, t, f = inputs()
    predictor = tiny_predictor(compile=True)
    assert predictor.compiled and predictor.compile_mode == "default"

    def broken(*args, **kwargs):
        raise RuntimeError("backend exploded\nsecond line")

    object.__setattr__(predictor, "_compiled_unet", broken)  # stands in for a compiler failure
    with torch.inference_mode():
        with pytest.warns(RuntimeWarning, match="torch.compile of the UNet failed .*backend exploded"):
            eps = predictor(x_t, x_lr, t, f)
        expected = tiny_predictor()(x_t, x_lr, t, f)
        torch.testing.assert_close(eps, expected)
        assert not predictor.compiled
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            torch.testing.assert_close(predictor(x_t, x_lr, t, f), expected)  # eager now, no second warning


def test_predictor_options_are_checked():
    with pytest.raises(TypeError, match="channels_last"):
        tiny_predictor(channels_last=1)
    with pytest.raises(TypeError, match="compile"):
        tiny_predictor(compile="yes")
    with pytest.raises(ValueError, match="compile_mode"):
        tiny_predictor(compile=True, compile_mode="fastest")


def test_label_cache_reuses_labels_and_stays_bounded(monkeypatch):
    predictor = tiny_predictor()
    calls = []
    original = predictor._condition
    monkeypatch.setattr(predictor, "_condition", lambda host: calls.append(1) or original(host))
    x_t, x_lr, t, f = inputs()
    with torch.inference_mode():
        first = predictor(x_t, x_lr, t, f)
        second = predictor(x_t, x_lr, t, f.clone())  # same values, another tensor
    assert len(calls) == 1
    torch.testing.assert_close(first, second)
    predictor.LABEL_CACHE_SIZE = 2
    with torch.inference_mode():
        for factor in (1.125, 1.25, 1.5, 2.0):
            predictor(x_t[:1], x_lr[:1], t[:1], torch.tensor([factor], dtype=torch.float64))
    assert len(predictor._labels) == 2


def test_labels_cached_in_inference_mode_do_not_break_training():
    # Validation under inference mode, then a training step with the same factors.
    predictor = tiny_predictor()
    x_t, x_lr, t, f = inputs()
    with torch.inference_mode():
        predictor(x_t, x_lr, t, f)
    predictor.train()
    loss = Diffusion(DiffusionConfig(timesteps=1000)).training_loss(predictor, x_t.clamp(-1, 1), x_lr, f,
                                                                      generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert predictor.unet.class_embedding.weight.grad is not None
    assert torch.isfinite(predictor.unet.class_embedding.weight.grad).all()


def test_the_demo_record_sums_job_seconds_by_rule(tmp_path):
    import bench_demo

    bench = tmp_path / "results/demo/benchmarks"
    bench.mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for name, seconds in (("fetch", 4.5), ("train_native_baseline_1.125", 40.0), ("train_native_baseline_2.250", 42.5),
                          ("native_evaluate_1.500", 80.0), ("train_native", 41.0)):
        (bench / f"{name}.tsv").write_text(header + f"{seconds}\t0:00:01\t300.5\t1\t1\t1\t0\t0\t90\t1\n")
    record = bench_demo.collect(tmp_path, 1000.0)
    assert record["job_seconds_by_rule"] == {"fetch": 4.5, "native_evaluate": 80.0, "train_native": 41.0,
                                             "train_native_baseline": 82.5}
    assert record["job_seconds_total"] == 208.0 and record["wall_s"] == 1000.0
    assert record["jobs"]["fetch"]["max_rss_mb"] == 300.5
