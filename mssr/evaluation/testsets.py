"""Test sets: high-field truths and their low-field inputs, precomputed once for every factor.

Every method (MSSR, baselines, classical) is evaluated on the same stored inputs. A test-set file is a
sample set (:mod:`mssr.data.store`) whose ``x`` holds the high-field truths (N, S, S) and whose extra
array ``x_lr`` holds the low-field inputs (F, N, S, S), one plane per factor in ``attrs['factors']``.

Two kinds exist:

``blur``
    The test split degraded with the configured low-field model (:func:`mssr.degrade.precompute`),
    seeded per (spectrum, factor).
``physical``
    Physically true pairs from the time domain (:mod:`mssr.data.timedomain`): each protein's 2D
    1H-15N spectrum recorded as FIDs at a high field and, for every factor, at ``high / factor`` MHz
    (per-peak R2 from the protein's mass and the field, each field's own spectral width in Hz,
    typical acquisition, nmrglue processing, noise with peak-height S/N ~ B0^1.5), each onto the
    same ppm grid: independent of the frequency-domain low-field models. The test split's proteins
    come first; where they are fewer than ``n_proteins``, held-out RefDB proteins are added that
    the data set never rendered (in no split, so never in training).
``real``
    Measured spectra (:mod:`mssr.data.real`): the 800.30 MHz 1H-15N HSQC planes of protein L (4)
    and Ddx4 (6) from peakipy's sdist, each preprocessed like training data (resized to S x S,
    divided by its max |x|) as the truth, and broadened on that grid to ``800.30 / f`` MHz by the
    physical model (:func:`mssr.degrade.simulate`) with the plane's own linewidths, measured on
    its native grid (:func:`mssr.evaluation.realpairs.measured_linewidths_hz`) and fixed in Hz,
    and its own noise (robust SD / max on the S x S grid), so that the S/N falls as f^1.5 for
    lines of equal width in Hz. Each header's ``meta['physical_params']`` holds the model's
    parameters besides the axes, so ``simulate_physical_info(f, axes=<header axes>,
    **meta['physical_params'])`` gives that spectrum's kernel.
"""

from __future__ import annotations

import json
import logging
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from mssr import degrade
from mssr.config import degrade_params
from mssr.data import physics, preprocess, synthetic
from mssr.data.store import read_samples, write_samples
from mssr.factors import as_factor, factor_label

log = logging.getLogger(__name__)

PHYSICAL_HIGH_MHZ = 900.0
"""Field of the physically rendered truths, MHz (the top of the paper's Table 1)."""


def _factor_list(factors) -> list[Fraction]:
    if not factors:
        raise ValueError("factors must name at least one Table-1 factor")
    return [as_factor(f) for f in factors]


def build_blur(test_h5, out_h5, *, factors, model: str = "paper", seed: int = 0, **params) -> Path:
    """Precompute the low-field inputs of the test split with the configured degradation model.

    Parameters
    ----------
    test_h5, out_h5 : path
        The test split and the test-set file to write.
    factors : sequence
        Table-1 factors (values or labels).
    model : {'paper', 'physical'}
        Low-field simulation (see :func:`mssr.degrade.simulate`).
    seed : int
        Seed of the inputs; each (spectrum, factor) has its own stream.
    """
    fs = _factor_list(factors)
    test = read_samples(test_h5)
    x_lr = degrade.precompute(test.x, [float(f) for f in fs], model=model, seed=seed,
                              headers=test.headers, **params)
    attrs = {"testset": "blur", "factors": [factor_label(f) for f in fs], "degrade_model": model,
             "seed": seed, "params": params, "source": str(test_h5)}
    return write_samples(out_h5, test.x, test.headers, attrs=attrs, extra={"x_lr": x_lr.astype(np.float32)})


PHYSICAL_N_PROTEINS = 20
"""Default number of proteins of the ``physical`` test set."""


def _known_proteins(assignment: dict, manifest_csv) -> set[str]:
    known = set(assignment)
    if manifest_csv is not None and Path(manifest_csv).exists():
        import pandas as pd

        known |= set(pd.read_csv(manifest_csv)["protein"].astype(str))
    return known


