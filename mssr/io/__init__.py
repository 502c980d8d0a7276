"""Reading and writing NMR spectrum files: UCSF (Sparky), NMRPipe and Bruker processed data.

This is the only module of the package that knows file formats. Everything it reads becomes a
:class:`mssr.spectrum.Spectrum` whose axes carry nucleus, spectrometer MHz, spectral width and the
ppm of point 0; everything else in the package works on those.

Formats
-------
``'ucsf'``
    Sparky/UCSF files (start with ``b'UCSF NMR'``); 2D to 4D are read, 2D and 3D written.
``'pipe'``
    NMRPipe: 1D/2D files, single-file 3D/4D streams (``xyz2pipe`` output), and multi-file 3D/4D
    series given as a template (``ft/test%03d.ft3``, ``ft/test%02d%03d.ft4``) or as the directory
    that holds the planes. Detected by the header words FDMAGIC = 0 (word 0) and
    FDFLTORDER = 2.345 (word 2), in either byte order. Written as one file (a stream for 3D/4D).
``'bruker'``
    TopSpin processed data: a procno directory (``expno/pdata/1``) with ``procs``, ``proc2s``, ...
    and ``2rr``/``3rrr``/``4rrrr`` (``1r`` for 1D). Read only.

What is read
------------
- Real parts only: a complex NMRPipe direct dimension keeps its real half, a complex indirect
  one its real points (interleaved with the imaginary ones, the layout nmrglue reads), and
  Bruker imaginary files (``2ri``, ...) are ignored.
- Intensities come back as native float32 (all three formats store at most 32 bits per point;
  Bruker integers are scaled by ``2 ** NC_proc`` first).
- The ppm scale of every axis comes from nmrglue's unit conversion (``make_uc``) of the header,
  not from the carrier, which NMRPipe leaves at the acquisition value after a region is
  extracted. Point 0 is the highest ppm.
- Nuclei come from the axis labels (``'HN'`` -> ``'1H'``, ``'N15'`` -> ``'15N'``, ``'CA'`` -> ``'13C'``)
  and are checked against the spectrometer frequencies: the frequency of each axis divided by
  the magnet's 1H frequency must match the nucleus' ratio within 1 %; an unlabelled axis gets the
  nucleus whose ratio matches.
- An axis whose frequency matches no nucleus, or an indirect axis of a 3D/4D NMRPipe file that
  was not Fourier transformed, is a pseudo dimension (a relaxation delay, a titration point):
  the file is a series of spectra. :func:`read` refuses it (a Spectrum has
  a ppm scale on every axis) and :func:`iter_planes` along that axis yields the spectra.

Large files
-----------
``read(path, lazy=True)`` returns the data as a read-only :class:`numpy.memmap` for NMRPipe
single files (2D files and 3D/4D streams): nothing is loaded until used, apart from one
bounded-memory pass that checks that every value is finite. UCSF files are tiled, multi-file
NMRPipe series are many files and Bruker data are scaled integers, so for those ``lazy=True``
reads into memory; :func:`iter_planes` reads any format one plane at a time (UCSF through a
memory map of its tiles, NMRPipe series one file per plane); Bruker data are read whole
by nmrglue first.

Errors
------
A missing path raises :class:`FileNotFoundError`. Every problem with the content (unknown
format, truncated or corrupt file, a header whose sizes disagree with the data, non-finite
values, too few dimensions, a pseudo dimension where a spectrum is expected) raises one
:class:`SpectrumFileError` that names the file and the problem. Nothing is reshaped to make a
file fit.
"""

from __future__ import annotations

import abc
import datetime
import errno
import math
import os
import re
import struct
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import nmrglue as ng
import numpy as np

from mssr.atomic import atomic_path
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis, Spectrum

Format = Literal["ucsf", "pipe", "bruker"]
WritableFormat = Literal["ucsf", "pipe"]

UCSF_MAGIC = b"UCSF NMR"
PIPE_SUFFIXES = (".ft", ".ft1", ".ft2", ".ft3", ".ft4", ".pipe", ".fid", ".dat")
UCSF_SUFFIXES = (".ucsf",)
BRUKER_BINARIES = ("1r", "2rr", "3rrr", "4rrrr")

_UCSF_FILE_HEADER = 180
_UCSF_AXIS_HEADER = 128
_PIPE_HEADER_WORDS = 512
_PIPE_HEADER_BYTES = 4 * _PIPE_HEADER_WORDS
# Word indices of the NMRPipe header that hold text; their bytes do not depend on byte order.
_PIPE_TEXT_WORDS = ((16, 24), (286, 294), (297, 352), (464, 472))
_PIPE_LABEL_BYTES = {"FDF2LABEL": 64, "FDF1LABEL": 72, "FDF3LABEL": 80, "FDF4LABEL": 88}
# A nucleus is accepted for an axis when its frequency ratio to 1H matches within this fraction.
_NUCLEUS_RATIO_TOLERANCE = 0.01
_ELEMENT_NUCLEUS = {"H": "1H", "D": "2H", "C": "13C", "N": "15N", "F": "19F", "P": "31P"}
_FINITE_CHECK_BYTES = 64 * 2**20


