"""Demo spectra rendered from real assigned protein chemical shifts.

The shifts come from RefDB (re-referenced BMRB assignments) as shipped by the ``makeshift-nmr``
package: ``makeshift/data/refdb/refdb_backbone.csv`` with one row per residue and the columns
``bmrb_id, pdb_id, seq_id, aa, ss, H, HA, N, CA, CB, C`` (ppm).

Each experiment turns a protein's shift table into a peak list by the residue rules of
triple-resonance NMR (:func:`peak_list`), then :func:`render` draws the peaks on a ppm grid with
linewidths in Hz that depend on the field, and adds Gaussian noise whose standard deviation falls
with the field so that the sensitivity grows as B0^(3/2). The experiments, line widths and
noise levels are those of :mod:`mssr.data.physics`; :mod:`mssr.data.demo` writes the rendered
spectra as the demo data set.

Physical model (estimates, see NMR_NOTES.md)
--------------------------------------------
* Line widths (natural + acquisition-limited) and the noise SD at a field come from
  :mod:`mssr.data.physics`.
* Lineshapes are Lorentzian (or Gaussian) sampled at the point centres.
* Peak volumes in ppm space are field independent: a line that is broader in ppm is lower.
  Heights equal the relative intensity at 900 MHz. Sensitivity: the peak-height S/N of a line grows
  as B0^(3/2) for lines of equal Hz width and as 1 / (Hz width) per axis (the peak height of a
  Lorentzian of fixed area in Hz), each spectrum in its own units. On the volume-keeping ppm scale
  used here, where a line of width ``LW`` Hz has height ``prod_k 1 / (LW_k / MHz_k)``, that makes
  the noise SD ``noise_sd * (B / 900)^(d - 3/2)`` for a d-dimensional spectrum, whatever the widths
  (:func:`mssr.data.physics.noise_sd_volume_scale`). (Before this was
  ``noise_sd * (900 / B)^(3/2)``, which on the lowered heights counted the sensitivity loss
  twice: S/N ~ B0^(3/2 + d) for lines fixed in Hz.)
* Physically true pairs of 2D 1H-15N experiments come from the time-domain renderer
  (:mod:`mssr.data.timedomain`: FIDs, nmrglue processing); :func:`render_pair` uses it.
* Scalar couplings are not drawn: 1H-15N HSQC and the amide dimensions of the 3D experiments are
  decoupled, and 1J(CaCb) ~ 35 Hz lies well inside the 100-143 Hz acquisition-limited 13C width of
  the 3D experiments, so it would only add a little to the width.
* Side-chain shifts are absent from RefDB: the Asn/Gln NH2 and Trp indole NH peaks of the HSQC are
  drawn per residue from approximate literature means +- SD (BMRB statistics), see
  :data:`SIDE_CHAIN_NH`. Side-chain peaks are not drawn in the 3D experiments.
* Each amide strip (the peaks of residue i's NH) gets a log-normal intensity factor (SD 0.25 in
  log), as relaxation and exchange make real peak heights uneven.
"""

from __future__ import annotations

import importlib.resources
import io as _stdio
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from mssr.data.physics import (
    NOISE_SD_900,
    REFERENCE_FIELD_MHZ,
    experiment_axes,
    noise_sd_volume_scale,
    peak_linewidths_hz,
    validate_experiment,
    validate_field,
)
from mssr.spectrum import Axis, Spectrum

Lineshape = Literal["lorentzian", "gaussian"]
Domain = Literal["time", "frequency"]

DALTON_PER_RESIDUE = 110.0

# Shifts outside these ranges (ppm) are mis-referenced or mistyped entries and count as unassigned.
PLAUSIBLE_PPM: dict[str, tuple[float, float]] = {
    "H": (5.0, 12.0),
    "N": (95.0, 140.0),
    "CA": (38.0, 72.0),
    "CB": (10.0, 80.0),
    "C": (165.0, 185.0),
}

