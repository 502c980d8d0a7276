"""UCSF (Sparky) files: 2D to 4D read (through a memory map of the tiles), 2D and 3D written."""

from __future__ import annotations

import math
import os
import struct
import types
from pathlib import Path

import nmrglue as ng
import numpy as np

from mssr.io.common import (Source, SpectrumFileError, axis_header, check_file_size, file_datetime, positive_float,
                            positive_int, udic)
from mssr.spectrum import Axis

MAGIC = b"UCSF NMR"
SUFFIXES = (".ucsf",)
NDIM_WRITABLE = (2, 3)

_FILE_HEADER = 180
_AXIS_HEADER = 128


class UcsfSource(Source):
    """UCSF: a 180-byte file header, 128 bytes per axis, then big-endian float32 tiles."""

    format = "ucsf"

    def __init__(self, path: str, filename: str):
        size = os.path.getsize(filename)
        with open(filename, "rb") as f:
            head = f.read(_FILE_HEADER)
            if len(head) < _FILE_HEADER:
                raise SpectrumFileError(path, f"truncated UCSF header ({len(head)} of {_FILE_HEADER} bytes)")
            if not head.startswith(MAGIC):
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
            raw_axes = f.read(_AXIS_HEADER * naxis)
        header_bytes = _FILE_HEADER + _AXIS_HEADER * naxis
        if len(raw_axes) < _AXIS_HEADER * naxis:
            raise SpectrumFileError(path, f"truncated UCSF header ({size} of {header_bytes} bytes)")
        axes, tiles, dic = [], [], {}
        for i in range(naxis):
            nucleus, _, npoints, _, bsize, obs, sw, center = struct.unpack(
                ">6s h 3I 3f", raw_axes[i * _AXIS_HEADER : i * _AXIS_HEADER + 32]
            )
            name = f"axis {i}"
            npoints = positive_int(path, f"{name} npoints", npoints)
            bsize = positive_int(path, f"{name} tile size", bsize)
            obs = positive_float(path, f"{name} spectrometer frequency", obs)
            sw = positive_float(path, f"{name} spectral width", sw)
            if not math.isfinite(center):
                raise SpectrumFileError(path, f"corrupt header: {name} centre = {center}")
            dic[f"w{i + 1}"] = {"npoints": npoints, "spectral_width": sw, "spectrometer_freq": obs, "xmtr_freq": center}
            label = nucleus.decode("ascii", errors="replace").strip("\x00 ")
            tiles.append((math.ceil(npoints / bsize), bsize))
            axes.append((label, obs, npoints))
        shape = types.SimpleNamespace(ndim=naxis)
        headers = [
            axis_header(label, obs, ng.sparky.make_uc(dic, shape, dim=i), npoints)
            for i, (label, obs, npoints) in enumerate(axes)
        ]
        super().__init__(path, headers)
        self._tiles = tiles
        n_values = math.prod(n * b for n, b in tiles)
        tile_shape = tuple(b for _, b in tiles)
        what = f"data of shape {self.shape} in tiles of {tile_shape}"
        check_file_size(path, filename, header_bytes + 4 * n_values, what)
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



def matches(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a UCSF file."""
    return head.startswith(MAGIC)


def open_source(path: str, filename: str) -> UcsfSource:
    """The opened, size-checked UCSF file ``filename`` (``path`` as given, for messages)."""
    return UcsfSource(path, filename)


def write_file(filename: Path, axes: tuple[Axis, ...], data: np.ndarray) -> None:
    """Write float32 ``data`` (2D or 3D, array order of ``axes``) as a UCSF file (not atomically)."""
    dic = ng.sparky.create_dic(udic(axes), datetimeobj=file_datetime(), user="mssr")
    ng.sparky.write(str(filename), dic, data, overwrite=True)

