"""Bruker TopSpin processed data (procno directory: procs, proc2s, ... and 1r/2rr/3rrr/4rrrr), read only."""

from __future__ import annotations

import math
import os
import warnings

import nmrglue as ng
import numpy as np

from mssr.io.common import (Source, SpectrumFileError, axis_header, check_file_size, positive_float,
                            positive_int)

BINARIES = ("1r", "2rr", "3rrr", "4rrrr")
class BrukerSource(Source):
    """TopSpin processed data: procN(s) parameter files and a submatrix-ordered binary (1r, 2rr, ...)."""

    format = "bruker"

    def __init__(self, path: str, procno: str):
        _check_parameter_files(path, procno)
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
            size = positive_int(path, f"{name} SI", float(proc["SI"]))
            sw = positive_float(path, f"{name} SW_p", float(proc["SW_p"]))
            obs = positive_float(path, f"{name} SF", float(proc["SF"]))
            offset = float(proc["OFFSET"])
            # OFFSET is the ppm of point 0 and SW_p spans SI points (as nmrglue's guess_udic reads procs)
            uc = ng.fileiobase.unit_conversion(size, False, sw, obs, offset * obs - sw / 2)
            headers.append(axis_header(str(proc.get("AXNUC", "")).strip("<>"), obs, uc, size))
            shape.append(size)
        super().__init__(path, headers)
        itemsize = 8 if int(procs[-1].get("DTYPP", 0)) == 2 else 4
        check_file_size(path, filename, itemsize * math.prod(shape), f"data of shape {tuple(shape)}")
        self._procno, self._binary = procno, binary
        self._data: np.ndarray | None = None
        self.pulse_program = _pulse_program(procno)

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



def _pulse_program(procno: str) -> str | None:
    """PULPROG of the experiment's ``acqus`` (``<expno>/pdata/<procno>/../../acqus``), or None.

    Optional: processed data copied without their experiment directory have none.
    """
    expno = os.path.dirname(os.path.dirname(os.path.abspath(procno)))
    acqus = os.path.join(expno, "acqus")
    if not os.path.isfile(acqus):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = ng.bruker.read_jcamp(acqus).get("PULPROG")
        except Exception:  # an unreadable acqus only costs the experiment's name
            return None
    name = str(value).strip().strip("<>").strip() if value is not None else ""
    return name or None


def _parameter_file(axis_number: int) -> str:
    """``procs`` for F2 of a 2D (the direct axis, number 1), ``proc2s`` for the next, ..."""
    return "procs" if axis_number == 1 else f"proc{axis_number}s"


def _check_parameter_files(path: str, procno: str) -> None:
    """Name the file that is missing: the binary, ``procs``, or the procNs of an indirect axis."""
    binaries = [name for name in BINARIES if os.path.isfile(os.path.join(procno, name))]
    params = [n for n in range(1, 5) if os.path.isfile(os.path.join(procno, _parameter_file(n)))]
    if not binaries:
        ndim = max(params, default=1)
        raise SpectrumFileError(path, f"Bruker processed data without a data file: {_parameter_file(ndim)} "
                                f"describes a {ndim}D spectrum but {BINARIES[ndim - 1]} is missing in {procno}")
    binary = binaries[-1]
    ndim = BINARIES.index(binary) + 1
    missing = [_parameter_file(n) for n in range(1, ndim + 1) if n not in params]
    if missing:
        raise SpectrumFileError(path, f"Bruker data file {binary} ({ndim}D) but the parameter file(s) "
                                f"{', '.join(missing)} are missing in {procno}")


def find_procno(directory: str) -> str | None:
    """The procno directory of Bruker processed data at ``directory`` (itself or its single pdata/N), or None.

    A directory counts as processed data when it holds a ``procs``-type parameter file or a
    binary (``1r`` ... ``4rrrr``); what is missing then is named when it is opened.
    """
    entries = ["procs", "proc2s", "proc3s", "proc4s", *BINARIES]
    if any(os.path.isfile(os.path.join(directory, name)) for name in entries):
        return directory
    pdata = os.path.join(directory, "pdata")
    if os.path.isdir(pdata):
        procnos = sorted(p for p in os.listdir(pdata) if p.isdigit() and os.path.isdir(os.path.join(pdata, p)))
        if len(procnos) == 1:
            return find_procno(os.path.join(pdata, procnos[0]))
        if len(procnos) > 1:
            raise SpectrumFileError(
                directory, f"experiment has several processed data sets {procnos}: give pdata/<procno>"
            )
    return None



def open_source(path: str, procno: str) -> BrukerSource:
    """The opened, size-checked processed data of ``procno`` (``path`` as given, for messages)."""
    return BrukerSource(path, procno)
