"""The small shared argument checks.

Each check takes the parameter's name first (as the caller's user knows it, e.g.
``'TrainConfig.epochs'`` or ``'dpi'``), raises ``TypeError`` for a wrong type and ``ValueError``
for a bad value, naming the parameter, and returns the value in its canonical type. ``bool`` is
never accepted as a number. numpy scalars are accepted wherever Python numbers are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from pathlib import Path

import numpy as np

__all__ = [
    "choice",
    "dataclass_from_mapping",
    "integer",
    "mapping",
    "nonnegative",
    "number",
    "number_in",
    "path",
    "positive",
    "positive_int",
    "rng",
]


def number(name: str, value) -> float:
    """A finite real number, as float.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (``bool`` included).
    ValueError
        If it is NaN or infinite.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def positive(name: str, value) -> float:
    """A finite number > 0, as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)


def nonnegative(name: str, value) -> float:
    """A finite number >= 0, as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


def number_in(name: str, value, low: float, high: float, *, high_open: bool = False) -> float:
    """A finite number in ``[low, high]`` (``[low, high)`` with ``high_open``), as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (high_open and value == high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return value


def integer(name: str, value, minimum: int | None = None) -> int:
    """An integer (Python or numpy, never ``bool``) ``>= minimum``, as int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def positive_int(name: str, value) -> int:
    """An integer >= 1, as int."""
    return integer(name, value, 1)


def choice(name: str, value, choices: Iterable):
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def path(name: str, value, *, exists: bool = False) -> Path:
    """A ``str`` or ``Path`` as Path; with ``exists``, one that exists."""
    if not isinstance(value, (str, Path)):
        raise TypeError(f"{name} must be a path, got {type(value).__name__}")
    if exists and not Path(value).exists():
        raise ValueError(f"{name}: {value} does not exist")
    return Path(value)


def mapping(name: str, value) -> dict:
    """A mapping, as a new dict."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def rng(value, name: str = "rng") -> np.random.Generator:
    """A numpy Generator from a Generator (returned as is), an int seed, or None (fresh entropy)."""
    if value is None:
        return np.random.default_rng()
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)):
        return np.random.default_rng(int(value))
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {type(value).__name__}")


def dataclass_from_mapping(cls, d):
    """``cls(**d)`` for a dataclass ``cls`` (a typed config); missing keys take the field defaults.

    Raises
    ------
    TypeError
        If ``d`` is not a mapping.
    ValueError
        If ``d`` has a key that is not a field of ``cls`` (the unknown and the known keys are named).
    """
    if not isinstance(d, Mapping):
        raise TypeError(f"{cls.__name__} must be built from a mapping, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(known)}")
    return cls(**dict(d))
