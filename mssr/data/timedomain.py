"""Time-domain rendering of 2D 1H-15N spectra: FIDs recorded and processed as on a spectrometer.

This is the reference the frequency-domain low-field model (:mod:`mssr.degrade`) is checked
against, and the source of the physically true low/high-field pairs of the ``physical`` test set.

What happens, per field ``B`` (1H MHz)
--------------------------------------
1. **Relaxation** (:func:`amide_relaxation`). The rotational correlation time of a rigid sphere
   follows from the protein mass (Stokes-Einstein, partial specific volume 0.73 cm^3/g plus a 3.2 A
   hydration shell, water at 25 C): 8.6 ns for 20 kDa. Spectral densities are model-free
   (``S^2 = 0.85``, internal 50 ps). The transverse rates of the amide 15N and 1H are the Redfield
   rates of an NH pair (N-H 1.04 A, 15N CSA -172 ppm at 17 deg to the bond, 1H CSA 15 ppm at
   10 deg) plus remote protons (one effective proton at 1.7 A, a calibration that puts 1H lines of
   a protonated 20 kDa protein at ~18 Hz at 900 MHz, within the 15-30 Hz of NMR_NOTES.md):

   * ``hsqc_15n`` (decoupled, in-phase): ``R2N = d2/8 [4J0 + J(wH-wN) + 3J(wN) + 6J(wH) +
     6J(wH+wN)] + dN2 [4J0 + 3J(wN)]`` with ``d2/8 = p^2`` the dipolar and ``dN2 = (wN dsN)^2 / 18``
     the CSA term (grows as B0^2); 1H likewise, plus remote protons ``dHH2/8 [5J0 + 9J(wH) +
     6J(2wH)]``. 15N lines barely narrow in ppm above 600 MHz (-10% from 600 to 1200 MHz).
   * ``trosy_15n`` (the narrow multiplet component, after Pervushin et al., PNAS 94, 12366, 1997):
     ``R2N = (p - dN P2)^2 [4J0 + 3J(wN)] + (p^2 + dH^2) [J(wH-wN) + 3J(wH) + 6J(wH+wN)]`` plus the
     remote-proton spin flips ``dHH2/8 [J0 + 3J(wH) + 6J(2wH)]``; 1H likewise with the roles
     swapped. Dipolar and CSA relaxation cancel best near 1 GHz: the 15N width in Hz is smallest
     there and the ppm width falls ~2.3x from 600 to 1200 MHz. The peak sits ``|1J_NH| / 2``
     (46 Hz) off the decoupled position on each axis (+1H, -15N here; the sign depends on the
     pulse sequence), which in ppm shrinks with the field.

2. **Acquisition** (:data:`ACQUISITIONS`). The same ppm window is recorded at every field, so its
   spectral width in Hz grows with ``B``; the acquisition time per axis is that of the experiment
   (1H 85 ms, 15N 64 ms), so the number of complex points is ``round(t_acq x SW)`` (at 900 MHz:
   1224 x 210, at 600 MHz: 816 x 140). The indirect axis is recorded States-style (a cosine- and a
   sine-modulated data set), the direct one in quadrature: signals ``exp(-2 pi i nu t - R2 t)``
   with ``nu`` the offset from the carrier in Hz (positive = higher ppm).

3. **Sensitivity.** Each complex point carries white Gaussian noise of SD ``rho x sqrt(SW1 x
   SW2)``: the receiver's bandwidth sets the per-scan noise and, at a fixed total measuring time,
   more t1 increments leave fewer scans per increment. The signal amplitude grows as
   ``(B / 900)^(3/2)``. The processed peak height of a line is ``A x N1 x N2 x`` (a factor that
   depends only on its widths in Hz and the acquisition times) and the processed noise is
   ``rho x SW1 x SW2 x`` (a factor of the windows): the peak-height S/N of lines of equal Hz width
   scales as B0^(3/2) whatever the spectral widths. ``rho`` is set so that at 900 MHz a line of
   unit weight with this protein's widths has S/N ``1 / noise_sd``.

4. **Processing** with nmrglue's own functions (:mod:`nmrglue.proc_base`): first point halved
   (NMRPipe ``-c 0.5``), cos^2 window ``sp(off=0.5, end=0.98, pow=2)`` (or Lorentz-to-Gauss
   ``gm``), ``zf_size`` to the next power of two >= 2 x the points, ``fft``, real part; direct axis
   first, then the States pair is combined into the complex t1 signal and the indirect axis is
   processed the same way (pure absorption lines).

5. **Grids.** Each field's spectrum comes on its own grid (:class:`mssr.spectrum.Spectrum`, axes
   from the carrier and SW: point ``j`` is ``car + SW/2 - j SW/N`` in Hz); :func:`to_grid` puts it
   onto a common evaluation grid by cubic interpolation in ppm (heights kept, ppm preserved).

Intensities are each spectrum's own units (no volume normalization across fields): the pipeline
normalizes every spectrum by its own max |x| anyway, so only the S/N and the shapes matter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from nmrglue import proc_base as pb
import numpy as np
import pandas as pd
from scipy import ndimage

from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis, Spectrum

ExperimentKind = Literal["hsqc", "trosy"]
WindowKind = Literal["sp", "gm", "none"]

REFERENCE_FIELD_MHZ = 900.0
"""Field at which ``noise_sd`` sets the S/N of a unit-weight line, MHz."""

# physical constants (SI) and the NH spin-pair parameters (literature estimates)
_MU0_4PI = 1e-7
_HBAR = 1.054571817e-34
_KB = 1.380649e-23
_NA = 6.02214076e23
GAMMA_1H = 2.6752218744e8
"""1H gyromagnetic ratio, rad s^-1 T^-1."""
GAMMA_15N = -2.71261804e7
"""15N gyromagnetic ratio, rad s^-1 T^-1."""
R_NH_M = 1.04e-10
"""Effective N-H distance (librations included), m."""
CSA_15N_PPM = -172.0
"""Axially symmetric 15N CSA, ppm, at :data:`CSA_15N_ANGLE_DEG` to the N-H bond."""
CSA_15N_ANGLE_DEG = 17.0
CSA_1H_PPM = 15.0
"""Amide 1H CSA, ppm, at :data:`CSA_1H_ANGLE_DEG` to the N-H bond."""
CSA_1H_ANGLE_DEG = 10.0
R_HH_EFFECTIVE_M = 1.7e-10
"""One effective remote proton at this distance stands for all protons near the amide 1H, m
(calibrated: 1H lines of a protonated 20 kDa protein ~18 Hz at 900 MHz)."""
ORDER_PARAMETER = 0.85
INTERNAL_CORRELATION_S = 50e-12
J_NH_HZ = -92.0
"""One-bond 1H-15N coupling, Hz (negative: gamma_15N < 0)."""
TROSY_OFFSET_SIGN: dict[str, float] = {"15N": -1.0, "1H": 1.0}
"""Direction of the TROSY peak's ``|J| / 2`` offset from the decoupled position, per nucleus."""

