"""The options of :func:`mssr.enhance.run.enhance`, checked before anything is read or imported.

Nothing here imports torch, nmrglue or pandas at import time: the command line checks the options
with it first, so a typo in an option costs a fraction of a second, not the seconds of those imports.
"""

from __future__ import annotations

import math
import os

import numpy as np

from mssr.model import SAMPLERS
from mssr.model.network_weight import validate_network_weight
from mssr.model.sample import LIMITS, SampleConfig, check_device_name

_DEFAULTS = SampleConfig()

PAPER_PROTOCOL = {"sampler": _DEFAULTS.sampler, "steps": _DEFAULTS.steps, "repeats": _DEFAULTS.repeats}
"""The paper's sampling protocol, :class:`~mssr.model.sample.SampleConfig`'s defaults (as
``configs/paper.yaml``): respaced ancestral DDPM, 500 steps, 5 repeats averaged."""

FAST_PROTOCOL = {"sampler": "ddpm", "steps": 50, "repeats": 2, "start_step": 200}
"""``fast=True`` for a model on the paper's S x S grid: ancestral DDPM started from the low-field input
noised to t = 200 (10 network calls of a 50-step schedule at T = 1000), 2 repeats: 125x fewer
network calls than the paper's protocol. Measured on the demo model (``tables/samplers.csv``, the
variant of this schedule) within the protocol's MSE, where DPM-Solver++ with 20 steps (the former
fast mode) was 20x worse. A native-resolution model ignores it: its default is already its own
validated few-step setting."""



def validate_mhz(name: str, option: str, value) -> float:
    """A finite field > 0 MHz, else TypeError/ValueError naming ``name`` and ``option``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} ({option}) must be a number of MHz, got {type(value).__name__}")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name} ({option}) must be a finite field > 0 MHz, got {value}")
    return float(value)


def validate_fields(from_mhz, to_mhz) -> tuple[float, float]:
    """(from_mhz, to_mhz) checked: both fields valid and the target the higher one."""
    low = validate_mhz("from_mhz", "--from-mhz", from_mhz)
    high = validate_mhz("to_mhz", "--to-mhz", to_mhz)
    if not high > low:
        raise ValueError(
            f"to_mhz (--to-mhz {high:g}) must be greater than from_mhz (--from-mhz {low:g}): the model estimates "
            "a spectrum at a higher field than the one recorded"
        )
    return low, high


def validate_count(name: str, option: str, value, *, upper: int | None = None) -> int | None:
    """None, or an int in [1, ``upper``], else TypeError/ValueError naming the option."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} ({option}) must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} ({option}) must be >= 1, got {value}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} ({option} {value}) is above the limit {upper:,}")
    return int(value)


