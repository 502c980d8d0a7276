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
7. Files written as one set (:mod:`mssr.enhance.outputs`): the estimate in the input's format (Bruker data, which
   :mod:`mssr.io` cannot write, become NMRPipe), the uncertainty beside it (``<stem>_std<ext>``),
   a sidecar ``<output>.json`` that says what was done (input and its SHA-256, model and its
   MLflow run, factor, protocol, seed, date, versions; neither UCSF nor NMRPipe headers have room
   for this), and with ``plot`` a PNG of input, estimate and uncertainty. They appear together
   or not at all: SIGINT or SIGTERM (Ctrl-C, ``kill``, SLURM) at any point leaves the previous
   outputs untouched or the new ones complete, and no temporary file.

Steps 3 to 5 are :func:`estimate_planes`: planes in, (mean, std) on the input's grid out.

The uncertainty is resized with the same non-negative linear weights as the mean; by the
triangle inequality that is an upper bound of the standard deviation of the resized repeats.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mssr import io as mssr_io
from mssr.atomic import interruptible
from mssr.enhance.inputs import (FIELD_TOLERANCE, InputSpectrum, check_header_field, check_plane, input_sha256,
                                 planes_of, read_input, untrained_warnings)
from mssr.enhance.models import (DEFAULT_MODEL_DIR, check_steps, load_enhancer, model_dir_of, model_record,
                                 native_range_notes, native_sampling, resolve_factor)
from mssr.enhance.options import (FAST_PROTOCOL, PAPER_PROTOCOL, resolve_experiment, sample_config, validate_count,
                                  validate_experiment_option, validate_fields, validate_flags, validate_path_option,
                                  validate_plane, validate_projection)
from mssr.enhance.outputs import SIDECAR_FORMAT, SIDECAR_VERSION, Outputs, output_set, plan_outputs
from mssr.factors import factor_label
from mssr.model.sample import SampleConfig
from mssr.spectrum import Spectrum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlaneEstimate:
    """One plane's result on the plane's own grid (direct axis last), axes at the target field."""

    estimate: Spectrum
    std: Spectrum
    processing: dict


# --------------------------------------------------------------------------------------------
# the model step: planes in, (mean, std) on their grid out
# --------------------------------------------------------------------------------------------


def _to_input_grid(values: np.ndarray, sample: Spectrum, plane: Spectrum, to_mhz: float) -> Spectrum:
    """``values`` (S x S, on the sample's axes) resized to the plane's points, axes at ``to_mhz``."""
    from mssr.data.preprocess import resize

    on_grid = resize(sample.with_data(values), plane.shape)
    dtype = plane.data.dtype if np.issubdtype(plane.data.dtype, np.floating) else np.float32
    axes = tuple(axis.at_field(to_mhz) for axis in plane.axes)
    return Spectrum(np.asarray(on_grid.data, dtype=dtype), axes, meta=dict(plane.meta))


def estimate_planes(enhancer, planes: list[Spectrum], factor: float, cfg: SampleConfig, *, to_mhz: float,
                    progress: bool = False) -> list[PlaneEstimate]:
    """The model step of ``enhance``: 2D planes in, their (mean, std) estimates on the planes' own grids out.

    Each plane is resized to the model's S x S and divided by ``scale = max |resized|``
    (:func:`mssr.data.preprocess.preprocess`, as the training data); the model samples
    ``cfg.repeats`` estimates (:meth:`mssr.model.sample.Enhancer.sample`, chunked to
    ``cfg.batch_size`` chains); mean and std (ddof = 0) times ``scale`` are resized back to the
    plane's points, the axes set to ``to_mhz``.

    Parameters
    ----------
    enhancer : mssr.model.sample.Enhancer
    planes : list of Spectrum
        2D planes, direct axis last.
    factor : float
        Upscaling factor given to the model.
    cfg : SampleConfig
    to_mhz : float
        1H field of the estimate, MHz (axes' spectrometer frequencies).
    progress : bool
        Progress bar while sampling.

    Returns
    -------
    list of PlaneEstimate
        In the order of ``planes``; ``processing`` holds ``model_pixels``, ``scale``, the steps
        in words and ``seconds`` (sampling wall time of all planes).
    """
    from mssr.data.preprocess import preprocess

    samples = [preprocess(p, size=enhancer.size) for p in planes]
    x_lr = np.stack([s.data for s in samples]).astype(np.float32)
    start = time.perf_counter()
    mean, std = enhancer.sample(x_lr, factor, cfg, progress=progress)
    seconds = time.perf_counter() - start
    log.info("sampled %d plane(s) in %.1f s", len(planes), seconds)
    results = []
    for i, (plane, sample) in enumerate(zip(planes, samples)):
        scale = np.float32(sample.meta["scale"])
        results.append(PlaneEstimate(
            estimate=_to_input_grid(mean[i] * scale, sample, plane, to_mhz),
            std=_to_input_grid(std[i] * scale, sample, plane, to_mhz),
            processing=_processing_record(plane, sample, cfg, to_mhz, seconds),
        ))
    return results