# Approximate literature means +- SD (BMRB statistics), ppm: (N mean, N sd, [(H mean, H sd), ...]).
# The two NH2 protons are resolved (E ~7.5, Z ~6.8 ppm) on one 15N shift.
SIDE_CHAIN_NH: dict[str, tuple[float, float, tuple[tuple[float, float], ...]]] = {
    "N": (112.7, 1.3, ((7.50, 0.20), (6.85, 0.20))),  # Asn ND2 / HD21, HD22
    "Q": (112.0, 1.3, ((7.45, 0.20), (6.80, 0.20))),  # Gln NE2 / HE21, HE22
    "W": (129.3, 1.9, ((10.10, 0.40),)),  # Trp NE1 / HE1
}

STANDARD_AA = frozenset("ACDEFGHIKLMNPQRSTVWY")
INTENSITY_LOG_SD = 0.25


# Carbon peaks of residue i's amide strip: (atom, residue offset, relative signed intensity).
_STRIP_CARBONS: dict[str, tuple[tuple[str, int, float], ...]] = {
    "hnca": (("CA", 0, 1.0), ("CA", -1, 0.5)),
    "hnco": (("C", -1, 1.0),),
    "hncacb": (("CA", 0, 1.0), ("CB", 0, -0.6), ("CA", -1, 0.5), ("CB", -1, -0.3)),
    "cbcaconh": (("CA", -1, 1.0), ("CB", -1, 0.6)),
}


# --------------------------------------------------------------------------- validation


def _validate_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _validate_protein_df(protein_df) -> pd.DataFrame:
    if not isinstance(protein_df, pd.DataFrame):
        raise TypeError(f"protein_df must be a pandas DataFrame, got {type(protein_df).__name__}")
    missing = {"seq_id", "aa", "H", "N", "CA", "CB", "C"} - set(protein_df.columns)
    if missing:
        raise ValueError(f"protein_df lacks the columns {sorted(missing)}")
    if "bmrb_id" in protein_df.columns and protein_df["bmrb_id"].nunique() > 1:
        raise ValueError("protein_df holds more than one protein (several bmrb_id values)")
    if protein_df["seq_id"].duplicated().any():
        raise ValueError("protein_df has duplicate seq_id values")
    return protein_df


# --------------------------------------------------------------------------- RefDB


@lru_cache(maxsize=1)
def _refdb_cached() -> pd.DataFrame:
    resource = importlib.resources.files("makeshift.data").joinpath("refdb", "refdb_backbone.csv")
    with resource.open("rb") as fh:
        return pd.read_csv(_stdio.BytesIO(fh.read()))


def load_refdb() -> pd.DataFrame:
    """The RefDB backbone shift table shipped by ``makeshift-nmr``.

    Returns
    -------
    DataFrame
        One row per residue: ``bmrb_id, pdb_id, seq_id, aa, ss, H, HA, N, CA, CB, C`` (shifts in
        ppm, NaN where unassigned), ordered by protein and residue number.
    """
    return _refdb_cached().copy()


def protein_name(bmrb_id) -> str:
    """Name of a RefDB protein in file paths and metadata, e.g. ``'bmrb4032'``."""
    return f"bmrb{int(bmrb_id)}"


def _assigned(df: pd.DataFrame, atom: str) -> pd.Series:
    lo, hi = PLAUSIBLE_PPM[atom]
    return df[atom].between(lo, hi)


def assignment_completeness(df: pd.DataFrame) -> pd.Series:
    """Fraction of the expected H, N, CA, CB, C shifts that are assigned, per protein.

    Expected: H for every residue but Pro, CB for every residue but Gly, N, CA and C for all
    standard residues. Shifts outside :data:`PLAUSIBLE_PPM` count as unassigned.

    Returns
    -------
    Series
        Completeness in [0, 1] indexed by ``bmrb_id``.
    """
    std = df[df["aa"].isin(STANDARD_AA)]
    expected = {
        "H": std["aa"] != "P",
        "N": pd.Series(True, index=std.index),
        "CA": pd.Series(True, index=std.index),
        "CB": std["aa"] != "G",
        "C": pd.Series(True, index=std.index),
    }
    n_expected = sum(e.astype(int) for e in expected.values())
    n_assigned = sum((e & _assigned(std, atom)).astype(int) for atom, e in expected.items())
    grouped = pd.DataFrame({"bmrb_id": std["bmrb_id"], "e": n_expected, "a": n_assigned}).groupby("bmrb_id")
    sums = grouped[["e", "a"]].sum()
    return sums["a"] / sums["e"]


