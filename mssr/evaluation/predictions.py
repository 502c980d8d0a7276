"""Prediction files, and the non-learned methods applied to test-set files.

A prediction file is a sample set (:mod:`mssr.data.store`): ``x`` holds the prediction (N, S, S)
in the normalized scale, the extra array ``std`` the per-pixel standard deviation across sampler
repeats (zeros for deterministic methods), and ``attrs`` names the method, factor and test set with
the settings and wall time that produced it. This module imports no deep-learning code, so the
classical methods start fast.

The classical methods (:data:`CLASSICAL_METHODS`) get what the low-field model of each spectrum
is known to be (:func:`low_field_kernels`): the blur kernel for the deconvolutions, the added
linewidth per axis for Lorentz-to-Gauss and the peak fit. Their parameters are chosen on
validation pairs built like the test inputs (:func:`build_validation_pairs`,
:func:`choose_parameters`) and stored in a JSON file that :func:`classical_files` reads.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mssr import degrade
from mssr.atomic import write_text
from mssr.data import synthetic
from mssr.data.store import write_samples
from mssr.evaluation import classical
from mssr.evaluation.testsets import build_testset, read_testset
from mssr.factors import as_factor, factor_label
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis

log = logging.getLogger(__name__)

CLASSICAL_METHODS = ("identity", "wiener", "richardson_lucy", "lorentz_gauss", "peak_fit")
"""The non-learned methods the pipeline evaluates."""

PARAMETER_GRID: dict[str, dict[str, list]] = {
    # noise-to-signal weight of the Laplacian regularizer
    "wiener": {"balance": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]},
    "richardson_lucy": {"iterations": [3, 5, 10, 20, 40]},
    # g2 = g2_ratio x g1 per axis (NMR_NOTES: g2 of 1.25-4 x g1); the window's largest gain is
    # exp(1 / (1.44 g2_ratio^2)): 16 at 0.5, 2 at 1, 1.36 at 1.5
    "lorentz_gauss": {"g2_ratio": [0.5, 0.75, 1.0, 1.5, 2.0, 3.0]},
    # the fitted shape is the kernel's (Lorentzian under the physical models, Gaussian under the paper's)
    "peak_fit": {"alpha": [4.0, 8.0], "keep_residual": [False, True]},
}
"""Values scored on the validation pairs; the lowest mean MSE wins."""

DEFAULT_PARAMETERS: dict[str, dict] = {
    "identity": {},
    "wiener": {"balance": 0.01},
    "richardson_lucy": {"iterations": 30},
    "lorentz_gauss": {"g2_ratio": 1.5},
    "peak_fit": {"alpha": 5.0, "keep_residual": False},
}
"""Used only when no parameter file is given (tests, ad-hoc calls); the pipeline always chooses."""

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_INFO_KEYS = ("high_mhz", "linewidths", "sigma_high", "lineshape")
_NUCLEUS_ATOM = {"1H": "H", "15N": "N", "13C": "CA"}


def write_prediction(path, mean: np.ndarray, std: np.ndarray, headers, **attrs) -> Path:
    """Write a prediction file atomically (``attrs``: method, factor, testset, settings)."""
    return write_samples(path, np.asarray(mean, np.float32), headers, attrs=attrs,
                         extra={"std": np.asarray(std, np.float32)})


# ---------------------------------------------------------------------------------------------
# what each spectrum's low-field model is


@dataclass(frozen=True)
class LowFieldKernel:
    """The low-field model of one spectrum, as the classical methods use it.

    Attributes
    ----------
    lineshape : {'lorentzian', 'gaussian'}
        Shape of the broadening (Lorentzian: widths add; Gaussian: they add in quadrature).
    added_fwhm_px : (float, float)
        FWHM the broadening added per axis (rows, cols), px (>= 0).
    psf : ndarray, shape (h, w)
        The blur kernel, odd sides no larger than the spectrum, summing to 1.
    source : str
        Where the numbers come from (recorded in the prediction files).
    """

    lineshape: str
    added_fwhm_px: tuple[float, float]
    psf: np.ndarray
    source: str


def _cut(full_shape, shape) -> tuple[int, int]:
    return tuple(min(k, n if n % 2 else n - 1) for k, n in zip(full_shape, shape))


def deconvolution_kernel(factor: float, shape, degrade_cfg: dict, *, header: dict | None = None) -> np.ndarray:
    """The configured low-field model's blur kernel, cut to an odd size no larger than ``shape``.

    Parameters
    ----------
    factor : float
        Upscaling factor.
    shape : (int, int)
        Spectrum shape, px.
    degrade_cfg : dict
        The ``degrade`` config section.
    header : dict, optional
        The spectrum's header. The ``physical`` model's kernel depends on the spectrum's axes:
        with a header it is that spectrum's kernel; without one the paper model's kernel is
        returned (with a warning), the only one known without the axes.
    """
    model = degrade_cfg.get("model", "paper")
    if model == "physical" and header is not None:
        params = dict(degrade_cfg.get("physical") or {})
        axes = tuple(Axis.from_dict(a) for a in header["axes"])
        full = degrade.psf(factor, model="physical", axes=axes, **params).shape
        return degrade.psf(factor, model="physical", axes=axes, shape=_cut(full, shape), **params)
    if model != "paper":
        log.warning("deconvolution uses the paper model's Gaussian kernel (sigma = 1/f px): no header given")
    full = degrade.psf(factor, model="paper").shape
    return degrade.psf(factor, model="paper", shape=_cut(full, shape))


@lru_cache(maxsize=None)
def _rendered_linewidths(protein: str, experiment: str, high_mhz: float, low_mhz: float) -> tuple[dict, dict]:
    """Processed FWHM (Hz) per nucleus of the time-domain renderer's lines at the two fields."""
    from mssr.data import timedomain

    table = synthetic.protein_table(synthetic.load_refdb(), protein)
    # the renderer's mass rule: 110 Da per standard residue (mssr.data.synthetic)
    mass_kda = int(table["aa"].isin(synthetic.STANDARD_AA).sum()) * synthetic.DALTON_PER_RESIDUE / 1000.0
    return (timedomain.processed_fwhm_hz(experiment, low_mhz, mass_kda=mass_kda),
            timedomain.processed_fwhm_hz(experiment, high_mhz, mass_kda=mass_kda))


