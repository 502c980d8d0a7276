"""Training loop: outputs, loss decrease, exact resumption, EMA, baseline vs MSSR, tracking."""

import json
import logging
import math
import os
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from mssr import degrade
from mssr.data.store import write_samples
from mssr.model.diffusion import DiffusionConfig
from mssr.factors import FACTORS
from mssr.model.network import ModelConfig, load_model
from mssr.provenance import sha256_file
from mssr.spectrum import Axis, Spectrum
from mssr.model.train import (
    CHECKPOINT_FILE,
    EMA,
    CheckpointError,
    DegradedPairs,
    LRLambda,
    TrainConfig,
    TrainingInterrupted,
    _autocast_dtype,
    train,
)

S = 16
MICRO = ModelConfig(sample_size=S, block_out_channels=(8, 16), layers_per_block=1, attention_levels=(False, False),
                    mid_attention=False, norm_num_groups=4, conditioning="class")
DIFFUSION = DiffusionConfig(timesteps=100)


def _cfg(**kw):
    base = dict(epochs=2, batch_size=8, lr=3e-3, warmup_steps=2, ema_decay=0.9, checkpoint_every=0, device="cpu",
                log_every=1)
    base.update(kw)
    return TrainConfig(**base)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory, gaussian_peaks):
    """32 training and 8 validation spectra of three Gaussian peaks, with 15N/1H axes."""
    root = tmp_path_factory.mktemp("data")
    axes = (Axis.from_ppm_window("15N", 800, 130, 105, S), Axis.from_ppm_window("1H", 800, 10, 6, S))
    paths = {}
    for name, n, seed in (("train", 32, 0), ("val", 8, 1)):
        x = gaussian_peaks(n, S, seed)
        paths[name] = write_samples(root / f"{name}.h5", x, [Spectrum(xi, axes).header() for xi in x])
    return paths


def _weights(directory):
    return load_file(str(directory / "model.safetensors"))


# ---------------------------------------------------------------------------------------------
# end to end


def test_mssr_training_writes_its_outputs_and_the_loss_falls(data, tmp_path):
    out = train(data["train"], data["val"], tmp_path / "mssr", model_cfg=MICRO, diffusion_cfg=DIFFUSION,
                train_cfg=_cfg(), progress=False)
    for name in ("model.safetensors", "config.json", "history.csv", CHECKPOINT_FILE):
        assert (out / name).is_file(), name
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["step", "epoch", "loss", "val_loss", "lr"]
    assert history["step"].tolist() == list(range(1, 9)) and history["epoch"].tolist() == [0] * 4 + [1] * 4
    per_epoch = history.groupby("epoch")["loss"].mean()
    assert per_epoch[1] < per_epoch[0]
    # validation at each epoch end only
    assert history["val_loss"].notna().tolist() == [False, False, False, True] * 2
    # warmup over 2 steps, then cosine decay
    assert history["lr"].iloc[0] == pytest.approx(1.5e-3) and history["lr"].iloc[1] == pytest.approx(3e-3)
    unet, cfg, extra = load_model(out)
    assert cfg.conditioning == "class"
    assert extra["factors"] == [float(f) for f in FACTORS] and extra["factor"] is None
    assert extra["diffusion"] == DIFFUSION.to_dict()
    assert extra["train"]["lr"] == 3e-3
    assert extra["data_sha256"] == {"train": sha256_file(data["train"]), "val": sha256_file(data["val"])}
    assert extra["final"]["loss"] == pytest.approx(per_epoch[1])
    assert extra["final"]["val_loss"] == pytest.approx(history["val_loss"].iloc[-1])
    assert extra["mlflow_run_id"] is None and extra["git_commit"]
    # the saved weights are the EMA, not the live weights of the checkpoint
    live = torch.load(out / CHECKPOINT_FILE, weights_only=True)["model"]
    saved = _weights(out)
    assert set(saved) == set(live)
    assert any(not torch.equal(saved[k], live[k]) for k in saved)


def test_resume_after_interrupts_ends_with_the_same_weights(data, tmp_path):
    cfg = _cfg(epochs=3, checkpoint_every=3)
    full = train(data["train"], data["val"], tmp_path / "a", model_cfg=MICRO, diffusion_cfg=DIFFUSION,
                 train_cfg=cfg, progress=False)

    def ctrl_c_at_6(info):
        if info["step"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(data["train"], data["val"], tmp_path / "b", model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
              progress=False, callback=ctrl_c_at_6)
    state = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=True)
    assert (state["step"], state["epoch"], state["batch"]) == (6, 1, 2)
    assert len(pd.read_csv(tmp_path / "b" / "history.csv")) == 6
    assert not (tmp_path / "b" / "model.safetensors").exists()

    def sigterm_at_8(info):
        # the last batch of epoch 1: interrupted before its validation
        if info["step"] == 8:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="SIGTERM"):
        train(data["train"], data["val"], tmp_path / "b", model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
              progress=False, callback=sigterm_at_8)
    state = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=True)
    assert (state["step"], state["epoch"], state["batch"]) == (8, 1, 4)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    resumed = train(data["train"], data["val"], tmp_path / "b", model_cfg=MICRO, diffusion_cfg=DIFFUSION,
                    train_cfg=cfg, progress=False)
    a, b = _weights(full), _weights(resumed)
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    pd.testing.assert_frame_equal(pd.read_csv(full / "history.csv"), pd.read_csv(resumed / "history.csv"))


