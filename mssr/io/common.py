"""What the format modules share: the error type, opened data sets, header and data checks.

Nothing here knows a file format; :mod:`mssr.io.ucsf`, :mod:`mssr.io.pipe` and
:mod:`mssr.io.bruker` each build a :class:`Source` from their files.
"""

from __future__ import annotations

import abc
import datetime
import errno
import math
import os
import stat
from dataclasses import dataclass
from typing import Literal

import nmrglue as ng
import numpy as np

from mssr.spectrum import Axis

Format = Literal["ucsf", "pipe", "bruker"]
WritableFormat = Literal["ucsf", "pipe"]

FINITE_CHECK_BYTES = 64 * 2**20


class SpectrumFileError(ValueError):
    """A spectrum file that cannot be read as it is: the message names the file and the problem.

    Attributes
    ----------
    path : str
        The file (or template, or directory) that was read.
    problem : str
        What is wrong with it.
    series : tuple of int or None
        For a pseudo-ND series read as one spectrum: (axis, number of spectra along it).
    """

    def __init__(self, path, problem: str, *, series: tuple[int, int] | None = None):
        self.path = str(path)
        self.problem = problem
        self.series = series
        super().__init__(f"{self.path}: {problem}")


def validate_path(path) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def not_found(path) -> FileNotFoundError:
    """The error for a missing path; a dangling symbolic link says where it points."""
    path = str(path)
    if os.path.islink(path):
        return FileNotFoundError(errno.ENOENT, f"dangling symbolic link (to {os.readlink(path)!r}, which does "
                                 "not exist)", path)
    return FileNotFoundError(errno.ENOENT, "no such spectrum file or directory", path)


def path_kind(path: str) -> str:
    """'file' or 'dir' for what may be read, after following symbolic links.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path`` (a dangling link is named as such).
    SpectrumFileError
        A symbolic link loop, an unreadable entry, or something that is neither a regular file nor a
        directory (a FIFO, socket or device would block or stream forever).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpectrumFileError(path, "symbolic link loop (the link points back to itself)") from None
        raise SpectrumFileError(path, f"cannot be examined ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise SpectrumFileError(path, f"is {kind}, not a regular file or a directory; give a spectrum file")


def read_head(path: str, filename: str, count: int) -> bytes:
    """The first ``count`` bytes of a regular file; an empty or unreadable file raises naming it."""
    try:
        with open(filename, "rb") as f:
            head = f.read(count)
    except PermissionError:
        raise SpectrumFileError(path, f"cannot be read: permission denied ({filename})") from None
    except IsADirectoryError:
        raise SpectrumFileError(path, f"{filename} is a directory, not a file") from None
    except OSError as exc:
        raise SpectrumFileError(path, f"cannot be read ({exc.strerror}: {filename})") from None
    if not head:
        where = "" if filename == path else f" ({filename})"
        raise SpectrumFileError(path, f"file{where} is empty (0 bytes)")
    return head


@dataclass(frozen=True)
class AxisHeader:
    label: str
    obs_mhz: float
    ppm_first: float
    ppm_per_point: float
    size: int
    frequency_domain: bool = True


class Source(abc.ABC):
    """An opened, size-checked data set: axis headers in array order and access to the data."""

    format: str
    pulse_program: str | None = None
    """The acquisition's pulse program where the format records it (Bruker ``acqus`` PULPROG)."""

    def __init__(self, path: str, axes: list[AxisHeader]):
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


def axis_header(label, obs_mhz, uc, size, *, frequency_domain=True) -> AxisHeader:
    ppm_first = float(uc.ppm(0))
    return AxisHeader(
        label=str(label).strip(),
        obs_mhz=float(obs_mhz),
        ppm_first=ppm_first,
        ppm_per_point=ppm_first - float(uc.ppm(1)),
        size=int(size),
        frequency_domain=frequency_domain,
    )


def positive_int(path, name: str, value) -> int:
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise SpectrumFileError(path, f"corrupt header: {name} = {value} is not a positive integer")
    return int(value)


def positive_float(path, name: str, value) -> float:
    if not math.isfinite(value) or value <= 0:
        raise SpectrumFileError(path, f"corrupt header: {name} = {value} is not a positive number")
    return float(value)


def check_file_size(path, filename: str, expected: int, what: str):
    actual = os.path.getsize(filename)
    if actual != expected:
        kind = "truncated" if actual < expected else "longer than its header says"
        where = "" if filename == path else f" ({filename})"
        raise SpectrumFileError(path, f"file{where} is {kind}: {what} needs {expected} bytes, the file has {actual}")


def check_ndim(source: Source, min_ndim: int):
    if source.ndim < min_ndim:
        raise SpectrumFileError(
            source.path, f"{source.ndim}D spectrum of shape {source.shape}; at least {min_ndim}D is needed"
        )


def check_finite(data: np.ndarray, path: str, *, where: str = "data"):
    step = max(1, FINITE_CHECK_BYTES // max(1, data[:1].nbytes)) if data.ndim > 1 else max(1, data.size)
    for start in range(0, max(1, data.shape[0]), step):
        block = np.asarray(data[start : start + step])
        bad = ~np.isfinite(block)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            first = (first[0] + start,) + first[1:]
            count = int(bad.sum())
            raise SpectrumFileError(path, f"{where} hold{'s' if where != 'data' else ''} non-finite values "
                                    f"(NaN/Inf; {count} in a block, first at index {first})"
                                    + _byte_order_hint(block))


def _byte_order_hint(block: np.ndarray) -> str:
    """A hint when the values are all finite read in the other byte order: the header lies about it."""
    if block.dtype.kind != "f" or not np.isfinite(block.byteswap()).all():
        return ""
    return ("; read in the other byte order every value is finite: the header and the data disagree in byte "
            "order (a byte-swapped header or data block?)")


def source_meta(source: Source) -> dict:
    meta = {"source": source.path, "format": source.format}
    if source.pulse_program:
        meta["pulse_program"] = source.pulse_program
    return meta


def file_datetime() -> datetime.datetime:
    # SOURCE_DATE_EPOCH makes written files byte-identical between runs (reproducible builds convention)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).replace(tzinfo=None)
    return datetime.datetime.now()


def udic(axes: tuple[Axis, ...]) -> dict:
    """nmrglue's universal dictionary of ``axes`` (array order), for the writers."""
    result = ng.fileiobase.create_blank_udic(len(axes))
    for i, axis in enumerate(axes):
        # nmrglue's unit conversion puts the carrier at point size / 2
        centre_ppm = axis.ppm_first - axis.size / 2 * axis.ppm_per_point
        result[i].update(
            size=axis.size, sw=axis.sw_hz, obs=axis.obs_mhz, car=centre_ppm * axis.obs_mhz, label=axis.nucleus,
            complex=False, time=False, freq=True, encoding="states" if i < len(axes) - 1 else "direct",
        )
    return result