def validate_path_option(name: str, option: str, value) -> str | None:
    """None, or the path as a str, else TypeError naming the option."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} ({option}) must be a str or os.PathLike, got {type(value).__name__}")
    return os.fspath(value)


def validate_network_weight_option(value) -> float | None:
    """``--network-weight``: None (the model's own) or one number in [0, 1]
    (:func:`mssr.model.network_weight.validate_network_weight`), else TypeError/ValueError naming the option."""
    if value is None:
        return None
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, (list, tuple)):
        raise TypeError(f"--network-weight takes one number in [0, 1], got {value!r}")
    try:
        return validate_network_weight(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"--network-weight (0: the anchor alone, 1: the network's estimate): {exc}") from None


def validate_plane(plane) -> int | None:
    """None or a plane index >= 0 of a pseudo-ND series."""
    if plane is None:
        return None
    if isinstance(plane, bool) or not isinstance(plane, (int, np.integer)):
        raise TypeError(f"plane (--plane) must be an int, got {type(plane).__name__}")
    if plane < 0:
        raise ValueError(f"plane (--plane) must be >= 0, got {plane}")
    return int(plane)


def validate_projection(projection) -> str:
    """One of :data:`mssr.data.project.METHODS`."""
    from mssr.data.project import METHODS  # pandas and h5py: imported only when a projection is checked

    if projection not in METHODS:
        raise ValueError(f"projection (--projection) must be one of {METHODS}, got {projection!r}")
    return projection


def validate_experiment_option(experiment) -> str:
    """``'auto'`` or one of :data:`mssr.data.linewidths.EXPERIMENTS` (``--experiment``)."""
    from mssr.data.linewidths import EXPERIMENTS

    if not isinstance(experiment, str) or experiment.lower() not in ("auto", *EXPERIMENTS):
        raise ValueError(f"experiment (--experiment) must be one of auto, {', '.join(EXPERIMENTS)}, got {experiment!r}")
    return experiment.lower()


def resolve_experiment(experiment: str, meta: dict) -> tuple[str, str]:
    """The linewidth rule to use and where it came from.

    ``experiment`` as given (``validate_experiment_option``); ``'auto'`` takes it from the file's
    pulse program where the format records one (Bruker PULPROG), else ``'fixed'``.

    Returns
    -------
    rule : str
        One of :data:`mssr.data.linewidths.EXPERIMENTS`.
    source : str
        ``'--experiment'``, ``'pulse program <name>'`` or ``'not named: lines assumed fixed in Hz'``.
    """
    from mssr.data.linewidths import experiment_of_pulse_program

    experiment = validate_experiment_option(experiment)
    if experiment != "auto":
        return experiment, "--experiment"
    program = (meta or {}).get("pulse_program")
    rule = experiment_of_pulse_program(program)
    if rule is not None:
        return rule, f"pulse program {program}"
    return "fixed", "not named: lines assumed fixed in Hz"


def validate_flags(**flags) -> None:
    """Each keyword must be a bool (TypeError naming it)."""
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")


def sample_config(*, sampler=None, steps=None, repeats=None, fast: bool = False, seed: int = 0,
                  device: str = "auto", batch_size: int = 64) -> SampleConfig:
    """The sampling protocol: the paper's by default, the fast one with ``fast``; given values win.

    Parameters
    ----------
    sampler : {'ddpm', 'ddim', 'dpmsolver'}, optional
        Default ``'ddpm'``.
    steps : int, optional
        Sampling steps; default 500 (50 from t = 200 with ``fast``); at most
        :data:`mssr.model.sample.LIMITS` ``['steps']`` (and the model's T, checked on loading).
    repeats : int, optional
        Samples averaged; default 5 (2 with ``fast``); at most ``LIMITS['repeats']`` (10,000).
        Sampled in chunks of at most ``batch_size`` chains, so memory does not grow with it.
    fast : bool
        Start from :data:`FAST_PROTOCOL` instead of :data:`PAPER_PROTOCOL`.
    seed : int
        Seed of the sampler's noise, in [0, 2**63).
    device : str
        'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' (whether it exists is checked on loading).
    batch_size : int
        Chains (planes x repeats) per network call.

    Returns
    -------
    SampleConfig
    """
    validate_flags(fast=fast)
    if sampler is not None and sampler not in SAMPLERS:
        raise ValueError(f"sampler (--sampler) must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed (--seed) must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed (--seed {seed}) must be in [0, 2**63): torch seeds are 64-bit")
    try:
        check_device_name(device)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"device (--device): {exc}") from None
    protocol = {"start_step": None, **(FAST_PROTOCOL if fast else PAPER_PROTOCOL)}
    given = {
        "sampler": sampler,
        "steps": validate_count("steps", "--steps", steps, upper=LIMITS["steps"]),
        "repeats": validate_count("repeats", "--repeats", repeats, upper=LIMITS["repeats"]),
    }
    protocol.update({k: v for k, v in given.items() if v is not None})
    batch_size = validate_count("batch_size", "batch_size", batch_size, upper=LIMITS["batch_size"])
    return SampleConfig.from_dict({**protocol, "seed": int(seed), "device": device, "batch_size": batch_size})
