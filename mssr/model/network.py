"""The MSSR noise-prediction network: a diffusers ``UNet2DModel`` and its conditioning.

The network sees the noisy high-field spectrum ``x_t`` concatenated with the low-field spectrum
``x_lr`` along the channel axis (2 input channels) and predicts the noise ``eps`` (1 output
channel). Its time embedding is summed with an embedding of the upscaling factor
(paper eq. 3); three conditionings exist:

``'class'``
    MSSR: a learned ``nn.Embedding`` row per Table-1 factor (14 rows, class index from
    :func:`mssr.factors.factor_to_class`), diffusers ``UNet2DModel(num_class_embeds=14)``.
``'continuous'``
    The factor is embedded like a timestep (sinusoidal projection, then an MLP): diffusers
    ``UNet2DModel(class_embed_type="timestep")``. The value embedded is
    ``1000 * ln(f)`` (:func:`continuous_label`), so any factor >= 1 can be asked for.
``'none'``
    The single-factor baseline: the same network without a factor embedding.

:class:`NoisePredictor` is the one place that turns factors into what the network is given.
Weights are stored as safetensors next to a JSON config (:func:`save_model`, :func:`load_model`);
nothing here ever unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import nn

from mssr import _validate
from mssr.atomic import atomic_path
from mssr.factors import FACTORS, factor_to_class, factors_on_host
from mssr.provenance import sha256_file

Conditioning = Literal["class", "continuous", "none"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "mssr.model"
FORMAT_VERSION = 1

CONTINUOUS_SCALE = 1000.0
"""Multiplier of ``ln(f)`` in the continuous conditioning (see :func:`continuous_label`)."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the noise-prediction UNet.

    The field defaults make a small network (1,114,881 parameters at 64 px) for code that builds
    one by hand; the networks the pipeline trains are defined only in its config files
    (:func:`pipeline_model_config`; the paper's: :func:`paper_config`).

    Attributes
    ----------
    sample_size : int
        Side of the square spectra the network is trained on, pixels.
    block_out_channels : tuple of int
        Channels per resolution level; one level per entry, each level after the first halves
        the resolution.
    layers_per_block : int
        Residual blocks per level on the way down (the way up has one more, as in diffusers).
    attention_levels : tuple of bool
        Whether each level has self-attention (``AttnDownBlock2D``/``AttnUpBlock2D``) or not
        (``DownBlock2D``/``UpBlock2D``); same length as ``block_out_channels``.
    mid_attention : bool
        Self-attention in the bottleneck block.
    attention_head_dim : int
        Channels per attention head; must divide the channels of every attention level.
    conditioning : {'class', 'continuous', 'none'}
        How the upscaling factor enters (see the module docstring).
    norm_num_groups : int
        Groups of every GroupNorm; must divide every entry of ``block_out_channels``.
    dropout : float
        Dropout probability inside the residual blocks, in [0, 1).
    """

    sample_size: int = 64
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention_levels: tuple[bool, ...] = (False, False, True)
    mid_attention: bool = True
    attention_head_dim: int = 8
    conditioning: Conditioning = "class"
    norm_num_groups: int = 8
    dropout: float = 0.0

    def __post_init__(self):
        # Lists from JSON/YAML become tuples so the config stays hashable and comparable.
        for name in ("block_out_channels", "attention_levels"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        _validate_model_config(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Build a config from a mapping; missing keys take the defaults above.

        Raises
        ------
        TypeError
            If ``d`` is not a mapping or a value has the wrong type.
        ValueError
            If ``d`` has a key that is not a field (the key is named) or a value is out of range.
        """
        return _validate.dataclass_from_mapping(cls, d)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def levels(self) -> int:
        """Number of resolution levels."""
        return len(self.block_out_channels)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_model_config(cfg: ModelConfig) -> None:
    for name in ("sample_size", "layers_per_block", "attention_head_dim", "norm_num_groups"):
        value = getattr(cfg, name)
        if not _is_int(value):
            raise TypeError(f"ModelConfig.{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"ModelConfig.{name} must be >= 1, got {value}")
    channels = cfg.block_out_channels
    if not isinstance(channels, tuple) or not channels or not all(_is_int(c) and c > 0 for c in channels):
        raise ValueError(f"ModelConfig.block_out_channels must be a non-empty tuple of positive ints, got {channels!r}")
    attention = cfg.attention_levels
    if not isinstance(attention, tuple) or not all(isinstance(a, bool) for a in attention):
        raise TypeError(f"ModelConfig.attention_levels must be a tuple of bools, got {attention!r}")
    if len(attention) != len(channels):
        raise ValueError(
            f"ModelConfig.attention_levels has {len(attention)} entries but block_out_channels has "
            f"{len(channels)}; give one per level"
        )
    if not isinstance(cfg.mid_attention, bool):
        raise TypeError(f"ModelConfig.mid_attention must be a bool, got {type(cfg.mid_attention).__name__}")
    bad_groups = [c for c in channels if c % cfg.norm_num_groups]
    if bad_groups:
        raise ValueError(
            f"ModelConfig.norm_num_groups={cfg.norm_num_groups} must divide every block_out_channels "
            f"entry; it does not divide {bad_groups}"
        )
    attended = [c for c, a in zip(channels, attention) if a] + ([channels[-1]] if cfg.mid_attention else [])
    bad_heads = [c for c in attended if c % cfg.attention_head_dim]
    if bad_heads:
        raise ValueError(
            f"ModelConfig.attention_head_dim={cfg.attention_head_dim} must divide the channels of every "
            f"attention level; it does not divide {bad_heads}"
        )
    downsampling = 2 ** (len(channels) - 1)
    if cfg.sample_size % downsampling:
        raise ValueError(
            f"ModelConfig.sample_size={cfg.sample_size} px must be divisible by {downsampling} "
            f"(2 ** (levels - 1)) so that the skip connections line up"
        )
    if cfg.conditioning not in get_args(Conditioning):
        raise ValueError(
            f"ModelConfig.conditioning must be one of {get_args(Conditioning)}, got {cfg.conditioning!r}"
        )
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)):
        raise TypeError(f"ModelConfig.dropout must be a float, got {type(cfg.dropout).__name__}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {cfg.dropout}")