def _equivalent_fixed_widths(axes, high_mhz: float, low_mhz: float, low_hz: dict, high_hz: dict) -> dict:
    """Field-independent widths (Hz) per nucleus whose physical-model broadening equals the one
    from ``high_hz`` at ``high_mhz`` to ``low_hz`` at ``low_mhz`` (clamped at 0).

    The added FWHM is ``(W_low / MHz_X,low - W_high / MHz_X,high) / (ppm per px)``; a fixed width
    ``d`` gives ``d (1 / MHz_X,low - 1 / MHz_X,high) / (ppm per px)``. (A processed width may fall
    with the field, which :class:`mssr.degrade.Linewidth` cannot express.)
    """
    fixed = {}
    for axis in axes:
        gamma = GYROMAGNETIC_RATIO_TO_1H[axis.nucleus]
        inv_low, inv_high = 1.0 / (low_mhz * gamma), 1.0 / (high_mhz * gamma)
        added_ppm = low_hz[axis.nucleus] * inv_low - high_hz[axis.nucleus] * inv_high
        fixed[axis.nucleus] = max(added_ppm / (inv_low - inv_high), 1e-9)
    return fixed


def _physical_kernel(factor: float, axes, shape, info_params: dict, source: str) -> LowFieldKernel:
    info = degrade.simulate_physical_info(factor, axes=axes, **info_params)
    full = degrade.psf(factor, model="physical", axes=axes, **info_params).shape
    psf = degrade.psf(factor, model="physical", axes=axes, shape=_cut(full, shape), **info_params)
    return LowFieldKernel(info.lineshape, tuple(info.applied_fwhm_px), psf, source)


