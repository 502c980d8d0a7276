"""NMRPipe: 2D files, single-file 3D/4D streams and multi-file 3D/4D series read; one file or stream written."""

from __future__ import annotations

import math
import os
import re
import types
from pathlib import Path

import nmrglue as ng
import numpy as np

from mssr.io.common import (Source, SpectrumFileError, axis_header, check_file_size, file_datetime, positive_float,
                            positive_int, udic)
from mssr.spectrum import Axis

SUFFIXES = (".ft", ".ft1", ".ft2", ".ft3", ".ft4", ".pipe", ".fid", ".dat")
NDIM_WRITABLE = (2, 4)
_HEADER_WORDS = 512
_HEADER_BYTES = 4 * _HEADER_WORDS
# Word indices of the NMRPipe header that hold text; their bytes do not depend on byte order.
_TEXT_WORDS = ((16, 24), (286, 294), (297, 352), (464, 472))
_LABEL_BYTES = {"FDF2LABEL": 64, "FDF1LABEL": 72, "FDF3LABEL": 80, "FDF4LABEL": 88}


def matches(head: bytes) -> bool:
    """Whether the first 12 bytes of a file are an NMRPipe header: FDMAGIC = 0, FDFLTORDER = 2.345."""
    if len(head) < 12:
        return False
    for order in "<>":
        words = np.frombuffer(head[:12], dtype=f"{order}f4")
        if words[0] == 0.0 and abs(float(words[2]) - 2.345) < 1e-5:
            return True
    return False


def _file_matches(filename: str) -> bool:
    try:
        with open(filename, "rb") as f:
            return matches(f.read(12))
    except OSError:
        return False


def is_template(name: str) -> bool:
    """Whether ``name`` (a path that does not exist as a file) is a multi-file series template."""
    return "%" in os.path.basename(name)


def template_file(template: str, first: int, second: int) -> str:
    """The file of plane (``first``, ``second``) (1-based) of a one- or two-field template."""
    try:
        if template.count("%") == 2:
            return template % (first, second)
        return template % first
    except (TypeError, ValueError) as exc:
        raise SpectrumFileError(
            template, f"bad file template ({exc}); expected one or two integer fields such as %03d"
        ) from None


_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)(?P<suffix>\.[A-Za-z0-9]+)?$")


def series_template(directory: str) -> str | None:
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
        if not _file_matches(os.path.join(directory, f"{stem}{first}{suffix}")):
            continue
        widths = {len(n) for n in numbers}
        # zero-padded names (test001) have one width; unpadded ones (test1 ... test10) several
        field = f"%0{widths.pop()}d" if len(widths) == 1 and numbers[0].startswith("0") else "%d"
        series[os.path.join(directory, f"{stem}{field}{suffix}")] = numbers
    if len(series) > 1:
        raise SpectrumFileError(directory, f"directory holds several NMRPipe series: {sorted(series)}")
    return next(iter(series), None)


def read_header(path, filename: str) -> tuple[dict, str]:
    """NMRPipe header of ``filename`` as nmrglue's dictionary, and the file's byte order."""
    raw = np.fromfile(filename, dtype=np.uint8, count=_HEADER_BYTES)
    if raw.size < _HEADER_BYTES:
        raise SpectrumFileError(
            path, f"truncated NMRPipe header in {filename} ({raw.size} of {_HEADER_BYTES} bytes)"
        )
    for order in "<>":
        words = raw.view(f"{order}f4")
        if words[0] == 0.0 and abs(float(words[2]) - 2.345) < 1e-5:
            break
    else:
        raise SpectrumFileError(path, f"{filename} is not an NMRPipe file (FDMAGIC/FDFLTORDER header words)")
    native = words.astype(np.float32)
    for start, stop in _TEXT_WORDS:
        native[start:stop] = 0.0  # text is decoded below from the raw bytes, whatever their byte order
    if not np.isfinite(native).all():
        raise SpectrumFileError(path, f"corrupt NMRPipe header in {filename}: non-finite header values")
    dic = ng.pipe.fdata2dic(native)
    for key, start in _LABEL_BYTES.items():
        dic[key] = raw[start : start + 8].tobytes().split(b"\x00")[0].decode("ascii", errors="replace").strip()
    return dic, order