def pick_proteins(
    n: int,
    *,
    seed: int,
    min_residues: int = 50,
    max_residues: int = 200,
    min_assigned: float = 0.8,
    refdb: pd.DataFrame | None = None,
) -> list[int]:
    """Draw proteins whose backbone assignments are complete enough to render.

    Parameters
    ----------
    n : int
        Number of proteins.
    seed : int
        Seed of the draw.
    min_residues, max_residues : int
        Bounds on the number of standard residues.
    min_assigned : float
        Minimum :func:`assignment_completeness`, in [0, 1].
    refdb : DataFrame, optional
        Shift table; defaults to :func:`load_refdb`.

    Returns
    -------
    list of int
        ``n`` distinct BMRB ids in draw order.

    Raises
    ------
    ValueError
        If fewer than ``n`` proteins qualify.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not 0.0 <= float(min_assigned) <= 1.0:
        raise ValueError(f"min_assigned must be in [0, 1], got {min_assigned}")
    if not 1 <= min_residues <= max_residues:
        raise ValueError(f"need 1 <= min_residues <= max_residues, got {min_residues}, {max_residues}")
    table = load_refdb() if refdb is None else refdb
    sizes = table[table["aa"].isin(STANDARD_AA)].groupby("bmrb_id").size()
    completeness = assignment_completeness(table)
    ok = completeness[(completeness >= min_assigned)].index
    ok = sorted(int(i) for i in ok if min_residues <= sizes.get(i, 0) <= max_residues)
    if len(ok) < n:
        raise ValueError(
            f"only {len(ok)} proteins have {min_residues}-{max_residues} residues and >= "
            f"{min_assigned:.0%} assigned shifts; n={n} requested"
        )
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.choice(ok, size=int(n), replace=False)]


def protein_table(refdb: pd.DataFrame | None, protein) -> pd.DataFrame:
    """The shift table of one protein, rows ordered by residue number.

    Parameters
    ----------
    refdb : DataFrame or None
        Shift table (:func:`load_refdb` when None).
    protein : int or str
        BMRB id (``4032``) or protein name (``'bmrb4032'``).
    """
    if isinstance(protein, str):
        digits = protein[4:] if protein.startswith("bmrb") else protein
        if not digits.isdigit():
            raise ValueError(f"protein must be a BMRB id or a name like 'bmrb4032', got {protein!r}")
        bmrb_id = int(digits)
    elif isinstance(protein, (int, np.integer)) and not isinstance(protein, bool):
        bmrb_id = int(protein)
    else:
        raise TypeError(f"protein must be an int BMRB id or a str name, got {type(protein).__name__}")
    table = load_refdb() if refdb is None else refdb
    rows = table[table["bmrb_id"] == bmrb_id]
    if rows.empty:
        raise ValueError(f"protein {protein!r} is not in the shift table")
    return rows.sort_values("seq_id").reset_index(drop=True)


# --------------------------------------------------------------------------- peak lists


def peak_list(protein_df: pd.DataFrame, experiment: str, *, rng: np.random.Generator) -> pd.DataFrame:
    """Peaks of one experiment by the residue rules of NMR_NOTES.md.

    * ``hsqc_15n``: one peak per non-Pro residue with assigned H and N; for every Asn and Gln
      two NH2 peaks (one 15N shift, two 1H shifts); for every Trp the indole NH. Side-chain shifts
      are drawn from :data:`SIDE_CHAIN_NH` with ``rng``.
    * 3D experiments, per non-Pro residue i with assigned H and N: ``hnca`` CA(i) and CA(i-1) at
      half intensity; ``hnco`` C'(i-1); ``hncacb`` CA(i), CB(i), CA(i-1), CB(i-1) with the CB peaks
      negative; ``cbcaconh`` CA(i-1), CB(i-1). A carbon peak needs that carbon assigned; i-1 is the
      residue numbered ``seq_id - 1``.

    Every strip is scaled by one log-normal intensity factor drawn with ``rng``.

    Parameters
    ----------
    protein_df : DataFrame
        One protein's shifts (columns ``seq_id, aa, H, N, CA, CB, C``), ppm.
    experiment : str
        One of :data:`mssr.data.physics.EXPERIMENTS`.
    rng : numpy.random.Generator
        Draws side-chain shifts and intensity factors.

    Returns
    -------
    DataFrame
        One row per peak: ``ppm_0 .. ppm_{d-1}`` (shift per axis in array order, ppm),
        ``atom_0 .. atom_{d-1}`` (the atom giving that shift: 'H', 'N', 'CA', 'CB', 'C'),
        ``weight`` (signed relative intensity), ``residue`` (seq_id of the amide), ``aa`` and
        ``label`` (e.g. ``'CB(i-1)'``).
    """
    exp = validate_experiment(experiment)
    df = _validate_protein_df(protein_df).sort_values("seq_id").reset_index(drop=True)
    _validate_rng(rng)
    amide_mask = ((df["aa"] != "P") & _assigned(df, "H") & _assigned(df, "N")).to_numpy()
    factors = np.exp(rng.normal(0.0, INTENSITY_LOG_SD, size=int(amide_mask.sum())))
    # plain Python records: row-wise pandas access is ~100x slower for these small tables
    residues = df.to_dict("records")
    position = {int(r["seq_id"]): i for i, r in enumerate(residues)}
    rows = []
    for res, factor in zip((r for r, m in zip(residues, amide_mask) if m), factors):
        if experiment == "hsqc_15n":
            rows.append(((res["N"], res["H"]), ("N", "H"), factor, res, "HN"))
            continue
        for atom, offset, weight in _STRIP_CARBONS[experiment]:
            src_pos = position.get(int(res["seq_id"]) + offset)
            if src_pos is None:
                continue
            shift = residues[src_pos][atom]
            lo, hi = PLAUSIBLE_PPM[atom]
            if not (lo <= shift <= hi):  # NaN compares False: unassigned
                continue
            label = f"{atom}(i-1)" if offset else f"{atom}(i)"
            rows.append(((shift, res["N"], res["H"]), (atom, "N", "H"), weight * factor, res, label))
    if experiment == "hsqc_15n":
        for res in residues:
            if res["aa"] not in SIDE_CHAIN_NH:
                continue
            n_mean, n_sd, protons = SIDE_CHAIN_NH[res["aa"]]
            n_ppm = rng.normal(n_mean, n_sd)
            factor = np.exp(rng.normal(0.0, INTENSITY_LOG_SD))
            kind = "indole" if res["aa"] == "W" else "NH2"
            for h_mean, h_sd in protons:
                rows.append(((n_ppm, rng.normal(h_mean, h_sd)), ("N", "H"), factor, res, kind))
    ndim = len(exp.nuclei)
    records = []
    for ppm, atoms, weight, res, label in rows:
        rec = {f"ppm_{k}": float(ppm[k]) for k in range(ndim)}
        rec.update({f"atom_{k}": atoms[k] for k in range(ndim)})
        rec.update(weight=float(weight), residue=int(res["seq_id"]), aa=str(res["aa"]), label=label)
        records.append(rec)
    columns = [f"ppm_{k}" for k in range(ndim)] + [f"atom_{k}" for k in range(ndim)]
    columns += ["weight", "residue", "aa", "label"]
    return pd.DataFrame.from_records(records, columns=columns)


# --------------------------------------------------------------------------- rendering


def _profiles(centres_pt: np.ndarray, fwhm_pt: np.ndarray, size: int, lineshape: str) -> np.ndarray:
    x = np.arange(size, dtype=np.float64)[None, :] - centres_pt[:, None]
    u = x / fwhm_pt[:, None]
    if lineshape == "lorentzian":
        return 1.0 / (1.0 + 4.0 * u * u)
    return np.exp(-4.0 * np.log(2.0) * u * u)


def _separable_sum(profiles: list, heights: np.ndarray, shape: tuple, *, budget_bytes: int = 64 << 20) -> np.ndarray:
    # sum_p h_p * prod_k L_pk(i_k) as a matrix product (outer of the leading axes)^T @ (last axis),
    # in slabs of axis 0 so the (peaks x slab) intermediate stays within the memory budget.
    n_peaks = len(heights)
    if n_peaks == 0:
        return np.zeros(shape, dtype=np.float32)
    out = np.empty(shape, dtype=np.float32)
    if len(shape) == 1:
        out[:] = heights @ profiles[0]
        return out
    first = profiles[0] * heights[:, None]
    middle, last = profiles[1:-1], profiles[-1]
    n_middle = int(np.prod([m.shape[1] for m in middle], dtype=np.int64))
    per_row = (max(1, n_peaks) + shape[-1]) * n_middle * 8  # float64 outer block + product slab
    rows = max(1, budget_bytes // per_row)
    for i0 in range(0, shape[0], rows):
        block = first[:, i0 : i0 + rows]
        for m in middle:
            block = block[..., None] * m.reshape((n_peaks,) + (1,) * (block.ndim - 1) + (m.shape[1],))
        out[i0 : i0 + rows] = (block.reshape(n_peaks, -1).T @ last).reshape((block.shape[1],) + shape[1:])
    return out


def render(
    peaks: pd.DataFrame,
    axes: Sequence[Axis],
    *,
    linewidths_hz,
    lineshape: Lineshape = "lorentzian",
    noise_sd: float,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Draw peaks on the point grid of ``axes`` and add white Gaussian noise.

    Each peak is a product of one lineshape per axis, ``height * prod_k L(i_k; c_k, w_k)`` with
    ``L = 1 / (1 + (2 (i - c) / w)^2)`` (Lorentzian) or ``exp(-4 ln2 ((i - c) / w)^2)`` (Gaussian)
    evaluated at the point centres, centre ``c_k = axes[k].ppm_to_index(ppm_k)`` and FWHM
    ``w_k = linewidth_hz / axes[k].hz_per_point`` points. Peaks whose centre lies outside the grid
    still contribute their tails.

    Parameters
    ----------
    peaks : DataFrame
        Columns ``ppm_0 .. ppm_{d-1}`` (ppm, array order) and ``height`` (signed).
    axes : sequence of Axis
        The grid; ``d = len(axes)``.
    linewidths_hz : array_like, shape (d,) or (n_peaks, d)
        FWHM per axis (or per peak and axis), Hz.
    lineshape : {'lorentzian', 'gaussian'}
        Line shape.
    noise_sd : float
        Standard deviation of the added noise (height units); 0 for none.
    rng : numpy.random.Generator or None
        Noise source; may be None only when ``noise_sd == 0``.

    Returns
    -------
    ndarray, float32, shape ``tuple(a.size for a in axes)``
    """
    axes = tuple(axes)
    if not axes or not all(isinstance(a, Axis) for a in axes):
        raise TypeError("axes must be a non-empty sequence of Axis")
    if not isinstance(peaks, pd.DataFrame):
        raise TypeError(f"peaks must be a pandas DataFrame, got {type(peaks).__name__}")
    ndim = len(axes)
    needed = [f"ppm_{k}" for k in range(ndim)] + ["height"]
    missing = [c for c in needed if c not in peaks.columns]
    if missing:
        raise ValueError(f"peaks lacks the columns {missing}")
    if lineshape not in ("lorentzian", "gaussian"):
        raise ValueError(f"lineshape must be 'lorentzian' or 'gaussian', got {lineshape!r}")
    widths = np.asarray(linewidths_hz, dtype=np.float64)
    if widths.ndim == 1:
        widths = np.broadcast_to(widths, (len(peaks), ndim))
    if widths.shape != (len(peaks), ndim):
        raise ValueError(f"linewidths_hz must have shape ({ndim},) or ({len(peaks)}, {ndim}), got {widths.shape}")
    if not (np.isfinite(widths).all() and (widths > 0).all()):
        raise ValueError("linewidths_hz must be finite and > 0")
    if isinstance(noise_sd, bool) or not np.isfinite(noise_sd) or noise_sd < 0:
        raise ValueError(f"noise_sd must be finite and >= 0, got {noise_sd}")
    if noise_sd > 0:
        _validate_rng(rng)
    heights = peaks["height"].to_numpy(dtype=np.float64)
    shape = tuple(a.size for a in axes)
    profiles = [
        _profiles(
            axes[k].ppm_to_index(peaks[f"ppm_{k}"].to_numpy(dtype=np.float64)),
            widths[:, k] / axes[k].hz_per_point,
            axes[k].size,
            lineshape,
        )
        for k in range(ndim)
    ]
    data = _separable_sum(profiles, heights, shape)
    if noise_sd > 0:
        data += rng.standard_normal(shape, dtype=np.float32) * np.float32(noise_sd)
    return data