class SpectrumFileError(ValueError):
    """A spectrum file that cannot be read as it is: the message names the file and the problem.

    Attributes
    ----------
    path : str
        The file (or template, or directory) that was read.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def detect_format(path) -> Format:
    """The format of a spectrum file, from its content.

    Parameters
    ----------
    path : str or os.PathLike
        A UCSF file, an NMRPipe file, an NMRPipe multi-file template (``ft/test%03d.ft3``) or
        directory of planes, or a Bruker procno directory (or its ``2rr``/``3rrr`` file, or an
        experiment directory with a single ``pdata/<procno>``).

    Returns
    -------
    {'ucsf', 'pipe', 'bruker'}

    Raises
    ------
    FileNotFoundError
        ``path`` (or the first file of a template) does not exist.
    SpectrumFileError
        The content matches no supported format.
    """
    return _locate(path).format


def read(path, *, lazy: bool = False, min_ndim: int = 2) -> Spectrum:
    """Read a spectrum file into a :class:`~mssr.spectrum.Spectrum`.

    Parameters
    ----------
    path : str or os.PathLike
        See :func:`detect_format` for what a path may be.
    lazy : bool
        Return the data as a read-only :class:`numpy.memmap` where the format allows it
        (NMRPipe single files and streams); other formats are read into memory.
    min_ndim : int
        Fewest dimensions accepted (1 to 4); a spectrum with fewer raises.

    Returns
    -------
    Spectrum
        Data of shape ``tuple(axis.size for axis in axes)`` (last axis = directly detected),
        float32; ``meta`` holds ``source`` (the path as given) and ``format``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    SpectrumFileError
        Unknown format, truncated or corrupt file, sizes that disagree with the header,
        NaN/Inf values, fewer than ``min_ndim`` dimensions, or a pseudo dimension (then read
        the planes with :func:`iter_planes`).
    """
    min_ndim = _validate_min_ndim(min_ndim)
    if not isinstance(lazy, bool):
        raise TypeError(f"lazy must be a bool, got {type(lazy).__name__}")
    source = _open(path)
    _check_ndim(source, min_ndim)
    axes = _resolve_axes(source)
    pseudo = [i for i, axis in enumerate(axes) if axis is None]
    if pseudo:
        raise SpectrumFileError(source.path, _pseudo_problem(source, axes, pseudo))
    data = source.load(lazy=lazy)
    _check_finite(data, source.path)
    return Spectrum(data=data, axes=tuple(axes), meta=_meta(source))


def iter_planes(path, axis: int = 0) -> Iterator[Spectrum]:
    """Read a 3D or 4D spectrum (or a pseudo-3D/4D series) one plane at a time.

    Only the plane being yielded is in memory, except for Bruker data (read whole by
    nmrglue first).

    Parameters
    ----------
    path : str or os.PathLike
        See :func:`detect_format`.
    axis : int
        The array axis to step along; each yielded spectrum has the other axes. For a pseudo
        dimension (a series of spectra) this must be the pseudo axis.

    Returns
    -------
    iterator of Spectrum
        One spectrum per index along ``axis``, each with ``ndim - 1`` dimensions; ``meta`` holds
        ``source``, ``format``, ``plane_axis``, ``plane_index`` and, when ``axis`` is a frequency
        axis, ``plane_ppm`` (ppm of that plane).

    Raises
    ------
    FileNotFoundError, SpectrumFileError
        As :func:`read`; the file is checked before the iterator is returned, each plane's
        values when it is read.
    """
    source = _open(path)
    _check_ndim(source, 3)
    axis = _validate_axis(axis, source.ndim)
    axes = _resolve_axes(source)
    others = [i for i, a in enumerate(axes) if a is None and i != axis]
    if others:
        raise SpectrumFileError(source.path, _pseudo_problem(source, axes, others))
    plane_axes = tuple(a for i, a in enumerate(axes) if i != axis)
    along = axes[axis]

    def planes():
        for index in range(source.axes[axis].size):
            data = source.plane(axis, index)
            _check_finite(data, source.path, where=f"plane {index} along axis {axis}")
            meta = {**_meta(source), "plane_axis": axis, "plane_index": index}
            if along is not None:
                meta["plane_ppm"] = float(along.index_to_ppm(index))
            yield Spectrum(data=data, axes=plane_axes, meta=meta)

    return planes()


def info(path) -> str:
    """Text summary of a spectrum file: format, shape, nuclei, MHz, ppm limits, intensities.

    Pseudo-ND series are summarised as their first plane plus one intensity line per plane.

    Parameters
    ----------
    path : str or os.PathLike
        See :func:`detect_format`.

    Returns
    -------
    str
        :meth:`~mssr.spectrum.Spectrum.describe` of the spectrum (which lists ``format`` and
        ``source``).
    """
    source = _open(path)
    axes = _resolve_axes(source)
    pseudo = [i for i, axis in enumerate(axes) if axis is None]
    if not pseudo:
        return read(path, lazy=True, min_ndim=1).describe()
    if len(pseudo) > 1 or source.ndim < 3:
        raise SpectrumFileError(source.path, _pseudo_problem(source, axes, pseudo))
    axis = pseudo[0]
    header = source.axes[axis]
    lines = [
        f"pseudo-{source.ndim}D series: {header.size} planes along axis {axis} "
        f"(label {header.label!r}, {header.obs_mhz:g} MHz: not a frequency axis); file shape {source.shape}"
    ]
    for plane in iter_planes(path, axis):
        index = plane.meta["plane_index"]
        if index == 0:
            lines.append("plane 0:")
            lines.append(plane.describe())
        lines.append(f"plane {index}: intensity min {plane.data.min():.4g}  max {plane.data.max():.4g}")
    return "\n".join(lines)


def write(spectrum: Spectrum, path, *, format: WritableFormat | None = None) -> Path:
    """Write a spectrum as UCSF or NMRPipe, atomically.

    Parameters
    ----------
    spectrum : Spectrum
        2D or 3D (UCSF), 2D to 4D (NMRPipe) spectrum with finite values; stored as float32.
        ``meta`` is not stored (neither format has room for it).
    path : str or os.PathLike
        Output file. NMRPipe 3D/4D data are written as a single-file stream.
    format : {'ucsf', 'pipe'}, optional
        Default: from the suffix (``.ucsf``; ``.ft``, ``.ft1``-``.ft4``, ``.pipe``, ``.fid``, ``.dat``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        ``spectrum`` is not a Spectrum.
    ValueError
        Unknown format or suffix, a dimensionality the format cannot hold, non-finite data.
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a mssr.spectrum.Spectrum, got {type(spectrum).__name__}")
    path = Path(_validate_path(path))
    format = _validate_write_format(format, path)
    limits = {"ucsf": (2, 3), "pipe": (2, 4)}[format]
    if not limits[0] <= spectrum.ndim <= limits[1]:
        raise ValueError(
            f"spectrum: a {spectrum.ndim}D spectrum cannot be written as {format} "
            f"({limits[0]}D to {limits[1]}D), file {path}"
        )
    data = np.ascontiguousarray(spectrum.data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise ValueError(f"spectrum: data hold NaN/Inf values (as float32), not written to {path}")
    with atomic_path(path) as tmp:
        if format == "ucsf":
            _write_ucsf(tmp, spectrum.axes, data)
        else:
            _write_pipe(tmp, spectrum.axes, data)
    return path


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _validate_path(path) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def _validate_min_ndim(min_ndim) -> int:
    if isinstance(min_ndim, bool) or not isinstance(min_ndim, (int, np.integer)):
        raise TypeError(f"min_ndim must be an int, got {type(min_ndim).__name__}")
    if not 1 <= min_ndim <= 4:
        raise ValueError(f"min_ndim must be between 1 and 4, got {min_ndim}")
    return int(min_ndim)


def _validate_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [{-ndim}, {ndim}) for a {ndim}D spectrum, got {axis}")
    return int(axis) % ndim


def _validate_write_format(format, path: Path) -> str:
    if format is None:
        suffix = path.suffix.lower()
        if suffix in UCSF_SUFFIXES:
            return "ucsf"
        if suffix in PIPE_SUFFIXES:
            return "pipe"
        raise ValueError(
            f"format: cannot tell the format of {path} from its suffix {suffix!r}; "
            f"pass format='ucsf' or 'pipe' (suffixes {UCSF_SUFFIXES + PIPE_SUFFIXES})"
        )
    if format not in get_args(WritableFormat):
        raise ValueError(f"format must be one of {get_args(WritableFormat)}, got {format!r}")
    return format


# --------------------------------------------------------------------------------------------
# locating a data set and telling its format
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Location:
    path: str  # as given (a template stays a template)
    format: str
    target: str  # the file, template or procno directory to open


def _not_found(path) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "no such spectrum file or directory", str(path))


def _locate(path) -> _Location:
    given = _validate_path(path)
    if "%" in os.path.basename(given):
        first = _template_file(given, 1, 1)
        if not os.path.isfile(first):
            raise _not_found(first)
        if _sniff(first) != "pipe":
            raise SpectrumFileError(given, f"the first file of the template, {first}, is not an NMRPipe file")
        return _Location(given, "pipe", given)
    if not os.path.exists(given):
        raise _not_found(given)
    if os.path.isdir(given):
        procno = _bruker_procno(given)
        if procno is not None:
            return _Location(given, "bruker", procno)
        template = _pipe_series_template(given)
        if template is not None:
            return _Location(given, "pipe", template)
        raise SpectrumFileError(
            given,
            "directory holds neither Bruker processed data (procs with 1r/2rr/3rrr/4rrrr) "
            "nor a numbered series of NMRPipe planes",
        )
    sniffed = _sniff(given)
    if sniffed is not None:
        return _Location(given, sniffed, given)
    if os.path.basename(given) in BRUKER_BINARIES:
        parent = os.path.dirname(given) or "."
        if os.path.isfile(os.path.join(parent, "procs")):
            return _Location(given, "bruker", parent)
    raise SpectrumFileError(
        given, "unknown format: not UCSF (magic b'UCSF NMR'), not NMRPipe (header words 0 and 2), not Bruker"
    )


def _sniff(filename: str) -> str | None:
    with open(filename, "rb") as f:
        head = f.read(12)
    if head.startswith(UCSF_MAGIC):
        return "ucsf"
    if len(head) == 12:
        for order in "<>":
            words = np.frombuffer(head, dtype=f"{order}f4")
            if words[0] == 0.0 and abs(float(words[2]) - 2.345) < 1e-5:
                return "pipe"
    return None


def _bruker_procno(directory: str) -> str | None:
    if os.path.isfile(os.path.join(directory, "procs")) and any(
        os.path.isfile(os.path.join(directory, name)) for name in BRUKER_BINARIES
    ):
        return directory
    pdata = os.path.join(directory, "pdata")
    if os.path.isdir(pdata):
        procnos = sorted(p for p in os.listdir(pdata) if p.isdigit() and os.path.isdir(os.path.join(pdata, p)))
        if len(procnos) == 1:
            return _bruker_procno(os.path.join(pdata, procnos[0]))
        if len(procnos) > 1:
            raise SpectrumFileError(
                directory, f"experiment has several processed data sets {procnos}: give pdata/<procno>"
            )
    return None


def _template_file(template: str, first: int, second: int) -> str:
    try:
        if template.count("%") == 2:
            return template % (first, second)
        return template % first
    except (TypeError, ValueError) as exc:
        raise SpectrumFileError(
            template, f"bad file template ({exc}); expected one or two integer fields such as %03d"
        ) from None


_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)(?P<suffix>\.[A-Za-z0-9]+)?$")


