"""The input of ``mssr enhance``: the spectrum file read, a pseudo-ND plane chosen, its 2D planes and their names."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mssr import io as mssr_io
from mssr.data.project import default_pairs, project
from mssr.spectrum import Spectrum

log = logging.getLogger(__name__)

FIELD_TOLERANCE = 0.01
"""Largest relative difference accepted between ``from_mhz`` and the field in the file's header;
nominal and true spectrometer frequencies (800 vs 800.30 MHz) differ by well under 1 %."""

TRAINED_PAIRS = (("15N", "1H"), ("13C", "1H"))
"""(indirect, direct) nuclei of the planes the models are trained on (HSQC-like 15N-1H and 13C-1H,
the pipeline's projections); other planes are enhanced with a warning."""

TEMPLATE_FIELD = re.compile(r"%0?\d*d")


@dataclass(frozen=True)
class InputSpectrum:
    """A read input: the path as given, its format, the spectrum (a series' plane already taken)."""

    path: str
    format: str
    spectrum: Spectrum  # 2D or more
    plane: int | None  # index in a pseudo-ND series
    notes: tuple[str, ...]


def is_template(path: str) -> bool:
    """Whether ``path`` is an NMRPipe series template (a ``%d`` field and no such file)."""
    return bool(TEMPLATE_FIELD.search(os.path.basename(path))) and not os.path.lexists(path)


def read_input(path: str, plane: int | None) -> InputSpectrum:
    """Read ``path`` (lazily); for a pseudo-ND series take plane ``plane`` (required there, refused elsewhere)."""
    fmt = mssr_io.detect_format(path)
    try:
        spectrum = mssr_io.read(path, lazy=True)
    except mssr_io.SpectrumFileError as exc:
        if exc.series is None:
            raise
        axis, count = exc.series
        if plane is None:
            what = exc.problem.split(": it is ")[-1].split(";")[0]
            raise ValueError(f"{path} is {what} of {count} spectra along axis {axis}: enhance one of them with "
                             f"--plane INDEX (0..{count - 1})") from None
        return _read_plane(path, fmt, axis, plane)
    if plane is not None:
        raise ValueError(
            f"plane (--plane {plane}) selects a spectrum of a pseudo-ND series, but {path} is a "
            f"{spectrum.ndim}D spectrum of shape {spectrum.shape}; leave plane out"
        )
    return InputSpectrum(path, fmt, spectrum, None, ())


def _read_plane(path: str, fmt: str, axis: int, plane: int) -> InputSpectrum:
    count = 0
    for spectrum in mssr_io.iter_planes(path, axis):
        if spectrum.meta["plane_index"] == plane:
            note = f"pseudo-{spectrum.ndim + 1}D series: plane {plane} along axis {axis} enhanced"
            return InputSpectrum(path, fmt, spectrum, plane, (note,))
        count += 1
    raise ValueError(f"plane (--plane {plane}) is out of range: {path} is a series of {count} spectra (0..{count - 1})")


def check_header_field(inp: InputSpectrum, from_mhz: float) -> None:
    """Refuse a ``from_mhz`` that disagrees with the header by more than :data:`FIELD_TOLERANCE`."""
    header = inp.spectrum.field_mhz
    if abs(header - from_mhz) > FIELD_TOLERANCE * from_mhz:
        raise ValueError(
            f"from_mhz (--from-mhz {from_mhz:g}) disagrees with {inp.path}, whose header says it was recorded "
            f"at {header:.2f} MHz (1H); give the field the spectrum was recorded at"
        )


def planes_of(inp: InputSpectrum, method: str) -> tuple[list[Spectrum], list[str]]:
    """The 2D planes to enhance (direct axis last) and their distinct names.

    A name is the plane's nuclei (``'15N-1H'``); where two planes share nuclei (a 13C/13C or
    15N/15N 4D), each gets the input's array axes kept, ``'13C-1H_axes1-3'``.
    """
    spectrum = inp.spectrum
    if spectrum.ndim == 2:
        planes = project(spectrum, method=method)
        return planes, [planes[0].meta["projection"]]
    pairs = default_pairs(spectrum)
    planes = project(spectrum, method=method, pairs=pairs)
    labels = [p.meta["projection"] for p in planes]
    names = [label if labels.count(label) == 1 else f"{label}_axes{min(pair)}-{max(pair)}"
             for label, pair in zip(labels, pairs)]
    return planes, names


def check_plane(path: str, plane: Spectrum, name: str) -> None:
    """Refuse a plane with fewer than 2 points on an axis or zero everywhere."""
    if min(plane.shape) < 2:
        raise ValueError(f"{path}: plane {name} of shape {plane.shape} has fewer than 2 points on an axis")
    if not np.any(np.asarray(plane.data)):
        raise ValueError(f"{path}: plane {name} is zero everywhere: nothing to enhance")


def untrained_warnings(planes: list[Spectrum], names: list[str]) -> list[str]:
    """A warning per plane whose nuclei are none of :data:`TRAINED_PAIRS` (1H-1H, 13C-13C, ...)."""
    warnings = []
    for plane, name in zip(planes, names):
        if tuple(plane.nuclei) not in TRAINED_PAIRS:
            trained = ", ".join("-".join(p) for p in TRAINED_PAIRS)
            warnings.append(f"plane {name}: the models are trained on {trained} planes only; a "
                            f"{'-'.join(plane.nuclei)} plane is outside what they learned, treat its estimate "
                            "with suspicion")
    return warnings


def input_files(path: str, fmt: str) -> tuple[Path, list[Path]]:
    """(root, files): the files holding the data behind ``path``; their digest is recorded, they are never written."""
    given = Path(path)
    if is_template(path):
        pattern = re.compile("^" + TEMPLATE_FIELD.sub(r"\\d+", re.escape(given.name)) + "$")
        return given.parent, sorted(p for p in given.parent.iterdir() if p.is_file() and pattern.match(p.name))
    if given.is_file() and fmt == "bruker":
        given = given.parent  # the binary's header is the procs files beside it
    if given.is_dir():
        return given, sorted(p for p in given.rglob("*") if p.is_file())
    return given.parent, [given]


def input_sha256(path, fmt: str | None = None) -> str:
    """SHA-256 of a spectrum's data: of the file, or of the ``sha256sum`` listing of a directory or series.

    Parameters
    ----------
    path : str or os.PathLike
        As for :func:`mssr.io.read`.
    fmt : {'ucsf', 'pipe', 'bruker'}, optional
        The format, if known (else detected).

    Returns
    -------
    str
        Hex digest. For a single UCSF/NMRPipe file, that of the file (``sha256sum FILE``). For a
        Bruker data set (every file of the procno directory, or of the experiment directory when
        that was given) or a multi-file NMRPipe series, :func:`mssr.provenance.data_sha256` of
        its files.
    """
    from mssr.provenance import data_sha256, sha256_file

    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"input must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    fmt = fmt or mssr_io.detect_format(path)
    if Path(path).is_file() and fmt != "bruker":
        return sha256_file(path)
    root, files = input_files(path, fmt)
    return data_sha256(root, files)