PARTIAL_SPECIFIC_VOLUME_CM3_G = 0.73
HYDRATION_SHELL_M = 3.2e-10
WATER_VISCOSITY_PA_S = 0.89e-3  # 25 C
TEMPERATURE_K = 298.15


@dataclass(frozen=True)
class Window:
    """Apodization and zero filling of one axis.

    Attributes
    ----------
    kind : {'sp', 'gm', 'none'}
        ``'sp'``: shifted sine bell :func:`nmrglue.proc_base.sp` (``off``, ``end``, ``pow``; the
        default is cos^2); ``'gm'``: Lorentz-to-Gauss :func:`nmrglue.proc_base.gm` (``g1``, ``g2``
        in Hz, ``g3`` position of the maximum in [0, 1]); ``'none'``: no apodization.
    zf_factor : int
        Zero fill to the next power of two >= ``zf_factor`` x the acquired points.
    """

    kind: WindowKind = "sp"
    off: float = 0.5
    end: float = 0.98
    pow: float = 2.0
    g1: float = 0.0
    g2: float = 0.0
    g3: float = 0.0
    zf_factor: int = 2

    def __post_init__(self):
        if self.kind not in ("sp", "gm", "none"):
            raise ValueError(f"Window.kind must be 'sp', 'gm' or 'none', got {self.kind!r}")
        if isinstance(self.zf_factor, bool) or not isinstance(self.zf_factor, int) or self.zf_factor < 1:
            raise ValueError(f"Window.zf_factor must be an int >= 1, got {self.zf_factor!r}")


@dataclass(frozen=True)
class Acquisition:
    """How a 2D 1H-15N experiment is recorded and processed (array order: 15N, then direct 1H).

    Attributes
    ----------
    kind : {'hsqc', 'trosy'}
        Relaxation and peak positions of the selected coherence.
    nuclei : tuple of str
        Nucleus per axis.
    carrier_ppm : tuple of float
        Carrier (centre of the spectral window) per axis, ppm.
    sw_ppm : tuple of float
        Spectral width per axis, ppm (the same ppm window at every field).
    t_acq_s : tuple of float
        Acquisition time per axis, s.
    windows : tuple of Window
        Processing per axis.
    """

    kind: ExperimentKind
    nuclei: tuple[str, str]
    carrier_ppm: tuple[float, float]
    sw_ppm: tuple[float, float]
    t_acq_s: tuple[float, float]
    windows: tuple[Window, Window] = (Window(), Window())

    def points(self, field_mhz: float) -> tuple[int, int]:
        """Complex points per axis at ``field_mhz``: ``round(t_acq x SW)``."""
        return tuple(int(round(t * sw)) for t, sw in zip(self.t_acq_s, self.sw_hz(field_mhz)))

    def sw_hz(self, field_mhz: float) -> tuple[float, float]:
        """Spectral width per axis at ``field_mhz``, Hz."""
        field_mhz = _validate_field("field_mhz", field_mhz)
        return tuple(w * field_mhz * GYROMAGNETIC_RATIO_TO_1H[n] for w, n in zip(self.sw_ppm, self.nuclei))


