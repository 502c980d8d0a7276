"""Sampling trained models: the protocol config, a loaded model ready to sample, and predictions
of a test-set file (format in :mod:`mssr.evaluation.predictions`)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from mssr.config import set_threads
from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.factors import as_factor, factor_label
from mssr.model.network import NoisePredictor, load_model
from mssr.evaluation.predictions import write_prediction
from mssr.evaluation.testsets import factor_inputs

log = logging.getLogger(__name__)

Sampler = Literal["ddpm", "ddim", "dpmsolver"]


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
        if cfg.sampler not in ("ddpm", "ddim", "dpmsolver"):
            raise ValueError(f"sample.sampler must be ddpm, ddim or dpmsolver, got {cfg.sampler!r}")
        for name in ("steps", "repeats", "batch_size"):
            value = getattr(cfg, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"sample.{name} must be a positive int, got {value!r}")
        return cfg


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
        model_dir = Path(model_dir)
        if model_dir.is_file():
            model_dir = model_dir.parent
        self.device = resolve_device(device)
        unet, self.model_config, self.extra = load_model(model_dir, device=self.device)
        if "diffusion" not in self.extra:
            raise ValueError(f"{model_dir / 'config.json'}: no 'diffusion' section; not an mssr training output")
        self.model_dir = model_dir
        self.predictor = NoisePredictor(unet).eval()
        self.diffusion = Diffusion(DiffusionConfig.from_dict(self.extra["diffusion"]))

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
        """Sample ``cfg.repeats`` estimates per spectrum; return (mean, std), each (N, S, S) float32."""
        x = torch.as_tensor(np.ascontiguousarray(x_lr, dtype=np.float32))[:, None].to(self.device)
        factors = torch.full((x.shape[0],), float(factor), dtype=torch.float32)
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        autocast = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        with torch.inference_mode():
            mean, std = self.diffusion.sample(
                self.predictor, x, factors, sampler=cfg.sampler, steps=cfg.steps, repeats=cfg.repeats,
                batch_size=cfg.batch_size, start_step=cfg.start_step, generator=generator, progress=progress,
                autocast_dtype=autocast,
            )
        return mean[:, 0].float().cpu().numpy(), std[:, 0].float().cpu().numpy()


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