def estimate_planes_native(enhancer, planes: list[Spectrum], sampling, *, to_mhz: float, experiment: str = "fixed",
                           experiment_source: str = "", progress: bool = False) -> list[PlaneEstimate]:
    """The model step for a native-resolution model: each plane on its own working grid, tiled.

    See :func:`mssr.enhance.native.enhance_plane`: working grid of ``to_mhz`` (ppm kept, >= 3
    points per FWHM of the narrowest expected line), the network's unit, the whole plane sampled
    in overlapping tiles, mean and SD brought back onto the plane's points; axes set to
    ``to_mhz``. ``experiment`` is the linewidth rule of the anchor's kernel
    (:mod:`mssr.data.linewidths`), ``experiment_source`` where it came from (for the record).
    """
    from mssr.data.grid import working_axes
    from mssr.enhance.native import enhance_plane

    results = []
    for plane in planes:
        start = time.perf_counter()
        info: dict = {}
        mean, std = enhance_plane(np.asarray(plane.data), plane.axes, target_mhz=to_mhz, enhancer=enhancer,
                                  sampling=sampling, experiment=experiment, progress=progress, info=info)
        seconds = time.perf_counter() - start
        dtype = plane.data.dtype if np.issubdtype(plane.data.dtype, np.floating) else np.float32
        axes = tuple(axis.at_field(to_mhz) for axis in plane.axes)
        work = "x".join(str(a.size) for a in working_axes(plane.axes, target_mhz=to_mhz))
        shape = "x".join(map(str, plane.shape))
        processing = {
            "mode": "native",
            "working_grid": [a.size for a in working_axes(plane.axes, target_mhz=to_mhz)],
            "experiment": {"rule": experiment, "from": experiment_source},
            "steps": [
                f"{shape} points -> working grid {work} (band-limited DCT resampling, ppm window kept)",
                "divided by network_scale = headroom x max|x|",
                *([f"anchor: Wiener deconvolution by a Lorentzian of {info['anchor_fwhm_px'][0]:.4g} x "
                   f"{info['anchor_fwhm_px'][1]:.4g} working points FWHM, estimated from the plane's own lines "
                   f"under the '{experiment}' linewidth rule ({experiment_source}; mssr.data.linewidths, "
                   f"mssr.model.anchor), regularized {info['anchor_balance']:g} as an estimate "
                   f"(mssr.model.anchor.estimate_balance) and {enhancer.extra['native']['anchor']['balance']:g} "
                   "as the network's input"] if "anchor_fwhm_px" in info else []),
                *(["network weight 0 at this field ratio (NativeSampling.network_weight): the anchor alone is "
                   "the estimate, nothing sampled, std = 0"] if info.get("network_weight") == 0 else [
                    f"{sampling.sampler}, {sampling.steps} steps from t={sampling.start_step} x {sampling.repeats} "
                    f"repeats, seed {sampling.seed}, tiles {sampling.tile} / overlap {sampling.overlap}: "
                    "mean = estimate, std (ddof=0) = uncertainty",
                    *(["data consistency at every step: x0 + W (y - H x0), W the anchor's Wiener filter, H the "
                       "broadening (mssr.model.anchor.Consistency)"]
                      if "anchor_fwhm_px" in info and sampling.consistency else []),
                    *([f"network's estimate weighted {info['network_weight']:g} against the anchor's at this "
                       "field ratio: anchor + w (mean - anchor), std x w (NativeSampling.network_weight)"]
                      if info.get("network_weight", 1.0) != 1.0 else []),
                ]),
                f"mean and std x network_scale, back onto the {shape} points",
                f"spectrometer frequencies set to the {to_mhz:g} MHz magnet (Axis.at_field): ppm unchanged",
            ],
            "seconds": seconds,
        }
        results.append(PlaneEstimate(estimate=Spectrum(mean.astype(dtype), axes, meta=dict(plane.meta)),
                                     std=Spectrum(std.astype(dtype), axes, meta=dict(plane.meta)),
                                     processing=processing))
        log.info("enhanced a %s plane on its %s working grid in %.1f s", shape, work, seconds)
    return results


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


