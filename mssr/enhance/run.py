"""Enhancing a spectrum file: a low-field spectrum in, its high-field estimate out, in the same format.

What :func:`enhance` does with a file recorded at ``from_mhz`` (1H MHz), step by step:

1. Read it with :func:`mssr.io.read` (UCSF, NMRPipe, Bruker processed data). A pseudo-ND series
   (relaxation delays, titration points) is one spectrum per plane: choose one with ``plane``.
2. 3D/4D spectra are projected onto the 2D planes a model is trained on
   (:func:`mssr.data.project.project`; one output per plane); a 2D spectrum is used as it is,
   with its direct (1H) axis last.
3. Each plane is resized to the model's S x S pixels and divided by ``scale = max |resized|``
   (:func:`mssr.data.preprocess.preprocess`, exactly as the training data were).
4. The model samples ``repeats`` estimates at the factor ``f = to_mhz / from_mhz``
   (:class:`mssr.model.sample.Enhancer`); their mean is the estimate, their per-pixel standard
   deviation (ddof = 0) its uncertainty.
5. Mean and standard deviation are multiplied by ``scale`` and resized from S x S back to the
   plane's points with the same anti-aliased, window-keeping resize
   (:func:`mssr.data.preprocess.resize`), so the output has the input's points, ppm limits and
   intensity units. Integrals (peak volumes) are kept by both resizes; the resolution of the
   estimate is that of S x S pixels, whatever the input's size.
6. The output keeps every axis' points and ppm window and records the target magnet:
   :meth:`mssr.spectrum.Axis.at_field` sets each axis' spectrometer frequency to that nucleus'
   frequency at ``to_mhz`` and scales the spectral width in Hz with it, so ppm per point is
   unchanged. The file then tells any program (and ``mssr info``) that it describes a
   ``to_mhz`` spectrum, Hz-based quantities read from it (linewidths, couplings in Hz per point)
   are those of the target field, and running ``mssr enhance`` again on it cannot silently treat
   the estimate as a low-field recording.
7. Files written (each atomically): the estimate in the input's format (Bruker data, which
   :mod:`mssr.io` cannot write, become NMRPipe), the uncertainty beside it (``<stem>_std<ext>``),
   a sidecar ``<output>.json`` that says what was done (input and its SHA-256, model and its
   MLflow run, factor, protocol, seed, date, versions; neither UCSF nor NMRPipe headers have room
   for this), and with ``plot`` a PNG of input, estimate and uncertainty.

The uncertainty is resized with the same non-negative linear weights as the mean; by the
triangle inequality that is an upper bound of the standard deviation of the resized repeats.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mssr import io as mssr_io
from mssr.atomic import write_text
from mssr.config import set_threads
from mssr.data.preprocess import preprocess, resize
from mssr.data.project import METHODS, Method, project
from mssr.factors import as_factor, factor_label, table1
from mssr.model.sample import Enhancer, SampleConfig
from mssr.spectrum import Spectrum

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path("results/demo/models/mssr")
"""Model used when none is given: the demo pipeline's MSSR model (relative to the working directory)."""

PAPER_PROTOCOL = {"sampler": "ddpm", "steps": 500, "repeats": 5}
"""The paper's sampling protocol: respaced ancestral DDPM, 500 steps, 5 repeats averaged."""

FAST_PROTOCOL = {"sampler": "dpmsolver", "steps": 20, "repeats": 2}
"""``fast=True``: DPM-Solver++ with 20 steps, 2 repeats (about 60x fewer network calls)."""

FIELD_TOLERANCE = 0.01
"""Largest relative difference accepted between ``from_mhz`` and the field in the file's header;
nominal and true spectrometer frequencies (800 vs 800.30 MHz) differ by well under 1 %."""

SIDECAR_FORMAT = "mssr.enhance"
SIDECAR_VERSION = 1

_TEMPLATE_FIELD = re.compile(r"%0?\d*d")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _validate_mhz(name: str, option: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} ({option}) must be a number of MHz, got {type(value).__name__}")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name} ({option}) must be a finite field > 0 MHz, got {value}")
    return float(value)


