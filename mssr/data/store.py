"""HDF5 sample sets: a stack of 2D spectra with their metadata beside the arrays.

File layout (one file per stage output)::

    /x          float32 (N, H, W), chunked one sample per chunk, gzip + shuffle
    /header     UTF-8 JSON strings (N,): each sample's Spectrum header (axes + meta)
    /<extra>    optional further arrays, e.g. ``x_lr`` (F, N, H, W), ``std`` (N, H, W)
    attrs["attrs"]  JSON object with file-level information (stage, config, factors...)

Files are written atomically: readers never see a half-written set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from mssr.atomic import atomic_path
from mssr.spectrum import Spectrum

_STR = h5py.string_dtype("utf-8")


@dataclass
class SampleSet:
    """A loaded sample set.

    Attributes
    ----------
    x : ndarray, shape (N, H, W)
        The spectra.
    headers : list of dict
        One Spectrum header per sample (``{'axes': [...], 'meta': {...}}``).
    attrs : dict
        File-level information.
    extra : dict of str to ndarray
        Further arrays stored in the file.
    """

    x: np.ndarray
    headers: list
    attrs: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.headers)

    def spectrum(self, i: int, data: np.ndarray | None = None) -> Spectrum:
        """Sample ``i`` as a Spectrum (optionally with other data on the same axes)."""
        return Spectrum.from_header(self.x[i] if data is None else data, self.headers[i])

    def meta(self, key: str) -> list:
        """The value of ``meta[key]`` of every sample (None where missing)."""
        return [h.get("meta", {}).get(key) for h in self.headers]


def _validate_stack(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def write_samples(path, x: np.ndarray, headers: list, *, attrs: dict | None = None, extra: dict | None = None) -> Path:
    """Write a sample set atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file.
    x : ndarray, shape (N, H, W)
        Spectra; stored as float32.
    headers : list of dict
        N Spectrum headers (see :meth:`mssr.spectrum.Spectrum.header`).
    attrs : dict, optional
        File-level JSON-serializable information.
    extra : dict of str to ndarray, optional
        Further arrays to store under their names.

    Returns
    -------
    Path
        ``path``.
    """
    _validate_stack("x", x)
    if len(headers) != x.shape[0]:
        raise ValueError(f"headers has {len(headers)} entries for {x.shape[0]} samples")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            chunks = (1,) + x.shape[1:] if x.shape[0] else None
            f.create_dataset("x", data=x.astype(np.float32, copy=False), chunks=chunks,
                             compression="gzip" if chunks else None, shuffle=bool(chunks))
            f.create_dataset("header", data=[json.dumps(h) for h in headers], dtype=_STR)
            f.attrs["attrs"] = json.dumps(attrs or {})
            for name, arr in (extra or {}).items():
                arr = np.asarray(arr)
                if name in ("x", "header"):
                    raise ValueError(f"extra array name {name!r} is reserved")
                ch = (1,) * (arr.ndim - 2) + arr.shape[-2:] if arr.ndim >= 2 and arr.size else None
                f.create_dataset(name, data=arr, chunks=ch, compression="gzip" if ch else None)
    return Path(path)


def read_samples(path, *, extra: bool = True) -> SampleSet:
    """Read a sample set written by :func:`write_samples`.

    Raises
    ------
    ValueError
        If the file is not an HDF5 sample set (the message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such sample set")
    try:
        with h5py.File(path, "r") as f:
            if "x" not in f or "header" not in f:
                raise ValueError(f"{path}: not an mssr sample set (datasets 'x' and 'header' missing)")
            x = f["x"][...]
            headers = [json.loads(s) for s in f["header"].asstr()[...]]
            attrs = json.loads(f.attrs.get("attrs", "{}"))
            arrays = {k: f[k][...] for k in f.keys() if k not in ("x", "header")} if extra else {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read HDF5 sample set ({exc})") from exc
    if len(headers) != x.shape[0]:
        raise ValueError(f"{path}: {x.shape[0]} samples but {len(headers)} headers")
    return SampleSet(x=x, headers=headers, attrs=attrs, extra=arrays)


def read_array(path, name: str) -> np.ndarray:
    """Read one named array of a sample set file."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                raise ValueError(f"{path}: no array named {name!r} (has {sorted(f.keys())})")
            return f[name][...]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read HDF5 file ({exc})") from exc


def read_attrs(path) -> dict:
    """File-level information of a sample set."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs.get("attrs", "{}"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read HDF5 file ({exc})") from exc


def write_planes(path, spectra: list, *, attrs: dict | None = None) -> Path:
    """Write 2D spectra of differing sizes (the projection stage's output) atomically.

    Layout: ``/planes/00000`` ... one float32 dataset per spectrum, its header as the JSON
    attribute ``header``; ``attrs["attrs"]`` holds file-level information.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            group = f.create_group("planes")
            for i, s in enumerate(spectra):
                if not isinstance(s, Spectrum):
                    raise TypeError(f"spectra[{i}] must be a Spectrum, got {type(s).__name__}")
                if not np.isfinite(s.data).all():
                    raise ValueError(f"spectra[{i}] ({s.meta.get('source', '?')}) contains NaN or Inf")
                ds = group.create_dataset(f"{i:05d}", data=np.asarray(s.data, dtype=np.float32),
                                          compression="gzip", shuffle=True)
                ds.attrs["header"] = json.dumps(s.header())
            f.attrs["attrs"] = json.dumps(attrs or {})
    return Path(path)


def read_planes(path) -> list:
    """Read the spectra written by :func:`write_planes`, in order."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "planes" not in f:
                raise ValueError(f"{path}: not an mssr plane set (group 'planes' missing)")
            group = f["planes"]
            return [Spectrum.from_header(group[k][...], json.loads(group[k].attrs["header"])) for k in sorted(group)]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read HDF5 file ({exc})") from exc