def _in_window(peaks: pd.DataFrame, axes: tuple[Axis, ...]) -> pd.DataFrame:
    keep = np.ones(len(peaks), dtype=bool)
    for k, a in enumerate(axes):
        idx = a.ppm_to_index(peaks[f"ppm_{k}"].to_numpy(dtype=np.float64))
        keep &= (idx >= -0.5) & (idx <= a.size - 0.5)
    return peaks[keep].reset_index(drop=True)


def _mass_kda(protein_df: pd.DataFrame) -> float:
    return int(protein_df["aa"].isin(STANDARD_AA).sum()) * DALTON_PER_RESIDUE / 1000.0


def _protein_label(protein_df: pd.DataFrame) -> str:
    if "bmrb_id" in protein_df.columns and len(protein_df):
        return protein_name(protein_df["bmrb_id"].iloc[0])
    return "unknown"


def _render_at(peaks, experiment, axes, field_mhz, mass_kda, *, lineshape, noise_sd, rng, meta) -> Spectrum:
    widths = peak_linewidths_hz(peaks, experiment, field_mhz, mass_kda=mass_kda)
    ref = peak_linewidths_hz(peaks, experiment, REFERENCE_FIELD_MHZ, mass_kda=mass_kda)
    # Volumes in ppm space are field independent: height scales with (ppm width at 900) / (ppm width here).
    ppm_ratio = np.prod(ref / widths * (field_mhz / REFERENCE_FIELD_MHZ), axis=1) if len(peaks) else np.ones(0)
    heights = peaks["weight"].to_numpy(dtype=np.float64) * ppm_ratio
    sd = noise_sd_volume_scale(field_mhz, len(axes), noise_sd)
    data = render(peaks.assign(height=heights), axes, linewidths_hz=widths, lineshape=lineshape, noise_sd=sd, rng=rng)
    return Spectrum(
        data,
        axes,
        meta={**meta, "experiment": experiment, "field_mhz": float(field_mhz), "n_peaks": int(len(peaks)),
              "noise_sd": sd, "lineshape": lineshape, "source": "synthetic"},
    )