def physical_proteins(assignment_json, manifest_csv=None, *, n_proteins: int = PHYSICAL_N_PROTEINS,
                      seed: int = 0) -> list[tuple[str, str]]:
    """The proteins of the ``physical`` test set and where each comes from.

    The test split's proteins (sorted) first, tagged ``'test_split'``; if they are fewer than
    ``n_proteins``, held-out RefDB proteins are added, tagged ``'heldout'``: drawn with
    :func:`mssr.data.synthetic.pick_proteins` (same size and completeness rules as the demo's) with
    ``seed``, skipping every protein of the split assignment (train, val, test) and of the data
    set's manifest, so that none was ever seen in training.

    Returns
    -------
    list of (str, str)
        ``(protein name, origin)``, at least ``n_proteins`` long (more if the test split has more).
    """
    if isinstance(n_proteins, bool) or not isinstance(n_proteins, (int, np.integer)) or n_proteins < 1:
        raise ValueError(f"n_proteins must be an int >= 1, got {n_proteins!r}")
    assignment = json.loads(Path(assignment_json).read_text())
    splits = assignment.get("assignment", assignment)
    test = sorted(p for p, s in splits.items() if s == "test")
    chosen = [(p, "test_split") for p in test]
    need = int(n_proteins) - len(chosen)
    if need > 0:
        known = _known_proteins(splits, manifest_csv)
        drawn = synthetic.pick_proteins(need + len(known), seed=seed)
        extra = [synthetic.protein_name(b) for b in drawn if synthetic.protein_name(b) not in known][:need]
        if len(extra) < need:
            raise ValueError(f"only {len(extra)} held-out proteins could be drawn, {need} needed")
        chosen += [(p, "heldout") for p in extra]
    if not chosen:
        raise ValueError(f"{assignment_json}: no protein is assigned to the test split and n_proteins is 0")
    return chosen


def build_physical(assignment_json, manifest_csv, out_h5, *, factors, size: int, seed: int = 0,
                   experiment: str = "hsqc_15n", high_mhz: float = PHYSICAL_HIGH_MHZ,
                   n_proteins: int = PHYSICAL_N_PROTEINS, heldout_seed: int = 1,
                   noise_sd: float = physics.NOISE_SD_900) -> Path:
    """Record the physical test set's proteins at ``high_mhz`` and at ``high_mhz / f`` for every ``f``.

    One peak list per protein; the truth is recorded once, each factor's low-field input once from
    the same peaks with its own noise stream (:func:`mssr.degrade.sample_rng` keyed by the exact
    factor and the protein's BMRB id, so a subset of factors reproduces the same inputs). The
    spectra come from the time-domain renderer (:func:`mssr.data.synthetic.render_field_series`),
    each on the experiment's grid at ``high_mhz``, then preprocessed like training data (resized to
    ``size`` x ``size`` pixels, divided by their own max |x|).

    Parameters
    ----------
    assignment_json : path
        ``split.json`` of the split stage (protein -> split).
    manifest_csv : path
        The demo manifest: its proteins are never drawn as held-out proteins.
    size : int
        S, pixels.
    seed : int
        Seed of the peak lists and noise.
    experiment : {'hsqc_15n', 'trosy_15n'}
        Recorded experiment.
    high_mhz : float
        Field of the truths, MHz.
    n_proteins : int
        Minimum number of proteins (:func:`physical_proteins`).
    heldout_seed : int
        Seed of the held-out protein draw.
    noise_sd : float
        Noise SD at 900 MHz relative to a unit-weight peak (S/N ``1 / noise_sd``).
    """
    fs = _factor_list(factors)
    proteins = physical_proteins(assignment_json, manifest_csv, n_proteins=n_proteins, seed=heldout_seed)
    refdb = synthetic.load_refdb()
    truths, headers, lows = [], [], []
    for protein, origin in proteins:
        table = synthetic.protein_table(refdb, protein)
        bmrb_id = int(table["bmrb_id"].iloc[0])
        high, low_list = synthetic.render_field_series(
            table, experiment, high_mhz, [high_mhz / float(f) for f in fs],
            rng=np.random.default_rng([int(seed), bmrb_id]),
            low_rngs=[degrade.sample_rng(seed, f, bmrb_id) for f in fs], noise_sd=noise_sd)
        high_spec = preprocess.preprocess(high.with_data(high.data, origin=origin), size=size)
        truths.append(high_spec.data)
        headers.append(high_spec.header())
        lows.append([preprocess.preprocess(lo, size=size).data for lo in low_list])
    x = np.stack(truths).astype(np.float32)
    x_lr = np.stack(lows, axis=1).astype(np.float32)  # (F, N, S, S)
    names = [p for p, _ in proteins]
    attrs = {"testset": "physical", "factors": [factor_label(f) for f in fs], "experiment": experiment,
             "high_mhz": high_mhz, "seed": seed, "proteins": names,
             "origins": [o for _, o in proteins], "heldout_seed": heldout_seed, "noise_sd": noise_sd,
             "renderer": "mssr.data.timedomain", "manifest": str(manifest_csv)}
    log.info("physical test set: %d proteins (%d held out of the data set) x %d factors", len(names),
             sum(o == "heldout" for _, o in proteins), len(fs))
    return write_samples(out_h5, x, headers, attrs=attrs, extra={"x_lr": x_lr})


