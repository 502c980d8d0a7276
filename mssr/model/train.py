"""Training of MSSR (all factors, one network) and of the single-factor baselines.

The loop degrades high-field spectra on the fly (:func:`mssr.degrade.simulate`, a fresh noise
draw every epoch; for MSSR a factor drawn per sample), minimizes the noise-prediction MSE of
:meth:`mssr.model.diffusion.Diffusion.training_loss` with AdamW, gradient clipping and a warmup +
constant/cosine learning-rate schedule, keeps an exponential moving average (EMA) of the
parameters, and reports a validation loss.

Reproducibility and resumption
------------------------------
Every random draw is keyed by what it belongs to, not by how many draws came before:

- the order of epoch ``e``: ``default_rng([seed, ORDER, e])``;
- factor and low-field noise of sample ``i`` in epoch ``e``: ``default_rng([seed, DEGRADE, e, i])``;
- timesteps and noise of optimizer step ``s`` (and dropout): torch generators seeded from
  ``[seed, LOSS, s]`` and ``[seed, DROPOUT, s]``;
- validation: the same keys at every validation, so the numbers are comparable across epochs.

A checkpoint therefore only needs the network, EMA, optimizer and scheduler states and the
position (epoch, batch, step); it also stores the global RNG states (torch, CUDA, numpy, Python)
and the history. ``out_dir/checkpoint.pt`` is written atomically every ``checkpoint_every`` steps,
at each epoch end and on an interrupt (Ctrl-C or SIGTERM: the current step finishes first), and
read with ``torch.load(weights_only=True)``. Running the same command again resumes from it and
ends with the same weights as an uninterrupted run (bitwise on the same device and thread count).
A checkpoint written under another configuration or other data is ignored, with a warning; an
unreadable one is moved aside and training stops (:class:`CheckpointError`), never silently
starting over.

The data sets trained on are built by :func:`mssr.model.train_data.training_data`; the
checkpoint file is read and written by :mod:`mssr.model.checkpoint`.

Outputs in ``out_dir``: ``model.safetensors`` + ``config.json`` (the EMA weights, via
:func:`mssr.model.network.save_model`), ``history.csv`` (step, epoch, loss, val_loss, lr) and
``checkpoint.pt``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from mssr import _validate, degrade
from mssr.model import network as mssr_model
from mssr.atomic import atomic_path
from mssr.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.model.train_data import (  # DegradedPairs, TrainingData: re-exported
    DROPOUT,
    INIT,
    LOSS,
    VAL,
    DegradedPairs,
    EpochBatches,
    TrainingData,
    collate,
    key_seed,
    training_data,
    validation_batches,
)
from mssr.factors import FACTORS, factor_label, factor_to_class
from mssr.provenance import git_commit

log = logging.getLogger(__name__)

LRSchedule = Literal["constant", "cosine"]
Precision = Literal["fp32", "bf16"]
Device = Literal["auto", "cpu", "cuda"]

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("step", "epoch", "loss", "val_loss", "lr")


# Fields that change speed or bookkeeping but never the trained weights: a checkpoint written
# with other values of these is still resumed.
_NON_RESULT_FIELDS = ("num_workers", "checkpoint_every", "log_every", "device")


# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run.

    Attributes
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Spectra per optimizer step (the last batch of an epoch may be smaller).
    lr : float
        Peak AdamW learning rate.
    lr_schedule : {'constant', 'cosine'}
        After warmup: constant, or cosine decay to 0 at the last step.
    warmup_steps : int
        Linear warmup from 0 to ``lr`` over this many steps.
    weight_decay : float
        AdamW weight decay.
    ema_decay : float
        Decay of the EMA of the parameters, in [0, 1); 0 disables the EMA. The effective decay
        at step ``s`` is ``min(ema_decay, (1 + s) / (10 + s))`` so short runs aren't dominated by
        the initial weights.
    grad_clip : float
        Maximum global gradient norm; 0 disables clipping.
    precision : {'fp32', 'bf16'}
        ``'bf16'``: bfloat16 autocast on CUDA devices that support it; elsewhere fp32 with an
        info log, unless ``allow_cpu_bf16`` (CPU bf16 autocast works but is slow).
    allow_cpu_bf16 : bool
        Use bf16 autocast on the CPU too.
    seed : int
        Seed of the network initialization and of every keyed random draw.
    num_workers : int
        DataLoader worker processes (the result does not depend on it).
    checkpoint_every : int
        Steps between checkpoints (also written at each epoch end); 0: epoch ends only.
    val_every : int
        Epochs between validations (the last epoch is always validated).
    log_every : int
        Steps between per-step MLflow metrics (``history.csv`` has every step).
    device : {'auto', 'cpu', 'cuda'}
        'auto': CUDA when available.
    factors : tuple of float
        Factors MSSR draws from, one per sample (default: the 14 of Table 1). A baseline
        trains on its own factor only.
    degrade_model : {'paper', 'physical'}
        Low-field model (:func:`mssr.degrade.simulate`).
    degrade_params : dict
        Its parameters (e.g. ``{'sigma_lr': 0.01}``); the physical model reads each sample's axes
        from the data file.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    lr_schedule: LRSchedule = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    precision: Precision = "fp32"
    allow_cpu_bf16: bool = False
    seed: int = 0
    num_workers: int = 0
    checkpoint_every: int = 200
    val_every: int = 1
    log_every: int = 10
    device: Device = "auto"
    factors: tuple[float, ...] = tuple(float(f) for f in FACTORS)
    degrade_model: degrade.DegradeModel = "paper"
    degrade_params: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.factors, (list, tuple)):
            object.__setattr__(self, "factors", tuple(_validate_factor_value(f) for f in self.factors))
        if isinstance(self.degrade_params, Mapping):
            object.__setattr__(self, "degrade_params", dict(self.degrade_params))
        _validate_train_config(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrainConfig":
        """Build a config from a mapping; missing keys take the defaults.

        Raises
        ------
        ValueError
            If ``d`` has a key that is not a field (the key is named) or a value is out of range.
        """
        return _validate.dataclass_from_mapping(cls, d)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        d = dataclasses.asdict(self)
        d["factors"] = list(self.factors)
        return d


def _validate_factor_value(f) -> float:
    if isinstance(f, str):
        try:
            f = float(f)
        except ValueError as exc:
            raise ValueError(f"TrainConfig.factors: {f!r} is not a number") from exc
    if isinstance(f, bool) or not isinstance(f, Real) or not math.isfinite(float(f)) or float(f) < 1.0:
        raise ValueError(f"TrainConfig.factors must hold finite numbers >= 1, got {f!r}")
    return float(f)


def _validate_train_config(cfg: TrainConfig) -> None:
    for name, minimum in (("epochs", 1), ("batch_size", 1), ("warmup_steps", 0), ("seed", 0), ("num_workers", 0),
                          ("checkpoint_every", 0), ("val_every", 1), ("log_every", 1)):
        _validate.integer(f"TrainConfig.{name}", getattr(cfg, name), minimum)
    _validate.positive("TrainConfig.lr", cfg.lr)
    _validate.nonnegative("TrainConfig.weight_decay", cfg.weight_decay)
    _validate.number_in("TrainConfig.ema_decay", cfg.ema_decay, 0.0, 1.0, high_open=True)
    _validate.nonnegative("TrainConfig.grad_clip", cfg.grad_clip)
    for name, kind in (("lr_schedule", LRSchedule), ("precision", Precision), ("device", Device),
                       ("degrade_model", degrade.DegradeModel)):
        _validate.choice(f"TrainConfig.{name}", getattr(cfg, name), get_args(kind))
    if not isinstance(cfg.allow_cpu_bf16, bool):
        raise TypeError(f"TrainConfig.allow_cpu_bf16 must be a bool, got {type(cfg.allow_cpu_bf16).__name__}")
    if not isinstance(cfg.factors, tuple) or not cfg.factors:
        raise ValueError(f"TrainConfig.factors must be a non-empty list of factors, got {cfg.factors!r}")
    if not isinstance(cfg.degrade_params, dict):
        raise TypeError(f"TrainConfig.degrade_params must be a dict, got {type(cfg.degrade_params).__name__}")
    if "axes" in cfg.degrade_params:
        raise ValueError("TrainConfig.degrade_params must not hold 'axes': they are read per sample from the data")


# ---------------------------------------------------------------------------------------------
# model pieces


class EMA:
    """Exponential moving average of a module's parameters (never its buffers).

    Buffers (e.g. normalization statistics) are not weights being learned; averaging them mixes
    statistics of different networks. :meth:`model` returns a copy of the live module with
    the averaged parameters and the live buffers.

    Parameters
    ----------
    module : nn.Module
        The trained module.
    decay : float
        Maximum decay, in [0, 1).
    """

    def __init__(self, module: nn.Module, decay: float):
        self.decay = float(decay)
        self.shadow = {name: p.detach().clone() for name, p in module.named_parameters()}

    def effective_decay(self, step: int) -> float:
        """``min(decay, (1 + step) / (10 + step))`` at optimizer step ``step`` (1-based)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = self.effective_decay(step)
        for name, p in module.named_parameters():
            self.shadow[name].lerp_(p.detach(), 1.0 - d)

    def model(self, module: nn.Module) -> nn.Module:
        """A copy of ``module`` holding the averaged parameters."""
        averaged = copy.deepcopy(module)
        with torch.no_grad():
            for name, p in averaged.named_parameters():
                p.copy_(self.shadow[name])
        return averaged

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: Mapping) -> None:
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise ValueError(f"EMA state does not match the model: {sorted(missing)[:3]}")
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)