# The networks of the pipeline are defined in its config files only: config.yaml (the demo) and
# configs/paper.yaml on top of it (the paper's 34,886,849-parameter network at 256 x 256 px).
_REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIG_FILES: tuple[Path, ...] = (_REPO / "config.yaml", _REPO / "configs" / "paper.yaml")
"""The files that define the paper's network, merged in this order (as
``snakemake --configfile configs/paper.yaml`` merges them)."""


def _merge_config(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge_config(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def pipeline_model_config(*config_files) -> ModelConfig:
    """The network a pipeline run trains: the ``model`` section of its config files at ``data.size`` px.

    Parameters
    ----------
    *config_files : str or Path
        Pipeline config files (YAML), merged in order key by key, nested mappings too (later
        files win), as Snakemake merges ``--configfile`` arguments.

    Returns
    -------
    ModelConfig
        As :func:`mssr.config.model_config` builds it from the merged config.

    Raises
    ------
    ValueError
        If no file is given or one does not exist (the repository's ``configs/`` is not installed
        with the package).
    """
    import yaml

    from mssr.config import model_config

    if not config_files:
        raise ValueError("pipeline_model_config needs at least one config file")
    merged: dict = {}
    for path in config_files:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such pipeline config file")
        merged = _merge_config(merged, yaml.safe_load(path.read_text()) or {})
    return model_config(merged)


def paper_config() -> ModelConfig:
    """The paper's network (:data:`PAPER_CONFIG_FILES`): 256 x 256 px, 34,886,849 parameters with 'class'
    conditioning (the paper states about 34 M); five levels, self-attention at 32 px and in the
    16 px bottleneck, the DDPM layout (two residual blocks per level, GroupNorm of 32)."""
    return pipeline_model_config(*PAPER_CONFIG_FILES)


def __getattr__(name: str):
    # PAPER_CONFIG is read from configs/paper.yaml, not defined here; kept for the callers that
    # still import it (benchmarks/bench_model.py, benchmarks/bench_enhance.py).
    if name == "PAPER_CONFIG":
        return paper_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unet_kwargs(cfg: ModelConfig) -> dict:
    """Every architecture argument of ``UNet2DModel``, pinned so a diffusers default change can't
    silently alter a stored model."""
    kwargs = dict(
        sample_size=cfg.sample_size,
        in_channels=2,  # x_t and x_lr
        out_channels=1,  # eps
        center_input_sample=False,  # spectra are already in [-1, 1], with negative peaks
        time_embedding_type="positional",
        flip_sin_to_cos=True,
        freq_shift=0,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention_levels),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention_levels)),
        mid_block_type="UNetMidBlock2D",
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        mid_block_scale_factor=1,
        downsample_padding=1,
        downsample_type="conv",
        upsample_type="conv",
        dropout=float(cfg.dropout),
        act_fn="silu",
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups,
        norm_eps=1e-5,
        resnet_time_scale_shift="default",
        add_attention=cfg.mid_attention,
        class_embed_type=None,
        num_class_embeds=None,
    )
    if cfg.conditioning == "class":
        kwargs["num_class_embeds"] = len(FACTORS)
    elif cfg.conditioning == "continuous":
        kwargs["class_embed_type"] = "timestep"
    return kwargs