def test_checkpoint_of_another_configuration_is_not_resumed(data, tmp_path, caplog):
    cfg = _cfg(epochs=1)

    def stop_at_2(info):
        if info["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
              progress=False, callback=stop_at_2)
    steps = []
    with caplog.at_level(logging.WARNING, logger="mssr.model.train"):
        train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION,
              train_cfg=_cfg(epochs=1, lr=1e-3), progress=False, callback=lambda info: steps.append(info["step"]))
    assert steps == [1, 2, 3, 4]
    assert any("another configuration" in r.getMessage() for r in caplog.records)


def test_corrupt_checkpoint_stops_the_run_naming_the_file(data, tmp_path):
    cfg = _cfg(epochs=2, checkpoint_every=2)
    checkpoint = tmp_path / CHECKPOINT_FILE

    def crash_at_3(info):
        # the node dies mid-training, after the step-2 checkpoint was damaged on disk
        if info["step"] == 3:
            good = checkpoint.read_bytes()
            checkpoint.write_bytes(good[: len(good) // 2])
            raise RuntimeError("node lost")

    with pytest.raises(RuntimeError, match="node lost"):
        train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
              progress=False, callback=crash_at_3)
    damaged = checkpoint.read_bytes()
    steps = []
    with pytest.raises(CheckpointError, match=str(checkpoint)) as info:
        train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
              progress=False, callback=lambda i: steps.append(i["step"]))
    assert steps == []  # stopped: not one step trained from scratch
    assert info.value.path == checkpoint and not checkpoint.exists()
    assert info.value.moved_to == tmp_path / f"{CHECKPOINT_FILE}.unreadable"
    assert info.value.moved_to.read_bytes() == damaged
    assert not (tmp_path / "model.safetensors").exists()
    # a file that torch reads but is not a training checkpoint is not overwritten either
    torch.save({"weights": torch.zeros(2)}, checkpoint)
    with pytest.raises(CheckpointError, match="not an mssr training checkpoint"):
        train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
              progress=False)
    assert (tmp_path / f"{CHECKPOINT_FILE}.unreadable-1").is_file()
    # with the damaged file out of the way, running again trains from scratch
    train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION, train_cfg=cfg,
          progress=False, callback=lambda i: steps.append(i["step"]))
    assert steps == list(range(1, 9))


def test_baseline_trains_one_factor_without_conditioning(data, tmp_path):
    out = train(data["train"], data["val"], tmp_path, model_cfg=MICRO, diffusion_cfg=DIFFUSION,
                train_cfg=_cfg(epochs=1), factor="2.250", progress=False)
    unet, cfg, extra = load_model(out)
    assert cfg.conditioning == "none"
    assert unet.config.num_class_embeds is None and unet.config.class_embed_type is None
    assert extra["factor"] == "2.250" and extra["factors"] == [2.25] and extra["kind"] == "baseline"


def test_mssr_conditioning_follows_the_model_config(data, tmp_path):
    import dataclasses

    continuous = dataclasses.replace(MICRO, conditioning="continuous")
    out = train(data["train"], data["val"], tmp_path, model_cfg=continuous, diffusion_cfg=DIFFUSION,
                train_cfg=_cfg(epochs=1), progress=False)
    unet, cfg, extra = load_model(out)
    assert cfg.conditioning == "continuous" and unet.config.class_embed_type == "timestep"
    assert extra["kind"] == "mssr" and len(extra["factors"]) == 14
    with pytest.raises(ValueError, match="conditioning"):
        train(data["train"], data["val"], tmp_path / "x", model_cfg=dataclasses.replace(MICRO, conditioning="none"),
              diffusion_cfg=DIFFUSION, train_cfg=_cfg(epochs=1), progress=False)


def test_training_is_tracked_in_mlflow(data, tmp_path):
    from mlflow.tracking import MlflowClient

    from mssr.tracking import TrackingConfig, sqlite_uri

    uri = sqlite_uri(tmp_path / "store")
    out = train(data["train"], data["val"], tmp_path / "model", model_cfg=MICRO, diffusion_cfg=DIFFUSION,
                train_cfg=_cfg(epochs=1), factor=2.0, tracking=TrackingConfig(experiment="t", uri=uri), progress=False)
    extra = json.loads((out / "config.json").read_text())["extra"]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(extra["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "baseline_2.000"
    assert run.data.params["train.lr"] == "0.003" and run.data.params["task.factor"] == "2.000"
    assert run.data.tags["input.train.sha256"] == sha256_file(data["train"])
    history = pd.read_csv(out / "history.csv")
    logged = [m.value for m in client.get_metric_history(run.info.run_id, "loss")]
    assert logged == pytest.approx(history["loss"].tolist())
    assert run.data.metrics["val_loss"] == pytest.approx(history["val_loss"].iloc[-1])
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "model")) == [
        "model/config.json", "model/history.csv", "model/model.safetensors"]


