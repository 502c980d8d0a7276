"""Tests of the model benchmark harness (benchmarks/bench_model.py) and of the performance options of
:class:`mssr.model.network.NoisePredictor` it measures (channels-last, torch.compile fallback, label cache).

No timing is asserted: the smoke run checks that the harness runs end to end and writes every
figure as a positive finite number.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.model.network import ModelConfig, NoisePredictor, build_unet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

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


def test_smoke_run_writes_every_figure(tmp_path):
    out = tmp_path / "model_smoke.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_model.py"), "--size", "demo", "--device", "cpu", "--smoke",
         "--threads", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    for key in ("device", "cpu", "versions", "date", "load_average_before", "load_average_after", "model",
                "protocol", "flops", "peaks", "batch_sweep", "variants", "sampling", "training", "profile",
                "paper_grid_estimate"):
        assert key in record, key
    assert record["smoke"] is True and record["device"] == "cpu" and record["size"] == "demo"
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
                                                  "bf16": False}
    assert bench_model.parse_variant("channels_last+cudagraphs") == {
        "channels_last": True, "compile": True, "compile_mode": "reduce-overhead", "bf16": False}
    with pytest.raises(ValueError, match="fast"):
        bench_model.parse_variant("channels_last+fast")


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
