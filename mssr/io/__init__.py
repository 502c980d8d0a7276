"""Reading and writing NMR spectrum files: UCSF (Sparky), NMRPipe and Bruker processed data.

This package is the only place that knows file formats, one module per format with the same verbs
(``matches``, ``open_source``, ``write_file``): :mod:`mssr.io.ucsf`, :mod:`mssr.io.pipe`,
:mod:`mssr.io.bruker`; :mod:`mssr.io.detect` tells them apart, :mod:`mssr.io.axes` turns headers
into axes, :mod:`mssr.io.common` holds what they share. Everything it reads becomes a
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
A missing path (or a dangling symbolic link, named as such) raises :class:`FileNotFoundError`.
A FIFO, socket or device, a symbolic link loop, an empty (0 bytes) or unreadable file raise
:class:`SpectrumFileError`. An existing file is read as a file whatever its name; only a name
with ``%`` that is no file is a series template. Every problem with the content (unknown
format, truncated or corrupt file, a header whose sizes disagree with the data, non-finite
values, too few dimensions, a pseudo dimension where a spectrum is expected) raises one
:class:`SpectrumFileError` that names the file and the problem. Nothing is reshaped to make a
file fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import numpy as np

from mssr.atomic import atomic_path
from mssr.io import bruker, pipe, ucsf
from mssr.io.axes import pseudo_problem, resolve_axes
from mssr.io.common import (Format, SpectrumFileError, WritableFormat, check_finite, check_ndim, source_meta,
                            validate_path)
from mssr.io.detect import locate, open_source
from mssr.spectrum import Spectrum

UCSF_MAGIC = ucsf.MAGIC
UCSF_SUFFIXES = ucsf.SUFFIXES
PIPE_SUFFIXES = pipe.SUFFIXES
BRUKER_BINARIES = bruker.BINARIES


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
    return locate(path).format


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
    source = open_source(path)
    check_ndim(source, min_ndim)
    axes = resolve_axes(source)
    pseudo = [i for i, axis in enumerate(axes) if axis is None]
    if pseudo:
        series = (pseudo[0], source.axes[pseudo[0]].size) if len(pseudo) == 1 and source.ndim >= 3 else None
        raise SpectrumFileError(source.path, pseudo_problem(source, axes, pseudo), series=series)
    data = source.load(lazy=lazy)
    check_finite(data, source.path)
    return Spectrum(data=data, axes=tuple(axes), meta=source_meta(source))


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
    source = open_source(path)
    check_ndim(source, 3)
    axis = _validate_axis(axis, source.ndim)
    axes = resolve_axes(source)
    others = [i for i, a in enumerate(axes) if a is None and i != axis]
    if others:
        raise SpectrumFileError(source.path, pseudo_problem(source, axes, others))
    plane_axes = tuple(a for i, a in enumerate(axes) if i != axis)
    along = axes[axis]

    def planes():
        for index in range(source.axes[axis].size):
            data = source.plane(axis, index)
            check_finite(data, source.path, where=f"plane {index} along axis {axis}")
            meta = {**source_meta(source), "plane_axis": axis, "plane_index": index}
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
    source = open_source(path)
    axes = resolve_axes(source)
    pseudo = [i for i, axis in enumerate(axes) if axis is None]
    if not pseudo:
        return read(path, lazy=True, min_ndim=1).describe()
    if len(pseudo) > 1 or source.ndim < 3:
        raise SpectrumFileError(source.path, pseudo_problem(source, axes, pseudo))
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
    path = Path(validate_path(path))
    format = _validate_write_format(format, path)
    module = ucsf if format == "ucsf" else pipe
    limits = module.NDIM_WRITABLE
    if not limits[0] <= spectrum.ndim <= limits[1]:
        raise ValueError(
            f"spectrum: a {spectrum.ndim}D spectrum cannot be written as {format} "
            f"({limits[0]}D to {limits[1]}D), file {path}"
        )
    data = np.ascontiguousarray(spectrum.data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise ValueError(f"spectrum: data hold NaN/Inf values (as float32), not written to {path}")
    with atomic_path(path) as tmp:
        module.write_file(tmp, spectrum.axes, data)
    return path



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
        if suffix in ucsf.SUFFIXES:
            return "ucsf"
        if suffix in pipe.SUFFIXES:
            return "pipe"
        raise ValueError(
            f"format: cannot tell the format of {path} from its suffix {suffix!r}; "
            f"pass format='ucsf' or 'pipe' (suffixes {ucsf.SUFFIXES + pipe.SUFFIXES})"
        )
    if format not in get_args(WritableFormat):
        raise ValueError(f"format must be one of {get_args(WritableFormat)}, got {format!r}")
    return format



__all__ = ["BRUKER_BINARIES", "PIPE_SUFFIXES", "UCSF_MAGIC", "UCSF_SUFFIXES", "Format", "SpectrumFileError",
           "WritableFormat", "detect_format", "info", "iter_planes", "read", "write"]