def _pipe_series_template(directory: str) -> str | None:
    """The template of the one numbered series of NMRPipe files in ``directory``, or None."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        match = _NUMBERED.match(name)
        if name.startswith(".") or match is None or not os.path.isfile(full):
            continue
        groups.setdefault((match["stem"], match["suffix"] or ""), []).append(match["number"])
    series = {}
    for (stem, suffix), numbers in groups.items():
        first = min(numbers, key=int)
        if _sniff(os.path.join(directory, f"{stem}{first}{suffix}")) != "pipe":
            continue
        widths = {len(n) for n in numbers}
        # zero-padded names (test001) have one width; unpadded ones (test1 ... test10) several
        field = f"%0{widths.pop()}d" if len(widths) == 1 and numbers[0].startswith("0") else "%d"
        series[os.path.join(directory, f"{stem}{field}{suffix}")] = numbers
    if len(series) > 1:
        raise SpectrumFileError(directory, f"directory holds several NMRPipe series: {sorted(series)}")
    return next(iter(series), None)


# --------------------------------------------------------------------------------------------
# opened data sets: per-axis header values and access to the real data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AxisHeader:
    label: str
    obs_mhz: float
    ppm_first: float
    ppm_per_point: float
    size: int
    frequency_domain: bool = True


class _Source(abc.ABC):
    """An opened, size-checked data set: axis headers in array order and access to the data."""

    format: str

    def __init__(self, path: str, axes: list[_AxisHeader]):
        self.path = path
        self.axes = axes

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @abc.abstractmethod
    def load(self, *, lazy: bool) -> np.ndarray:
        """The whole real array: a memmap when ``lazy`` and the layout allows, else float32 in memory."""

    @abc.abstractmethod
    def plane(self, axis: int, index: int) -> np.ndarray:
        """Real float32 values at ``index`` along ``axis``, the other axes kept."""


def _open(path) -> _Source:
    location = _locate(path)
    opener = {"ucsf": _UcsfSource, "pipe": _PipeSource, "bruker": _BrukerSource}[location.format]
    return opener(location.path, location.target)


def _axis_header(label, obs_mhz, uc, size, *, frequency_domain=True) -> _AxisHeader:
    ppm_first = float(uc.ppm(0))
    return _AxisHeader(
        label=str(label).strip(),
        obs_mhz=float(obs_mhz),
        ppm_first=ppm_first,
        ppm_per_point=ppm_first - float(uc.ppm(1)),
        size=int(size),
        frequency_domain=frequency_domain,
    )


def _positive_int(path, name: str, value) -> int:
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise SpectrumFileError(path, f"corrupt header: {name} = {value} is not a positive integer")
    return int(value)


def _positive_float(path, name: str, value) -> float:
    if not math.isfinite(value) or value <= 0:
        raise SpectrumFileError(path, f"corrupt header: {name} = {value} is not a positive number")
    return float(value)


def _check_file_size(path, filename: str, expected: int, what: str):
    actual = os.path.getsize(filename)
    if actual != expected:
        kind = "truncated" if actual < expected else "longer than its header says"
        where = "" if filename == path else f" ({filename})"
        raise SpectrumFileError(path, f"file{where} is {kind}: {what} needs {expected} bytes, the file has {actual}")


# ---- UCSF ------------------------------------------------------------------------------------


class _UcsfSource(_Source):
    """UCSF: a 180-byte file header, 128 bytes per axis, then big-endian float32 tiles."""

    format = "ucsf"

    def __init__(self, path: str, filename: str):
        size = os.path.getsize(filename)
        with open(filename, "rb") as f:
            head = f.read(_UCSF_FILE_HEADER)
            if len(head) < _UCSF_FILE_HEADER:
                raise SpectrumFileError(path, f"truncated UCSF header ({len(head)} of {_UCSF_FILE_HEADER} bytes)")
            if not head.startswith(UCSF_MAGIC):
                raise SpectrumFileError(path, "not a UCSF file (no b'UCSF NMR' magic)")
            naxis, ncomponents, _, version = head[10:14]
            if not 1 <= naxis <= 4:
                raise SpectrumFileError(path, f"corrupt UCSF header: {naxis} axes")
            if ncomponents != 1:
                raise SpectrumFileError(
                    path, f"UCSF file has {ncomponents} components per point; only real data (1) are supported"
                )
            if version != 2:
                raise SpectrumFileError(path, f"UCSF format version {version}; only version 2 is supported")
            raw_axes = f.read(_UCSF_AXIS_HEADER * naxis)
        header_bytes = _UCSF_FILE_HEADER + _UCSF_AXIS_HEADER * naxis
        if len(raw_axes) < _UCSF_AXIS_HEADER * naxis:
            raise SpectrumFileError(path, f"truncated UCSF header ({size} of {header_bytes} bytes)")
        axes, tiles, dic = [], [], {}
        for i in range(naxis):
            nucleus, _, npoints, _, bsize, obs, sw, center = struct.unpack(
                ">6s h 3I 3f", raw_axes[i * _UCSF_AXIS_HEADER : i * _UCSF_AXIS_HEADER + 32]
            )
            name = f"axis {i}"
            npoints = _positive_int(path, f"{name} npoints", npoints)
            bsize = _positive_int(path, f"{name} tile size", bsize)
            obs = _positive_float(path, f"{name} spectrometer frequency", obs)
            sw = _positive_float(path, f"{name} spectral width", sw)
            if not math.isfinite(center):
                raise SpectrumFileError(path, f"corrupt header: {name} centre = {center}")
            dic[f"w{i + 1}"] = {"npoints": npoints, "spectral_width": sw, "spectrometer_freq": obs, "xmtr_freq": center}
            label = nucleus.decode("ascii", errors="replace").strip("\x00 ")
            tiles.append((math.ceil(npoints / bsize), bsize))
            axes.append((label, obs, npoints))
        shape = types.SimpleNamespace(ndim=naxis)
        headers = [
            _axis_header(label, obs, ng.sparky.make_uc(dic, shape, dim=i), npoints)
            for i, (label, obs, npoints) in enumerate(axes)
        ]
        super().__init__(path, headers)
        self._tiles = tiles
        n_values = math.prod(n * b for n, b in tiles)
        tile_shape = tuple(b for _, b in tiles)
        what = f"data of shape {self.shape} in tiles of {tile_shape}"
        _check_file_size(path, filename, header_bytes + 4 * n_values, what)
        self._filename = filename
        self._offset = header_bytes

    def _tiled(self) -> np.ndarray:
        # (tiles_0, ..., tiles_n, tile_0, ..., tile_n): a view of the file, nothing read yet
        counts = tuple(n for n, _ in self._tiles)
        sizes = tuple(b for _, b in self._tiles)
        return np.memmap(self._filename, dtype=">f4", mode="r", offset=self._offset, shape=counts + sizes)

    def _untile(self, tiled: np.ndarray, keep: list[int]) -> np.ndarray:
        n = len(keep)
        order = [k for i in range(n) for k in (i, n + i)]
        full = tiled.transpose(order).reshape([self._tiles[a][0] * self._tiles[a][1] for a in keep])
        crop = tuple(slice(0, self.axes[a].size) for a in keep)
        return np.ascontiguousarray(full[crop], dtype=np.float32)

    def load(self, *, lazy: bool) -> np.ndarray:
        return self._untile(self._tiled(), list(range(self.ndim)))

    def plane(self, axis: int, index: int) -> np.ndarray:
        bsize = self._tiles[axis][1]
        key = [slice(None)] * (2 * self.ndim)
        key[axis], key[self.ndim + axis] = index // bsize, index % bsize
        return self._untile(self._tiled()[tuple(key)], [a for a in range(self.ndim) if a != axis])


# ---- NMRPipe ---------------------------------------------------------------------------------


def _pipe_header(path, filename: str) -> tuple[dict, str]:
    """NMRPipe header of ``filename`` as nmrglue's dictionary, and the file's byte order."""
    raw = np.fromfile(filename, dtype=np.uint8, count=_PIPE_HEADER_BYTES)
    if raw.size < _PIPE_HEADER_BYTES:
        raise SpectrumFileError(
            path, f"truncated NMRPipe header in {filename} ({raw.size} of {_PIPE_HEADER_BYTES} bytes)"
        )
    for order in "<>":
        words = raw.view(f"{order}f4")
        if words[0] == 0.0 and abs(float(words[2]) - 2.345) < 1e-5:
            break
    else:
        raise SpectrumFileError(path, f"{filename} is not an NMRPipe file (FDMAGIC/FDFLTORDER header words)")
    native = words.astype(np.float32)
    for start, stop in _PIPE_TEXT_WORDS:
        native[start:stop] = 0.0  # text is decoded below from the raw bytes, whatever their byte order
    if not np.isfinite(native).all():
        raise SpectrumFileError(path, f"corrupt NMRPipe header in {filename}: non-finite header values")
    dic = ng.pipe.fdata2dic(native)
    for key, start in _PIPE_LABEL_BYTES.items():
        dic[key] = raw[start : start + 8].tobytes().split(b"\x00")[0].decode("ascii", errors="replace").strip()
    return dic, order


def _pipe_raw_shape(path, dic: dict, ndim: int, multi_file: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(file grid, raw shape): the layout of the values in the file(s), before taking real parts.

    The raw shape follows nmrglue's ``find_shape`` (complex direct traces at full length,
    complex indirect points interleaved); a multi-file series adds its grid of files in front.
    """
    _positive_int(path, "FDSIZE", dic["FDSIZE"])
    if ndim >= 2:
        _positive_int(path, "FDSPECNUM", dic["FDSPECNUM"])
    file_shape = ng.pipe.find_shape(dic)
    file_shape = (file_shape,) if isinstance(file_shape, int) else tuple(file_shape)
    outer = ("FDF4SIZE", "FDF3SIZE")[4 - ndim :] if ndim >= 3 else ()
    sizes = tuple(_positive_int(path, key, dic[key]) for key in outer)
    grid = sizes if multi_file else ()
    raw_shape = grid + file_shape
    if len(raw_shape) != ndim:
        raise SpectrumFileError(path, f"corrupt NMRPipe header: {ndim} dimensions but data shape {raw_shape}")
    return grid, raw_shape