def render_spectrum(
    protein_df: pd.DataFrame,
    experiment: str,
    field_mhz: float,
    *,
    sizes=None,
    windows=None,
    rng: np.random.Generator,
    noise_sd: float = NOISE_SD_900,
    lineshape: Lineshape = "lorentzian",
) -> Spectrum:
    """Render one experiment of one protein at one field.

    Parameters
    ----------
    protein_df : DataFrame
        One protein's shifts (see :func:`peak_list`).
    experiment : str
        One of :data:`mssr.data.physics.EXPERIMENTS`.
    field_mhz : float
        1H frequency of the magnet, MHz.
    sizes, windows : optional
        Points per axis and (centre, width) ppm windows per axis; default per experiment.
    rng : numpy.random.Generator
        Draws side-chain shifts, intensities and noise.
    noise_sd : float
        Noise SD at 900 MHz relative to a unit peak; at other fields
        :func:`mssr.data.physics.noise_sd_volume_scale` (peak-height S/N ~ B0^(3/2) for lines of
        equal Hz width).
    lineshape : {'lorentzian', 'gaussian'}

    Returns
    -------
    Spectrum
        float32 data; meta ``protein`` ('bmrb4032'), ``experiment``, ``field_mhz``, ``n_peaks``
        (peaks whose centre lies in the window), ``noise_sd`` (at this field), ``lineshape``,
        ``source`` ('synthetic').
    """
    field_mhz = validate_field("field_mhz", field_mhz)
    axes = experiment_axes(experiment, field_mhz, sizes=sizes, windows=windows)
    peaks = _in_window(peak_list(protein_df, experiment, rng=rng), axes)
    return _render_at(peaks, experiment, axes, field_mhz, _mass_kda(protein_df), lineshape=lineshape,
                      noise_sd=noise_sd, rng=rng, meta={"protein": _protein_label(protein_df)})


