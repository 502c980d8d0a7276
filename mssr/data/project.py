"""Projection of 3D/4D spectra onto 2D planes with their ppm axes.

Every plane keeps the directly detected 1H axis last and the :class:`~mssr.spectrum.Axis` of each
kept dimension, so a projection of an HNCA onto 15N-1H is an HSQC-like spectrum on a known ppm
grid.

Methods (the reduction over the dimensions that are projected away)
------------------------------------------------------------------
``sum``
    Sum of the values: peak volumes add, but so does noise (64 planes: noise x 8), and peaks of
    opposite sign that share a position cancel.
``max``
    Skyline (maximum): keeps positive peak heights; negative peaks are lost and the noise floor
    is lifted.
``signed_max``
    The value of largest magnitude, with its sign: ``max`` where ``max >= -min``, else ``min``.
    Keeps the negative Cb peaks of HNCACB beside the positive Ca peaks. On a tie of magnitudes
    (``+a`` and ``-a``) the positive value wins.

Large files are read in slabs along the first array axis, so a lazily read (memory-mapped)
spectrum is never loaded whole; every requested plane is computed in the same pass.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mssr.data.store import write_planes
from mssr.spectrum import Spectrum

log = logging.getLogger(__name__)

Method = Literal["sum", "max", "signed_max"]
METHODS: tuple[str, ...] = ("sum", "max", "signed_max")

PROJECTION_NUCLEI: dict[str, tuple[str, ...]] = {
    # amide-detected triple resonance: HSQC-like 15N-1H and the carbon strip plane 13C-1H
    "hnca": ("15N", "13C"),
    "hnco": ("15N", "13C"),
    "hncacb": ("15N", "13C"),
    "cbcaconh": ("15N", "13C"),
    "hncoca": ("15N", "13C"),
    "hncaco": ("15N", "13C"),
    "cconh": ("15N", "13C"),
    # amide-detected with an indirect 1H: only the HSQC-like plane
    "noesy_15n": ("15N",),
    "hbhaconh": ("15N",),
    "hbhanh": ("15N",),
    "hcconh": ("15N",),
    # carbon-edited: 13C-1H
    "hcch_tocsy": ("13C",),
    "hcch_cosy": ("13C",),
    "noesy_13c": ("13C",),
}
"""Indirect nuclei paired with the direct 1H axis, per experiment. Experiments not listed get
every (indirect axis, direct axis) pair."""

_SLAB_BYTES = 16 << 20  # bounds the memory of one pass; larger slabs are not faster


def _validate_spectrum(spectrum) -> Spectrum:
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a Spectrum, got {type(spectrum).__name__}")
    if spectrum.ndim < 2:
        raise ValueError(f"spectrum must have 2 or more dimensions, got {spectrum.ndim}")
    return spectrum


def _validate_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def direct_axis(spectrum: Spectrum) -> int:
    """Index of the directly detected axis: the last one, unless only another axis is 1H."""
    nuclei = spectrum.nuclei
    if nuclei[-1] == "1H":
        return spectrum.ndim - 1
    protons = [i for i, n in enumerate(nuclei) if n == "1H"]
    return protons[0] if len(protons) == 1 else spectrum.ndim - 1


def default_pairs(spectrum: Spectrum) -> list[tuple[int, int]]:
    """Axis pairs ``(indirect, direct)`` that make sense for ``spectrum.meta['experiment']``.

    See :data:`PROJECTION_NUCLEI`; unknown experiments (and 4D spectra of any kind whose nuclei
    are not listed) get every indirect axis paired with the direct one.
    """
    direct = direct_axis(spectrum)
    indirect = [i for i in range(spectrum.ndim) if i != direct]
    wanted = PROJECTION_NUCLEI.get(str(spectrum.meta.get("experiment", "")).lower())
    pairs = []
    if wanted:
        for nucleus in wanted:
            pairs += [(i, direct) for i in indirect if spectrum.nuclei[i] == nucleus]
    return pairs or [(i, direct) for i in indirect]


def _validate_pairs(pairs, ndim: int) -> list[tuple[int, int]]:
    out = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in pair):
            raise ValueError(f"pairs must hold (axis, axis) int pairs, got {pair!r}")
        a, b = int(pair[0]), int(pair[1])
        if a == b or not (0 <= a < ndim and 0 <= b < ndim):
            raise ValueError(f"pairs entry {pair!r} must name two different axes in 0..{ndim - 1}")
        out.append((a, b))
    if not out:
        raise ValueError("pairs must not be empty")
    return out


def _reduce(block: np.ndarray, axes: tuple[int, ...], method: str) -> np.ndarray:
    if not axes:
        return block
    if method == "sum":
        return block.sum(axis=axes, dtype=np.float64)
    if method == "max":
        return block.max(axis=axes)
    # The value of largest magnitude is the maximum or the minimum: two fast reductions instead of
    # an argmax of |x| along a strided axis (several times slower) and a full-size |x| copy.
    return _signed_pick(block.max(axis=axes), block.min(axis=axes))


def _signed_pick(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    return np.where(high >= -low, high, low)


def _combine(acc: np.ndarray | None, part: np.ndarray, method: str) -> np.ndarray:
    if acc is None:
        return part
    if method == "sum":
        return acc + part
    if method == "max":
        return np.maximum(acc, part)
    return _signed_pick(np.maximum(acc, part), np.minimum(acc, part))


def _project_arrays(data, kept: list[tuple[int, int]], method: str, dtype) -> list[np.ndarray]:
    # One pass over slabs of axis 0; each plane is kept in array order of its two axes.
    shape = data.shape
    slab_rows = max(1, _SLAB_BYTES // max(1, int(np.prod(shape[1:], dtype=np.int64)) * data.dtype.itemsize))
    accs: list = [None] * len(kept)
    outs = [None if 0 not in k else np.empty((shape[k[0]], shape[k[1]]), dtype=np.float64 if method == "sum" else dtype)
            for k in kept]
    for i0 in range(0, shape[0], slab_rows):
        block = np.asarray(data[i0 : i0 + slab_rows])
        if not np.issubdtype(block.dtype, np.floating):
            block = block.astype(np.float64)
        for n, k in enumerate(kept):
            reduced = tuple(i for i in range(len(shape)) if i not in k)
            part = _reduce(block, reduced, method)
            if 0 in k:
                outs[n][i0 : i0 + block.shape[0]] = part
            else:
                accs[n] = _combine(accs[n], part, method)
    return [(o if 0 in k else a).astype(dtype, copy=False) for o, a, k in zip(outs, accs, kept)]


def _label(axes) -> str:
    return "-".join(a.nucleus for a in axes)


def project(spectrum: Spectrum, *, method: Method = "signed_max", pairs=None) -> list[Spectrum]:
    """Project a 3D/4D spectrum onto 2D planes; 2D spectra pass through.

    Parameters
    ----------
    spectrum : Spectrum
        2D, 3D or 4D spectrum; its data may be a memory map (read in slabs of the first axis).
    method : {'sum', 'max', 'signed_max'}
        Reduction over the projected-away dimensions (see the module notes).
    pairs : sequence of (int, int), optional
        Axis pairs to keep; default :func:`default_pairs`. In each plane the direct axis
        (:func:`direct_axis`) comes last when it is in the pair; otherwise the two axes keep their
        array order.

    Returns
    -------
    list of Spectrum
        2D planes of the caller's float dtype (float64 for integer data), axes the
        :class:`~mssr.spectrum.Axis` of the kept dimensions, meta the parent's plus
        ``projection`` (nuclei of the plane, e.g. ``'15N-1H'``), ``method`` (``'none'`` for a
        2D spectrum) and ``parent_shape`` (e.g. ``'48x32x128'``). A 2D spectrum is returned as its
        only plane, transposed when its direct axis is not last.
    """
    _validate_spectrum(spectrum)
    _validate_method(method)
    direct = direct_axis(spectrum)
    dtype = spectrum.data.dtype if np.issubdtype(spectrum.data.dtype, np.floating) else np.dtype(np.float64)
    parent_shape = "x".join(str(s) for s in spectrum.shape)
    if spectrum.ndim == 2:
        order = (1 - direct, direct)
        data = np.asarray(spectrum.data).astype(dtype, copy=False).transpose(order)
        axes = tuple(spectrum.axes[i] for i in order)
        return [spectrum.with_data(np.ascontiguousarray(data), axes, projection=_label(axes), method="none",
                                   parent_shape=parent_shape)]
    pairs = default_pairs(spectrum) if pairs is None else _validate_pairs(pairs, spectrum.ndim)
    kept = [tuple(sorted(p)) for p in pairs]
    planes = []
    for pair, k, arr in zip(pairs, kept, _project_arrays(spectrum.data, kept, method, dtype)):
        order = (0, 1) if direct not in pair or k[1] == direct else (1, 0)
        axes = tuple(spectrum.axes[k[i]] for i in order)
        planes.append(spectrum.with_data(np.ascontiguousarray(arr.transpose(order)), axes,
                                         projection=_label(axes), method=method, parent_shape=parent_shape))
    return planes


def project_manifest(manifest_csv, out_h5, *, method: Method = "signed_max") -> dict:
    """Project every spectrum of a raw-data manifest and store all 2D planes.

    Each file is opened with ``mssr.io.read(path, lazy=True)`` and projected in slabs (see
    :func:`project`). Plane metadata: ``protein``, ``experiment`` (from the manifest),
    ``projection``, ``method``, ``source`` (the manifest's relative path), ``field_mhz``,
    ``parent_shape``.

    Parameters
    ----------
    manifest_csv : str or Path
        ``manifest.csv`` of the fetch stage (paths relative to its folder).
    out_h5 : str or Path
        Output plane set (:func:`mssr.data.store.write_planes`), written atomically.
    method : {'sum', 'max', 'signed_max'}

    Returns
    -------
    dict
        ``{'spectra': n_files, 'planes': n_planes, 'by_experiment': {experiment: {'spectra': ..,
        'planes': ..}}}``; also stored in the output's file attributes.

    Raises
    ------
    ValueError
        The manifest lacks columns or rows, or a file cannot be read (the message names it).
    """
    from mssr import io as mssr_io  # the only module that knows file formats

    _validate_method(method)
    manifest_csv = Path(manifest_csv)
    table = pd.read_csv(manifest_csv)
    missing = {"protein", "experiment", "path"} - set(table.columns)
    if missing:
        raise ValueError(f"{manifest_csv}: manifest lacks the columns {sorted(missing)}")
    if table.empty:
        raise ValueError(f"{manifest_csv}: manifest lists no spectrum")
    planes: list[Spectrum] = []
    by_experiment: dict[str, dict[str, int]] = {}
    for row in table.itertuples(index=False):
        path = manifest_csv.parent / row.path
        try:
            raw = mssr_io.read(path, lazy=True)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read spectrum listed in {manifest_csv} ({exc})") from exc
        field = float(getattr(row, "field_mhz", np.nan))
        if not np.isfinite(field):
            field = raw.field_mhz
        raw = Spectrum(raw.data, raw.axes, meta={"protein": str(row.protein), "experiment": str(row.experiment),
                                                  "source": str(row.path), "field_mhz": field})
        new = project(raw, method=method)
        planes += new
        counts = by_experiment.setdefault(str(row.experiment), {"spectra": 0, "planes": 0})
        counts["spectra"] += 1
        counts["planes"] += len(new)
        log.info("%s: %s -> %d plane(s) %s", row.path, "x".join(map(str, raw.shape)), len(new),
                 ", ".join(p.meta["projection"] for p in new))
    counts = {"spectra": len(table), "planes": len(planes), "by_experiment": by_experiment}
    write_planes(out_h5, planes, attrs={"stage": "project", "method": method, "manifest": str(manifest_csv), **counts})
    log.info("%d spectra -> %d 2D planes (%s)", counts["spectra"], counts["planes"], method)
    return counts