class LRLambda:
    """Learning-rate multiplier: linear warmup, then constant or cosine decay to 0.

    A class (not a closure) so that the scheduler's ``state_dict`` holds plain values.
    """

    def __init__(self, kind: str, warmup_steps: int, total_steps: int):
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, index: int) -> float:
        # index = number of completed steps; the multiplier applies to step index + 1
        if index < self.warmup_steps:
            return (index + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (index - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device is 'cuda' but no CUDA device is available")
    return torch.device(device)


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "fp32":
        return None
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        log.info("precision bf16: this CUDA device has no bfloat16 support; training in fp32")
        return None
    if cfg.allow_cpu_bf16:
        return torch.bfloat16
    log.info("precision bf16: not used on the CPU (slow; set allow_cpu_bf16 to force it); training in fp32")
    return None


# ---------------------------------------------------------------------------------------------
# checkpoints and history


def _write_history(path: Path, history: list[dict]) -> None:
    import pandas as pd

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _fingerprint(model_cfg, diffusion_cfg, train_cfg: TrainConfig, factor, data_sha256: dict) -> str:
    train = {k: v for k, v in train_cfg.to_dict().items() if k not in _NON_RESULT_FIELDS}
    document = {"model": model_cfg.to_dict(), "diffusion": diffusion_cfg.to_dict(), "train": train,
                "factor": factor, "data": data_sha256}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# interrupts


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after writing a checkpoint."""


@contextlib.contextmanager
def _deferred_interrupts():
    """Turn the first SIGINT/SIGTERM into a request to stop after the current step.

    Yields a dict whose ``'signal'`` entry names the signal once one arrived. A second SIGINT
    interrupts at once. Outside the main thread signals can't be caught: nothing is installed.
    """
    request: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request["signal"] = signal.Signals(signum).name
        log.warning("%s received: stopping after the current step (Ctrl-C again to abort at once)",
                    request["signal"])

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# training


def _validate_train_args(train_h5, val_h5, out_dir, model_cfg, diffusion_cfg, train_cfg):
    for name, path in (("train_h5", train_h5), ("val_h5", val_h5)):
        if not _validate.path(name, path).is_file():
            raise ValueError(f"{name}: {path} does not exist")
    _validate.path("out_dir", out_dir)
    for name, value, kind in (("model_cfg", model_cfg, mssr_model.ModelConfig),
                              ("diffusion_cfg", diffusion_cfg, DiffusionConfig), ("train_cfg", train_cfg, TrainConfig)):
        if not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")


def _resolve_task(model_cfg, train_cfg: TrainConfig, factor):
    """(model config, factors trained on, factor or None) for MSSR or a baseline."""
    if factor is None:
        if model_cfg.conditioning == "none":
            raise ValueError(
                "model_cfg.conditioning is 'none' but no factor was given: MSSR needs 'class' or "
                "'continuous' conditioning; pass factor=f to train a single-factor baseline"
            )
        factors = train_cfg.factors
        if model_cfg.conditioning == "class":
            for f in factors:
                # raises for factors outside Table 1, which have no class
                factor_to_class(f)
        return model_cfg, factors, None
    f = _validate_factor_value(factor)
    if model_cfg.conditioning != "none":
        log.info("baseline for factor %s: conditioning %r replaced by 'none'", factor_label(f), model_cfg.conditioning)
        model_cfg = dataclasses.replace(model_cfg, conditioning="none")
    return model_cfg, (f,), f


@torch.no_grad()
def _validation_loss(predictor, diffusion: Diffusion, val_batches, seed: int, device, autocast) -> float:
    if not val_batches:
        return float("nan")
    generator = torch.Generator(device=device).manual_seed(key_seed(seed, VAL))
    total, count = 0.0, 0
    was_training = predictor.training
    predictor.eval()
    for x0, x_lr, factors in val_batches:
        with autocast():
            loss = diffusion.training_loss(predictor, x0.to(device), x_lr.to(device), factors, generator=generator)
        total += float(loss) * x0.shape[0]
        count += x0.shape[0]
    predictor.train(was_training)
    return total / count


def _jsonable_number(value: float):
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class _Run:
    """The live state of one training run: network, optimizer, position, history, files."""

    name: str
    cfg: TrainConfig
    device: torch.device
    autocast_dtype: torch.dtype | None
    unet: nn.Module
    predictor: nn.Module
    diffusion: Diffusion
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int
    fingerprint: str
    checkpoint_path: Path
    history_path: Path
    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    history: list = field(default_factory=list)
    # False while an update is half applied: an interrupt then keeps the previous checkpoint
    consistent: bool = True

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def checkpoint_state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "model": self.unet.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_states(),
            "epoch": self.epoch,
            "batch": self.batch_in_epoch,
            "step": self.step,
            "history": self.history,
        }

    def write_checkpoint(self) -> None:
        save_checkpoint(self.checkpoint_path, self.checkpoint_state())
        _write_history(self.history_path, self.history)

    def restore(self, state: Mapping) -> None:
        self.unet.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch"], state["step"]
        self.history = list(state["history"])

    def evaluated(self) -> nn.Module:
        """The predictor validated and saved: the EMA weights when there is an EMA."""
        return mssr_model.NoisePredictor(self.ema.model(self.unet)) if self.ema is not None else self.predictor


def _build_run(name: str, model_cfg, diffusion_cfg: DiffusionConfig, cfg: TrainConfig, n_train: int,
               out_dir: Path, fingerprint: str) -> _Run:
    """Network, EMA, optimizer and schedule, seeded; resumed from ``out_dir``'s checkpoint if it fits."""
    device = _resolve_device(cfg.device)
    torch.manual_seed(key_seed(cfg.seed, INIT))
    unet = mssr_model.build_unet(model_cfg).to(device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    run = _Run(
        name=name, cfg=cfg, device=device, autocast_dtype=_autocast_dtype(cfg, device), unet=unet,
        predictor=mssr_model.NoisePredictor(unet).train(), diffusion=Diffusion(diffusion_cfg),
        ema=EMA(unet, cfg.ema_decay) if cfg.ema_decay > 0 else None, optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, LRLambda(cfg.lr_schedule, cfg.warmup_steps,
                                                                        total_steps)),
        total_steps=total_steps, fingerprint=fingerprint, checkpoint_path=out_dir / CHECKPOINT_FILE,
        history_path=out_dir / HISTORY_FILE,
    )
    resumed = load_checkpoint(run.checkpoint_path, fingerprint)
    if resumed is not None:
        run.restore(resumed)
        log.info("resuming %s from %s: epoch %d, step %d of %d", name, run.checkpoint_path, run.epoch, run.step,
                 total_steps)
    return run


def _train_step(run: _Run, x0, x_lr, batch_factors, generator: torch.Generator) -> tuple[float, float]:
    """One optimizer step on a batch; returns (loss, learning rate used)."""
    cfg = run.cfg
    lr = run.optimizer.param_groups[0]["lr"]
    generator.manual_seed(key_seed(cfg.seed, LOSS, run.step + 1))
    torch.manual_seed(key_seed(cfg.seed, DROPOUT, run.step + 1))
    with run.autocast():
        loss = run.diffusion.training_loss(
            run.predictor, x0.to(run.device, non_blocking=True), x_lr.to(run.device, non_blocking=True),
            batch_factors, generator=generator,
        )
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        raise FloatingPointError(
            f"loss is {loss_value} at step {run.step + 1} (epoch {run.epoch}); last good checkpoint: "
            f"{run.checkpoint_path}"
        )
    run.consistent = False
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.unet.parameters(), cfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    run.batch_in_epoch += 1
    if run.ema is not None:
        run.ema.update(run.unet, run.step)
    run.history.append({"step": run.step, "epoch": run.epoch, "loss": loss_value, "val_loss": float("nan"),
                        "lr": lr})
    run.consistent = True
    return loss_value, lr


def _train_epoch(run: _Run, train_set, *, tracker, callback, interrupt: dict, bar) -> None:
    """The remaining batches of epoch ``run.epoch``, with logging and step checkpoints."""
    cfg = run.cfg
    sampler = EpochBatches(len(train_set), cfg.batch_size, cfg.seed, run.epoch, run.batch_in_epoch)
    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
        pin_memory=run.device.type == "cuda",
    )
    generator = torch.Generator(device=run.device)
    for x0, x_lr, batch_factors in loader:
        loss_value, lr = _train_step(run, x0, x_lr, batch_factors, generator)
        bar.update(1)
        bar.set_postfix(epoch=run.epoch, loss=f"{loss_value:.4f}")
        if tracker is not None and run.step % cfg.log_every == 0:
            tracker.log_metrics({"loss": loss_value, "lr": lr}, step=run.step)
        if callback is not None:
            callback({"step": run.step, "epoch": run.epoch, "loss": loss_value, "lr": lr})
        if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
            run.write_checkpoint()
        if interrupt["signal"] is not None:
            raise TrainingInterrupted(interrupt["signal"])


def _end_epoch(run: _Run, val_batches, *, tracker) -> None:
    """Validate when due, log the epoch, move to the next one and write the checkpoint."""
    cfg = run.cfg
    epoch_losses = [h["loss"] for h in run.history if h["epoch"] == run.epoch]
    metrics = {"epoch_loss": float(np.mean(epoch_losses)) if epoch_losses else float("nan")}
    if (run.epoch + 1) % cfg.val_every == 0 or run.epoch + 1 == cfg.epochs:
        val_loss = _validation_loss(run.evaluated(), run.diffusion, val_batches, cfg.seed, run.device, run.autocast)
        if run.history:
            run.history[-1]["val_loss"] = val_loss
        metrics["val_loss"] = val_loss
        log.info("epoch %d: loss %.5f, val_loss %.5f", run.epoch, metrics["epoch_loss"], val_loss)
    run.epoch += 1
    run.batch_in_epoch = 0
    if tracker is not None:
        tracker.log_metrics({**metrics, "epoch": run.epoch}, step=run.step)
    run.write_checkpoint()


def _train_epochs(run: _Run, data: TrainingData, *, tracker, callback, interrupt: dict, progress: bool) -> None:
    """Every remaining epoch; on Ctrl-C or SIGTERM, a checkpoint and :class:`TrainingInterrupted`."""
    from tqdm.auto import tqdm

    val_batches = validation_batches(data.val, run.cfg.batch_size)
    bar = tqdm(total=run.total_steps, initial=run.step, desc=run.name, unit="step", disable=not progress)
    try:
        while run.epoch < run.cfg.epochs:
            _train_epoch(run, data.train, tracker=tracker, callback=callback, interrupt=interrupt, bar=bar)
            _end_epoch(run, val_batches, tracker=tracker)
            if interrupt["signal"] is not None:
                raise TrainingInterrupted(interrupt["signal"])
    except KeyboardInterrupt as exc:
        if run.consistent:
            run.write_checkpoint()
            log.warning("training interrupted at step %d; checkpoint written to %s", run.step, run.checkpoint_path)
        else:
            log.warning("training interrupted inside an update; keeping the previous checkpoint %s",
                        run.checkpoint_path)
        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted("SIGINT") from exc
    finally:
        bar.close()


def _save_final(run: _Run, model_cfg, out_dir: Path, *, task: dict, data: TrainingData, tracker) -> dict:
    """Write the EMA weights, their config with provenance, and the history; returns the final losses."""
    cfg = run.cfg
    last_epoch = [h["loss"] for h in run.history if h["epoch"] == cfg.epochs - 1]
    val_losses = [h["val_loss"] for h in run.history if math.isfinite(h["val_loss"])]
    final = {
        "loss": _jsonable_number(float(np.mean(last_epoch)) if last_epoch else float("nan")),
        "val_loss": _jsonable_number(val_losses[-1] if val_losses else float("nan")),
        "steps": run.step,
        "epochs": cfg.epochs,
    }
    factor, factors = task["factor"], task["factors"]
    extra = {
        "kind": task["kind"],
        "diffusion": run.diffusion.config.to_dict(),
        "train": cfg.to_dict(),
        "factor": factor_label(factor) if factor is not None else None,
        "factors": [float(f) for f in factors],
        "factor_labels": [factor_label(f) for f in factors],
        "degrade": {"model": cfg.degrade_model, **cfg.degrade_params},
        "data_sha256": data.sha256,
        "git_commit": git_commit(),
        "mlflow_run_id": tracker.run_id if tracker is not None else None,
        "tracking_uri": tracker.uri if tracker is not None else None,
        "final": final,
        **task.get("record", {}),
    }
    final_unet = run.ema.model(run.unet) if run.ema is not None else run.unet
    mssr_model.save_model(final_unet, model_cfg, out_dir, extra=extra)
    _write_history(run.history_path, run.history)
    if tracker is not None:
        tracker.log_metrics({f"final_{k}": v for k, v in final.items() if isinstance(v, float)}, step=run.step)
        for name in (mssr_model.WEIGHTS_FILE, mssr_model.CONFIG_FILE, HISTORY_FILE):
            tracker.log_artifact(out_dir / name, artifact_path="model")
    return final


def train(
    train_h5,
    val_h5,
    out_dir,
    *,
    model_cfg,
    diffusion_cfg: DiffusionConfig,
    train_cfg: TrainConfig,
    factor=None,
    tracking=None,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    data: TrainingData | None = None,
    record: dict | None = None,
) -> Path:
    """Train MSSR (``factor=None``) or the baseline of one factor; resume if a checkpoint exists.

    Parameters
    ----------
    train_h5, val_h5 : path
        Sample sets (:func:`mssr.data.store.write_samples`) of S x S high-field spectra.
    out_dir : path
        Model folder: receives ``model.safetensors``, ``config.json``, ``history.csv`` and
        ``checkpoint.pt``.
    model_cfg : mssr.model.network.ModelConfig
        Network. MSSR needs 'class' or 'continuous' conditioning; for a baseline the
        conditioning is set to 'none'.
    diffusion_cfg : mssr.model.diffusion.DiffusionConfig
        Noise schedule.
    train_cfg : TrainConfig
        Hyper-parameters.
    factor : float, Fraction or str, optional
        None: MSSR, a factor drawn per sample from ``train_cfg.factors``. A factor: the
        single-factor baseline.
    tracking : mssr.tracking.TrackingConfig or mapping, optional
        MLflow tracking (``experiment``, ``uri``, ``run_name``); None: no MLflow run (the history
        file is written anyway).
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        Called after every optimizer step with ``{'step', 'epoch', 'loss', 'lr'}``; an exception
        it raises stops training (a KeyboardInterrupt writes a checkpoint first).
    data : TrainingData, optional
        Train on these data sets instead of the sample sets ``train_h5`` and ``val_h5`` (which
        are then only recorded): e.g. the native mode's patches (:mod:`mssr.data.patches`).
    record : dict, optional
        JSON-ready entries added to the model's ``config.json`` (``extra``), e.g. what the
        native mode needs to know at inference.

    Returns
    -------
    Path
        ``out_dir``, holding the EMA weights (the live weights when ``ema_decay`` is 0).

    Raises
    ------
    TrainingInterrupted
        After Ctrl-C or SIGTERM, once the checkpoint is written.
    CheckpointError
        If ``out_dir/checkpoint.pt`` exists but cannot be read; it is moved aside first (see
        :class:`CheckpointError`) and nothing is trained.
    FloatingPointError
        If the loss becomes NaN or infinite (the last checkpoint is kept).
    """
    if data is None:
        _validate_train_args(train_h5, val_h5, out_dir, model_cfg, diffusion_cfg, train_cfg)
    elif not isinstance(data, TrainingData):
        raise TypeError(f"data must be a TrainingData, got {type(data).__name__}")
    model_cfg, factors, factor = _resolve_task(model_cfg, train_cfg, factor)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = train_cfg
    kind = "mssr" if factor is None else "baseline"
    run_name = f"mssr_{model_cfg.conditioning}" if factor is None else f"baseline_{factor_label(factor)}"

    if data is None:
        data = training_data(train_h5, val_h5, model_cfg, cfg, factors)
    fingerprint = _fingerprint(model_cfg, diffusion_cfg, cfg, factor, data.sha256)
    run = _build_run(run_name, model_cfg, diffusion_cfg, cfg, len(data.train), out_dir, fingerprint)
    log.info("training %s on %s: %d spectra (%d validation), %d epochs x %d steps, batch %d, factors %s, "
             "precision %s", run_name, run.device, len(data.train), len(data.val), cfg.epochs,
             run.total_steps // cfg.epochs, cfg.batch_size, ",".join(factor_label(f) for f in factors),
             "bf16" if run.autocast_dtype is not None else "fp32")

    task = {"kind": kind, "factor": factor, "factors": factors, "record": dict(record or {})}
    resolved = {"model": model_cfg.to_dict(), "diffusion": diffusion_cfg.to_dict(), "train": cfg.to_dict(),
                "task": {"kind": kind, "factor": factor_label(factor) if factor is not None else None,
                         "factors": [factor_label(f) for f in factors]},
                "data": {"train": str(train_h5), "val": str(val_h5)}}
    tracker_cm = _open_tracking(tracking, run_name, out_dir, resolved, data.sha256, kind, factor, run.step)
    with tracker_cm as tracker, _deferred_interrupts() as interrupt:
        _train_epochs(run, data, tracker=tracker, callback=callback, interrupt=interrupt, progress=progress)
        final = _save_final(run, model_cfg, out_dir, task=task, data=data, tracker=tracker)
    log.info("%s: model written to %s (loss %s, val_loss %s)", run_name, out_dir, final["loss"], final["val_loss"])
    return out_dir


def _open_tracking(tracking, run_name, out_dir: Path, resolved: dict, data_sha256: dict, kind: str, factor, step: int):
    if tracking is None:
        return contextlib.nullcontext(None)
    from mssr import tracking as mssr_tracking

    if isinstance(tracking, Mapping):
        tracking = mssr_tracking.TrackingConfig.from_dict(tracking)
    if not isinstance(tracking, mssr_tracking.TrackingConfig):
        raise TypeError(f"tracking must be a TrackingConfig, a mapping or None, got {type(tracking).__name__}")
    tags = {f"input.{name}.sha256": digest for name, digest in data_sha256.items()}
    tags.update({"mssr.kind": kind, "mssr.factor": factor_label(factor) if factor is not None else "all"})
    if step:
        tags["mssr.resumed_from_step"] = str(step)
    return mssr_tracking.run(
        tracking.experiment, tracking.run_name or run_name, uri=tracking.uri, params=resolved, tags=tags,
        fallback_dir=out_dir / "tracking",
    )
