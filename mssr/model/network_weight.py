"""The weight of an anchored native model's network correction, by field ratio, and where a model directory keeps it.

An anchored model's estimate is ``anchor + w (network - anchor)``
(:attr:`mssr.enhance.native.NativeSampling.network_weight`). ``w`` is one number in [0, 1] or
``(factor, weight)`` points interpolated linearly in ``ln f``, constant beyond the first and the
last (:func:`network_weight_at`). A model directory may hold its measured points in
:data:`FILE` (written by :func:`mssr.evaluation.networkweight.record`); the model's sampler
default then uses them (:func:`read_network_weight`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FILE = "network_weight.json"
"""The calibration's file in a model directory: ``{"network_weight": [[factor, weight], ...], ...}``."""

WEIGHT_STEP: float = 0.1
"""Resolution of a measured weight: the calibration scores weights 0 to 1 in this step, and a weight
interpolated between its points is rounded to it (so a ratio a hair above a point where the weight is 0,
as 600 -> 800.304 MHz against 1.3338, gives 0 and costs no sampling)."""


def validate_network_weight(value) -> float | tuple:
    """``value`` as :attr:`mssr.enhance.native.NativeSampling.network_weight` takes it: a float in [0, 1] or a tuple of
    ``(factor, weight)`` pairs (factor > 1, strictly increasing; weight in [0, 1]); else ValueError/TypeError."""
    def weight(w, where):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
            raise ValueError(f"network_weight{where} must be a number in [0, 1], got {w!r}")
        return float(w)

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return weight(value, "")
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"network_weight must be a number in [0, 1] or a list of [factor, weight] pairs, got {value!r}")
    points = []
    for k, point in enumerate(value):
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ValueError(f"network_weight[{k}] must be a [factor, weight] pair, got {point!r}")
        f = point[0]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not float(f) > 1.0 or not np.isfinite(f):
            raise ValueError(f"network_weight[{k}]: the factor must be a number > 1, got {f!r}")
        if points and not float(f) > points[-1][0]:
            raise ValueError(f"network_weight[{k}]: factors must increase, got {f!r} after {points[-1][0]!r}")
        points.append((float(f), weight(point[1], f"[{k}]")))
    return tuple(points)


def network_weight_at(network_weight, factor: float) -> float:
    """The weight of the network's correction at the field ratio ``factor`` (:attr:`mssr.enhance.native.NativeSampling.network_weight`).

    A number is the weight at every ratio; ``(factor, weight)`` points are interpolated linearly
    in ``ln f``, constant beyond the first and the last, and rounded to :data:`WEIGHT_STEP`.
    """
    value = validate_network_weight(network_weight)
    if isinstance(value, float):
        return value
    logs = np.log([f for f, _ in value])
    weight = float(np.interp(np.log(float(factor)), logs, [w for _, w in value]))
    return round(round(weight / WEIGHT_STEP) * WEIGHT_STEP, 10)


def read_network_weight(model_dir) -> tuple | None:
    """The validated ``network_weight`` points of :data:`FILE` in ``model_dir``, None where there is none.

    Raises
    ------
    ValueError
        The file is not JSON or holds no valid ``network_weight`` (the message names it).
    """
    path = Path(model_dir) / FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return validate_network_weight(record["network_weight"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not a network-weight calibration ({exc})") from None


__all__ = ["FILE", "WEIGHT_STEP", "network_weight_at", "read_network_weight", "validate_network_weight"]