def render_pair(
    protein_df: pd.DataFrame,
    experiment: str,
    high_mhz: float,
    low_mhz: float,
    *,
    rng: np.random.Generator,
    sizes=None,
    windows=None,
    noise_sd: float = NOISE_SD_900,
    lineshape: Lineshape = "lorentzian",
    domain: Domain = "time",
) -> tuple[Spectrum, Spectrum]:
    """The same protein and peaks recorded at two fields, on the same ppm grid.

    One peak list (shifts, side-chain draws and intensities) is rendered twice, once per field.

    ``domain='time'`` (default; the 2D experiments of :data:`mssr.data.timedomain.ACQUISITIONS`:
    ``hsqc_15n``, ``trosy_15n``): each field is recorded as FIDs with per-peak R2 from the
    protein's mass and the field, its own spectral width in Hz and acquisition, processed with
    nmrglue and put onto the grid (:func:`mssr.data.timedomain.render_pair`). TROSY uses the HSQC
    window and peaks without the Asn/Gln NH2 side chains (their TROSY multiplets are not modelled).
    ``domain='frequency'``: the lines of :func:`render` drawn on the grid at each field's Hz
    widths (any experiment; ``lineshape`` applies only here).

    The grid is the experiment's at ``high_mhz`` (``sizes``, ``windows``), the low-field spectrum
    on its ppm points (:meth:`Axis.at_field`). Other parameters as in :func:`render_spectrum`;
    ``noise_sd`` is the noise SD at 900 MHz relative to a unit-weight peak.

    Returns
    -------
    (Spectrum, Spectrum)
        High-field and low-field spectrum; meta as in :func:`render_spectrum` plus ``pair``
        (``'high'`` / ``'low'``) and ``domain``.
    """
    high_mhz = validate_field("high_mhz", high_mhz)
    low_mhz = validate_field("low_mhz", low_mhz)
    if not high_mhz > low_mhz:
        raise ValueError(f"high_mhz ({high_mhz}) must be greater than low_mhz ({low_mhz})")
    if domain not in ("time", "frequency"):
        raise ValueError(f"domain must be 'time' or 'frequency', got {domain!r}")
    if domain == "time":
        high, lows = render_field_series(protein_df, experiment, high_mhz, [low_mhz], rng=rng, sizes=sizes,
                                         windows=windows, noise_sd=noise_sd)
        return high, lows[0]
    meta = {"protein": _protein_label(protein_df)}
    mass = _mass_kda(_validate_protein_df(protein_df))
    axes_high = experiment_axes(experiment, high_mhz, sizes=sizes, windows=windows)
    axes_low = tuple(a.at_field(low_mhz) for a in axes_high)
    peaks = _in_window(peak_list(protein_df, experiment, rng=rng), axes_high)
    kw = dict(lineshape=lineshape, noise_sd=noise_sd, rng=rng)
    high = _render_at(peaks, experiment, axes_high, high_mhz, mass, meta={**meta, "pair": "high", "domain": "frequency"}, **kw)
    low = _render_at(peaks, experiment, axes_low, low_mhz, mass, meta={**meta, "pair": "low", "domain": "frequency"}, **kw)
    return high, low


