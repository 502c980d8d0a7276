"""Sampling trained models: the protocol config, a loaded model ready to sample, and predictions
of a test-set file (format in :mod:`mssr.evaluation.predictions`)."""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mssr.config import set_threads
from mssr.factors import as_factor, factor_label
from mssr.model import SAMPLERS, Sampler

# torch, the network and the diffusion math are imported where they are used, so that
# SampleConfig and the option checks cost no torch import (the CLI checks options first).
CONFIG_FILE = "config.json"  # as mssr.model.network.CONFIG_FILE

log = logging.getLogger(__name__)


LIMITS = {"steps": 100_000, "repeats": 10_000, "batch_size": 4096}
"""Largest accepted ``steps``, ``repeats`` and ``batch_size`` (the paper uses 500, 5, 64)."""
LIMIT_REASONS = {
    "steps": "no schedule has more timesteps",
    "repeats": "the paper averages 5; 10,000 repeats of a 256 px spectrum already take GPU-days",
    "batch_size": "chains held on the device at once",
}
_DEVICE_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_REQUIRED_EXTRA = ("diffusion", "factors")


@dataclass(frozen=True)
class SampleConfig:
    """Sampling protocol.

    Attributes
    ----------
    sampler : {'ddpm', 'ddim', 'dpmsolver'}
        ``ddpm``: respaced ancestral sampling (the paper). ``ddim`` (eta = 0) and ``dpmsolver``
        (DPM-Solver++) are few-step options.
    steps : int
        Respaced sampling steps (paper: 500).
    repeats : int
        Independent samples averaged per spectrum (paper: 5).
    batch_size : int
        Chains (spectra x repeats) per network call.
    start_step : int or None
        Start from the low-field input noised to this step instead of pure noise.
    seed : int
        Seed of the sampler's noise.
    device : str
        'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.
    """

    sampler: Sampler = "ddpm"
    steps: int = 500
    repeats: int = 5
    batch_size: int = 64
    start_step: int | None = None
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, d: dict) -> "SampleConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"sample config: unknown key(s) {', '.join(unknown)}; expected {sorted(known)}")
        cfg = cls(**d)
        if cfg.sampler not in SAMPLERS:
            raise ValueError(f"sample.sampler must be one of {', '.join(SAMPLERS)}, got {cfg.sampler!r}")
        for name in ("steps", "repeats", "batch_size"):
            value = getattr(cfg, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"sample.{name} must be a positive int, got {value!r}")
            if value > LIMITS[name]:
                raise ValueError(f"sample.{name} = {value} is above the limit {LIMITS[name]} ({LIMIT_REASONS[name]})")
        if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**63:
            raise ValueError(f"sample.seed must be an int in [0, 2**63), got {cfg.seed!r}")
        check_device_name(cfg.device)
        return cfg