def build_unet(cfg: ModelConfig):
    """Build the ``UNet2DModel`` of ``cfg`` (2 input channels, 1 output channel), randomly initialized.

    Parameters
    ----------
    cfg : ModelConfig
        The architecture.

    Returns
    -------
    diffusers.UNet2DModel
        In float32, on the CPU, in training mode.
    """
    _validate_config_type(cfg)
    from diffusers import UNet2DModel

    return UNet2DModel(**_unet_kwargs(cfg))


def _validate_config_type(cfg) -> None:
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")


def conditioning_of(unet) -> Conditioning:
    """The conditioning a ``UNet2DModel`` was built with, read from its own config."""
    config = getattr(unet, "config", None)
    if config is None or not hasattr(config, "class_embed_type"):
        raise TypeError(f"unet must be a diffusers UNet2DModel, got {type(unet).__name__}")
    if config.class_embed_type == "timestep":
        return "continuous"
    if config.class_embed_type is None and config.num_class_embeds is not None:
        if config.num_class_embeds != len(FACTORS):
            raise ValueError(
                f"unet has {config.num_class_embeds} class embeddings; MSSR uses {len(FACTORS)} (Table 1)"
            )
        return "class"
    if config.class_embed_type is None:
        return "none"
    raise ValueError(f"unet class_embed_type {config.class_embed_type!r} is not an MSSR conditioning")


def continuous_label(factors: torch.Tensor) -> torch.Tensor:
    """The value the continuous conditioning embeds for each factor: ``1000 * ln(f)``.

    The sinusoidal projection of diffusers resolves inputs on the scale of timesteps (0..T-1); raw
    factors (1.125..2.25) all land within 0.02 of each other and their 64-d projections have a
    cosine similarity above 0.997. ``ln`` makes equal field ratios equal steps, and the factor
    1000 puts the closest Table-1 pair (9/8, 8/7) 15.7 apart and the whole table in 118..811, where
    no two 64-d projections have a cosine similarity above 0.61.

    Parameters
    ----------
    factors : torch.Tensor
        Upscaling factors (high MHz / low MHz), shape (B,), each finite and >= 1.

    Returns
    -------
    torch.Tensor
        float32, shape (B,), on the device of ``factors``.
    """
    return (CONTINUOUS_SCALE * torch.log(factors.to(torch.float64))).to(torch.float32)