def low_field_kernels(testset, factor, *, indices=None) -> list[LowFieldKernel]:
    """The low-field model of every spectrum of a test set at one factor.

    - Test sets made by :func:`mssr.degrade.precompute` (``attrs['degrade_model']``): the
      ``paper`` model's Gaussian kernel (sigma = 1/f px, FWHM 2.3548 / f px on each axis), or
      the ``physical`` model's per-spectrum Lorentzian kernel from the spectrum's axes (nuclei,
      ppm per px, field) and the stored model parameters.
    - Headers with ``meta['physical_params']`` (the ``real`` test set): the physical model with
      those parameters (measured linewidths in Hz) and the header's axes.
    - The ``physical`` test set (pairs from the time-domain renderer): the renderer's processed
      FWHM (:func:`mssr.data.timedomain.processed_fwhm_hz`, relaxation of the protein's mass x
      window x truncation) at the truth's field and ``field / f``, as a Lorentzian broadening on
      the spectrum's ppm grid (the processed lines are windowed, so this is an approximation).

    Parameters
    ----------
    testset : SampleSet
        A test set (:func:`mssr.evaluation.testsets.read_testset`).
    factor : float or Fraction or str
        Upscaling factor.
    indices : sequence of int, optional
        Spectra to return kernels for (default: all).

    Returns
    -------
    list of LowFieldKernel
    """
    f = float(as_factor(factor))
    attrs = testset.attrs
    shape = testset.x.shape[1:]
    indices = list(range(len(testset))) if indices is None else list(indices)
    headers = testset.headers
    if all("physical_params" in headers[i].get("meta", {}) for i in indices) and len(indices):
        return [_physical_kernel(f, tuple(Axis.from_dict(a) for a in headers[i]["axes"]), shape,
                                 {k: v for k, v in headers[i]["meta"]["physical_params"].items() if k in _INFO_KEYS},
                                 "physical model from the spectrum's header (measured linewidths)")
                for i in indices]
    if "degrade_model" in attrs:
        model = attrs["degrade_model"]
        if model == "paper":
            full = degrade.psf(f, model="paper").shape
            psf = degrade.psf(f, model="paper", shape=_cut(full, shape))
            fwhm = _FWHM_PER_SIGMA / f
            kernel = LowFieldKernel("gaussian", (fwhm, fwhm), psf, "paper model: Gaussian sigma = 1/f px")
            return [kernel for _ in indices]
        params = {k: v for k, v in (attrs.get("params") or {}).items() if k in _INFO_KEYS}
        return [_physical_kernel(f, tuple(Axis.from_dict(a) for a in testset.headers[i]["axes"]), shape, params,
                                 "physical model from the spectrum's axes") for i in indices]
    if attrs.get("testset") == "physical":
        high_mhz = float(attrs.get("high_mhz"))
        kernels = []
        for i in indices:
            meta = testset.headers[i].get("meta", {})
            experiment = meta.get("experiment", attrs.get("experiment"))
            axes = tuple(Axis.from_dict(a) for a in testset.headers[i]["axes"])
            low_hz, high_hz = _rendered_linewidths(meta["protein"], experiment, high_mhz, high_mhz / f)
            linewidths = _equivalent_fixed_widths(axes, high_mhz, high_mhz / f, low_hz, high_hz)
            params = {"high_mhz": high_mhz, "linewidths": linewidths, "lineshape": "lorentzian"}
            kernels.append(_physical_kernel(f, axes, shape, params, "time-domain renderer's processed linewidths"))
        return kernels
    raise ValueError(f"test set {attrs.get('testset')!r}: its low-field model is unknown (no 'degrade_model' attribute)")


# ---------------------------------------------------------------------------------------------
# the methods


def apply_method(method: str, x_lr: np.ndarray, kernels, params: dict) -> np.ndarray:
    """One classical method on a stack of low-field spectra, each with its own kernel.

    Parameters
    ----------
    method : str
        One of :data:`CLASSICAL_METHODS`.
    x_lr : ndarray, shape (N, H, W)
        Low-field spectra.
    kernels : sequence of LowFieldKernel
        One per spectrum (:func:`low_field_kernels`).
    params : dict
        The method's parameters (keys of :data:`PARAMETER_GRID`).

    Returns
    -------
    ndarray, shape (N, H, W), dtype of ``x_lr``

    Notes
    -----
    ``lorentz_gauss`` removes a Lorentzian broadening; under a Gaussian kernel (the paper's blur)
    there is none to remove and the input is returned unchanged.
    """
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"method must be one of {CLASSICAL_METHODS}, got {method!r}")
    if len(kernels) != len(x_lr):
        raise ValueError(f"kernels has {len(kernels)} entries for {len(x_lr)} spectra")
    if method == "identity":
        return np.clip(x_lr, -1.0, 1.0).astype(x_lr.dtype)
    out = np.empty_like(x_lr)
    for i, (x, k) in enumerate(zip(x_lr, kernels)):
        if method in ("wiener", "richardson_lucy"):
            out[i] = classical.enhance(x, k.psf, method=method, **params)
        elif method == "lorentz_gauss":
            if k.lineshape != "lorentzian":
                out[i] = np.clip(x, -1.0, 1.0)
                continue
            g1 = k.added_fwhm_px
            out[i] = classical.lorentz_gauss(x, g1_px=g1, g2_px=tuple(params["g2_ratio"] * g for g in g1))
        else:
            options = {"lineshape": k.lineshape, **params}
            out[i] = classical.peak_fit(x, added_fwhm_px=k.added_fwhm_px, **options)
    return out