REAL_LINESHAPE = "lorentzian"
"""Line shape of the measured planes' broadening (relaxation: Lorentzian widths add)."""


def _validate_planes(planes) -> dict[str, list[int]] | None:
    from mssr.data.real import REAL_SERIES

    if planes is None:
        return None
    if not isinstance(planes, dict):
        raise TypeError(f"planes must be a mapping protein -> plane indices or None, got {type(planes).__name__}")
    unknown = sorted(set(planes) - set(REAL_SERIES))
    if unknown:
        raise ValueError(f"planes names unknown proteins {unknown}; the series are {list(REAL_SERIES)}")
    out = {}
    for protein, indices in planes.items():
        if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
            raise TypeError(f"planes[{protein!r}] must be a list of plane indices, got {indices!r}")
        indices = list(indices)
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
                raise ValueError(f"planes[{protein!r}] must hold ints >= 0, got {i!r}")
        out[protein] = sorted({int(i) for i in indices})
    if not any(out.values()):
        raise ValueError("planes selects no plane")
    return out


def real_sample_id(protein: str, plane: int) -> int:
    """Stable id of a measured plane for seeding its inputs (CRC-32 of ``'protein/plane'``)."""
    return zlib.crc32(f"{protein}/{int(plane)}".encode())


def real_sample(plane_spectrum, *, size: int):
    """The truth of one measured plane on the S x S grid and its physical-model parameters.

    Parameters
    ----------
    plane_spectrum : Spectrum
        A measured 2D plane (15N x 1H) on its native grid.
    size : int
        S, pixels.

    Returns
    -------
    truth : Spectrum
        :func:`mssr.data.preprocess.preprocess` of the plane (S x S, max |x| = 1, ``meta['scale']``).
    params : dict
        ``linewidths`` (nucleus -> FWHM in Hz, measured on the native plane, fixed in Hz),
        ``sigma_high`` (robust noise SD / max |x| of ``truth``), ``lineshape``: with
        ``axes=truth.axes`` the keyword parameters of :func:`mssr.degrade.simulate` (physical).
    """
    from mssr.evaluation import realpairs

    widths_hz = realpairs.measured_linewidths_hz(plane_spectrum)
    truth = preprocess.preprocess(plane_spectrum, size=size)
    data = np.asarray(truth.data, dtype=np.float64)
    params = {
        "linewidths": {ax.nucleus: float(w) for ax, w in zip(plane_spectrum.axes, widths_hz)},
        "sigma_high": realpairs.noise_sd(data) / float(np.max(np.abs(data))),
        "lineshape": REAL_LINESHAPE,
    }
    return truth, params


