"""A spectrum: an N-dimensional array with NMR metadata per axis.

Every stage of the pipeline keeps this metadata, so that a resized 256 x 256 sample still knows
its nuclei, spectrometer frequencies and ppm per pixel.

Conventions
-----------
Point 0 along an axis is the highest chemical shift (ppm decreases with the index), as in every
NMR processing program. The last axis is the directly detected one (1H for protein spectra).
A spectral width ``sw_hz`` spread over ``size`` points gives a point spacing of
``sw_hz / obs_mhz / size`` ppm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from mssr import _validate

GYROMAGNETIC_RATIO_TO_1H = {
    "1H": 1.0,
    "2H": 0.153506088,
    "13C": 0.251449530,
    "15N": 0.101329118,
    "19F": 0.940866982,
    "31P": 0.404807356,
}
"""Ratio of each nucleus' resonance frequency to that of 1H in the same magnet (IUPAC Xi / 100)."""


def _validate_nucleus(nucleus: str) -> str:
    if not isinstance(nucleus, str):
        raise TypeError(f"nucleus must be a str such as '15N', got {type(nucleus).__name__}")
    if nucleus not in GYROMAGNETIC_RATIO_TO_1H:
        raise ValueError(
            f"nucleus {nucleus!r} is not supported; expected one of {sorted(GYROMAGNETIC_RATIO_TO_1H)}"
        )
    return nucleus