# ---------------------------------------------------------------------------------------------
# parameters chosen on the validation split


def build_validation_pairs(kind: str, val_h5, out_h5, *, factors, degrade: dict, data: dict, assignment,
                           manifest) -> dict:
    """Validation inputs made exactly like the inputs of test set ``kind``, seeded apart from them.

    The test-set builder (:func:`mssr.evaluation.testsets.build_testset`) runs on the validation
    split: for ``blur`` on ``val.h5``; for ``physical`` on the validation proteins only (given to
    the builder as its "test" proteins, with no held-out proteins added: those would be the test
    set's). The seed is ``degrade.test_seed + 1``. A kind without a
    validation counterpart is replaced by ``blur`` under the ``physical`` model.

    Returns
    -------
    dict
        How the pairs were made (recorded in the parameter file).
    """
    val_degrade = {**degrade, "test_seed": int(degrade["test_seed"]) + 1}
    built = kind
    if kind not in ("blur", "physical"):
        built, val_degrade = "blur", {**val_degrade, "model": "physical"}
    if built == "physical":
        record = json.loads(Path(assignment).read_text())
        splits = record.get("assignment", record)
        relabelled = {p: ("test" if s == "val" else "train") for p, s in splits.items()}
        if "test" not in relabelled.values():
            raise ValueError(f"{assignment}: no protein is assigned to the validation split")
        # n_proteins = 1: the validation proteins only. A larger minimum would top them up with
        # held-out RefDB proteins drawn by the same seed as the test set's: test proteins.
        val_data = {**data, "physical_testset": {**(data.get("physical_testset") or {}), "n_proteins": 1}}
        with tempfile.TemporaryDirectory() as tmp:
            val_assignment = Path(tmp) / "val_as_test.json"
            val_assignment.write_text(json.dumps({"assignment": relabelled}))
            build_testset("physical", val_h5, out_h5, factors=factors, degrade=val_degrade, data=val_data,
                          assignment=val_assignment, manifest=manifest)
    else:
        build_testset("blur", val_h5, out_h5, factors=factors, degrade=val_degrade, data=data,
                      assignment=assignment, manifest=manifest)
    return {"testset": kind, "built_as": built, "seed": val_degrade["test_seed"],
            "degrade_model": val_degrade.get("model", "paper") if built == "blur" else None}