_NH_ACQ = dict(nuclei=("15N", "1H"), carrier_ppm=(119.0, 4.7), sw_ppm=(36.0, 16.0), t_acq_s=(0.064, 0.085))

ACQUISITIONS: dict[str, Acquisition] = {
    "hsqc_15n": Acquisition(kind="hsqc", **_NH_ACQ),
    "trosy_15n": Acquisition(kind="trosy", **_NH_ACQ),
}
"""Typical 2D 1H-15N acquisitions: 1H water-centred 16 ppm, 85 ms; 15N 101-137 ppm, 64 ms; cos^2."""


# --------------------------------------------------------------------------- validation


def _validate_field(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (MHz), got {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be finite and > 0 MHz, got {value}")
    return float(value)


def _validate_mass(mass_kda) -> float:
    if isinstance(mass_kda, bool) or not isinstance(mass_kda, (int, float, np.integer, np.floating)):
        raise TypeError(f"mass_kda must be a number (kDa), got {type(mass_kda).__name__}")
    if not math.isfinite(float(mass_kda)) or float(mass_kda) <= 0:
        raise ValueError(f"mass_kda must be finite and > 0 kDa, got {mass_kda}")
    return float(mass_kda)


def _validate_acquisition(experiment) -> Acquisition:
    if isinstance(experiment, Acquisition):
        return experiment
    if not isinstance(experiment, str):
        raise TypeError(f"experiment must be a str or an Acquisition, got {type(experiment).__name__}")
    if experiment not in ACQUISITIONS:
        raise ValueError(f"experiment {experiment!r} has no time-domain renderer; expected one of {sorted(ACQUISITIONS)}")
    return ACQUISITIONS[experiment]


def _validate_linewidths(linewidths_hz, nuclei) -> dict[str, float] | None:
    if linewidths_hz is None:
        return None
    if not isinstance(linewidths_hz, Mapping):
        raise TypeError(f"linewidths_hz must be a mapping nucleus -> FWHM Hz, got {type(linewidths_hz).__name__}")
    missing = [n for n in nuclei if n not in linewidths_hz]
    if missing:
        raise ValueError(f"linewidths_hz lacks the nuclei {missing}")
    out = {}
    for n in nuclei:
        v = linewidths_hz[n]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v > 0:
            raise ValueError(f"linewidths_hz[{n!r}] must be a number > 0 Hz, got {v!r}")
        out[n] = float(v)
    return out


# --------------------------------------------------------------------------- relaxation


def rotational_correlation_time_s(mass_kda: float, *, temperature_k: float = TEMPERATURE_K,
                                  viscosity_pa_s: float = WATER_VISCOSITY_PA_S) -> float:
    """Isotropic rotational correlation time of a globular protein, s (Stokes-Einstein).

    ``tau_c = 4 pi eta r^3 / (3 k T)`` with ``r`` the radius of a sphere of the protein's dry
    volume (``M x 0.73 cm^3/g``) plus a 3.2 A hydration shell.

    Parameters
    ----------
    mass_kda : float
        Protein mass, kDa.
    temperature_k : float
        Temperature, K.
    viscosity_pa_s : float
        Solvent viscosity, Pa s.
    """
    mass_kda = _validate_mass(mass_kda)
    volume_m3 = mass_kda * 1000.0 * PARTIAL_SPECIFIC_VOLUME_CM3_G / _NA * 1e-6
    radius = (3.0 * volume_m3 / (4.0 * math.pi)) ** (1.0 / 3.0) + HYDRATION_SHELL_M
    return 4.0 * math.pi * float(viscosity_pa_s) * radius**3 / (3.0 * _KB * float(temperature_k))


def _spectral_density(omega: float, tau_c: float) -> float:
    """Model-free J(omega), s: 2/5 [S^2 tc / (1 + (w tc)^2) + (1 - S^2) t / (1 + (w t)^2)]."""
    tau = 1.0 / (1.0 / tau_c + 1.0 / INTERNAL_CORRELATION_S)
    s2 = ORDER_PARAMETER
    return 0.4 * (s2 * tau_c / (1.0 + (omega * tau_c) ** 2) + (1.0 - s2) * tau / (1.0 + (omega * tau) ** 2))


def amide_relaxation(kind: ExperimentKind, field_mhz: float, *, mass_kda: float) -> dict[str, float]:
    """Transverse relaxation rates of the observed amide 15N and 1H coherences, s^-1.

    Parameters
    ----------
    kind : {'hsqc', 'trosy'}
        Decoupled in-phase coherences (HSQC) or the narrow TROSY multiplet component.
    field_mhz : float
        1H frequency of the magnet, MHz.
    mass_kda : float
        Protein mass, kDa (sets the rotational correlation time).

    Returns
    -------
    dict
        ``{'15N': R2, '1H': R2}``, s^-1. The natural FWHM is ``R2 / pi`` Hz.
    """
    if kind not in ("hsqc", "trosy"):
        raise ValueError(f"kind must be 'hsqc' or 'trosy', got {kind!r}")
    field_mhz = _validate_field("field_mhz", field_mhz)
    tc = rotational_correlation_time_s(mass_kda)
    w_h = 2.0 * math.pi * field_mhz * 1e6
    w_n = w_h * GAMMA_15N / GAMMA_1H
    j = {name: _spectral_density(w, tc) for name, w in
         (("0", 0.0), ("N", w_n), ("H", w_h), ("H-N", w_h - w_n), ("H+N", w_h + w_n), ("2H", 2 * w_h))}
    p2 = (_MU0_4PI * _HBAR * GAMMA_1H * GAMMA_15N / R_NH_M**3) ** 2 / 8.0  # d^2 / 8
    dn2 = (w_n * CSA_15N_PPM * 1e-6) ** 2 / 18.0
    dh2 = (w_h * CSA_1H_PPM * 1e-6) ** 2 / 18.0
    hh2 = (_MU0_4PI * _HBAR * GAMMA_1H**2 / R_HH_EFFECTIVE_M**3) ** 2 / 8.0
    remote_in_phase = hh2 * (5 * j["0"] + 9 * j["H"] + 6 * j["2H"])
    remote_flips = hh2 * (j["0"] + 3 * j["H"] + 6 * j["2H"])
    if kind == "hsqc":
        r2n = p2 * (4 * j["0"] + j["H-N"] + 3 * j["N"] + 6 * j["H"] + 6 * j["H+N"]) + dn2 * (4 * j["0"] + 3 * j["N"])
        r2h = (p2 * (4 * j["0"] + j["H-N"] + 3 * j["H"] + 6 * j["N"] + 6 * j["H+N"])
               + dh2 * (4 * j["0"] + 3 * j["H"]) + remote_in_phase)
    else:
        p = math.sqrt(p2)
        p2n = (3 * math.cos(math.radians(CSA_15N_ANGLE_DEG)) ** 2 - 1) / 2
        p2h = (3 * math.cos(math.radians(CSA_1H_ANGLE_DEG)) ** 2 - 1) / 2
        r2n = ((p - math.sqrt(dn2) * p2n) ** 2 * (4 * j["0"] + 3 * j["N"])
               + (p2 + dh2) * (j["H-N"] + 3 * j["H"] + 6 * j["H+N"]) + remote_flips)
        r2h = ((p - math.sqrt(dh2) * p2h) ** 2 * (4 * j["0"] + 3 * j["H"])
               + (p2 + dn2) * (j["H-N"] + 3 * j["N"] + 6 * j["H+N"]) + remote_in_phase)
    return {"15N": float(r2n), "1H": float(r2h)}


def natural_linewidths_hz(experiment, field_mhz: float, *, mass_kda: float) -> dict[str, float]:
    """Relaxation-limited FWHM ``R2 / pi`` per nucleus of an experiment at a field, Hz."""
    acq = _validate_acquisition(experiment)
    return {n: r / math.pi for n, r in amide_relaxation(acq.kind, field_mhz, mass_kda=mass_kda).items()}


# --------------------------------------------------------------------------- processing


def _zf_size(n: int, window: Window) -> int:
    return 1 << int(math.ceil(math.log2(max(2, window.zf_factor * n))))


def _apodize(data: np.ndarray, window: Window, sw_hz: float) -> np.ndarray:
    data = data.copy()
    data[..., 0] *= 0.5  # first-point scaling (NMRPipe -c 0.5): no baseline offset after the FT
    if window.kind == "sp":
        return pb.sp(data, off=window.off, end=window.end, pow=window.pow)
    if window.kind == "gm":
        # nmrglue's gm takes g1, g2 in units of the spectral width (as NMRPipe's Hz / SW)
        return pb.gm(data, g1=window.g1 / sw_hz, g2=window.g2 / sw_hz, g3=window.g3)
    return data


def _process_axis(data: np.ndarray, window: Window, sw_hz: float) -> np.ndarray:
    """Apodize, zero fill and Fourier transform the last axis (complex in, complex out)."""
    n = data.shape[-1]
    return pb.fft(pb.zf_size(_apodize(data, window, sw_hz), _zf_size(n, window)))


def window_weights(n: int, window: Window, sw_hz: float) -> np.ndarray:
    """The weights the processing applies to ``n`` acquired points (first point halved), shape (n,)."""
    return _apodize(np.ones(n, dtype=np.complex128), window, sw_hz).real


def _axis(nucleus: str, field_mhz: float, carrier_ppm: float, sw_hz: float, size: int) -> Axis:
    obs = field_mhz * GYROMAGNETIC_RATIO_TO_1H[nucleus]
    # NMR order with signals exp(-2 pi i nu t): point j holds nu = SW/2 - j SW/size
    return Axis(nucleus=nucleus, obs_mhz=obs, sw_hz=sw_hz, ppm_first=carrier_ppm + sw_hz / 2.0 / obs, size=size)


def _line_1d(offset_hz: float, r2: float, n: int, sw_hz: float, window: Window) -> np.ndarray:
    t = np.arange(n) / sw_hz
    return _process_axis(np.exp((-2j * math.pi * offset_hz - r2) * t), window, sw_hz).real


def processed_height(r2: float, n: int, sw_hz: float, window: Window) -> float:
    """Processed peak height of a unit-amplitude line on resonance (1D, real part)."""
    return float(_line_1d(0.0, r2, n, sw_hz, window).max())


def processed_fwhm_hz(experiment, field_mhz: float, *, mass_kda: float | None = None,
                      linewidths_hz: Mapping | None = None, zf_factor: int = 32) -> dict[str, float]:
    """FWHM of the processed line per nucleus (relaxation x window x truncation), Hz.

    Measured on a noiseless on-resonance line processed as :func:`render` does (zero filled
    ``zf_factor`` times for a precise half-height crossing, linearly interpolated).

    Parameters
    ----------
    experiment : str or Acquisition
        One of :data:`ACQUISITIONS`.
    field_mhz : float
        1H frequency, MHz.
    mass_kda : float, optional
        Protein mass (relaxation from :func:`amide_relaxation`); or give ``linewidths_hz``.
    linewidths_hz : mapping, optional
        Natural FWHM per nucleus, Hz (overrides the relaxation model).
    """
    acq = _validate_acquisition(experiment)
    r2 = _rates(acq, field_mhz, mass_kda, linewidths_hz)
    out = {}
    for k, nucleus in enumerate(acq.nuclei):
        sw = acq.sw_hz(field_mhz)[k]
        n = acq.points(field_mhz)[k]
        fine = Window(**{**acq.windows[k].__dict__, "zf_factor": zf_factor})
        line = _line_1d(0.0, r2[nucleus], n, sw, fine)
        out[nucleus] = half_height_width(line) * sw / line.size
    return out


def half_height_width(line: np.ndarray) -> float:
    """Full width at half maximum of the largest peak of a 1D array, points (linear interpolation)."""
    line = np.asarray(line, dtype=np.float64)
    i = int(np.argmax(line))
    half = line[i] / 2.0
    left = i
    while left > 0 and line[left - 1] > half:
        left -= 1
    right = i
    while right < line.size - 1 and line[right + 1] > half:
        right += 1
    if left == 0 or right == line.size - 1:
        raise ValueError("the peak's half-height crossings lie outside the array")
    x_left = left - 1 + (half - line[left - 1]) / (line[left] - line[left - 1])
    x_right = right + (line[right] - half) / (line[right] - line[right + 1])
    return float(x_right - x_left)


def _rates(acq: Acquisition, field_mhz: float, mass_kda, linewidths_hz) -> dict[str, float]:
    widths = _validate_linewidths(linewidths_hz, acq.nuclei)
    if widths is not None:
        return {n: math.pi * w for n, w in widths.items()}
    if mass_kda is None:
        raise ValueError("give mass_kda (relaxation model) or linewidths_hz")
    return amide_relaxation(acq.kind, field_mhz, mass_kda=mass_kda)


# --------------------------------------------------------------------------- rendering


def _validate_peaks(peaks) -> pd.DataFrame:
    if not isinstance(peaks, pd.DataFrame):
        raise TypeError(f"peaks must be a pandas DataFrame, got {type(peaks).__name__}")
    missing = [c for c in ("ppm_0", "ppm_1", "weight") if c not in peaks.columns]
    if missing:
        raise ValueError(f"peaks lacks the columns {missing}")
    return peaks


def noise_density(peaks_r2: Mapping, acq: Acquisition, noise_sd: float) -> float:
    """Noise density ``rho`` such that a unit line with rates ``peaks_r2`` has S/N ``1/noise_sd`` at 900 MHz.

    The processed noise SD of white complex noise of SD ``sigma`` per component is
    ``sigma x sqrt(sum w1^2 x sum w2^2)`` (``w`` the window weights), exactly; the processed height
    of a unit line is the product of its 1D processed heights.
    """
    field = REFERENCE_FIELD_MHZ
    sw = acq.sw_hz(field)
    n = acq.points(field)
    height = 1.0
    gain2 = 1.0
    for k, nucleus in enumerate(acq.nuclei):
        height *= processed_height(peaks_r2[nucleus], n[k], sw[k], acq.windows[k])
        gain2 *= float(np.sum(window_weights(n[k], acq.windows[k], sw[k]) ** 2))
    sigma_t = noise_sd * height / math.sqrt(gain2)
    return sigma_t / math.sqrt(sw[0] * sw[1])


def render(
    peaks: pd.DataFrame,
    experiment,
    field_mhz: float,
    *,
    mass_kda: float | None = None,
    linewidths_hz: Mapping | None = None,
    noise_sd: float = 0.02,
    rng: np.random.Generator | None = None,
    crop_ppm: Sequence[tuple[float, float]] | None = None,
    dtype=np.float32,
) -> Spectrum:
    """Record and process one 2D spectrum at one field (see the module notes).

    Parameters
    ----------
    peaks : DataFrame
        Columns ``ppm_0`` (15N, ppm), ``ppm_1`` (1H, ppm), ``weight`` (signed amplitude at 900 MHz)
        of the decoupled positions; TROSY offsets are applied here.
    experiment : str or Acquisition
        One of :data:`ACQUISITIONS`.
    field_mhz : float
        1H frequency, MHz.
    mass_kda : float, optional
        Protein mass: per-peak R2 from :func:`amide_relaxation`.
    linewidths_hz : mapping, optional
        Fixed natural FWHM per nucleus (``{'15N': .., '1H': ..}``), Hz, instead of the relaxation model.
    noise_sd : float
        Noise SD at 900 MHz relative to the processed height of a unit-weight line of these
        widths (S/N ``1 / noise_sd``); at other fields it follows from the time-domain noise. 0 for
        none.
    rng : numpy.random.Generator, optional
        Noise source; required when ``noise_sd > 0``.
    crop_ppm : sequence of (high, low) ppm, optional
        Keep only these ppm ranges of each axis of the processed spectrum (the direct axis is
        cropped before the indirect FT, which saves time).
    dtype : float dtype
        Of the returned data.

    Returns
    -------
    Spectrum
        Real processed spectrum on this field's own grid; meta ``experiment``, ``field_mhz``,
        ``points`` (complex points acquired), ``t_acq_s``, ``noise_sd``, ``source``
        ('timedomain').
    """
    acq = _validate_acquisition(experiment)
    peaks = _validate_peaks(peaks)
    field_mhz = _validate_field("field_mhz", field_mhz)
    if isinstance(noise_sd, bool) or not np.isfinite(noise_sd) or noise_sd < 0:
        raise ValueError(f"noise_sd must be finite and >= 0, got {noise_sd!r}")
    if noise_sd > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator when noise_sd > 0, got {type(rng).__name__}")
    r2 = _rates(acq, field_mhz, mass_kda, linewidths_hz)
    sw = acq.sw_hz(field_mhz)
    n = acq.points(field_mhz)
    obs = [field_mhz * GYROMAGNETIC_RATIO_TO_1H[nuc] for nuc in acq.nuclei]
    amplitude = (field_mhz / REFERENCE_FIELD_MHZ) ** 1.5
    weights = peaks["weight"].to_numpy(dtype=np.float64) * amplitude
    offsets = []
    for k, nucleus in enumerate(acq.nuclei):
        hz = (peaks[f"ppm_{k}"].to_numpy(dtype=np.float64) - acq.carrier_ppm[k]) * obs[k]
        if acq.kind == "trosy":
            hz = hz + TROSY_OFFSET_SIGN[nucleus] * abs(J_NH_HZ) / 2.0
        offsets.append(hz)
    t1 = np.arange(n[0]) / sw[0]
    t2 = np.arange(n[1]) / sw[1]
    decay1 = np.exp(-r2[acq.nuclei[0]] * t1)[None, :]
    phase1 = 2.0 * math.pi * offsets[0][:, None] * t1[None, :]
    # States: a cosine- and a sine-modulated t1 data set (stacked on axis 0); the direct axis in
    # quadrature, exp(-i 2 pi nu t). Sum over peaks as one matrix product per data set.
    states = np.stack([np.cos(phase1), -np.sin(phase1)]) * (decay1 * weights[:, None])  # (2, peaks, n1)
    direct = np.exp((-2j * math.pi * offsets[1][:, None] - r2[acq.nuclei[1]]) * t2[None, :])
    # the t1 factors are real: one real GEMM on the (re, im) pairs of the direct signals
    states_t = np.ascontiguousarray(states.transpose(0, 2, 1), dtype=np.float32).reshape(2 * n[0], -1)
    direct_pairs = np.ascontiguousarray(direct, dtype=np.complex64).view(np.float32)
    fid = (states_t @ direct_pairs).view(np.complex64).reshape(2, n[0], n[1])
    if noise_sd > 0:
        # rho is a property of the sample and probe, set once at 900 MHz with the 900 MHz widths
        r2_ref = _rates(acq, REFERENCE_FIELD_MHZ, mass_kda, linewidths_hz)
        sigma_t = np.float32(noise_density(r2_ref, acq, noise_sd) * math.sqrt(sw[0] * sw[1]))
        fid.real += sigma_t * rng.standard_normal(fid.shape, dtype=np.float32)
        fid.imag += sigma_t * rng.standard_normal(fid.shape, dtype=np.float32)
    # direct axis: window, zero fill, FT, real part (phase 0 by construction)
    re_states = _process_axis(fid, acq.windows[1], sw[1]).real
    ax1 = _axis(acq.nuclei[1], field_mhz, acq.carrier_ppm[1], sw[1], re_states.shape[-1])
    cols = _crop_slice(ax1, crop_ppm[1] if crop_ppm is not None else None)
    ax1 = _sliced_axis(ax1, cols)
    interferogram = (re_states[0, :, cols] + 1j * re_states[1, :, cols]).T  # (direct, t1)
    spec = _process_axis(interferogram, acq.windows[0], sw[0]).real.T
    ax0 = _axis(acq.nuclei[0], field_mhz, acq.carrier_ppm[0], sw[0], spec.shape[0])
    rows = _crop_slice(ax0, crop_ppm[0] if crop_ppm is not None else None)
    spec = spec[rows]
    ax0 = _sliced_axis(ax0, rows)
    meta = {"experiment": acq.kind if not isinstance(experiment, str) else experiment, "field_mhz": field_mhz,
            "points": list(n), "t_acq_s": [n[0] / sw[0], n[1] / sw[1]], "noise_sd": float(noise_sd),
            "source": "timedomain"}
    return Spectrum(np.ascontiguousarray(spec, dtype=dtype), (ax0, ax1), meta=meta)


def _crop_slice(axis: Axis, ppm_range) -> slice:
    if ppm_range is None:
        return slice(0, axis.size)
    high, low = float(max(ppm_range)), float(min(ppm_range))
    first = max(0, int(math.floor(axis.ppm_to_index(high))))
    last = min(axis.size, int(math.ceil(axis.ppm_to_index(low))) + 1)
    if last - first < 2:
        raise ValueError(f"crop_ppm {ppm_range} leaves fewer than 2 points of the {axis.nucleus} axis")
    return slice(first, last)


def _sliced_axis(axis: Axis, sl: slice) -> Axis:
    size = sl.stop - sl.start
    return Axis(nucleus=axis.nucleus, obs_mhz=axis.obs_mhz, sw_hz=axis.hz_per_point * size,
                ppm_first=float(axis.index_to_ppm(sl.start)), size=size)


def to_grid(spectrum: Spectrum, axes: Sequence[Axis], *, order: int = 3) -> Spectrum:
    """Put a spectrum onto another ppm grid by spline interpolation (heights kept, ppm preserved).

    Parameters
    ----------
    spectrum : Spectrum
        2D spectrum on its own grid.
    axes : pair of Axis
        The target grid (same nuclei). Points outside the source window get the nearest edge value.
    order : int
        Spline order of :func:`scipy.ndimage.map_coordinates`.

    Returns
    -------
    Spectrum
        Data on ``axes`` (dtype of ``spectrum``); the target axes keep their own field (obs MHz),
        so pass axes at the spectrum's field (:meth:`Axis.at_field`) for a consistent header.
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a Spectrum, got {type(spectrum).__name__}")
    axes = tuple(axes)
    if len(axes) != spectrum.ndim or not all(isinstance(a, Axis) for a in axes):
        raise TypeError(f"axes must be {spectrum.ndim} Axis objects")
    for src, dst in zip(spectrum.axes, axes):
        if src.nucleus != dst.nucleus:
            raise ValueError(f"axes: nucleus {dst.nucleus} does not match the spectrum's {src.nucleus}")
    coords = np.meshgrid(*[src.ppm_to_index(dst.ppm_scale()) for src, dst in zip(spectrum.axes, axes)],
                         indexing="ij")
    data = ndimage.map_coordinates(spectrum.data.astype(np.float64), coords, order=order, mode="nearest")
    return spectrum.with_data(data.astype(spectrum.data.dtype), axes)


def render_pair(
    peaks: pd.DataFrame,
    experiment,
    high_mhz: float,
    low_mhz: float,
    axes: Sequence[Axis],
    *,
    mass_kda: float | None = None,
    linewidths_hz: Mapping | None = None,
    noise_sd: float = 0.02,
    rng: np.random.Generator | None = None,
) -> tuple[Spectrum, Spectrum]:
    """One peak list recorded at two fields, each processed on its own grid, then onto ``axes``.

    Parameters
    ----------
    peaks, experiment, mass_kda, linewidths_hz, noise_sd, rng
        As in :func:`render` (both fields draw their noise from ``rng``, high field first).
    high_mhz, low_mhz : float
        1H frequencies, MHz (``high_mhz > low_mhz``).
    axes : pair of Axis
        The common evaluation grid (15N, 1H); returned at each spectrum's own field.

    Returns
    -------
    (Spectrum, Spectrum)
        High- and low-field spectra on ``axes`` (meta ``pair``: 'high' / 'low').
    """
    high_mhz = _validate_field("high_mhz", high_mhz)
    low_mhz = _validate_field("low_mhz", low_mhz)
    if not high_mhz > low_mhz:
        raise ValueError(f"high_mhz ({high_mhz}) must be greater than low_mhz ({low_mhz})")
    axes = tuple(axes)
    if len(axes) != 2 or not all(isinstance(a, Axis) for a in axes):
        raise TypeError("axes must be a pair of Axis (15N, 1H)")
    crop = grid_crop(axes)
    out = []
    for field, tag in ((high_mhz, "high"), (low_mhz, "low")):
        own = render(peaks, experiment, field, mass_kda=mass_kda, linewidths_hz=linewidths_hz,
                     noise_sd=noise_sd, rng=rng, crop_ppm=crop)
        grid = to_grid(own, [a.at_field(field) for a in axes])
        out.append(grid.with_data(grid.data, pair=tag))
    return out[0], out[1]


def grid_crop(axes: Sequence[Axis], *, margin_points: int = 8) -> list[tuple[float, float]]:
    """(high, low) ppm per axis that :func:`render` must keep for :func:`to_grid` onto ``axes``.

    The grid's window widened by ``margin_points`` of its spacing on each side, so the spline's
    support stays inside the processed data.
    """
    return [(a.ppm_first + margin_points * a.ppm_per_point, a.ppm_last - margin_points * a.ppm_per_point)
            for a in axes]


def degrade_linewidths(experiment, high_mhz: float, low_mhz: float, *, mass_kda: float) -> dict:
    """Linewidth models for :func:`mssr.degrade.simulate` that match this renderer's processed lines.

    The processed FWHM (relaxation, window, truncation; :func:`processed_fwhm_hz`) at both fields,
    as :class:`mssr.degrade.Linewidth` through those two points. A nucleus whose processed width
    does not grow with the field (``Linewidth`` cannot fall with B0) gets the fixed mean width.
    The frequency-domain model still broadens with a Lorentzian: window-dominated lines (15N at
    64 ms) come out narrower than the renderer's (12% at 900 -> 600 MHz, see tests/test_degrade.py).

    Raises
    ------
    ValueError
        For TROSY: its lines narrow with the field in Hz and its peaks move in ppm with the field
        (J/2 offsets); the frequency-domain model represents neither.
    """
    from mssr.degrade import Linewidth

    acq = _validate_acquisition(experiment)
    if acq.kind == "trosy":
        raise ValueError("TROSY pairs are not a broadening on a ppm grid (field-dependent J/2 offsets, "
                         "widths that fall with the field): use the time-domain pairs")
    hi = processed_fwhm_hz(acq, high_mhz, mass_kda=mass_kda)
    lo = processed_fwhm_hz(acq, low_mhz, mass_kda=mass_kda)
    out = {}
    for n in acq.nuclei:
        if lo[n] >= hi[n]:
            out[n] = Linewidth(dipolar_hz=0.5 * (lo[n] + hi[n]))
        else:
            out[n] = Linewidth.from_two_fields(low_mhz, lo[n], high_mhz, hi[n])
    return out


__all__ = [
    "ACQUISITIONS", "Acquisition", "Window", "amide_relaxation", "degrade_linewidths", "grid_crop",
    "half_height_width",
    "natural_linewidths_hz", "noise_density", "processed_fwhm_hz", "processed_height", "render", "render_pair",
    "rotational_correlation_time_s", "to_grid", "window_weights",
]