def _raw_shape(path, dic: dict, ndim: int, multi_file: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(file grid, raw shape): the layout of the values in the file(s), before taking real parts.

    The raw shape follows nmrglue's ``find_shape`` (complex direct traces at full length,
    complex indirect points interleaved); a multi-file series adds its grid of files in front.
    """
    positive_int(path, "FDSIZE", dic["FDSIZE"])
    if ndim >= 2:
        positive_int(path, "FDSPECNUM", dic["FDSPECNUM"])
    file_shape = ng.pipe.find_shape(dic)
    file_shape = (file_shape,) if isinstance(file_shape, int) else tuple(file_shape)
    outer = ("FDF4SIZE", "FDF3SIZE")[4 - ndim :] if ndim >= 3 else ()
    sizes = tuple(positive_int(path, key, dic[key]) for key in outer)
    grid = sizes if multi_file else ()
    raw_shape = grid + file_shape
    if len(raw_shape) != ndim:
        raise SpectrumFileError(path, f"corrupt NMRPipe header: {ndim} dimensions but data shape {raw_shape}")
    return grid, raw_shape


def _real_keys(path, dic: dict, fns: list[str], raw_shape: tuple[int, ...]) -> list[slice]:
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


class PipeSource(Source):
    """NMRPipe: a 2048-byte header then float32 traces; 3D/4D as one stream or one file per plane."""

    format = "pipe"

    def __init__(self, path: str, target: str, *, multi_file: bool = False):
        first = template_file(target, 1, 1) if multi_file else target
        dic, order = read_header(path, first)
        ndim = positive_int(path, "FDDIMCOUNT", dic["FDDIMCOUNT"])
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
        grid, raw_shape = _raw_shape(path, dic, ndim, multi_file)
        fns = [f"FDF{int(dic['FDDIMORDER'][ndim - 1 - i])}" for i in range(ndim)]
        if any(fn not in ("FDF1", "FDF2", "FDF3", "FDF4") for fn in fns):
            raise SpectrumFileError(path, f"corrupt NMRPipe header: FDDIMORDER = {dic['FDDIMORDER']}")
        self._keys = _real_keys(path, dic, fns, raw_shape)
        # nmrglue's make_uc expects the direct axis with its real points only
        uc_shape = raw_shape[:-1] + (self._keys[-1].stop,)
        like = types.SimpleNamespace(shape=tuple(uc_shape), ndim=ndim)
        headers = []
        for i, fn in enumerate(fns):
            if dic[fn + "FTFLAG"]:
                positive_float(path, f"{fn}SW", dic[fn + "SW"])
            size = len(range(*self._keys[i].indices(raw_shape[i])))
            uc = ng.pipe.make_uc(dic, like, dim=i)
            headers.append(
                axis_header(dic[fn + "LABEL"], dic[fn + "OBS"], uc, size, frequency_domain=bool(dic[fn + "FTFLAG"]))
            )
        super().__init__(path, headers)
        self._dtype = np.dtype(f"{order}f4")
        self._grid = grid
        self._raw_shape = raw_shape
        self._plane_shape = raw_shape[len(grid) :]
        expected = _HEADER_BYTES + 4 * math.prod(self._plane_shape)
        if multi_file:
            self._files = self._series_files(path, target, grid, expected)
        else:
            check_file_size(path, first, expected, f"data of shape {raw_shape}")
            self._files = np.array([first], dtype=object).reshape(())

    @staticmethod
    def _series_files(path, template: str, grid: tuple[int, ...], expected: int) -> np.ndarray:
        files = np.empty(grid, dtype=object)
        two_index = template.count("%") == 2
        planes = f"{math.prod(grid)} planes" + (f" {grid}" if len(grid) > 1 else "")
        for cell in np.ndindex(*grid):
            if two_index:
                name = template_file(template, cell[0] + 1, cell[1] + 1)
            else:
                name = template_file(template, int(np.ravel_multi_index(cell, grid)) + 1, 1)
            if not os.path.isfile(name):
                raise SpectrumFileError(
                    path, f"the header says {planes} but {name} is missing"
                )
            check_file_size(path, name, expected, "a plane")
            files[cell] = name
        beyond = [(grid[0] + 1, 1), (1, grid[1] + 1)] if two_index else [(math.prod(grid) + 1, 1)]
        for first, second in beyond:
            extra = template_file(template, first, second)
            if os.path.exists(extra):
                raise SpectrumFileError(path, f"the header says {planes} but {extra} exists too")
        return files

    def _map(self, filename: str) -> np.memmap:
        return np.memmap(filename, dtype=self._dtype, mode="r", offset=_HEADER_BYTES, shape=self._plane_shape)

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


def open_source(path: str, target: str, *, multi_file: bool = False) -> PipeSource:
    """The opened, size-checked NMRPipe file, stream or series (``multi_file``: ``target`` is a template)."""
    return PipeSource(path, target, multi_file=multi_file)


def write_file(filename: Path, axes: tuple[Axis, ...], data: np.ndarray) -> None:
    """Write float32 ``data`` (2D to 4D, array order of ``axes``) as one NMRPipe file or stream (not atomically)."""
    ndim = len(axes)
    dic = ng.pipe.create_dic(udic(axes), datetimeobj=file_datetime())
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