def _grid_points(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def choose_parameters(val_pairs_h5, methods, *, grid: dict | None = None, max_per_factor: int = 4,
                      seed: int = 0) -> dict:
    """Score each method's parameter grid on validation pairs; the lowest mean MSE wins.

    Parameters
    ----------
    val_pairs_h5 : path
        Validation pairs in the test-set format (:func:`build_validation_pairs`).
    methods : sequence of str
        Methods to tune (those without a grid are recorded with empty parameters).
    grid : dict, optional
        Method -> parameter -> values; default :data:`PARAMETER_GRID`.
    max_per_factor : int
        Validation spectra drawn (seeded, without replacement) per factor, to bound the cost.
    seed : int
        Seed of that draw.

    Returns
    -------
    dict
        ``{method: {"chosen": {...}, "scores": [{"params": {...}, "mse": float}, ...]}}`` plus
        ``"_pairs"``: number of (spectrum, factor) pairs scored.
    """
    grid = PARAMETER_GRID if grid is None else grid
    x_all, x_lr_all, labels, s = read_testset(val_pairs_h5)
    rng = np.random.default_rng(seed)
    pairs = []
    for k, label in enumerate(labels):
        take = np.sort(rng.choice(len(s), size=min(max_per_factor, len(s)), replace=False))
        pairs.append((x_all[take], x_lr_all[k][take], low_field_kernels(s, label, indices=take)))
    result: dict = {"_pairs": int(sum(len(p[0]) for p in pairs))}
    for method in methods:
        if method not in CLASSICAL_METHODS:
            raise ValueError(f"methods: {method!r} is not one of {CLASSICAL_METHODS}")
        points = _grid_points(grid.get(method, {})) if grid.get(method) else [{}]
        scores = []
        for params in points:
            start = time.perf_counter()
            errors = [np.mean((apply_method(method, x_lr, kernels, params).astype(np.float64) - x) ** 2, axis=(1, 2))
                      for x, x_lr, kernels in pairs]
            mse = float(np.mean(np.concatenate(errors)))
            scores.append({"params": params, "mse": mse, "seconds": time.perf_counter() - start})
            log.info("validation %s %s: MSE %.6g", method, params, mse)
        best = min(scores, key=lambda r: r["mse"])
        result[method] = {"chosen": best["params"], "scores": scores}
    return result


def classical_parameters(kind: str, val_h5, out_json, *, methods, factors, degrade: dict, data: dict,
                         assignment, manifest, max_per_factor: int = 4, seed: int = 0) -> Path:
    """Choose the classical methods' parameters for test set ``kind`` on validation pairs; write JSON.

    The file holds, per method, the chosen parameters and the validation MSE of every grid
    point, and how the validation pairs were made.
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pairs_h5 = Path(tmp) / f"val_{kind}.h5"
        made = build_validation_pairs(kind, val_h5, pairs_h5, factors=factors, degrade=degrade, data=data,
                                      assignment=assignment, manifest=manifest)
        chosen = choose_parameters(pairs_h5, methods, max_per_factor=max_per_factor, seed=seed)
    record = {"testset": kind, "validation": {**made, "pairs": chosen.pop("_pairs"), "max_per_factor": max_per_factor,
                                              "score": "mean MSE against the high-field truth"},
              "methods": chosen, "seconds": time.perf_counter() - start}
    write_text(out_json, json.dumps(record, indent=2) + "\n")
    return Path(out_json)


def read_parameters(params_json, method: str) -> dict:
    """The chosen parameters of ``method`` from a file of :func:`classical_parameters`."""
    record = json.loads(Path(params_json).read_text())
    methods = record.get("methods", {})
    if method not in methods:
        raise ValueError(f"{params_json}: no parameters for {method!r} (has {sorted(methods)})")
    return dict(methods[method]["chosen"])


def classical_files(method: str, testset_h5, outputs: dict, *, degrade: dict | None = None,
                    params_json=None) -> list[Path]:
    """Apply a non-learned method to the inputs of every factor of a test set.

    Parameters
    ----------
    method : str
        One of :data:`CLASSICAL_METHODS`; ``identity`` returns the low-field input (the honest
        floor).
    testset_h5 : path
        Test set (:mod:`mssr.evaluation.testsets`); each spectrum's kernel comes from it
        (:func:`low_field_kernels`).
    outputs : dict
        Factor label -> prediction file to write.
    degrade : dict, optional
        The ``degrade`` config section (unused: the test set records its own model; kept for
        callers).
    params_json : path, optional
        Parameters chosen on validation (:func:`classical_parameters`); without it
        :data:`DEFAULT_PARAMETERS` (logged).
    """
    if params_json is None:
        params = dict(DEFAULT_PARAMETERS[method])
        log.warning("%s: no parameter file, default parameters %s", method, params)
    else:
        params = read_parameters(params_json, method)
    written = []
    _, x_lr_all, labels, s = read_testset(testset_h5)
    for label, out in outputs.items():
        f = as_factor(label)
        if factor_label(f) not in labels:
            raise ValueError(f"{testset_h5}: factor {factor_label(f)} not in the test set (has {', '.join(labels)})")
        x_lr = x_lr_all[labels.index(factor_label(f))]
        kernels = low_field_kernels(s, f) if method != "identity" else [None] * len(x_lr)
        start = time.perf_counter()
        pred = apply_method(method, x_lr, kernels, params)
        seconds = time.perf_counter() - start
        source = kernels[0].source if kernels and kernels[0] is not None else None
        written.append(write_prediction(out, pred, np.zeros_like(pred), s.headers, method=method,
                                        factor=factor_label(f), testset=s.attrs.get("testset"), seconds=seconds,
                                        params=params, kernel=source))
        log.info("%s %s: %d spectra in %.2f s", method, factor_label(f), len(pred), seconds)
    return written