class NoisePredictor(nn.Module):
    """``eps = predict(x_t, x_lr, t, factors)``: the UNet with the factor turned into its conditioning.

    The conditioning ('class', 'continuous' or 'none') is read from the UNet itself, so a
    predictor can't disagree with the weights it wraps.

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        Built by :func:`build_unet` or loaded by :func:`load_model`.
    channels_last : bool
        Put the UNet's 4-D weights (in place: the caller's ``unet`` changes too) and every input
        in channels-last (NHWC) memory format. Results are the same up to float rounding;
        whether it is faster depends on the device and the batch size (see
        ``benchmarks/bench_model.py``). Saved weights are unaffected (:func:`save_model` writes
        contiguous tensors).
    compile : bool
        Run the UNet through ``torch.compile``. Compilation happens at the first call with each
        new input shape; if it fails (no C++ compiler for the CPU backend, an unsupported
        operator, ...) the call is repeated eagerly, a ``RuntimeWarning`` names the error, and
        the predictor stays eager from then on. An error that the eager UNet raises too is
        raised as is.
    compile_mode : {'default', 'reduce-overhead', 'max-autotune'}
        ``torch.compile`` mode; ``'reduce-overhead'`` captures CUDA graphs on CUDA devices.

    Notes
    -----
    ``factors`` are validated and converted on the host. The labels of the last
    :attr:`LABEL_CACHE_SIZE` distinct factor batches are kept on the device they were last
    asked for, so the sampler, which asks with the same factors at every step, copies them to
    the device once: no host-to-device copy (and no chance of a synchronizing copy from
    pageable memory) inside its loop. Device factors are copied to the host first.
    """

    LABEL_CACHE_SIZE = 64

    def __init__(self, unet, *, channels_last: bool = False, compile: bool = False,
                 compile_mode: CompileMode = "default"):
        super().__init__()
        _validate_options(channels_last, compile, compile_mode)
        self.conditioning: Conditioning = conditioning_of(unet)
        self.unet = unet
        self.channels_last = channels_last
        self.compile_mode: CompileMode | None = compile_mode if compile else None
        if channels_last:
            unet.to(memory_format=torch.channels_last)
        # Kept out of the module tree (plain attribute) so state_dict() and .to() see the UNet once.
        object.__setattr__(self, "_compiled_unet", torch.compile(unet, mode=compile_mode) if compile else None)
        self._labels: dict[tuple, torch.Tensor | None] = {}

    @property
    def compiled(self) -> bool:
        """Whether calls go through ``torch.compile`` (False after a fallback to eager)."""
        return self._compiled_unet is not None

    def condition(self, factors: torch.Tensor) -> torch.Tensor | None:
        """What the UNet receives as ``class_labels`` for each factor.

        Parameters
        ----------
        factors : torch.Tensor
            Upscaling factors, shape (B,).

        Returns
        -------
        torch.Tensor or None
            'class': int64 class indices 0..13 (on the CPU); 'continuous': float32
            ``1000 * ln(f)`` (on the CPU); 'none': None.

        Raises
        ------
        ValueError
            For 'class', if a factor is not one of the 14 Table-1 factors (within 5e-4).
        """
        return self._condition(factors_on_host(factors, sequences=False))

    def _condition(self, host: torch.Tensor) -> torch.Tensor | None:
        if self.conditioning == "none":
            return None
        if self.conditioning == "continuous":
            return continuous_label(host)
        # A batch holds few distinct factors: look each one up once, with the factors module's rules.
        values, inverse = torch.unique(host, return_inverse=True)
        classes = torch.tensor([factor_to_class(float(v)) for v in values], dtype=torch.int64)
        return classes[inverse]

    def forward(self, x_t: torch.Tensor, x_lr: torch.Tensor, t: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """Predict the noise in ``x_t``.

        Parameters
        ----------
        x_t : torch.Tensor
            Noisy high-field spectra, shape (B, 1, H, W); H and W divisible by
            ``2 ** (levels - 1)``.
        x_lr : torch.Tensor
            Low-field spectra, same shape as ``x_t``.
        t : torch.Tensor
            Diffusion timesteps, int64, shape (B,) (or a scalar), on the device of ``x_t``.
        factors : torch.Tensor
            Upscaling factors, shape (B,), preferably on the CPU.

        Returns
        -------
        torch.Tensor
            Predicted noise, shape (B, 1, H, W), in the dtype of ``x_t``.
        """
        _validate_spectra(x_t, x_lr, self.unet.config.block_out_channels)
        labels = self._device_labels(factors_on_host(factors, x_t.shape[0], sequences=False), x_t.device)
        sample = torch.cat([x_t, x_lr], dim=1).to(self.unet.dtype)
        if self.channels_last:
            sample = sample.contiguous(memory_format=torch.channels_last)
        eps = self._run_unet(sample, t, labels)
        return eps.to(x_t.dtype)

    def _device_labels(self, host: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        # Labels made under inference mode can't enter autograd (the embedding saves them): keyed apart.
        key = (host.numpy().tobytes(), device, torch.is_inference_mode_enabled())
        if key not in self._labels:
            if len(self._labels) >= self.LABEL_CACHE_SIZE:
                self._labels.pop(next(iter(self._labels)))
            labels = self._condition(host)
            self._labels[key] = None if labels is None else labels.to(device, non_blocking=True)
        return self._labels[key]

    def _run_unet(self, sample: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self._compiled_unet is None:
            return self.unet(sample, t, class_labels=labels).sample
        try:
            eps = self._compiled_unet(sample, t, class_labels=labels).sample
        except Exception as exc:  # noqa: BLE001  whatever the compiler raised; the eager call below decides
            eps = self.unet(sample, t, class_labels=labels).sample
            object.__setattr__(self, "_compiled_unet", None)
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            warnings.warn(f"torch.compile of the UNet failed ({type(exc).__name__}: {first_line}); running eagerly "
                          "from now on", RuntimeWarning, stacklevel=3)
            return eps
        # CUDA-graph outputs are overwritten by the next replay; the caller may keep this one.
        return eps.clone() if self.compile_mode == "reduce-overhead" else eps


def _validate_options(channels_last, compile, compile_mode) -> None:
    for name, value in (("channels_last", channels_last), ("compile", compile)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    if compile_mode not in get_args(CompileMode):
        raise ValueError(f"compile_mode must be one of {get_args(CompileMode)}, got {compile_mode!r}")


def _validate_spectra(x_t, x_lr, block_out_channels) -> None:
    for name, x in (("x_t", x_t), ("x_lr", x_lr)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"{name} must have shape (B, 1, H, W), got {tuple(x.shape)}")
    if x_lr.shape != x_t.shape:
        raise ValueError(f"x_lr shape {tuple(x_lr.shape)} differs from x_t shape {tuple(x_t.shape)}")
    downsampling = 2 ** (len(block_out_channels) - 1)
    if x_t.shape[2] % downsampling or x_t.shape[3] % downsampling:
        raise ValueError(
            f"x_t height and width {tuple(x_t.shape[2:])} px must be divisible by {downsampling} for this network"
        )


def count_parameters(unet: nn.Module) -> int:
    """Number of parameters (trainable or not) of a module."""
    if not isinstance(unet, nn.Module):
        raise TypeError(f"unet must be a torch.nn.Module, got {type(unet).__name__}")
    return sum(p.numel() for p in unet.parameters())


def _check_unet_matches(unet, cfg: ModelConfig) -> None:
    expected = _unet_kwargs(cfg)
    config = getattr(unet, "config", None)
    if config is None:
        raise TypeError(f"unet must be a diffusers UNet2DModel, got {type(unet).__name__}")
    differing = [
        key for key, value in expected.items()
        if (tuple(config[key]) if isinstance(config[key], list) else config[key]) != value
    ]
    if differing:
        raise ValueError(f"unet was not built from cfg: they differ in {differing}")


def save_model(unet, cfg: ModelConfig, directory, *, extra: dict) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory``, each atomically.

Both files get the permissions of a normally created file (0666 minus the umask, 0644 under the
usual umask 022): ``safetensors.save_file`` would leave the weights owner-only, which breaks a
results folder shared with other users. The weights' metadata holds the model config as well.

    ``config.json`` holds the model config, the SHA-256 of the weights file (checked by
    :func:`load_model`, so a weights file and a config from different saves are never paired),
    the diffusers version, and ``extra`` (diffusion config, factors, provenance: anything
    JSON-serializable).

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        Built from ``cfg``.
    cfg : ModelConfig
        Its architecture.
    directory : str or Path
        Created if missing.
    extra : dict
        JSON-serializable metadata, returned as is by :func:`load_model`.

    Returns
    -------
    Path
        The directory.
    """
    _validate_config_type(cfg)
    _check_unet_matches(unet, cfg)
    if not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict, got {type(extra).__name__}")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"extra must be JSON-serializable: {exc}") from exc
    from diffusers import __version__ as diffusers_version
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in unet.state_dict().items()}
    weights_path = directory / WEIGHTS_FILE
    with atomic_path(weights_path) as tmp:
        # the weights carry their architecture too, so a config.json edited afterwards is caught on load
        save_file(state, str(tmp), metadata={"format": FORMAT, "model": json.dumps(cfg.to_dict(), sort_keys=True)})
        _make_shareable(tmp)
        digest = sha256_file(tmp)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": cfg.to_dict(),
        "weights": {"file": WEIGHTS_FILE, "sha256": digest},
        "diffusers_version": diffusers_version,
        "extra": extra,
    }
    with atomic_path(directory / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return directory


def load_model(directory, *, device="cpu"):
    """Read a model written by :func:`save_model` (safetensors + JSON only, never pickle).

    Parameters
    ----------
    directory : str or Path
        Holds ``config.json`` and ``model.safetensors``.
    device : str or torch.device
        Where the network is put.

    Returns
    -------
    unet : diffusers.UNet2DModel
        In eval mode, float32, on ``device``.
    cfg : ModelConfig
    extra : dict
        The ``extra`` given to :func:`save_model`.

    Raises
    ------
    ValueError
        Naming the file: missing file, invalid JSON, unknown format, invalid model config,
        checksum mismatch, unreadable safetensors, or missing/unexpected/mis-shaped weights.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    weights_path = directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ValueError(f"{path}: file not found")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_path}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise ValueError(f"{config_path}: cannot be read ({exc.strerror})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{config_path}: not an {FORMAT} config (missing 'format': '{FORMAT}')")
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{config_path}: format_version {document.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    for key in ("model", "weights", "extra"):
        if key not in document:
            raise ValueError(f"{config_path}: missing key {key!r}")
    cfg = _model_config_of(document["model"], config_path)
    if not isinstance(document["extra"], dict):
        raise ValueError(f"{config_path}: 'extra' must be a JSON object, got {type(document['extra']).__name__}")
    expected_sha = document["weights"].get("sha256") if isinstance(document["weights"], dict) else None
    try:
        actual_sha = sha256_file(weights_path)
    except OSError as exc:
        raise ValueError(f"{weights_path}: cannot be read ({exc.strerror})") from None
    if actual_sha != expected_sha:
        raise ValueError(
            f"{weights_path}: SHA-256 differs from the one recorded in {config_path}; the two files "
            "come from different saves or the weights are corrupt"
        )
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_path), device="cpu")
        with safe_open(str(weights_path), framework="pt") as weights:
            metadata = weights.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights_path}: not a readable safetensors file ({exc})") from exc
    unet = build_unet(cfg)
    _check_state(state, unet.state_dict(), weights_path)
    _check_weights_metadata(metadata, cfg, config_path, weights_path)
    unet.load_state_dict(state, strict=True)
    return unet.to(device).eval(), cfg, document["extra"]


def _make_shareable(path: Path) -> None:
    """Give ``path`` the permissions of a normally created file (0666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _model_config_of(section, config_path: Path) -> ModelConfig:
    """The model config of ``config.json``: every field required (training writes them all), none defaulted."""
    if not isinstance(section, dict):
        raise ValueError(f"{config_path}: 'model' must be a JSON object, got {type(section).__name__}")
    missing = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in section]
    if missing:
        raise ValueError(
            f"{config_path}: missing key(s) {', '.join('model.' + k for k in missing)}; a training run writes every "
            "key, and a default (e.g. model.sample_size) may not be what the weights were trained with"
        )
    try:
        return ModelConfig.from_dict(section)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{config_path}: invalid model config: {exc}") from exc


def _check_weights_metadata(metadata: dict, cfg: ModelConfig, config_path: Path, weights_path: Path) -> None:
    """Refuse a config.json whose model section disagrees with the one stored in the weights.

    Weights saved before the config was stored in their metadata cannot be checked this way.
    """
    if metadata.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{weights_path}: metadata format {metadata.get('format')!r} is not {FORMAT!r}")
    if "model" not in metadata:
        return
    try:
        stored = json.loads(metadata["model"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{weights_path}: corrupt model config in the metadata ({exc})") from None
    given = cfg.to_dict()
    differing = sorted(k for k in set(stored) | set(given) if stored.get(k) != given.get(k))
    if differing:
        detail = ", ".join(f"model.{k} = {given.get(k)!r} but the weights were saved with {stored.get(k)!r}"
                           for k in differing)
        raise ValueError(f"{config_path}: disagrees with {weights_path.name}: {detail}")


def _check_state(state: dict, reference: dict, path: Path) -> None:
    problems = []
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
    misshaped = [
        f"{k}: {tuple(state[k].shape)} instead of {tuple(reference[k].shape)}"
        for k in sorted(set(state) & set(reference))
        if state[k].shape != reference[k].shape
    ]
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped tensor(s), e.g. {misshaped[:3]}")
    not_float = [k for k, v in state.items() if k in reference and not v.is_floating_point()]
    if not_float:
        problems.append(f"non-floating tensor(s) {not_float[:3]}")
    if problems:
        raise ValueError(f"{path}: weights do not match the model config: " + "; ".join(problems))


__all__ = [
    "CONFIG_FILE",
    "CONTINUOUS_SCALE",
    "PAPER_CONFIG_FILES",
    "WEIGHTS_FILE",
    "CompileMode",
    "Conditioning",
    "ModelConfig",
    "NoisePredictor",
    "build_unet",
    "paper_config",
    "pipeline_model_config",
    "conditioning_of",
    "continuous_label",
    "count_parameters",
    "load_model",
    "save_model",
]
