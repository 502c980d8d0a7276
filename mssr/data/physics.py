"""The rendered NMR experiments and the physics of the field: line widths, noise, axes.

:data:`EXPERIMENTS` says how each experiment is recorded (nuclei, ppm windows, points,
acquisition times); :func:`peak_linewidths_hz` gives every peak's width along every axis at a
field, :func:`noise_sd_volume_scale` the noise SD, :func:`experiment_axes` the ppm axes.
:mod:`mssr.data.synthetic` renders spectra with them.

Physical model (estimates, see NMR_NOTES.md)
--------------------------------------------
* Natural linewidth (FWHM, Hz) per atom: ``LW(B) = (dipolar + csa_900 * (B / 900 MHz)^2) * M / 20 kDa``
  with the protein mass ``M`` (110 Da per residue): relaxation rates grow with the rotational
  correlation time, which grows with the mass. For 20 kDa: 15N 4.1 Hz at 400 MHz and 5.9 Hz at
  900 MHz; 13Ca and 13Cb ~14 Hz at any field; 13C' CSA dominated (3.6 Hz at 400, 10 Hz at
  900 MHz, narrower in ppm at low field); amide 1H 17.6 Hz at 400 and 20 Hz at 900 MHz.
* Acquisition: a time-domain signal recorded for ``t_max`` seconds cannot resolve lines narrower
  than about ``1 / t_max``; that width (fixed in Hz, the same at every field) is added to the
  natural one. In the indirect dimensions of 3D experiments it dominates (100-143 Hz).
* Sensitivity: the noise SD of a spectrum whose peak volumes in ppm are kept is
  ``noise_sd * (B / 900)^(d - 3/2)`` for d axes (:func:`noise_sd_volume_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mssr.spectrum import Axis


REFERENCE_FIELD_MHZ = 900.0
"""Field at which peak heights equal their relative intensity and ``noise_sd`` applies, MHz."""

NOISE_SD_900 = 0.02
"""Default noise SD at 900 MHz relative to a unit peak height (SNR 50)."""

# (dipolar Hz, CSA Hz at 900 MHz) for a 20 kDa protein; estimates from a simple relaxation model.
NATURAL_LINEWIDTH_HZ: dict[str, tuple[float, float]] = {
    "H": (17.0, 3.0),
    "N": (3.657, 2.243),  # 4.1 Hz at 400 MHz, 5.9 Hz at 900 MHz
    "CA": (14.0, 0.5),
    "CB": (14.0, 0.5),
    "C": (2.0, 8.0),
}


@dataclass(frozen=True)
class Experiment:
    """How one experiment is recorded.

    Attributes
    ----------
    nuclei : tuple of str
        Nucleus per axis in array order (last = directly detected 1H).
    windows : tuple of (float, float)
        (centre ppm, width ppm) per axis.
    sizes : tuple of int
        Default number of points per axis.
    t_max_ms : tuple of float
        Acquisition time per axis, ms; adds ``1 / t_max`` Hz to the linewidth.
    """

    nuclei: tuple[str, ...]
    windows: tuple[tuple[float, float], ...]
    sizes: tuple[int, ...]
    t_max_ms: tuple[float, ...]


_H = (8.5, 6.0)  # amide 1H: 11.5 .. 5.5 ppm, the region usually extracted after processing; holds
# backbone, Asn/Gln NH2 and Trp indole peaks
_N = (119.0, 30.0)
_CACB = (46.0, 60.0)  # 76 .. 16 ppm: Thr Cb (~70) to Ala Cb (~19)

EXPERIMENTS: dict[str, Experiment] = {
    "hsqc_15n": Experiment(("15N", "1H"), (_N, _H), (128, 256), (64.0, 100.0)),
    "hnca": Experiment(("13C", "15N", "1H"), ((53.5, 28.0), _N, _H), (48, 32, 128), (7.0, 10.0, 100.0)),
    "hnco": Experiment(("13C", "15N", "1H"), ((177.0, 10.0), _N, _H), (48, 32, 128), (10.0, 10.0, 100.0)),
    "hncacb": Experiment(("13C", "15N", "1H"), (_CACB, _N, _H), (48, 32, 128), (7.0, 10.0, 100.0)),
    "cbcaconh": Experiment(("13C", "15N", "1H"), (_CACB, _N, _H), (48, 32, 128), (7.0, 10.0, 100.0)),
}
"""Rendered experiments: windows as NMR_NOTES.md "Typical windows" (13C of HNCACB/CBCA(CO)NH
widened to hold the Cb shifts); acquisition times typical of protein triple-resonance work."""


# --------------------------------------------------------------------------- validation


def validate_experiment(experiment) -> Experiment:
    """The :class:`Experiment` named ``experiment`` (TypeError, or ValueError listing :data:`EXPERIMENTS`)."""
    if not isinstance(experiment, str):
        raise TypeError(f"experiment must be a str, got {type(experiment).__name__}")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment {experiment!r} is not rendered; expected one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[experiment]


def validate_field(name: str, value) -> float:
    """A field (1H frequency), finite and > 0 MHz, as float (TypeError, ValueError naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (MHz), got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0 MHz, got {value}")
    return float(value)


def _validate_sizes(sizes, exp: Experiment) -> tuple[int, ...]:
    if sizes is None:
        return exp.sizes
    sizes = tuple(sizes)
    if len(sizes) != len(exp.nuclei):
        raise ValueError(f"sizes must have {len(exp.nuclei)} entries (one per axis), got {sizes}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 2 for s in sizes):
        raise ValueError(f"sizes must be ints >= 2, got {sizes}")
    return tuple(int(s) for s in sizes)


# --------------------------------------------------------------------------- line widths, noise, axes


def natural_linewidth_hz(atom: str, field_mhz: float, *, mass_kda: float = 20.0) -> float:
    """Relaxation-limited FWHM of one atom's line, Hz (see the module notes; estimates).

    Parameters
    ----------
    atom : str
        'H', 'N', 'CA', 'CB' or 'C' (carbonyl).
    field_mhz : float
        1H frequency of the magnet, MHz.
    mass_kda : float
        Protein mass, kDa; widths scale linearly with it.
    """
    if atom not in NATURAL_LINEWIDTH_HZ:
        raise ValueError(f"atom must be one of {sorted(NATURAL_LINEWIDTH_HZ)}, got {atom!r}")
    field_mhz = validate_field("field_mhz", field_mhz)
    dipolar, csa = NATURAL_LINEWIDTH_HZ[atom]
    return (dipolar + csa * (field_mhz / REFERENCE_FIELD_MHZ) ** 2) * float(mass_kda) / 20.0


def peak_linewidths_hz(peaks: pd.DataFrame, experiment: str, field_mhz: float, *, mass_kda: float) -> np.ndarray:
    """FWHM of every peak along every axis, Hz: natural + acquisition-limited ``1 / t_max``.

    Returns
    -------
    ndarray, shape (n_peaks, ndim)
    """
    exp = validate_experiment(experiment)
    ndim = len(exp.nuclei)
    widths = np.empty((len(peaks), ndim))
    for k in range(ndim):
        acquisition_hz = 1000.0 / exp.t_max_ms[k]
        natural = {a: natural_linewidth_hz(a, field_mhz, mass_kda=mass_kda) for a in NATURAL_LINEWIDTH_HZ}
        widths[:, k] = [natural[a] + acquisition_hz for a in peaks[f"atom_{k}"]]
    return widths


def noise_sd_at(field_mhz: float, noise_sd: float = NOISE_SD_900) -> float:
    """Noise SD at ``field_mhz`` for a given SD at 900 MHz: SNR grows as B0^(3/2).

    This holds for spectra whose peak heights do not change with the field (lines of unchanged
    ppm width, or each spectrum in its own units with lines of equal Hz width). The rendered
    spectra keep volumes in ppm instead: use :func:`noise_sd_volume_scale`.
    """
    return float(noise_sd) * (REFERENCE_FIELD_MHZ / validate_field("field_mhz", field_mhz)) ** 1.5


def noise_sd_volume_scale(field_mhz: float, ndim: int, noise_sd: float = NOISE_SD_900) -> float:
    """Noise SD at ``field_mhz`` of a d-dimensional spectrum whose peak volumes in ppm are kept.

    Derivation, per axis k with linewidth ``LW_k(B)`` Hz and nucleus frequency ``MHz_k ~ B``:
    the rendered height is ``h(B) = w prod_k LW_k(900)/MHz_k(900) / (LW_k(B)/MHz_k(B))``; the
    sensitivity rule gives ``S/N(B) = (w / noise_sd) (B/900)^(3/2) prod_k LW_k(900) / LW_k(B)``.
    Their ratio is the noise SD ``h / (S/N) = noise_sd (900/B)^(3/2) prod_k MHz_k(B)/MHz_k(900)
    = noise_sd (B/900)^(d - 3/2)``: the widths cancel.

    Parameters
    ----------
    field_mhz : float
        1H frequency, MHz.
    ndim : int
        Number of axes d.
    noise_sd : float
        Noise SD at 900 MHz relative to a unit peak height.
    """
    field_mhz = validate_field("field_mhz", field_mhz)
    if isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer)) or ndim < 1:
        raise ValueError(f"ndim must be an int >= 1, got {ndim!r}")
    return float(noise_sd) * (field_mhz / REFERENCE_FIELD_MHZ) ** (int(ndim) - 1.5)


def experiment_axes(experiment: str, field_mhz: float, *, sizes=None, windows=None) -> tuple[Axis, ...]:
    """The axes of an experiment at a field (array order, last = direct 1H).

    Parameters
    ----------
    experiment : str
        One of :data:`EXPERIMENTS`.
    field_mhz : float
        1H frequency, MHz.
    sizes : sequence of int, optional
        Points per axis; defaults to the experiment's.
    windows : sequence of (centre ppm, width ppm), optional
        Per axis; defaults to the experiment's.
    """
    exp = validate_experiment(experiment)
    field_mhz = validate_field("field_mhz", field_mhz)
    sizes = _validate_sizes(sizes, exp)
    windows = exp.windows if windows is None else tuple(tuple(w) for w in windows)
    if len(windows) != len(exp.nuclei):
        raise ValueError(f"windows must have {len(exp.nuclei)} (centre, width) entries, got {windows}")
    return tuple(
        Axis.from_ppm_window(nuc, field_mhz, c + w / 2.0, c - w / 2.0, n)
        for nuc, (c, w), n in zip(exp.nuclei, windows, sizes)
    )