def _validate_fields(from_mhz, to_mhz) -> tuple[float, float]:
    low = _validate_mhz("from_mhz", "--from-mhz", from_mhz)
    high = _validate_mhz("to_mhz", "--to-mhz", to_mhz)
    if not high > low:
        raise ValueError(
            f"to_mhz (--to-mhz {high:g}) must be greater than from_mhz (--from-mhz {low:g}): the model estimates "
            "a spectrum at a higher field than the one recorded"
        )
    return low, high


def _validate_optional_positive_int(name: str, option: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} ({option}) must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} ({option}) must be >= 1, got {value}")
    return int(value)


def _validate_input(path) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"input must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def _validate_plane(plane) -> int | None:
    if plane is None:
        return None
    if isinstance(plane, bool) or not isinstance(plane, (int, np.integer)):
        raise TypeError(f"plane (--plane) must be an int, got {type(plane).__name__}")
    if plane < 0:
        raise ValueError(f"plane (--plane) must be >= 0, got {plane}")
    return int(plane)


def _validate_projection(projection) -> str:
    if projection not in METHODS:
        raise ValueError(f"projection (--projection) must be one of {METHODS}, got {projection!r}")
    return projection


def _validate_device(device) -> str:
    import torch

    if not isinstance(device, str):
        raise TypeError(f"device (--device) must be a str such as 'auto', 'cpu' or 'cuda:0', "
                        f"got {type(device).__name__}")
    if device == "auto":
        return device
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device (--device) {device!r} is not a torch device: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device (--device) {device!r}: CUDA is not available on this machine; use 'cpu' or 'auto'")
    return device


def sample_config(*, sampler=None, steps=None, repeats=None, fast: bool = False, seed: int = 0,
                  device: str = "auto", batch_size: int = 64) -> SampleConfig:
    """The sampling protocol: the paper's by default, the fast one with ``fast``; given values win.

    Parameters
    ----------
    sampler : {'ddpm', 'ddim', 'dpmsolver'}, optional
        Default ``'ddpm'`` (``'dpmsolver'`` with ``fast``).
    steps : int, optional
        Sampling steps; default 500 (20 with ``fast``).
    repeats : int, optional
        Samples averaged; default 5 (2 with ``fast``).
    fast : bool
        Start from :data:`FAST_PROTOCOL` instead of :data:`PAPER_PROTOCOL`.
    seed : int
        Seed of the sampler's noise.
    device : str
        'auto', 'cpu', 'cuda' or 'cuda:N'.
    batch_size : int
        Chains (planes x repeats) per network call.

    Returns
    -------
    SampleConfig
    """
    if not isinstance(fast, bool):
        raise TypeError(f"fast (--fast) must be a bool, got {type(fast).__name__}")
    if sampler is not None and sampler not in ("ddpm", "ddim", "dpmsolver"):
        raise ValueError(f"sampler (--sampler) must be ddpm, ddim or dpmsolver, got {sampler!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed (--seed) must be an int, got {type(seed).__name__}")
    protocol = dict(FAST_PROTOCOL if fast else PAPER_PROTOCOL)
    given = {
        "sampler": sampler,
        "steps": _validate_optional_positive_int("steps", "--steps", steps),
        "repeats": _validate_optional_positive_int("repeats", "--repeats", repeats),
    }
    protocol.update({k: v for k, v in given.items() if v is not None})
    batch_size = _validate_optional_positive_int("batch_size", "batch_size", batch_size)
    return SampleConfig.from_dict({**protocol, "seed": int(seed), "device": _validate_device(device),
                                   "batch_size": batch_size})


# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    path: str
    format: str
    spectrum: Spectrum  # 2D or more, a pseudo series' plane already taken
    plane: int | None  # index in a pseudo-ND series
    notes: tuple[str, ...]


def _pseudo_axis(path: str) -> int | None:
    """The axis of a pseudo-ND series (the one whose planes have no ppm), or None."""
    for axis in range(4):
        try:
            planes = mssr_io.iter_planes(path, axis)
            first = next(planes, None)
        except ValueError:  # 2D file, axis beyond ndim, or another axis is the pseudo one
            continue
        if first is not None and "plane_ppm" not in first.meta:
            return axis
    return None


