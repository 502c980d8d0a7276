"""How amide linewidths change with the field, per experiment (estimates after NMR_NOTES.md).

Two uses, one set of rules:

- the training patches (:mod:`mssr.data.patches`) draw each item's linewidth-model parameters over
  the ranges below and compute its 15N width at both fields with :func:`linewidth_15n_hz`;
- the anchor (:mod:`mssr.model.anchor`) of a spectrum whose experiment the user names
  (``mssr enhance --experiment``) needs how much its lines were broader at the recording field:
  :func:`width_ratio` gives ``LW_Hz(B_low) / LW_Hz(B_high)`` per axis from the *typical* parameters
  (the middle of the training ranges). On the working grid (spacing fixed in Hz at the target
  field) a line of ``W_high`` points is ``r f W_high`` points wide at the low field.

Rules (FWHM in Hz at a 1H field ``B`` in MHz):

- ``fixed``: every width fixed in Hz (``r = 1``): the rule of the ``real`` evaluation pairs, and of
  lines set by the acquisition time rather than relaxation; what ``enhance`` assumes when the
  experiment is not named.
- ``hsqc``: 15N ``d + c (B / 900)^2`` (CSA grows with B0^2), ``d`` 3-12 Hz, ``c`` 0.5-4 Hz;
  typical ``d = 7.5``, ``c = 2.25`` (1200 MHz lines 32% narrower in ppm than at 600 MHz).
- ``trosy``: 15N ``e + d (1 - B / B_opt)^2`` (dipolar/CSA cancellation best near 1 GHz),
  ``B_opt`` 900-1100 MHz, ``d`` 10-40 Hz, ``e`` 3-8 Hz; typical ``B_opt = 1000``, ``d = 25``,
  ``e = 5.5`` (600 -> 900 MHz: 1.65x narrower in Hz).
- 1H: field independent (dipolar) in every rule, ``r = 1``.
"""

from __future__ import annotations

import numpy as np

EXPERIMENTS: tuple[str, ...] = ("fixed", "hsqc", "trosy")
"""The rules :func:`width_ratio` knows; ``fixed`` is the default where none is named."""

TYPICAL: dict[str, dict[str, float]] = {
    "hsqc": {"d": 7.5, "c": 2.25},
    "trosy": {"e": 5.5, "d": 25.0, "b_opt": 1000.0},
}
"""Typical linewidth-model parameters per experiment (the middle of the training ranges)."""


def validate_experiment(experiment) -> str:
    """The experiment rule's name, checked against :data:`EXPERIMENTS`."""
    if not isinstance(experiment, str) or experiment.lower() not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    return experiment.lower()


def experiment_of_pulse_program(name) -> str | None:
    """The rule a pulse program's name implies: ``'trosy'`` or ``'hsqc'`` where it says so, else None.

    Bruker's standard names carry the experiment (``trosyetf3gpsi``, ``hsqcetf3gpsi``,
    ``hsqcfpf3gpphwg``); a TROSY-selected HSQC is a TROSY.
    """
    if not isinstance(name, str):
        return None
    lower = name.lower()
    if "trosy" in lower:
        return "trosy"
    if "hsqc" in lower:
        return "hsqc"
    return None


def linewidth_15n_hz(field_mhz, params: dict) -> np.ndarray:
    """15N FWHM (Hz) at ``field_mhz`` (1H MHz) for one set of linewidth-model parameters.

    ``params['experiment']`` is ``'hsqc'`` (keys ``d``, ``c``) or ``'trosy'`` (keys ``e``, ``d``,
    ``b_opt``).
    """
    b = np.asarray(field_mhz, dtype=float)
    if params["experiment"] == "trosy":
        return params["e"] + params["d"] * (1.0 - b / params["b_opt"]) ** 2
    return params["d"] + params["c"] * (b / 900.0) ** 2


def width_ratio(experiment: str, nuclei, low_mhz: float, high_mhz: float) -> tuple[float, ...]:
    """``LW_Hz(B_low) / LW_Hz(B_high)`` per axis under an experiment's typical rule.

    Parameters
    ----------
    experiment : {'fixed', 'hsqc', 'trosy'}
    nuclei : sequence of str
        The nucleus of each axis (``'15N'``, ``'1H'``, ...); only 15N lines change in Hz.
    low_mhz, high_mhz : float
        Recording and target field, 1H MHz.

    Returns
    -------
    tuple of float
        One ratio per axis (1.0 for every axis under ``fixed`` and for every nucleus but 15N).
    """
    rule = validate_experiment(experiment)
    low, high = float(low_mhz), float(high_mhz)
    if not (low > 0 and high > 0):
        raise ValueError(f"fields must be positive, got {low_mhz} and {high_mhz} MHz")
    if rule == "fixed":
        return tuple(1.0 for _ in nuclei)
    params = {"experiment": rule, **TYPICAL[rule]}
    r15n = float(linewidth_15n_hz(low, params) / linewidth_15n_hz(high, params))
    return tuple(r15n if nucleus == "15N" else 1.0 for nucleus in nuclei)


__all__ = ["EXPERIMENTS", "TYPICAL", "experiment_of_pulse_program", "linewidth_15n_hz", "validate_experiment", "width_ratio"]