# --------------------------------------------------------------------------------------------
# records and writing
# --------------------------------------------------------------------------------------------


def _in_input_order(result: Spectrum, transposed: bool) -> Spectrum:
    if not transposed:
        return result
    return Spectrum(np.ascontiguousarray(result.data.T), result.axes[::-1], meta=result.meta)


def _input_record(inp: InputSpectrum) -> dict:
    return {
        "path": str(Path(inp.path).resolve()),
        "sha256": input_sha256(inp.path, inp.format),
        "format": inp.format,
        "shape": list(inp.spectrum.shape),
        "nuclei": list(inp.spectrum.nuclei),
        "header_field_mhz": inp.spectrum.field_mhz,
        "plane": inp.plane,
    }


def _plane_record(plane: Spectrum, name: str, transposed: bool) -> dict:
    return {
        "projection": name,
        "projection_method": plane.meta.get("method"),
        "axes": [a.to_dict() for a in (plane.axes[::-1] if transposed else plane.axes)],
    }


def _run_record(enhancer, cfg: SampleConfig, factor: float, factor_exact, from_mhz: float, to_mhz: float,
                notes: list[str], warnings: list[str]) -> dict:
    from mssr import __version__
    from mssr.provenance import git_commit, package_versions

    return {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "mssr_version": __version__,
        "git_commit": git_commit(),
        "packages": package_versions(("mssr", "torch", "diffusers", "numpy", "nmrglue")),
        "model": model_record(enhancer),
        "factor": {"from_mhz": from_mhz, "to_mhz": to_mhz, "value": factor, "exact": factor_exact,
                   "label": factor_label(factor)},
        "protocol": {**asdict(cfg), "device": str(enhancer.device)},
        "seed": cfg.seed,
        "notes": notes,
        "warnings": warnings,
    }