def check_device_name(device) -> str:
    """``device`` if it names a device that can sample ('auto', 'cpu', 'cuda', 'cuda:N', 'mps'), else ValueError.

    Only the spelling is checked (no torch call): whether the device exists is
    :func:`resolve_device`'s business.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'auto', 'cpu' or 'cuda:0', got {type(device).__name__}")
    if not _DEVICE_NAME.match(device):
        raise ValueError(f"device {device!r} cannot sample; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as given, checked to exist here.

    Raises
    ------
    ValueError
        A device name other than those of :func:`check_device_name`, or one this machine lacks
        (no CUDA, a CUDA index beyond the devices present, no MPS).
    """
    import torch

    check_device_name(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine; use 'cpu' or 'auto'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available on this machine; use 'cpu' or 'auto'")
    return resolved


def combine_moments(first: tuple, second: tuple) -> tuple:
    """Merge (count, mean, std) of two groups of samples into those of the union (ddof = 0).

    Chan et al.'s pairwise update: with ``delta = mean_b - mean_a`` and ``n = n_a + n_b``,
    ``mean = mean_a + delta n_b / n`` and ``M2 = M2_a + M2_b + delta^2 n_a n_b / n`` where
    ``M2 = n std^2``. Works on numbers and on arrays (elementwise).
    """
    n_a, mean_a, std_a = first
    n_b, mean_b, std_b = second
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = n_a * std_a**2 + n_b * std_b**2 + delta**2 * (n_a * n_b / n)
    return n, mean, (m2 / n) ** 0.5


def chunk_plan(n_spectra: int, repeats: int, batch_size: int) -> tuple[int, int]:
    """(spectra, repeats) per sampler call such that spectra x repeats <= ``batch_size``."""
    spectra = min(n_spectra, batch_size)
    return spectra, max(1, min(repeats, batch_size // spectra))


class Enhancer:
    """A trained model ready to sample: network, its diffusion schedule and its training record.

    Parameters
    ----------
    model_dir : path
        Directory with ``model.safetensors`` and ``config.json`` (or the weights file itself).
    device : str
        See :func:`resolve_device`.
    """

    def __init__(self, model_dir, *, device: str = "auto"):
        from mssr.model.diffusion import Diffusion
        from mssr.model.network import NoisePredictor, load_model
        from mssr.model.network_weight import read_network_weight

        model_dir = Path(model_dir)
        if model_dir.is_file():
            model_dir = model_dir.parent
        self.device = resolve_device(device)
        unet, self.model_config, self.extra = load_model(model_dir, device=self.device)
        weight = read_network_weight(model_dir)
        if weight is not None and isinstance(self.extra.get("native"), dict):
            # the model's measured network weight (mssr.evaluation.networkweight) joins its sampler default
            native = self.extra["native"]
            native["sample"] = {**(native.get("sample") or {}), "network_weight": weight}
        self.model_dir = model_dir
        self.predictor = NoisePredictor(unet).eval()
        self.diffusion = Diffusion(_diffusion_config(self.extra, model_dir / CONFIG_FILE))
        _check_factors(self.extra["factors"], model_dir / CONFIG_FILE)

    @property
    def size(self) -> int:
        """S: the side of the spectra the model was trained on, pixels."""
        return self.model_config.sample_size

    def supports(self, factor: float) -> bool:
        """Whether the model was trained for ``factor`` (any factor for continuous conditioning)."""
        if self.predictor.conditioning == "continuous":
            return True
        trained = self.extra.get("factors") or []
        return any(abs(float(f) - float(factor)) < 5e-4 for f in trained)

    def sample(self, x_lr: np.ndarray, factor: float, cfg: SampleConfig, *, progress: bool = True):
        """Sample ``cfg.repeats`` estimates per spectrum; return (mean, std), each (N, S, S) float32.

        At most ``cfg.batch_size`` chains exist at once, whatever N and ``repeats``: the spectra
        are taken in groups and the repeats in chunks (:func:`chunk_plan`), one sampler run per
        chunk, their moments merged exactly (:func:`combine_moments`). Memory is that of
        ``batch_size`` chains plus the N x S x S results. When N x repeats <= ``batch_size`` it
        is one run, as before chunking existed. The chunks draw their noise one after another
        from one generator seeded with ``cfg.seed``, so a result depends on the seed and on
        ``batch_size``.

        Raises
        ------
        ValueError
            The model's output holds NaN/Inf (the message names the model directory).
        """
        import torch

        x_all = np.ascontiguousarray(x_lr, dtype=np.float32)
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        group, per_run = chunk_plan(len(x_all), cfg.repeats, cfg.batch_size)
        mean = np.empty(x_all.shape, dtype=np.float32)
        std = np.empty(x_all.shape, dtype=np.float32)
        for start in range(0, len(x_all), group):
            block = slice(start, start + group)
            mean[block], std[block] = self._sample_block(x_all[block], factor, cfg, per_run, generator, progress)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            raise ValueError(
                f"the model in {self.model_dir} produced non-finite output (NaN/Inf at {int(bad.sum())} of "
                f"{bad.size} points): its weights or config are broken; the input was finite"
            )
        return mean, std

    def _sample_block(self, x_lr: np.ndarray, factor: float, cfg: SampleConfig, per_run: int,
                      generator, progress: bool) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = torch.as_tensor(x_lr)[:, None].to(self.device)
        factors = torch.full((x.shape[0],), float(factor), dtype=torch.float32)
        autocast = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        moments = None
        for done in range(0, cfg.repeats, per_run):
            repeats = min(per_run, cfg.repeats - done)
            with torch.inference_mode():
                mean, std = self.diffusion.sample(
                    self.predictor, x, factors, sampler=cfg.sampler, steps=cfg.steps, repeats=repeats,
                    batch_size=cfg.batch_size, start_step=cfg.start_step, generator=generator,
                    progress=progress and done == 0, autocast_dtype=autocast,
                )
            chunk = (repeats, mean[:, 0].double().cpu().numpy(), std[:, 0].double().cpu().numpy())
            moments = chunk if moments is None else combine_moments(moments, chunk)
        return moments[1].astype(np.float32), moments[2].astype(np.float32)


def _diffusion_config(extra: dict, config_path: Path):
    from mssr.model.diffusion import DiffusionConfig

    missing = [key for key in _REQUIRED_EXTRA if key not in extra]
    if missing:
        raise ValueError(f"{config_path}: missing key(s) {', '.join('extra.' + k for k in missing)}; "
                         "not a complete mssr training output")
    section = extra["diffusion"]
    if not isinstance(section, dict):
        raise ValueError(f"{config_path}: extra.diffusion must be a JSON object, got {type(section).__name__}")
    absent = [f.name for f in fields(DiffusionConfig) if f.name not in section]
    if absent:
        raise ValueError(
            f"{config_path}: missing key(s) {', '.join('extra.diffusion.' + k for k in absent)}; a training run "
            "writes every key, and a default (e.g. timesteps = 2000) may not be what the model was trained with"
        )
    try:
        return DiffusionConfig.from_dict(section)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{config_path}: invalid extra.diffusion: {exc}") from None


def _check_factors(factors, config_path: Path) -> None:
    if not isinstance(factors, list) or not all(
        isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and f >= 1 for f in factors
    ):
        raise ValueError(f"{config_path}: extra.factors must be a list of the trained factors (numbers >= 1), "
                         f"got {factors!r}")


def predict_file(model_path, testset_h5, factor, out_h5, *, sample: dict, method: str = "mssr",
                 threads: int | None = None) -> Path:
    """Sample a learned model on the inputs of one factor of a test set and store mean and SD.

    Parameters
    ----------
    model_path : path
        The model's directory or its ``model.safetensors``.
    testset_h5 : path
        Test set (:mod:`mssr.evaluation.testsets`).
    factor : float or str
        Table-1 factor (value or 3-decimal label).
    out_h5 : path
        Prediction file to write.
    sample : dict
        The ``sample`` config section (:class:`SampleConfig`).
    method : str
        Name recorded in the file ('mssr', 'baseline').
    threads : int, optional
        CPU threads of torch.
    """
    from mssr.evaluation.predictions import write_prediction
    from mssr.evaluation.testsets import factor_inputs

    set_threads(threads)
    cfg = SampleConfig.from_dict(dict(sample))
    f = as_factor(factor)
    _, x_lr, s = factor_inputs(testset_h5, f)
    enhancer = Enhancer(model_path, device=cfg.device)
    if x_lr.shape[-1] != enhancer.size:
        raise ValueError(f"{testset_h5}: spectra are {x_lr.shape[-1]} px, the model in {enhancer.model_dir} "
                         f"was trained on {enhancer.size} px")
    if not enhancer.supports(f):
        raise ValueError(f"{enhancer.model_dir} was not trained for factor {factor_label(f)}")
    start = time.perf_counter()
    mean, std = enhancer.sample(x_lr, float(f), cfg)
    seconds = time.perf_counter() - start
    log.info("%s factor %s: %d spectra x %d repeats x %d steps in %.1f s", method, factor_label(f),
             len(mean), cfg.repeats, cfg.steps, seconds)
    return write_prediction(out_h5, mean, std, s.headers, method=method, factor=factor_label(f),
                            testset=s.attrs.get("testset"), sample=asdict(cfg), device=str(enhancer.device),
                            seconds=seconds, model=str(enhancer.model_dir),
                            mlflow_run_id=enhancer.extra.get("mlflow_run_id"))