def _pipe_real_keys(path, dic: dict, fns: list[str], raw_shape: tuple[int, ...]) -> list[slice]:
    """Per raw axis, the slice of its real points.

    The real half of a complex direct trace comes first; complex indirect points alternate
    real, imaginary.
    """
    keys = []
    for i, fn in enumerate(fns):
        if i == len(fns) - 1:
            complex_direct = raw_shape[i] == 2 * dic["FDSIZE"]
            keys.append(slice(0, raw_shape[i] // 2 if complex_direct else raw_shape[i]))
        elif dic[fn + "QUADFLAG"] != 1:
            if raw_shape[i] % 2:
                raise SpectrumFileError(path, f"axis {i} is complex but has an odd number of points ({raw_shape[i]})")
            keys.append(slice(0, raw_shape[i], 2))
        else:
            keys.append(slice(0, raw_shape[i]))
    return keys


class _PipeSource(_Source):
    """NMRPipe: a 2048-byte header then float32 traces; 3D/4D as one stream or one file per plane."""

    format = "pipe"

    def __init__(self, path: str, target: str):
        multi_file = "%" in os.path.basename(target)
        first = _template_file(target, 1, 1) if multi_file else target
        dic, order = _pipe_header(path, first)
        ndim = _positive_int(path, "FDDIMCOUNT", dic["FDDIMCOUNT"])
        if ndim > 4:
            raise SpectrumFileError(path, f"corrupt NMRPipe header: FDDIMCOUNT = {ndim}")
        stream = dic["FDPIPEFLAG"] != 0
        if ndim >= 3 and not stream and not multi_file:
            raise SpectrumFileError(
                path,
                f"this is one plane of a multi-file {ndim}D NMRPipe series: read the series through a "
                f"template such as {_suggest_template(target)!r} or the directory that holds the planes",
            )
        if ndim <= 2 and multi_file:
            raise SpectrumFileError(path, f"template names a {ndim}D NMRPipe file, not a 3D/4D series")
        grid, raw_shape = _pipe_raw_shape(path, dic, ndim, multi_file)
        fns = [f"FDF{int(dic['FDDIMORDER'][ndim - 1 - i])}" for i in range(ndim)]
        if any(fn not in ("FDF1", "FDF2", "FDF3", "FDF4") for fn in fns):
            raise SpectrumFileError(path, f"corrupt NMRPipe header: FDDIMORDER = {dic['FDDIMORDER']}")
        self._keys = _pipe_real_keys(path, dic, fns, raw_shape)
        # nmrglue's make_uc expects the direct axis with its real points only
        uc_shape = raw_shape[:-1] + (self._keys[-1].stop,)
        like = types.SimpleNamespace(shape=tuple(uc_shape), ndim=ndim)
        headers = []
        for i, fn in enumerate(fns):
            if dic[fn + "FTFLAG"]:
                _positive_float(path, f"{fn}SW", dic[fn + "SW"])
            size = len(range(*self._keys[i].indices(raw_shape[i])))
            uc = ng.pipe.make_uc(dic, like, dim=i)
            headers.append(
                _axis_header(dic[fn + "LABEL"], dic[fn + "OBS"], uc, size, frequency_domain=bool(dic[fn + "FTFLAG"]))
            )
        super().__init__(path, headers)
        self._dtype = np.dtype(f"{order}f4")
        self._grid = grid
        self._raw_shape = raw_shape
        self._plane_shape = raw_shape[len(grid) :]
        expected = _PIPE_HEADER_BYTES + 4 * math.prod(self._plane_shape)
        if multi_file:
            self._files = self._series_files(path, target, grid, expected)
        else:
            _check_file_size(path, first, expected, f"data of shape {raw_shape}")
            self._files = np.array([first], dtype=object).reshape(())

    @staticmethod
    def _series_files(path, template: str, grid: tuple[int, ...], expected: int) -> np.ndarray:
        files = np.empty(grid, dtype=object)
        two_index = template.count("%") == 2
        planes = f"{math.prod(grid)} planes" + (f" {grid}" if len(grid) > 1 else "")
        for cell in np.ndindex(*grid):
            if two_index:
                name = _template_file(template, cell[0] + 1, cell[1] + 1)
            else:
                name = _template_file(template, int(np.ravel_multi_index(cell, grid)) + 1, 1)
            if not os.path.isfile(name):
                raise SpectrumFileError(
                    path, f"the header says {planes} but {name} is missing"
                )
            _check_file_size(path, name, expected, "a plane")
            files[cell] = name
        beyond = [(grid[0] + 1, 1), (1, grid[1] + 1)] if two_index else [(math.prod(grid) + 1, 1)]
        for first, second in beyond:
            extra = _template_file(template, first, second)
            if os.path.exists(extra):
                raise SpectrumFileError(path, f"the header says {planes} but {extra} exists too")
        return files

    def _map(self, filename: str) -> np.memmap:
        return np.memmap(filename, dtype=self._dtype, mode="r", offset=_PIPE_HEADER_BYTES, shape=self._plane_shape)

    def _gather(self, keys: list) -> np.ndarray:
        """Values at ``keys`` (a slice or a raw index per raw axis); a memmap view for one file."""
        n_grid = len(self._grid)
        plane_key = tuple(keys[n_grid:])
        if not n_grid:
            return self._map(self._files[()])[plane_key]
        ranges = [range(*k.indices(n)) if isinstance(k, slice) else range(k, k + 1) for k, n in zip(keys, self._grid)]
        out = None
        for out_cell in np.ndindex(*(len(r) for r in ranges)):
            block = self._map(self._files[tuple(r[i] for r, i in zip(ranges, out_cell))])[plane_key]
            if out is None:
                out = np.empty(tuple(len(r) for r in ranges) + block.shape, dtype=np.float32)
            out[out_cell] = block
        kept = tuple(len(r) for r, k in zip(ranges, keys) if isinstance(k, slice))
        return out.reshape(kept + out.shape[n_grid:])

    def load(self, *, lazy: bool) -> np.ndarray:
        data = self._gather(list(self._keys))
        return data if lazy and isinstance(data, np.memmap) else np.ascontiguousarray(data, dtype=np.float32)

    def plane(self, axis: int, index: int) -> np.ndarray:
        keys = list(self._keys)
        keys[axis] = range(*keys[axis].indices(self._raw_shape[axis]))[index]
        return np.ascontiguousarray(self._gather(keys), dtype=np.float32)


def _suggest_template(filename: str) -> str:
    directory, name = os.path.split(filename)
    match = _NUMBERED.match(name)
    if match is None:
        return os.path.join(directory, name + "%03d")
    number = match["number"]
    field = f"%0{len(number)}d" if number.startswith("0") else "%d"
    return os.path.join(directory, f"{match['stem']}{field}{match['suffix'] or ''}")


# ---- Bruker ----------------------------------------------------------------------------------


class _BrukerSource(_Source):
    """TopSpin processed data: procN(s) parameter files and a submatrix-ordered binary (1r, 2rr, ...)."""

    format = "bruker"

    def __init__(self, path: str, procno: str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nmrglue warns and goes on; every check is made below
            try:
                dic = ng.bruker.read_procs_file(procno)
            except Exception as exc:  # nmrglue raises whatever the parser hits on a broken file
                raise SpectrumFileError(path, f"cannot parse the procs files: {exc}") from None
        ndim = 1
        while ndim < 4 and f"proc{ndim + 1}s" in dic:
            ndim += 1
        binary = str(ndim) + "r" * ndim
        filename = os.path.join(procno, binary)
        if not os.path.isfile(filename):
            raise SpectrumFileError(path, f"{ndim} procNs parameter files but no {binary} data file")
        procs = [dic["procs" if n == 1 else f"proc{n}s"] for n in range(ndim, 0, -1)]  # array order
        headers, shape = [], []
        for i, proc in enumerate(procs):
            name = f"axis {i} {'procs' if i == ndim - 1 else f'proc{ndim - i}s'}"
            missing = [k for k in ("SI", "SW_p", "SF", "OFFSET") if k not in proc]
            if missing:
                raise SpectrumFileError(path, f"{name} lacks {missing}")
            size = _positive_int(path, f"{name} SI", float(proc["SI"]))
            sw = _positive_float(path, f"{name} SW_p", float(proc["SW_p"]))
            obs = _positive_float(path, f"{name} SF", float(proc["SF"]))
            offset = float(proc["OFFSET"])
            # OFFSET is the ppm of point 0 and SW_p spans SI points (as nmrglue's guess_udic reads procs)
            uc = ng.fileiobase.unit_conversion(size, False, sw, obs, offset * obs - sw / 2)
            headers.append(_axis_header(str(proc.get("AXNUC", "")).strip("<>"), obs, uc, size))
            shape.append(size)
        super().__init__(path, headers)
        itemsize = 8 if int(procs[-1].get("DTYPP", 0)) == 2 else 4
        _check_file_size(path, filename, itemsize * math.prod(shape), f"data of shape {tuple(shape)}")
        self._procno, self._binary = procno, binary
        self._data: np.ndarray | None = None

    def load(self, *, lazy: bool) -> np.ndarray:
        if self._data is not None:
            return self._data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a failed submatrix reorder is caught by the shape check
            _, data = ng.bruker.read_pdata(self._procno, bin_files=[self._binary], read_acqus=False, scale_data=True)
        if data.shape != self.shape:
            raise SpectrumFileError(
                self.path, f"data of {data.size} values cannot be arranged as {self.shape} in the submatrices (XDIM) "
                "the procs files give"
            )
        # kept: nmrglue has no partial reader for processed data, so planes come from this copy
        self._data = np.ascontiguousarray(data.real, dtype=np.float32)
        return self._data

    def plane(self, axis: int, index: int) -> np.ndarray:
        return np.ascontiguousarray(self.load(lazy=False).take(index, axis=axis))


# --------------------------------------------------------------------------------------------
# axes, nuclei and checks
# --------------------------------------------------------------------------------------------


_DIMENSION_NAME = re.compile(r"^\s*[Ff][1-4]\s*$")


def _nucleus_from_label(label: str) -> str | None:
    """'1H', 'HN', 'H1' -> '1H'; '15N', 'N15', 'N' -> '15N'; 'CA', 'C13' -> '13C'; 'ID', 'X', 'F2' -> None."""
    # 'F1'..'F4' (TopSpin/Sparky dimension names) name a dimension, not fluorine
    if _DIMENSION_NAME.match(label):
        return None
    match = re.match(r"^\s*(\d*)\s*([A-Za-z])", label)
    if match is None:
        return None
    mass, element = match.groups()
    nucleus = _ELEMENT_NUCLEUS.get(element.upper())
    if mass and nucleus is not None and f"{mass}{element.upper()}" in GYROMAGNETIC_RATIO_TO_1H:
        return f"{mass}{element.upper()}"
    return nucleus


def _nucleus_matching(obs_mhz: float, field_mhz: float, preferred: str | None) -> str | None:
    candidates = ([preferred] if preferred else []) + list(GYROMAGNETIC_RATIO_TO_1H)
    for nucleus in candidates:
        expected = GYROMAGNETIC_RATIO_TO_1H[nucleus] * field_mhz
        if abs(obs_mhz - expected) <= _NUCLEUS_RATIO_TOLERANCE * expected:
            return nucleus
    return None


def _resolve_axes(source: _Source) -> list[Axis | None]:
    """An Axis per dimension, or None for a pseudo dimension (no nucleus matches its frequency)."""
    headers = source.axes
    labelled = [_nucleus_from_label(h.label) for h in headers]
    direct = headers[-1]
    if labelled[-1] is not None and direct.frequency_domain:
        field_mhz = direct.obs_mhz / GYROMAGNETIC_RATIO_TO_1H[labelled[-1]]
    else:
        # unlabelled direct axis: protein spectra detect 1H, the highest frequency in the file
        field_mhz = max(h.obs_mhz for h in headers)
    axes: list[Axis | None] = []
    for i, (h, label_nucleus) in enumerate(zip(headers, labelled)):
        nucleus = _nucleus_matching(h.obs_mhz, field_mhz, label_nucleus)
        if not h.frequency_domain and source.ndim >= 3 and i != source.ndim - 1:
            # the series axis of a pseudo-3D/4D (relaxation delays) is never Fourier transformed,
            # whatever spectrometer frequency the conversion script copied into its header
            axes.append(None)
            continue
        if nucleus is not None and not h.frequency_domain:
            raise SpectrumFileError(
                source.path, f"axis {i} ({nucleus}, label {h.label!r}) is in the time domain: not Fourier transformed"
            )
        if nucleus is None:
            if i == source.ndim - 1:
                raise SpectrumFileError(
                    source.path, f"the direct axis (label {h.label!r}, {h.obs_mhz:g} MHz) is not a frequency axis"
                )
            axes.append(None)
            continue
        if not (math.isfinite(h.ppm_first) and math.isfinite(h.ppm_per_point) and h.ppm_per_point > 0):
            raise SpectrumFileError(
                source.path, f"corrupt header: axis {i} ppm of point 0 {h.ppm_first}, spacing {h.ppm_per_point} ppm"
            )
        axes.append(
            Axis(
                nucleus=nucleus,
                obs_mhz=h.obs_mhz,
                sw_hz=h.ppm_per_point * h.obs_mhz * h.size,
                ppm_first=h.ppm_first,
                size=h.size,
            )
        )
    return axes


def _pseudo_problem(source: _Source, axes: list[Axis | None], pseudo: list[int]) -> str:
    parts = ", ".join(
        f"axis {i} (label {source.axes[i].label!r}, {source.axes[i].obs_mhz:g} MHz, {source.axes[i].size} points)"
        for i in pseudo
    )
    direct = next(a for a in reversed(axes) if a is not None)
    problem = (
        f"{parts} {'is' if len(pseudo) == 1 else 'are'} not a frequency axis of this {direct.field_mhz:.2f} MHz "
        f"spectrum of shape {source.shape}: it is a pseudo-{source.ndim}D series"
    )
    if len(pseudo) == 1 and source.ndim >= 3:
        problem += f"; read its {source.axes[pseudo[0]].size} spectra with mssr.io.iter_planes(path, axis={pseudo[0]})"
    return problem


def _check_ndim(source: _Source, min_ndim: int):
    if source.ndim < min_ndim:
        raise SpectrumFileError(
            source.path, f"{source.ndim}D spectrum of shape {source.shape}; at least {min_ndim}D is needed"
        )


def _check_finite(data: np.ndarray, path: str, *, where: str = "data"):
    step = max(1, _FINITE_CHECK_BYTES // max(1, data[:1].nbytes)) if data.ndim > 1 else max(1, data.size)
    for start in range(0, max(1, data.shape[0]), step):
        block = np.asarray(data[start : start + step])
        bad = ~np.isfinite(block)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            first = (first[0] + start,) + first[1:]
            count = int(bad.sum())
            raise SpectrumFileError(path, f"{where} hold{'s' if where != 'data' else ''} non-finite values "
                                    f"(NaN/Inf; {count} in a block, first at index {first})")


def _meta(source: _Source) -> dict:
    return {"source": source.path, "format": source.format}


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _file_datetime() -> datetime.datetime:
    # SOURCE_DATE_EPOCH makes written files byte-identical between runs (reproducible builds convention)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).replace(tzinfo=None)
    return datetime.datetime.now()


def _udic(axes: tuple[Axis, ...]) -> dict:
    udic = ng.fileiobase.create_blank_udic(len(axes))
    for i, axis in enumerate(axes):
        # nmrglue's unit conversion puts the carrier at point size / 2
        centre_ppm = axis.ppm_first - axis.size / 2 * axis.ppm_per_point
        udic[i].update(
            size=axis.size, sw=axis.sw_hz, obs=axis.obs_mhz, car=centre_ppm * axis.obs_mhz, label=axis.nucleus,
            complex=False, time=False, freq=True, encoding="states" if i < len(axes) - 1 else "direct",
        )
    return udic


def _write_ucsf(filename: Path, axes: tuple[Axis, ...], data: np.ndarray):
    dic = ng.sparky.create_dic(_udic(axes), datetimeobj=_file_datetime(), user="mssr")
    ng.sparky.write(str(filename), dic, data, overwrite=True)


def _write_pipe(filename: Path, axes: tuple[Axis, ...], data: np.ndarray):
    ndim = len(axes)
    dic = ng.pipe.create_dic(_udic(axes), datetimeobj=_file_datetime())
    for i, axis in enumerate(axes):
        fn = f"FDF{int(dic['FDDIMORDER'][ndim - 1 - i])}"
        centre = int(axis.size / 2) + 1  # NMRPipe's 1-based centre point
        dic[fn + "CENTER"] = float(centre)
        dic[fn + "CAR"] = axis.ppm_first - (centre - 1) * axis.ppm_per_point
        # ORIG is the frequency (Hz) of the last point; make_uc derives every ppm from it
        dic[fn + "ORIG"] = axis.ppm_last * axis.obs_mhz
        dic[fn + "FTSIZE"] = float(axis.size)
        dic[fn + "X1"] = dic[fn + "XN"] = 0.0
    dic["FDSIZE"] = dic["FDREALSIZE"] = float(data.shape[-1])
    dic["FDSPECNUM"] = float(data.shape[-2])
    dic["FDF3SIZE"] = float(data.shape[-3]) if ndim >= 3 else 1.0
    dic["FDF4SIZE"] = float(data.shape[-4]) if ndim >= 4 else 1.0
    dic["FDPIPEFLAG"] = 1.0 if ndim >= 3 else 0.0
    dic["FDFILECOUNT"] = 1.0
    dic["FDSLICECOUNT"] = float(math.prod(data.shape[:-1]))
    dic["FDQUADFLAG"] = 1.0
    dic["FDMAX"] = dic["FDDISPMAX"] = float(data.max())
    dic["FDMIN"] = dic["FDDISPMIN"] = float(data.min())
    dic["FDSCALEFLAG"] = 1.0
    ng.pipe.write_single(str(filename), dic, data, overwrite=True)
