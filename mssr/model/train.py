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
A checkpoint written under another configuration or other data is ignored, with a warning.

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
import random
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from mssr import degrade
from mssr.model import network as mssr_model
from mssr.atomic import atomic_path
from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.factors import FACTORS, factor_label, factor_to_class
from mssr.provenance import git_commit, sha256_file
from mssr.spectrum import Axis

log = logging.getLogger(__name__)

LRSchedule = Literal["constant", "cosine"]
Precision = Literal["fp32", "bf16"]
Device = Literal["auto", "cpu", "cuda"]

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("step", "epoch", "loss", "val_loss", "lr")
CHECKPOINT_FORMAT = "mssr.train-checkpoint"
CHECKPOINT_VERSION = 1

# Stream tags of the keyed random draws (see the module docstring).
_ORDER, _DEGRADE, _LOSS, _DROPOUT, _VAL = 101, 102, 103, 104, 105
_INIT = 106

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
        if not isinstance(d, Mapping):
            raise TypeError(f"TrainConfig must be built from a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**dict(d))

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


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"TrainConfig.{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"TrainConfig.{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value, low: float, high: float, *, high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"TrainConfig.{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (high_open and value == high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"TrainConfig.{name} must be in {bound}, got {value}")


def _validate_train_config(cfg: TrainConfig) -> None:
    _check_int("epochs", cfg.epochs, 1)
    _check_int("batch_size", cfg.batch_size, 1)
    _check_int("warmup_steps", cfg.warmup_steps, 0)
    _check_int("seed", cfg.seed, 0)
    _check_int("num_workers", cfg.num_workers, 0)
    _check_int("checkpoint_every", cfg.checkpoint_every, 0)
    _check_int("val_every", cfg.val_every, 1)
    _check_int("log_every", cfg.log_every, 1)
    _check_float("lr", cfg.lr, 0.0, math.inf)
    if cfg.lr <= 0:
        raise ValueError(f"TrainConfig.lr must be > 0, got {cfg.lr}")
    _check_float("weight_decay", cfg.weight_decay, 0.0, math.inf)
    _check_float("ema_decay", cfg.ema_decay, 0.0, 1.0, high_open=True)
    _check_float("grad_clip", cfg.grad_clip, 0.0, math.inf)
    for name, kind in (("lr_schedule", LRSchedule), ("precision", Precision), ("device", Device),
                       ("degrade_model", degrade.DegradeModel)):
        if getattr(cfg, name) not in get_args(kind):
            raise ValueError(f"TrainConfig.{name} must be one of {get_args(kind)}, got {getattr(cfg, name)!r}")
    if not isinstance(cfg.allow_cpu_bf16, bool):
        raise TypeError(f"TrainConfig.allow_cpu_bf16 must be a bool, got {type(cfg.allow_cpu_bf16).__name__}")
    if not isinstance(cfg.factors, tuple) or not cfg.factors:
        raise ValueError(f"TrainConfig.factors must be a non-empty list of factors, got {cfg.factors!r}")
    if not isinstance(cfg.degrade_params, dict):
        raise TypeError(f"TrainConfig.degrade_params must be a dict, got {type(cfg.degrade_params).__name__}")
    if "axes" in cfg.degrade_params:
        raise ValueError("TrainConfig.degrade_params must not hold 'axes': they are read per sample from the data")


# ---------------------------------------------------------------------------------------------
# keyed random draws


def _key_seed(*key: int) -> int:
    """A 63-bit seed for torch, derived from an integer key."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, _ORDER, epoch]).permutation(n)


# ---------------------------------------------------------------------------------------------
# data


class DegradedPairs(torch.utils.data.Dataset):
    """High-field spectra paired with low-field versions simulated on access.

    Items are addressed by ``(stream, epoch, index)``; the factor and the noise of an item
    depend on that key only, so the pairs are the same whatever the batch size, the worker
    count, or where a resumed run restarts.

    Parameters
    ----------
    x : ndarray, shape (N, H, W), float32
        High-field spectra (normalized).
    headers : list of dict
        Their Spectrum headers (axes are read for the physical model).
    factors : sequence of float
        Factors drawn from, uniformly, per item.
    model : {'paper', 'physical'}
        Low-field model.
    params : dict
        Its parameters.
    seed : int
        Base seed.
    """

    def __init__(self, x: np.ndarray, headers: Sequence[Mapping], factors: Sequence[float], *,
                 model: str, params: Mapping, seed: int):
        self.x = x
        self.factors = np.asarray(factors, dtype=np.float64)
        self.model = model
        self.params = dict(params)
        self.seed = int(seed)
        self.axes = (
            [tuple(Axis.from_dict(a) for a in h["axes"]) for h in headers] if model == "physical" else None
        )

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, key: tuple[int, int, int]):
        stream, epoch, index = key
        rng = np.random.default_rng([self.seed, stream, epoch, index])
        factor = float(self.factors[rng.integers(len(self.factors))])
        params = dict(self.params)
        if self.axes is not None:
            params["axes"] = self.axes[index]
        x0 = self.x[index]
        x_lr = degrade.simulate(x0, factor, model=self.model, rng=rng, **params)
        return x0, x_lr, factor


def _collate(items):
    x0 = torch.from_numpy(np.stack([it[0] for it in items]))[:, None]
    x_lr = torch.from_numpy(np.stack([it[1] for it in items]))[:, None]
    factors = torch.tensor([it[2] for it in items], dtype=torch.float64)
    return x0, x_lr, factors


class _EpochBatches(torch.utils.data.Sampler):
    """Batches of item keys of one epoch, in its keyed order, from batch ``start`` on."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int):
        self.keys = [(_DEGRADE, epoch, int(i)) for i in _epoch_order(seed, epoch, n)]
        self.batch_size = batch_size
        self.start = start

    def __iter__(self):
        for b in range(self.start, len(self)):
            yield self.keys[b * self.batch_size : (b + 1) * self.batch_size]

    def total(self) -> int:
        return math.ceil(len(self.keys) / self.batch_size)

    def __len__(self) -> int:
        return self.total()


def _read_split(path, sample_size: int, name: str):
    from mssr.data.store import read_samples

    data = read_samples(path, extra=False)
    if len(data) == 0 and name == "train":
        raise ValueError(f"{path}: the training set is empty")
    if data.x.ndim != 3 or data.x.shape[1:] != (sample_size, sample_size):
        raise ValueError(
            f"{path}: spectra have shape {data.x.shape[1:]}, the model expects {sample_size} x {sample_size} px "
            f"(ModelConfig.sample_size)"
        )
    return data.x.astype(np.float32, copy=False), data.headers


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


def _rng_states() -> dict:
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }


def _set_rng_states(states: Mapping) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state({
        "bit_generator": n["bit_generator"],
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
        "has_gauss": n["has_gauss"],
        "gauss": n["gauss"],
    })
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _write_history(path: Path, history: list[dict]) -> None:
    import pandas as pd

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a checkpoint we can't read is not worth dying for: start over
        log.warning("%s: unreadable checkpoint (%s: %s); training from scratch", path, type(exc).__name__, exc)
        return None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        log.warning("%s: not an mssr training checkpoint; training from scratch", path)
        return None
    if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != fingerprint:
        log.warning("%s: written for another configuration or other data; training from scratch", path)
        return None
    return state


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
        if not isinstance(path, (str, Path)):
            raise TypeError(f"{name} must be a path, got {type(path).__name__}")
        if not Path(path).is_file():
            raise ValueError(f"{name}: {path} does not exist")
    if not isinstance(out_dir, (str, Path)):
        raise TypeError(f"out_dir must be a path, got {type(out_dir).__name__}")
    if not isinstance(model_cfg, mssr_model.ModelConfig):
        raise TypeError(f"model_cfg must be a ModelConfig, got {type(model_cfg).__name__}")
    if not isinstance(diffusion_cfg, DiffusionConfig):
        raise TypeError(f"diffusion_cfg must be a DiffusionConfig, got {type(diffusion_cfg).__name__}")
    if not isinstance(train_cfg, TrainConfig):
        raise TypeError(f"train_cfg must be a TrainConfig, got {type(train_cfg).__name__}")


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
    generator = torch.Generator(device=device).manual_seed(_key_seed(seed, _VAL))
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

    Returns
    -------
    Path
        ``out_dir``, holding the EMA weights (the live weights when ``ema_decay`` is 0).

    Raises
    ------
    TrainingInterrupted
        After Ctrl-C or SIGTERM, once the checkpoint is written.
    FloatingPointError
        If the loss becomes NaN or infinite (the last checkpoint is kept).
    """
    _validate_train_args(train_h5, val_h5, out_dir, model_cfg, diffusion_cfg, train_cfg)
    model_cfg, factors, factor = _resolve_task(model_cfg, train_cfg, factor)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = train_cfg
    kind = "mssr" if factor is None else "baseline"
    run_name = f"mssr_{model_cfg.conditioning}" if factor is None else f"baseline_{factor_label(factor)}"

    data_sha256 = {"train": sha256_file(train_h5), "val": sha256_file(val_h5)}
    x_train, h_train = _read_split(train_h5, model_cfg.sample_size, "train")
    x_val, h_val = _read_split(val_h5, model_cfg.sample_size, "val")
    device = _resolve_device(cfg.device)
    autocast_dtype = _autocast_dtype(cfg, device)

    def autocast():
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=autocast_dtype)

    # -- network, EMA, optimizer, schedule
    torch.manual_seed(_key_seed(cfg.seed, _INIT))
    unet = mssr_model.build_unet(model_cfg).to(device)
    predictor = mssr_model.NoisePredictor(unet).train()
    diffusion = Diffusion(diffusion_cfg)
    ema = EMA(unet, cfg.ema_decay) if cfg.ema_decay > 0 else None
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LRLambda(cfg.lr_schedule, cfg.warmup_steps, total_steps))

    train_set = DegradedPairs(x_train, h_train, factors, model=cfg.degrade_model, params=cfg.degrade_params,
                              seed=cfg.seed)
    val_set = DegradedPairs(x_val, h_val, factors, model=cfg.degrade_model, params=cfg.degrade_params,
                            seed=cfg.seed)
    # The validation pairs are fixed: computed once, the same keys every time.
    val_keys = [(_VAL, 0, i) for i in range(len(val_set))]
    val_batches = [_collate([val_set[k] for k in val_keys[i : i + cfg.batch_size]])
                   for i in range(0, len(val_keys), cfg.batch_size)]

    # -- resume
    fingerprint = _fingerprint(model_cfg, diffusion_cfg, cfg, factor, data_sha256)
    checkpoint_path = out_dir / CHECKPOINT_FILE
    history_path = out_dir / HISTORY_FILE
    epoch, batch_in_epoch, step, history = 0, 0, 0, []
    resumed = _load_checkpoint(checkpoint_path, fingerprint)
    if resumed is not None:
        unet.load_state_dict(resumed["model"])
        if ema is not None:
            ema.load_state_dict(resumed["ema"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        _set_rng_states(resumed["rng"])
        epoch, batch_in_epoch, step = resumed["epoch"], resumed["batch"], resumed["step"]
        history = list(resumed["history"])
        log.info("resuming %s from %s: epoch %d, step %d of %d", run_name, checkpoint_path, epoch, step, total_steps)

    def checkpoint_state() -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint,
            "model": unet.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_states(),
            "epoch": epoch,
            "batch": batch_in_epoch,
            "step": step,
            "history": history,
        }

    def write_checkpoint() -> None:
        _save_checkpoint(checkpoint_path, checkpoint_state())
        _write_history(history_path, history)

    log.info("training %s on %s: %d spectra (%d validation), %d epochs x %d steps, batch %d, factors %s, "
             "precision %s", run_name, device, len(x_train), len(x_val), cfg.epochs, steps_per_epoch,
             cfg.batch_size, ",".join(factor_label(f) for f in factors),
             "bf16" if autocast_dtype is not None else "fp32")

    resolved = {"model": model_cfg.to_dict(), "diffusion": diffusion_cfg.to_dict(), "train": cfg.to_dict(),
                "task": {"kind": kind, "factor": factor_label(factor) if factor is not None else None,
                         "factors": [factor_label(f) for f in factors]},
                "data": {"train": str(train_h5), "val": str(val_h5)}}
    tracker_cm = _open_tracking(tracking, run_name, out_dir, resolved, data_sha256, kind, factor, step)

    from tqdm.auto import tqdm

    generator = torch.Generator(device=device)
    with tracker_cm as tracker, _deferred_interrupts() as interrupt:
        bar = tqdm(total=total_steps, initial=step, desc=run_name, unit="step", disable=not progress)
        consistent = True
        try:
            while epoch < cfg.epochs:
                sampler = _EpochBatches(len(train_set), cfg.batch_size, cfg.seed, epoch, batch_in_epoch)
                loader = torch.utils.data.DataLoader(
                    train_set, batch_sampler=sampler, collate_fn=_collate, num_workers=cfg.num_workers,
                    pin_memory=device.type == "cuda",
                )
                for x0, x_lr, batch_factors in loader:
                    lr = optimizer.param_groups[0]["lr"]
                    generator.manual_seed(_key_seed(cfg.seed, _LOSS, step + 1))
                    torch.manual_seed(_key_seed(cfg.seed, _DROPOUT, step + 1))
                    with autocast():
                        loss = diffusion.training_loss(
                            predictor, x0.to(device, non_blocking=True), x_lr.to(device, non_blocking=True),
                            batch_factors, generator=generator,
                        )
                    loss_value = float(loss.detach())
                    if not math.isfinite(loss_value):
                        raise FloatingPointError(
                            f"loss is {loss_value} at step {step + 1} (epoch {epoch}); last good checkpoint: "
                            f"{checkpoint_path}"
                        )
                    consistent = False
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(unet.parameters(), cfg.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    batch_in_epoch += 1
                    if ema is not None:
                        ema.update(unet, step)
                    history.append({"step": step, "epoch": epoch, "loss": loss_value, "val_loss": float("nan"),
                                    "lr": lr})
                    consistent = True
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss_value:.4f}")
                    if tracker is not None and step % cfg.log_every == 0:
                        tracker.log_metrics({"loss": loss_value, "lr": lr}, step=step)
                    if callback is not None:
                        callback({"step": step, "epoch": epoch, "loss": loss_value, "lr": lr})
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        write_checkpoint()
                    if interrupt["signal"] is not None:
                        raise TrainingInterrupted(interrupt["signal"])
                # -- epoch end
                epoch_losses = [h["loss"] for h in history if h["epoch"] == epoch]
                metrics = {"epoch_loss": float(np.mean(epoch_losses)) if epoch_losses else float("nan")}
                if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
                    evaluated = mssr_model.NoisePredictor(ema.model(unet)) if ema is not None else predictor
                    val_loss = _validation_loss(evaluated, diffusion, val_batches, cfg.seed, device, autocast)
                    if history:
                        history[-1]["val_loss"] = val_loss
                    metrics["val_loss"] = val_loss
                    log.info("epoch %d: loss %.5f, val_loss %.5f", epoch, metrics["epoch_loss"], val_loss)
                epoch += 1
                batch_in_epoch = 0
                if tracker is not None:
                    tracker.log_metrics({**metrics, "epoch": epoch}, step=step)
                write_checkpoint()
                if interrupt["signal"] is not None:
                    raise TrainingInterrupted(interrupt["signal"])
        except KeyboardInterrupt as exc:
            if consistent:
                write_checkpoint()
                log.warning("training interrupted at step %d; checkpoint written to %s", step, checkpoint_path)
            else:
                log.warning("training interrupted inside an update; keeping the previous checkpoint %s",
                            checkpoint_path)
            if isinstance(exc, TrainingInterrupted):
                raise
            raise TrainingInterrupted("SIGINT") from exc
        finally:
            bar.close()

        # -- final model: the EMA weights
        final_unet = ema.model(unet) if ema is not None else unet
        last_epoch = [h["loss"] for h in history if h["epoch"] == cfg.epochs - 1]
        val_losses = [h["val_loss"] for h in history if math.isfinite(h["val_loss"])]
        final = {
            "loss": _jsonable_number(float(np.mean(last_epoch)) if last_epoch else float("nan")),
            "val_loss": _jsonable_number(val_losses[-1] if val_losses else float("nan")),
            "steps": step,
            "epochs": cfg.epochs,
        }
        extra = {
            "kind": kind,
            "diffusion": diffusion_cfg.to_dict(),
            "train": cfg.to_dict(),
            "factor": factor_label(factor) if factor is not None else None,
            "factors": [float(f) for f in factors],
            "factor_labels": [factor_label(f) for f in factors],
            "degrade": {"model": cfg.degrade_model, **cfg.degrade_params},
            "data_sha256": data_sha256,
            "git_commit": git_commit(),
            "mlflow_run_id": tracker.run_id if tracker is not None else None,
            "tracking_uri": tracker.uri if tracker is not None else None,
            "final": final,
        }
        mssr_model.save_model(final_unet, model_cfg, out_dir, extra=extra)
        _write_history(history_path, history)
        if tracker is not None:
            tracker.log_metrics({f"final_{k}": v for k, v in final.items() if isinstance(v, float)}, step=step)
            for name in (mssr_model.WEIGHTS_FILE, mssr_model.CONFIG_FILE, HISTORY_FILE):
                tracker.log_artifact(out_dir / name, artifact_path="model")
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