def render_field_series(
    protein_df: pd.DataFrame,
    experiment: str,
    high_mhz: float,
    low_mhzs: Sequence[float],
    *,
    rng: np.random.Generator,
    low_rngs: Sequence[np.random.Generator] | None = None,
    sizes=None,
    windows=None,
    noise_sd: float = NOISE_SD_900,
) -> tuple[Spectrum, list[Spectrum]]:
    """One protein recorded in the time domain at a high field and at several lower ones.

    One peak list (drawn with ``rng``) is recorded once at ``high_mhz`` and once per low field
    with :func:`mssr.data.timedomain.render_pair`'s physics, every spectrum on the experiment's
    grid at ``high_mhz`` (``sizes``, ``windows``; ppm kept). TROSY uses the HSQC window and peaks
    without the Asn/Gln NH2 side chains (their TROSY multiplets are not modelled).

    Parameters
    ----------
    protein_df : DataFrame
        One protein's shifts (see :func:`peak_list`); its mass (110 Da per residue) sets R2.
    experiment : str
        ``'hsqc_15n'`` or ``'trosy_15n'`` (:data:`mssr.data.timedomain.ACQUISITIONS`).
    high_mhz : float
        1H frequency of the truth, MHz.
    low_mhzs : sequence of float
        Lower 1H frequencies, MHz (each < ``high_mhz``).
    rng : numpy.random.Generator
        Draws the peak list and the high-field noise.
    low_rngs : sequence of numpy.random.Generator, optional
        Noise source per low field (default: ``rng``, in order).
    noise_sd : float
        Noise SD at 900 MHz relative to a unit-weight peak (S/N ``1 / noise_sd``).

    Returns
    -------
    (Spectrum, list of Spectrum)
        The high-field spectrum and one low-field spectrum per entry of ``low_mhzs``; meta
        ``protein``, ``experiment``, ``field_mhz``, ``n_peaks``, ``pair`` ('high' / 'low'),
        ``domain`` ('time'), ``source`` ('timedomain') and the acquisition (``points``, ``t_acq_s``).
    """
    from mssr.data import timedomain

    if experiment not in timedomain.ACQUISITIONS:
        raise ValueError(f"experiment {experiment!r} has no time-domain renderer; expected one of "
                         f"{sorted(timedomain.ACQUISITIONS)} (or domain='frequency')")
    high_mhz = validate_field("high_mhz", high_mhz)
    lows = [validate_field("low_mhzs[]", f) for f in low_mhzs]
    bad = [f for f in lows if not f < high_mhz]
    if bad:
        raise ValueError(f"low_mhzs must all be below high_mhz ({high_mhz}), got {bad}")
    if low_rngs is not None and len(low_rngs) != len(lows):
        raise ValueError(f"low_rngs has {len(low_rngs)} entries for {len(lows)} low fields")
    protein_df = _validate_protein_df(protein_df)
    _validate_rng(rng)
    axes = experiment_axes("hsqc_15n", high_mhz, sizes=sizes, windows=windows)
    peaks = _in_window(peak_list(protein_df, "hsqc_15n", rng=rng), axes)
    if experiment == "trosy_15n":
        peaks = peaks[peaks["label"] != "NH2"].reset_index(drop=True)
    mass = _mass_kda(protein_df)
    meta = {"protein": _protein_label(protein_df), "experiment": experiment, "n_peaks": int(len(peaks)),
            "domain": "time"}
    kw = dict(mass_kda=mass, noise_sd=noise_sd)

    def one(field, tag, source_rng):
        own = timedomain.render(peaks, experiment, field, rng=source_rng, crop_ppm=timedomain.grid_crop(axes), **kw)
        spectrum = timedomain.to_grid(own, [a.at_field(field) for a in axes])
        return spectrum.with_data(spectrum.data, **meta, pair=tag)

    high = one(high_mhz, "high", rng)
    low_list = [one(f, "low", rng if low_rngs is None else low_rngs[k]) for k, f in enumerate(lows)]
    return high, low_list