@dataclass(frozen=True)
class Axis:
    """Metadata of one spectral axis.

    Parameters
    ----------
    nucleus : str
        Observed nucleus, e.g. ``'1H'``, ``'15N'``, ``'13C'``.
    obs_mhz : float
        Spectrometer frequency of this nucleus, MHz (for 15N at a 900 MHz magnet: ~91.2 MHz).
    sw_hz : float
        Spectral width, Hz.
    ppm_first : float
        Chemical shift at the centre of point 0 (the highest ppm of the axis), ppm.
    size : int
        Number of points.
    """

    nucleus: str
    obs_mhz: float
    sw_hz: float
    ppm_first: float
    size: int

    def __post_init__(self):
        _validate_nucleus(self.nucleus)
        _validate.positive("obs_mhz", self.obs_mhz)
        _validate.positive("sw_hz", self.sw_hz)
        if not math.isfinite(float(self.ppm_first)):
            raise ValueError(f"ppm_first must be finite, got {self.ppm_first}")
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "obs_mhz", float(self.obs_mhz))
        object.__setattr__(self, "sw_hz", float(self.sw_hz))
        object.__setattr__(self, "ppm_first", float(self.ppm_first))

    @property
    def ppm_per_point(self) -> float:
        """Point spacing, ppm."""
        return self.sw_hz / self.obs_mhz / self.size

    @property
    def hz_per_point(self) -> float:
        """Point spacing, Hz."""
        return self.sw_hz / self.size

    @property
    def ppm_last(self) -> float:
        """Chemical shift at the centre of the last point (the lowest ppm), ppm."""
        return self.ppm_first - (self.size - 1) * self.ppm_per_point

    @property
    def ppm_limits(self) -> tuple[float, float]:
        """(highest, lowest) ppm of the point centres, in index order."""
        return (self.ppm_first, self.ppm_last)

    @property
    def field_mhz(self) -> float:
        """1H frequency of the magnet this axis was recorded on, MHz."""
        return self.obs_mhz / GYROMAGNETIC_RATIO_TO_1H[self.nucleus]

    def ppm_scale(self) -> np.ndarray:
        """Chemical shift of every point centre, ppm, shape (size,), decreasing."""
        return self.ppm_first - np.arange(self.size) * self.ppm_per_point

    def ppm_to_index(self, ppm):
        """Fractional point index of a chemical shift (ppm); 0 is the first point's centre."""
        return (self.ppm_first - np.asarray(ppm, dtype=float)) / self.ppm_per_point

    def index_to_ppm(self, index):
        """Chemical shift (ppm) of a fractional point index."""
        return self.ppm_first - np.asarray(index, dtype=float) * self.ppm_per_point

    def resized(self, size: int) -> "Axis":
        """The same ppm window sampled with ``size`` points.

        The window covered by the points (from the outer edge of the first point to the outer
        edge of the last) is kept; the point centres move accordingly.
        """
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        edge = self.ppm_first + self.ppm_per_point / 2
        new_spacing = self.sw_hz / self.obs_mhz / int(size)
        return replace(self, size=int(size), ppm_first=edge - new_spacing / 2)

    def at_field(self, field_mhz: float) -> "Axis":
        """The same ppm window and points on a magnet of another 1H frequency (MHz)."""
        field_mhz = _validate.positive("field_mhz", field_mhz)
        obs = field_mhz * GYROMAGNETIC_RATIO_TO_1H[self.nucleus]
        return replace(self, obs_mhz=obs, sw_hz=self.sw_hz / self.obs_mhz * obs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Axis":
        return cls(**{k: d[k] for k in ("nucleus", "obs_mhz", "sw_hz", "ppm_first", "size")})

    @classmethod
    def from_ppm_window(cls, nucleus: str, field_mhz: float, ppm_high: float, ppm_low: float, size: int):
        """An axis whose points tile the window [ppm_low, ppm_high] (outer edges), ppm.

        Parameters
        ----------
        nucleus : str
            Observed nucleus.
        field_mhz : float
            1H frequency of the magnet, MHz.
        ppm_high, ppm_low : float
            Window edges, ppm (``ppm_high > ppm_low``).
        size : int
            Number of points.
        """
        _validate_nucleus(nucleus)
        field_mhz = _validate.positive("field_mhz", field_mhz)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        if not ppm_high > ppm_low:
            raise ValueError(f"ppm_high ({ppm_high}) must be greater than ppm_low ({ppm_low})")
        obs = field_mhz * GYROMAGNETIC_RATIO_TO_1H[nucleus]
        sw_hz = (ppm_high - ppm_low) * obs
        spacing = (ppm_high - ppm_low) / size
        return cls(nucleus=nucleus, obs_mhz=obs, sw_hz=sw_hz, ppm_first=ppm_high - spacing / 2, size=size)


@dataclass(frozen=True)
class Spectrum:
    """An N-dimensional real spectrum with per-axis metadata.

    Parameters
    ----------
    data : ndarray
        Real intensities, shape ``tuple(axis.size for axis in axes)``; the last axis is the
        directly detected dimension.
    axes : tuple of Axis
        One entry per array dimension, in array order.
    meta : dict
        Free JSON-serializable provenance (protein, experiment, source file, normalization scale...).
    """

    data: np.ndarray
    axes: tuple[Axis, ...]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.data, np.ndarray):
            raise TypeError(f"data must be a numpy array, got {type(self.data).__name__}")
        axes = tuple(self.axes)
        if not all(isinstance(a, Axis) for a in axes):
            raise TypeError("axes must be a sequence of Axis")
        if self.data.ndim != len(axes):
            raise ValueError(f"data has {self.data.ndim} dimensions but {len(axes)} axes were given")
        sizes = tuple(a.size for a in axes)
        if self.data.shape != sizes:
            raise ValueError(f"data shape {self.data.shape} disagrees with the axis sizes {sizes}")
        if np.iscomplexobj(self.data):
            raise ValueError("data must be real (phase the spectrum and keep the real part)")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def nuclei(self) -> tuple[str, ...]:
        return tuple(a.nucleus for a in self.axes)

    @property
    def field_mhz(self) -> float:
        """1H frequency of the magnet, MHz (from the direct axis)."""
        return self.axes[-1].field_mhz

    @property
    def ppm_per_point(self) -> tuple[float, ...]:
        return tuple(a.ppm_per_point for a in self.axes)

    def ppm_limits(self, dim: int) -> tuple[float, float]:
        """(highest, lowest) ppm of axis ``dim``."""
        return self.axes[dim].ppm_limits

    def ppm_scale(self, dim: int) -> np.ndarray:
        """Chemical shifts (ppm) of the points along axis ``dim``."""
        return self.axes[dim].ppm_scale()

    def with_data(self, data: np.ndarray, axes=None, **meta) -> "Spectrum":
        """A copy with new data (and axes), metadata updated with ``meta``."""
        return Spectrum(data=data, axes=tuple(axes) if axes is not None else self.axes, meta={**self.meta, **meta})

    def header(self) -> dict:
        """Metadata without the array: ``{'axes': [...], 'meta': {...}}`` (JSON-serializable)."""
        return {"axes": [a.to_dict() for a in self.axes], "meta": _jsonable(self.meta)}

    @classmethod
    def from_header(cls, data: np.ndarray, header: dict) -> "Spectrum":
        return cls(data=data, axes=tuple(Axis.from_dict(a) for a in header["axes"]), meta=header.get("meta", {}))

    def describe(self) -> str:
        """Human-readable summary: shape, nuclei, MHz, ppm limits and intensity range."""
        lines = [f"shape {self.shape}  dtype {self.data.dtype}  field {self.field_mhz:.2f} MHz (1H)"]
        for i, a in enumerate(self.axes):
            hi, lo = a.ppm_limits
            lines.append(
                f"axis {i}: {a.nucleus:>4}  {a.size:>5} pts  obs {a.obs_mhz:9.4f} MHz  sw {a.sw_hz:10.2f} Hz"
                f"  ppm {hi:8.3f} .. {lo:8.3f}  ({a.ppm_per_point:.5f} ppm/pt)"
            )
        finite = np.isfinite(self.data)
        if finite.all():
            lines.append(f"intensity min {self.data.min():.4g}  max {self.data.max():.4g}")
        else:
            lines.append(f"{(~finite).sum()} non-finite values")
        for key, value in sorted(self.meta.items()):
            lines.append(f"{key}: {value}")
        return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


_MAD_TO_SD = 1.482602218505602


def robust_noise_sd(x) -> float:
    """Noise SD of a spectrum estimated from its median absolute deviation.

    Peaks cover a small part of a protein spectrum, so the median of ``|x - median(x)|`` is set
    by the noise; ``1.4826 * MAD`` equals the SD for Gaussian noise.

    Parameters
    ----------
    x : ndarray
        Spectrum intensities, any shape.

    Returns
    -------
    float
        Estimated noise SD, in the units of ``x``.
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        raise ValueError("x is empty")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return float(_MAD_TO_SD * np.median(np.abs(x - np.median(x))))