# ---------------------------------------------------------------------------------------------
# pieces


def test_ema_averages_parameters_and_never_buffers():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(module, decay=0.5)
    assert set(ema.shadow) == {name for name, _ in module.named_parameters()}
    before = {k: v.clone() for k, v in ema.shadow.items()}
    module.train()
    module(torch.randn(16, 3))  # moves the BatchNorm running statistics
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    ema.update(module, step=100)  # effective decay min(0.5, 101/110) = 0.5
    live = dict(module.named_parameters())
    for name, value in ema.shadow.items():
        torch.testing.assert_close(value, 0.5 * before[name] + 0.5 * live[name].detach())
    averaged = ema.model(module)
    for name, p in averaged.named_parameters():
        torch.testing.assert_close(p.detach(), ema.shadow[name])
    for (name, b_avg), (_, b_live) in zip(averaged.named_buffers(), module.named_buffers()):
        assert torch.equal(b_avg, b_live), name
    assert not torch.equal(module[1].running_mean, torch.zeros(4))
    assert ema.effective_decay(1) == pytest.approx(2 / 11)


def test_degraded_pairs_are_keyed_by_stream_epoch_and_sample(gaussian_peaks):
    x = gaussian_peaks(4, S, 3)
    headers = [{}] * 4
    pairs = DegradedPairs(x, headers, [float(f) for f in FACTORS], model="paper", params={"sigma_lr": 0.02}, seed=5)
    x0, x_lr, factor = pairs[(102, 7, 2)]
    rng = np.random.default_rng([5, 102, 7, 2])
    expected_factor = float(FACTORS[rng.integers(14)])
    assert factor == expected_factor
    np.testing.assert_array_equal(x_lr, degrade.simulate(x[2], expected_factor, rng=rng, sigma_lr=0.02))
    np.testing.assert_array_equal(x0, x[2])
    assert x_lr.dtype == np.float32
    again = pairs[(102, 7, 2)][1]
    np.testing.assert_array_equal(again, x_lr)
    assert not np.array_equal(pairs[(102, 8, 2)][1], x_lr)
    baseline = DegradedPairs(x, headers, [2.25], model="paper", params={}, seed=5)
    assert {baseline[(102, e, 0)][2] for e in range(10)} == {2.25}


def test_degraded_pairs_physical_reads_each_samples_axes(gaussian_peaks):
    x = gaussian_peaks(2, S, 4)
    axes = [(Axis.from_ppm_window("15N", 900, 130, 105, S), Axis.from_ppm_window("1H", 900, 10, 6, S)),
            (Axis.from_ppm_window("15N", 600, 125, 110, S), Axis.from_ppm_window("1H", 600, 9, 7, S))]
    headers = [Spectrum(x[i], axes[i]).header() for i in range(2)]
    pairs = DegradedPairs(x, headers, [1.5], model="physical", params={"sigma_high": 0.0}, seed=0)
    for i in range(2):
        expected = degrade.simulate(x[i], 1.5, model="physical", axes=axes[i], noise=False)
        np.testing.assert_allclose(pairs[(102, 0, i)][1], expected, rtol=1e-6)


def test_lr_schedule_values():
    cosine = LRLambda("cosine", warmup_steps=4, total_steps=14)
    assert [cosine(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cosine(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cosine(14) == pytest.approx(0.0, abs=1e-12)
    constant = LRLambda("constant", warmup_steps=0, total_steps=10)
    assert [constant(i) for i in (0, 5, 9)] == [1.0, 1.0, 1.0]


def test_bf16_on_cpu_falls_back_unless_forced(caplog):
    with caplog.at_level(logging.INFO, logger="mssr.model.train"):
        assert _autocast_dtype(_cfg(precision="bf16"), torch.device("cpu")) is None
    assert any("fp32" in r.getMessage() for r in caplog.records)
    assert _autocast_dtype(_cfg(precision="bf16", allow_cpu_bf16=True), torch.device("cpu")) is torch.bfloat16
    assert _autocast_dtype(_cfg(precision="fp32"), torch.device("cpu")) is None


def test_train_config_validation():
    cfg = TrainConfig.from_dict({"epochs": 3, "factors": ["2.250", 1.5], "degrade_params": {"sigma_lr": 0.02}})
    assert cfg.factors == (2.25, 1.5) and cfg.to_dict()["factors"] == [2.25, 1.5]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(TypeError, match="epochs"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ValueError, match="factors"):
        TrainConfig(factors=[0.5])
    with pytest.raises(ValueError, match="axes"):
        TrainConfig(degrade_model="physical", degrade_params={"axes": None})