def _read_input(path: str, plane: int | None) -> _Input:
    fmt = mssr_io.detect_format(path)
    try:
        spectrum = mssr_io.read(path, lazy=True)
    except mssr_io.SpectrumFileError as exc:
        axis = _pseudo_axis(path)
        if axis is None:
            raise
        if plane is None:
            raise ValueError(f"{exc}. Enhance one of its spectra: give its index with plane= (--plane)") from None
        return _read_plane(path, fmt, axis, plane)
    if plane is not None:
        raise ValueError(
            f"plane (--plane {plane}) selects a spectrum of a pseudo-ND series, but {path} is a "
            f"{spectrum.ndim}D spectrum of shape {spectrum.shape}; leave plane out"
        )
    return _Input(path, fmt, spectrum, None, ())


def _read_plane(path: str, fmt: str, axis: int, plane: int) -> _Input:
    count = 0
    for spectrum in mssr_io.iter_planes(path, axis):
        if spectrum.meta["plane_index"] == plane:
            note = f"pseudo-{spectrum.ndim + 1}D series: plane {plane} along axis {axis} enhanced"
            return _Input(path, fmt, spectrum, plane, (note,))
        count += 1
    raise ValueError(f"plane (--plane {plane}) is out of range: {path} is a series of {count} spectra (0..{count - 1})")


def _check_header_field(inp: _Input, from_mhz: float) -> None:
    header = inp.spectrum.field_mhz
    if abs(header - from_mhz) > FIELD_TOLERANCE * from_mhz:
        raise ValueError(
            f"from_mhz (--from-mhz {from_mhz:g}) disagrees with {inp.path}, whose header says it was recorded "
            f"at {header:.2f} MHz (1H); give the field the spectrum was recorded at"
        )


def _check_plane(path: str, plane: Spectrum) -> None:
    if min(plane.shape) < 2:
        raise ValueError(f"{path}: plane {plane.meta.get('projection', '')} of shape {plane.shape} has fewer than "
                         "2 points on an axis")
    if not np.any(np.asarray(plane.data)):
        raise ValueError(f"{path}: plane {plane.meta.get('projection', '')} is zero everywhere: nothing to enhance")