def _write_set(outputs: list[Outputs], results: list[PlaneEstimate], planes: list[Spectrum], records: list[dict],
               out_format: str, *, transposed: bool, from_mhz: float, to_mhz: float) -> None:
    """Every plane's files as one :func:`~mssr.enhance.outputs.output_set`: all or nothing, sidecars last."""
    with output_set(outputs) as files:
        for out, result, plane, record in zip(outputs, results, planes, records):
            mssr_io.write(_in_input_order(result.estimate, transposed), files.stage(out.spectrum), format=out_format)
            mssr_io.write(_in_input_order(result.std, transposed), files.stage(out.std), format=out_format)
            if out.plot is not None:
                from mssr.figures.enhance import plot_enhanced

                plot_enhanced(np.asarray(plane.data), result.estimate.data, result.std.data, plane,
                              files.stage(out.plot), from_mhz=from_mhz, to_mhz=to_mhz)
            outputs_record = {"spectrum": str(out.spectrum), "std": str(out.std),
                              "plot": str(out.plot) if out.plot is not None else None}
            text = json.dumps({**record, "outputs": outputs_record}, indent=2, allow_nan=False) + "\n"
            files.stage(out.sidecar).write_text(text, encoding="utf-8")


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
    paper: bool = False,
    device: str = "auto",
    seed: int = 0,
    plane: int | None = None,
    projection="signed_max",
    experiment: str = "auto",
    network_weight: float | None = None,
    plot: bool = False,
    force: bool = False,
    batch_size: int = 64,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Estimate the high-field spectrum of a low-field spectrum file and write it beside the input.

    See the module notes for every step and formula. Every option, the input and every output
    path are checked before the model is loaded (and before torch is imported).

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
        Model directory (``model.safetensors`` + ``config.json``, every key of a training run);
        default :data:`DEFAULT_MODEL_DIR`.
    output : path, optional
        Output file; its suffix picks the format (``.ucsf``: UCSF; ``.ft2``, ``.ft``, ``.pipe``, ...:
        NMRPipe). Default: beside the input, ``<stem>_mssr<to_mhz><ext>`` in the input's format
        (NMRPipe ``.ft2`` for Bruker input). For 3D/4D input one file per projection,
        ``<stem>_<projection><ext>`` (e.g. ``_15N-1H``; ``_13C-1H_axes1-3`` where two planes share nuclei).
    sampler, steps, repeats, fast, seed, device, batch_size
        Sampling protocol, see :func:`mssr.enhance.options.sample_config` (default: the paper's
        ddpm, 500 x 5). Memory is bounded by ``batch_size`` chains whatever ``repeats``.
    plane : int, optional
        Index of the spectrum to enhance in a pseudo-ND series (required for such files,
        refused for others).
    projection : {'sum', 'max', 'signed_max'}
        How 3D/4D spectra are projected (as the pipeline's ``data.projection``).
    experiment : {'auto', 'fixed', 'hsqc', 'trosy'}
        How the lines change between the fields, for a native model's anchor
        (:mod:`mssr.data.linewidths`): ``hsqc`` (15N lines grow in Hz with the field, CSA),
        ``trosy`` (15N lines narrow in Hz up to about 1 GHz), ``fixed`` (every width fixed in Hz).
        ``auto``: the file's pulse program where it names one (Bruker), else ``fixed``. Ignored by
        paper-mode models.
    network_weight : float, optional
        A native anchored model's weight of its network's correction of the anchor at every field
        ratio, in [0, 1] (:attr:`mssr.enhance.native.NativeSampling.network_weight`; 0: the anchor
        alone). Default: the model's own (the shipped model's is measured by field ratio, README).
    plot : bool
        Also write ``<stem>.png``: input, estimate and uncertainty in NMR orientation.
    force : bool
        Replace existing output files (the input is never replaced); files of the earlier set
        that this run does not write (its PNG) are removed.
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
        ``model``, ``model_pixels``, ``seconds`` (sampling wall time), ``notes``, ``warnings``
        (planes unlike the training data, also in the sidecars).

    Raises
    ------
    FileNotFoundError
        ``input`` or ``model_dir`` does not exist.
    FileExistsError
        An output exists and ``force`` is False.
    ValueError
        Unreadable, 1D, non-finite or all-zero input; a pseudo series without ``plane``;
        ``from_mhz`` contradicting the header; a factor the model does not support; an output
        path equal to the input, with an unknown suffix or in a folder that cannot be written;
        an incomplete or inconsistent model directory; a model whose output is not finite. The
        message names the file or the option.
    mssr.atomic.Interrupted
        SIGINT or SIGTERM arrived (main thread); nothing of this run is left behind.
    """
    with interruptible():
        return _enhance(input, from_mhz=from_mhz, to_mhz=to_mhz, model_dir=model_dir, output=output,
                        cfg=sample_config(sampler=sampler, steps=steps, repeats=repeats, fast=fast, seed=seed,
                                          device=device, batch_size=batch_size),
                        given=_given_protocol(sampler, steps, repeats, paper=paper, network_weight=network_weight),
                        plane=plane, projection=projection, experiment=experiment, plot=plot, force=force,
                        threads=threads, progress=progress)


def _given_protocol(sampler, steps, repeats, *, paper: bool, network_weight=None) -> dict:
    """What the user asked of the sampler: ``paper`` sets the paper's protocol (pure noise), the options override."""
    from mssr.enhance.options import validate_flags, validate_network_weight_option

    validate_flags(paper=paper)
    given = {"sampler": "ddpm", "steps": 500, "repeats": 5, "start_step": None} if paper else {}
    given.update({k: v for k, v in (("sampler", sampler), ("steps", steps), ("repeats", repeats),
                                    ("network_weight", validate_network_weight_option(network_weight)))
                  if v is not None})
    return given