def build_real(out_h5, *, factors, size: int, seed: int = 0, planes=None, cache=None) -> Path:
    """Broaden the measured 800 MHz planes to ``800.30 / f`` MHz on the S x S grid, for every ``f``.

    Parameters
    ----------
    out_h5 : path
        Test-set file to write.
    factors : sequence
        Table-1 factors (values or labels).
    size : int
        S, pixels.
    seed : int
        Seed of the low-field noise; plane ``(protein, k)`` at factor ``f`` draws from
        :func:`mssr.degrade.sample_rng` ``(seed, f, real_sample_id(protein, k))``, so a subset of
        planes or factors reproduces the same inputs.
    planes : dict, optional
        ``protein -> plane indices`` (default: every plane of both series).
    cache : path, optional
        Folder of the checksummed peakipy sdist (default :func:`mssr.data.real.default_cache`).
    """
    from mssr.data import real

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an int >= 2, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    fs = _factor_list(factors)
    planes = _validate_planes(planes)
    measured = real.measured_planes(planes, cache=cache)
    if planes is not None:
        found = {(p.protein, p.plane) for p in measured}
        missing = [f"{protein}[{k}]" for protein, ks in planes.items() for k in ks if (protein, k) not in found]
        if missing:
            raise ValueError(f"planes: no such measured plane {', '.join(missing)}")
    truths, headers, lows = [], [], []
    for item in measured:
        truth, params = real_sample(item.spectrum, size=size)
        sample_id = real_sample_id(item.protein, item.plane)
        x0 = np.asarray(truth.data, dtype=np.float64)
        lows.append([degrade.simulate(x0, float(f), model="physical", rng=degrade.sample_rng(seed, f, sample_id),
                                      axes=truth.axes, input_noise=True, **params) for f in fs])
        meta = {"protein": item.protein, "plane": item.plane, "experiment": "hsqc_15n", "origin": "measured",
                "source": f"{real.PEAKIPY_SDIST}:{real.REAL_SERIES[item.protein]}", "sample_id": sample_id,
                "physical_params": params}
        truths.append(truth.data)
        headers.append(truth.with_data(truth.data, **meta).header())
    x = np.stack(truths).astype(np.float32)
    x_lr = np.stack(lows, axis=1).astype(np.float32)  # (F, N, S, S)
    high_mhz = float(measured[0].spectrum.axes[1].field_mhz)
    attrs = {"testset": "real", "factors": [factor_label(f) for f in fs], "experiment": "hsqc_15n",
             "high_mhz": high_mhz, "seed": seed, "size": int(size), "model": "physical",
             "proteins": [m.protein for m in measured], "planes": [m.plane for m in measured],
             "source": real.PEAKIPY_SDIST, "sha256": real.PEAKIPY_SDIST_SHA256}
    log.info("real test set: %d measured planes of %s x %d factors", len(measured),
             ", ".join(sorted({m.protein for m in measured})), len(fs))
    return write_samples(out_h5, x, headers, attrs=attrs, extra={"x_lr": x_lr})


def build_testset(kind: str, test_h5, out_h5, *, factors, degrade: dict, data: dict, assignment=None,
                  manifest=None) -> Path:
    """Build the test set ``kind`` ('blur', 'physical' or 'real') from the pipeline's config sections."""
    if kind == "blur":
        params = degrade_params(degrade)
        return build_blur(test_h5, out_h5, factors=factors, model=degrade.get("model", "paper"),
                          seed=degrade["test_seed"], **params)
    if kind == "physical":
        section = dict(data.get("physical_testset") or {})
        return build_physical(assignment, manifest, out_h5, factors=factors, size=data["size"],
                              seed=degrade["test_seed"], **section)
    if kind == "real":
        section = dict(data.get("real_testset") or {})
        section.pop("enabled", None)
        return build_real(out_h5, factors=factors, size=data["size"], seed=degrade["test_seed"], **section)
    raise ValueError(f"testset must be 'blur', 'physical' or 'real', got {kind!r}")


def read_testset(path):
    """Load a test set: (truths (N,S,S), inputs (F,N,S,S), factor labels, SampleSet)."""
    s = read_samples(path)
    if "x_lr" not in s.extra or "factors" not in s.attrs:
        raise ValueError(f"{path}: not a test set (no 'x_lr' array or 'factors' attribute)")
    return s.x, s.extra["x_lr"], list(s.attrs["factors"]), s


def factor_inputs(path, factor):
    """Truths (N,S,S), the inputs of one factor (N,S,S) and the SampleSet of a test-set file."""
    x, x_lr, labels, s = read_testset(path)
    label = factor_label(as_factor(factor))
    if label not in labels:
        raise ValueError(f"{path}: factor {label} not in the test set (has {', '.join(labels)})")
    return x, x_lr[labels.index(label)], s


__all__ = ["build_blur", "build_physical", "build_real", "build_testset", "factor_inputs", "physical_proteins",
           "read_testset", "real_sample", "real_sample_id"]