def _input_files(path: str, fmt: str) -> tuple[Path, list[Path]]:
    """(root, files): the files holding the data behind ``path``; their digest is recorded, they are never written."""
    given = Path(path)
    if _TEMPLATE_FIELD.search(given.name):
        pattern = re.compile("^" + _TEMPLATE_FIELD.sub(r"\\d+", re.escape(given.name)) + "$")
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
        that was given) or a multi-file NMRPipe series, that of the text
        ``"<sha256>  <relative path>\\n"`` per file, sorted by path in byte order, which is what
        ``(cd DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum) | sha256sum``
        prints for a directory.
    """
    from mssr.provenance import sha256_file

    path = _validate_input(path)
    fmt = fmt or mssr_io.detect_format(path)
    if Path(path).is_file() and fmt != "bruker":
        return sha256_file(path)
    root, files = _input_files(path, fmt)
    names = sorted((p.relative_to(root).as_posix() for p in files), key=lambda name: name.encode())
    listing = "".join(f"{sha256_file(root / name)}  {name}\n" for name in names)
    return hashlib.sha256(listing.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# model and factor
# --------------------------------------------------------------------------------------------


def _load_enhancer(model_dir, device: str) -> Enhancer:
    model_dir = DEFAULT_MODEL_DIR if model_dir is None else model_dir
    if isinstance(model_dir, (bytes, bytearray)) or not isinstance(model_dir, (str, os.PathLike)):
        raise TypeError(f"model_dir (--model) must be a path, got {type(model_dir).__name__}")
    model_dir = Path(model_dir)
    if not model_dir.exists():
        hint = (" (the demo pipeline's model: run `bash scripts/demo.sh` first, or give --model DIR)"
                if model_dir == DEFAULT_MODEL_DIR else "")
        raise FileNotFoundError(f"model_dir (--model): {model_dir} does not exist{hint}")
    try:
        return Enhancer(model_dir, device=device)
    except ValueError as exc:
        raise ValueError(f"model_dir (--model {model_dir}): not a usable mssr model: {exc}") from exc


def _trained_factors(enhancer: Enhancer) -> list[float]:
    return sorted(float(f) for f in enhancer.extra.get("factors") or [])


def _supported_pairs(enhancer: Enhancer) -> str:
    rows = [r for r in table1() if enhancer.supports(r["factor_value"])]
    if not rows:
        return "none of Table 1"
    return ", ".join(f"{r['low_mhz']}->{r['high_mhz']} ({r['label']})" for r in rows)


def _resolve_factor(enhancer: Enhancer, from_mhz: float, to_mhz: float) -> tuple[float, str | None, list[str]]:
    """(factor for the model, exact Table-1 ratio or None, notes)."""
    ratio = to_mhz / from_mhz
    conditioning = enhancer.predictor.conditioning
    try:
        exact: Fraction | None = as_factor(ratio)
    except ValueError:
        exact = None
    if conditioning == "continuous":
        trained = _trained_factors(enhancer)
        notes = []
        if trained and not (trained[0] - 5e-4 <= ratio <= trained[-1] + 5e-4):
            notes.append(f"factor {ratio:.4f} lies outside the trained range {trained[0]:.3f}..{trained[-1]:.3f}: "
                         "the continuous conditioning extrapolates")
            log.warning("%s", notes[-1])
        value = float(exact) if exact is not None else ratio
        return value, (f"{exact.numerator}/{exact.denominator}" if exact is not None else None), notes
    if exact is None or not enhancer.supports(float(exact)):
        what = ("is not one of the 14 Table-1 factors" if exact is None
                else f"is factor {factor_label(exact)}, which this model was not trained for")
        raise ValueError(
            f"--from-mhz {from_mhz:g} --to-mhz {to_mhz:g}: f = {ratio:.4f} {what}; the model in {enhancer.model_dir} "
            f"({conditioning} conditioning) supports the field pairs low->high MHz (factor): "
            f"{_supported_pairs(enhancer)}"
        )
    return float(exact), f"{exact.numerator}/{exact.denominator}", []


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outputs:
    spectrum: Path
    std: Path
    sidecar: Path
    plot: Path | None


def _output_format(path: Path, option: str) -> str:
    suffix = path.suffix.lower()
    if suffix in mssr_io.UCSF_SUFFIXES:
        return "ucsf"
    if suffix in mssr_io.PIPE_SUFFIXES:
        return "pipe"
    raise ValueError(
        f"{option}: {path} has suffix {path.suffix!r}; the format is chosen by it: "
        f"{', '.join(mssr_io.UCSF_SUFFIXES)} (UCSF) or {', '.join(mssr_io.PIPE_SUFFIXES)} (NMRPipe)"
    )


def _default_base(inp: _Input, to_mhz: float) -> tuple[Path, str]:
    """(output path of a 2D result, before any projection label; note) beside the input."""
    given = Path(inp.path)
    tag = f"{'' if inp.plane is None else f'_plane{inp.plane}'}_mssr{to_mhz:g}"
    if inp.format == "bruker":
        procno = given.parent if given.is_file() else given
        if not (procno / "procs").is_file():  # an experiment directory with one pdata/<procno>
            procno = next(p for p in sorted((given / "pdata").iterdir()) if p.is_dir() and p.name.isdigit())
        expno = procno.parent.parent
        note = "Bruker input: the output is NMRPipe (mssr.io cannot write Bruker processed data)"
        return expno.parent / f"{expno.name}_pdata{procno.name}{tag}.ft2", note
    if given.is_dir():  # a directory of NMRPipe planes
        return given.parent / f"{given.name}{tag}.ft2", ""
    stem, suffix = os.path.splitext(given.name)
    if _TEMPLATE_FIELD.search(stem):  # an NMRPipe series template such as ft/test%03d.ft3
        stem = _TEMPLATE_FIELD.sub("", stem).rstrip("_-.") or given.parent.name
    known = mssr_io.UCSF_SUFFIXES if inp.format == "ucsf" else mssr_io.PIPE_SUFFIXES
    if suffix.lower() not in known:
        suffix = ".ucsf" if inp.format == "ucsf" else ".ft2"
    # outputs are 2D: an NMRPipe .ft3/.ft4 name would say otherwise
    if suffix.lower() in (".ft3", ".ft4"):
        suffix = ".ft2"
    return given.parent / f"{stem}{tag}{suffix}", ""


def _plan_outputs(inp: _Input, planes: list[Spectrum], output, to_mhz: float, *, plot: bool,
                  force: bool) -> tuple[list[_Outputs], str, list[str]]:
    notes: list[str] = []
    if output is None:
        base, note = _default_base(inp, to_mhz)
        if note:
            notes.append(note)
        option = "output (default name)"
    else:
        if isinstance(output, (bytes, bytearray)) or not isinstance(output, (str, os.PathLike)):
            raise TypeError(f"output (-o) must be a path, got {type(output).__name__}")
        base = Path(output)
        option = "output (-o)"
        if inp.format == "bruker":
            notes.append(f"Bruker input: written as {_output_format(base, option)} (mssr.io cannot write Bruker)")
    fmt = _output_format(base, option)
    if len(planes) > 1 or inp.spectrum.ndim > 2:
        stem = base.name[: -len(base.suffix)] if base.suffix else base.name
        targets = [base.with_name(f"{stem}_{p.meta['projection']}{base.suffix}") for p in planes]
        notes.append(f"{inp.spectrum.ndim}D input: enhanced its 2D projection(s) "
                     f"{', '.join(p.meta['projection'] for p in planes)} ({planes[0].meta['method']}), one output each")
    else:
        targets = [base]
    outputs = []
    for target in targets:
        stem = target.name[: -len(target.suffix)]
        outputs.append(_Outputs(
            spectrum=target,
            std=target.with_name(f"{stem}_std{target.suffix}"),
            sidecar=target.with_name(target.name + ".json"),
            plot=target.with_name(f"{stem}.png") if plot else None,
        ))
    _check_outputs(inp, outputs, force=force)
    return outputs, fmt, notes


def _check_outputs(inp: _Input, outputs: list[_Outputs], *, force: bool) -> None:
    _, files = _input_files(inp.path, inp.format)
    protected = {os.path.realpath(p) for p in files} | {os.path.realpath(inp.path)}
    planned = [p for o in outputs for p in (o.spectrum, o.std, o.sidecar, o.plot) if p is not None]
    seen = set()
    for path in planned:
        real = os.path.realpath(path)
        if real in protected:
            raise ValueError(f"output (-o): {path} is the input {inp.path} (or one of its files); "
                             "the input is never overwritten: choose another output path")
        if real in seen:
            raise ValueError(f"output (-o): {path} would be written twice; choose another output path")
        seen.add(real)
        if os.path.isdir(path):
            raise ValueError(f"output (-o): {path} is a directory; give a file name")
    existing = [str(p) for p in planned if os.path.exists(p)]
    if existing and not force:
        raise FileExistsError(f"output (-o): {', '.join(existing)} already exist(s); pass force=True (--force) "
                              "to replace them or choose another output path")


# --------------------------------------------------------------------------------------------
# mapping back and writing
# --------------------------------------------------------------------------------------------


def _to_input_grid(values: np.ndarray, sample: Spectrum, plane: Spectrum, to_mhz: float) -> Spectrum:
    """``values`` (S x S, on the sample's axes) resized to the plane's points, axes at ``to_mhz``."""
    on_grid = resize(sample.with_data(values), plane.shape)
    dtype = plane.data.dtype if np.issubdtype(plane.data.dtype, np.floating) else np.float32
    axes = tuple(axis.at_field(to_mhz) for axis in plane.axes)
    return Spectrum(np.asarray(on_grid.data, dtype=dtype), axes, meta=dict(plane.meta))


def _in_input_order(result: Spectrum, transposed: bool) -> Spectrum:
    if not transposed:
        return result
    return Spectrum(np.ascontiguousarray(result.data.T), result.axes[::-1], meta=result.meta)


def _figure_enhanced(x_in: np.ndarray, mean: np.ndarray, std: np.ndarray, plane: Spectrum, *, from_mhz: float,
                     to_mhz: float):
    from matplotlib.figure import Figure

    from mssr.figures import plots

    ppm_y, ppm_x = plane.axes[0].ppm_limits, plane.axes[1].ppm_limits
    nuclei = plane.nuclei
    # One set of levels, from the recorded spectrum (the convention of mssr.figures.plots.plot_spectra).
    levels = plots.contour_levels(np.asarray(x_in))
    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    ax_in, ax_out, ax_std = fig.subplots(1, 3, sharex=True, sharey=True)
    panels = ((ax_in, x_in, f"input, {from_mhz:g} MHz"), (ax_out, mean, f"MSSR estimate, {to_mhz:g} MHz"))
    for ax, data, title in panels:
        plots._draw_contours(ax, np.asarray(data), levels, ppm_x, ppm_y)
        plots._set_nmr_axes(ax, ppm_x, ppm_y, nuclei, label_y=ax is ax_in)
        ax.set_title(title)
    x_edges = plots._ppm_edges(ppm_x, std.shape[1])
    y_edges = plots._ppm_edges(ppm_y, std.shape[0])
    image = ax_std.imshow(np.asarray(std, dtype=float), origin="upper", aspect="auto", cmap="magma", vmin=0.0,
                          extent=(x_edges[0], x_edges[1], y_edges[1], y_edges[0]), interpolation="nearest")
    plots._set_nmr_axes(ax_std, ppm_x, ppm_y, nuclei, label_y=False)
    ax_std.set_title("uncertainty (std of repeats)")
    fig.colorbar(image, ax=ax_std, shrink=0.85, label="intensity (input units)")
    return fig


def _write_sidecar(path: Path, record: dict) -> Path:
    return write_text(path, json.dumps(record, indent=2, allow_nan=False) + "\n")


def _model_record(enhancer: Enhancer) -> dict:
    from mssr.model.network import CONFIG_FILE
    from mssr.provenance import sha256_file

    config_path = enhancer.model_dir / CONFIG_FILE
    document = json.loads(config_path.read_text(encoding="utf-8"))
    extra = enhancer.extra
    return {
        "dir": str(enhancer.model_dir.resolve()),
        "config_sha256": sha256_file(config_path),
        "weights_sha256": document["weights"]["sha256"],
        "mlflow_run_id": extra.get("mlflow_run_id"),
        "tracking_uri": extra.get("tracking_uri"),
        "git_commit": extra.get("git_commit"),
        "kind": extra.get("kind"),
        "conditioning": enhancer.predictor.conditioning,
        "sample_size": enhancer.size,
        "trained_factors": [factor_label(f) for f in _trained_factors(enhancer)],
        "timesteps": enhancer.diffusion.timesteps,
    }


def _plane_record(plane: Spectrum, transposed: bool) -> dict:
    return {
        "projection": plane.meta.get("projection"),
        "projection_method": plane.meta.get("method"),
        "axes": [a.to_dict() for a in (plane.axes[::-1] if transposed else plane.axes)],
    }


def _processing_record(plane: Spectrum, sample: Spectrum, cfg: SampleConfig, to_mhz: float, seconds: float) -> dict:
    shape = "x".join(map(str, plane.shape))
    size = sample.shape[0]
    return {
        "model_pixels": list(sample.shape),
        "scale": float(sample.meta["scale"]),
        "steps": [
            f"resized {shape} -> {size}x{size} px (anti-aliased, ppm window kept) and divided by "
            "scale = max|resized|",
            f"{cfg.sampler}, {cfg.steps} steps x {cfg.repeats} repeats, seed {cfg.seed}: mean = estimate, "
            "std (ddof=0) = uncertainty",
            f"mean and std x scale, resized back to {shape} points (same ppm limits)",
            f"spectrometer frequencies set to the {to_mhz:g} MHz magnet (Axis.at_field): ppm unchanged",
        ],
        "seconds": seconds,
    }


def _write_plane(inp: _Input, plane: Spectrum, sample: Spectrum, mean: np.ndarray, std: np.ndarray, out: _Outputs,
                 out_format: str, *, transposed: bool, from_mhz: float, to_mhz: float, record: dict) -> None:
    """Map one plane's mean and std (S x S, normalized) back to its grid and scale; write all its files."""
    scale = np.float32(sample.meta["scale"])
    estimate = _to_input_grid(mean * scale, sample, plane, to_mhz)
    spread = _to_input_grid(std * scale, sample, plane, to_mhz)
    mssr_io.write(_in_input_order(estimate, transposed), out.spectrum, format=out_format)
    mssr_io.write(_in_input_order(spread, transposed), out.std, format=out_format)
    if out.plot is not None:
        from mssr.figures import plots

        fig = _figure_enhanced(np.asarray(plane.data), estimate.data, spread.data, plane, from_mhz=from_mhz,
                               to_mhz=to_mhz)
        plots._save(fig, out.plot, 150)
    outputs = {"spectrum": str(out.spectrum), "std": str(out.std),
               "plot": str(out.plot) if out.plot is not None else None}
    _write_sidecar(out.sidecar, {**record, "outputs": outputs})
    log.info("%s: wrote %s, %s, %s", inp.path, out.spectrum, out.std, out.sidecar)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def enhance(
    input,
    *,
    from_mhz: float,
    to_mhz: float,
    model_dir=None,
    output=None,
    sampler=None,
    steps: int | None = None,
    repeats: int | None = None,
    fast: bool = False,
    device: str = "auto",
    seed: int = 0,
    plane: int | None = None,
    projection: Method = "signed_max",
    plot: bool = False,
    force: bool = False,
    batch_size: int = 64,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Estimate the high-field spectrum of a low-field spectrum file and write it beside the input.

    See the module notes for every step and formula.

    Parameters
    ----------
    input : str or os.PathLike
        UCSF file, NMRPipe file (or multi-file series template/directory), or Bruker processed
        data (procno directory, its ``2rr``, or an experiment with one ``pdata/<procno>``); 2D to
        4D. Never written.
    from_mhz : float
        1H frequency the spectrum was recorded at, MHz; must agree with the file's header
        within 1 % (:data:`FIELD_TOLERANCE`).
    to_mhz : float
        1H frequency to estimate, MHz, > ``from_mhz``. The factor ``to_mhz / from_mhz`` must be
        one the model was trained for (a Table-1 factor for 'class' models, the one factor of a
        baseline); a 'continuous' model takes any factor > 1.
    model_dir : path, optional
        Model directory (``model.safetensors`` + ``config.json``); default
        :data:`DEFAULT_MODEL_DIR`.
    output : path, optional
        Output file; its suffix picks the format (``.ucsf``: UCSF; ``.ft2``, ``.ft``, ``.pipe``, ...:
        NMRPipe). Default: beside the input, ``<stem>_mssr<to_mhz><ext>`` in the input's format
        (NMRPipe ``.ft2`` for Bruker input). For 3D/4D input one file per projection,
        ``<stem>_<projection><ext>`` (e.g. ``_15N-1H``).
    sampler, steps, repeats, fast, seed, device, batch_size
        Sampling protocol, see :func:`sample_config` (default: the paper's ddpm, 500 x 5).
    plane : int, optional
        Index of the spectrum to enhance in a pseudo-ND series (required for such files,
        refused for others).
    projection : {'sum', 'max', 'signed_max'}
        How 3D/4D spectra are projected (as the pipeline's ``data.projection``).
    plot : bool
        Also write ``<stem>.png``: input, estimate and uncertainty in NMR orientation.
    force : bool
        Replace existing output files (the input is never replaced).
    threads : int, optional
        CPU threads of torch, set for the whole process (default: torch's own, one per core).
        Use fewer on a shared machine: oversubscribed threads slow sampling down many times.
    progress : bool
        Show a progress bar while sampling.

    Returns
    -------
    dict
        ``input``, ``format``, ``output_format``, ``outputs``, ``std``, ``sidecars``, ``plots``
        (lists, one entry per plane), ``projections``, ``factor`` (3-decimal label), ``factor_exact``,
        ``from_mhz``, ``to_mhz``, ``sampler``, ``steps``, ``repeats``, ``seed``, ``device``,
        ``model``, ``model_pixels``, ``seconds`` (sampling wall time), ``notes``.

    Raises
    ------
    FileNotFoundError
        ``input`` or ``model_dir`` does not exist.
    FileExistsError
        An output exists and ``force`` is False.
    ValueError
        Unreadable, 1D, non-finite or all-zero input; a pseudo series without ``plane``;
        ``from_mhz`` contradicting the header; a factor the model does not support; an output
        path equal to the input or with an unknown suffix; an unusable model directory. The
        message names the file or the option.
    """
    from mssr import __version__
    from mssr.provenance import git_commit, package_versions

    path = _validate_input(input)
    from_mhz, to_mhz = _validate_fields(from_mhz, to_mhz)
    plane = _validate_plane(plane)
    projection = _validate_projection(projection)
    cfg = sample_config(sampler=sampler, steps=steps, repeats=repeats, fast=fast, seed=seed, device=device,
                        batch_size=batch_size)
    for name, flag in (("plot", plot), ("force", force), ("progress", progress)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    set_threads(_validate_optional_positive_int("threads", "--threads", threads))

    inp = _read_input(path, plane)
    _check_header_field(inp, from_mhz)
    enhancer = _load_enhancer(model_dir, cfg.device)
    factor, factor_exact, notes = _resolve_factor(enhancer, from_mhz, to_mhz)
    try:
        enhancer.diffusion.schedule_timesteps(cfg.sampler, cfg.steps)
    except ValueError as exc:
        raise ValueError(f"sampler/steps (--sampler {cfg.sampler} --steps {cfg.steps}): {exc}") from None

    planes = project(inp.spectrum, method=projection)
    for p in planes:
        _check_plane(path, p)
    # a 2D input whose direct axis comes first is written back in its own order
    transposed = inp.spectrum.ndim == 2 and planes[0].axes[0] != inp.spectrum.axes[0]
    outputs, out_format, output_notes = _plan_outputs(inp, planes, output, to_mhz, plot=plot, force=force)
    notes = list(inp.notes) + notes + output_notes
    for note in notes:
        log.info("%s", note)

    input_record = {
        "path": str(Path(path).resolve()),
        "sha256": input_sha256(path, inp.format),
        "format": inp.format,
        "shape": list(inp.spectrum.shape),
        "nuclei": list(inp.spectrum.nuclei),
        "header_field_mhz": inp.spectrum.field_mhz,
        "plane": inp.plane,
    }
    samples = [preprocess(p, size=enhancer.size) for p in planes]
    x_lr = np.stack([s.data for s in samples]).astype(np.float32)
    log.info("%s: %d plane(s) of %s px -> %d x %d px, factor %.4f (%g -> %g MHz), %s %d steps x %d repeats on %s",
             path, len(planes), ", ".join("x".join(map(str, p.shape)) for p in planes), enhancer.size,
             enhancer.size, factor, from_mhz, to_mhz, cfg.sampler, cfg.steps, cfg.repeats, enhancer.device)
    start = time.perf_counter()
    mean, std = enhancer.sample(x_lr, factor, cfg, progress=progress)
    seconds = time.perf_counter() - start
    log.info("sampled in %.1f s", seconds)

    provenance = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "mssr_version": __version__,
        "git_commit": git_commit(),
        "packages": package_versions(("mssr", "torch", "diffusers", "numpy", "nmrglue")),
        "model": _model_record(enhancer),
        "factor": {"from_mhz": from_mhz, "to_mhz": to_mhz, "value": factor, "exact": factor_exact,
                   "label": factor_label(factor)},
        "protocol": {**asdict(cfg), "device": str(enhancer.device)},
        "seed": cfg.seed,
        "notes": notes,
    }
    for i, (p, sample, out) in enumerate(zip(planes, samples, outputs)):
        _write_plane(inp, p, sample, mean[i], std[i], out, out_format, transposed=transposed, from_mhz=from_mhz,
                     to_mhz=to_mhz, record={**provenance, "input": {**input_record, **_plane_record(p, transposed)},
                                            "processing": _processing_record(p, sample, cfg, to_mhz, seconds)})

    return {
        "input": path,
        "format": inp.format,
        "output_format": out_format,
        "outputs": [str(o.spectrum) for o in outputs],
        "std": [str(o.std) for o in outputs],
        "sidecars": [str(o.sidecar) for o in outputs],
        "plots": [str(o.plot) for o in outputs if o.plot is not None],
        "projections": [p.meta.get("projection") for p in planes],
        "factor": factor_label(factor),
        "factor_exact": factor_exact,
        "from_mhz": from_mhz,
        "to_mhz": to_mhz,
        "sampler": cfg.sampler,
        "steps": cfg.steps,
        "repeats": cfg.repeats,
        "seed": cfg.seed,
        "device": str(enhancer.device),
        "model": str(enhancer.model_dir),
        "model_pixels": enhancer.size,
        "seconds": round(seconds, 3),
        "notes": notes,
    }


__all__ = ["DEFAULT_MODEL_DIR", "FAST_PROTOCOL", "FIELD_TOLERANCE", "PAPER_PROTOCOL", "enhance", "input_sha256",
           "sample_config"]