def _enhance(input, *, from_mhz, to_mhz, model_dir, output, cfg: SampleConfig, given: dict, plane, projection,
             experiment, plot, force, threads, progress) -> dict:
    from mssr.config import set_threads

    path = validate_path_option("input", "INPUT", input)
    if path is None:
        raise TypeError("input must be a str or os.PathLike, got NoneType")
    from_mhz, to_mhz = validate_fields(from_mhz, to_mhz)
    plane = validate_plane(plane)
    projection = validate_projection(projection)
    experiment = validate_experiment_option(experiment)
    validate_flags(plot=plot, force=force, progress=progress)
    threads = validate_count("threads", "--threads", threads)
    model_path = model_dir_of(model_dir)

    inp = read_input(path, plane)
    check_header_field(inp, from_mhz)
    planes, names = planes_of(inp, projection)
    for p, name in zip(planes, names):
        check_plane(path, p, name)
    # a 2D input whose direct axis comes first is written back in its own order
    transposed = inp.spectrum.ndim == 2 and planes[0].axes[0] != inp.spectrum.axes[0]
    outputs, out_format, output_notes = plan_outputs(inp, names, output, to_mhz, plot=plot, force=force)
    warnings = untrained_warnings(planes, names)
    for warning in warnings:
        log.warning("%s", warning)

    set_threads(threads)
    enhancer = load_enhancer(model_path, cfg.device)
    factor, factor_exact, factor_notes = resolve_factor(enhancer, from_mhz, to_mhz)
    sampling = native_sampling(enhancer, cfg, given)
    if sampling is None and "network_weight" in given:
        raise ValueError(f"--network-weight: the model in {model_path} is not a native anchored model "
                         "(it has no anchor to weight its network against)")
    if sampling is not None:
        # the model's validated settings, updated by what the user asked for
        cfg = SampleConfig.from_dict({**asdict(cfg), "sampler": sampling.sampler, "steps": sampling.steps,
                                      "repeats": sampling.repeats, "start_step": sampling.start_step})
        factor_notes = factor_notes + native_range_notes(enhancer, from_mhz, to_mhz)
    check_steps(enhancer, cfg.sampler, cfg.steps)
    notes = list(inp.notes) + factor_notes + output_notes
    for note in notes:
        log.info("%s", note)
    log.info("%s: %d plane(s) of %s px -> %d x %d px, factor %.4f (%g -> %g MHz), %s %d steps x %d repeats on %s",
             path, len(planes), ", ".join("x".join(map(str, p.shape)) for p in planes), enhancer.size,
             enhancer.size, factor, from_mhz, to_mhz, cfg.sampler, cfg.steps, cfg.repeats, enhancer.device)

    if sampling is not None:
        rule, rule_source = resolve_experiment(experiment, inp.spectrum.meta)
        log.info("linewidth rule of the anchor: %s (%s)", rule, rule_source)
        try:
            results = estimate_planes_native(enhancer, planes, sampling, to_mhz=to_mhz, experiment=rule,
                                             experiment_source=rule_source, progress=progress)
        except ValueError as exc:  # e.g. a plane without a line the anchor could measure
            raise ValueError(f"{path}: {exc}") from None
    else:
        results = estimate_planes(enhancer, planes, factor, cfg, to_mhz=to_mhz, progress=progress)
    run = _run_record(enhancer, cfg, factor, factor_exact, from_mhz, to_mhz, notes, warnings)
    input_record = _input_record(inp)
    records = [{**run, "input": {**input_record, **_plane_record(p, name, transposed)}, "processing": r.processing}
               for p, name, r in zip(planes, names, results)]
    _write_set(outputs, results, planes, records, out_format, transposed=transposed, from_mhz=from_mhz,
               to_mhz=to_mhz)
    log.info("%s: wrote %s", path, ", ".join(str(p) for o in outputs for p in o.files()))
    return {
        "input": path,
        "format": inp.format,
        "output_format": out_format,
        "outputs": [str(o.spectrum) for o in outputs],
        "std": [str(o.std) for o in outputs],
        "sidecars": [str(o.sidecar) for o in outputs],
        "plots": [str(o.plot) for o in outputs if o.plot is not None],
        "projections": names,
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
        "seconds": round(results[0].processing["seconds"], 3) if results else 0.0,
        "notes": notes,
        "warnings": warnings,
    }


__all__ = ["DEFAULT_MODEL_DIR", "FAST_PROTOCOL", "FIELD_TOLERANCE", "PAPER_PROTOCOL", "PlaneEstimate", "enhance",
           "estimate_planes", "input_sha256", "sample_config"]
