"""Demo spectra rendered from real assigned protein chemical shifts.

The shifts come from RefDB (re-referenced BMRB assignments) as shipped by the ``makeshift-nmr``
package: ``makeshift/data/refdb/refdb_backbone.csv`` with one row per residue and the columns
``bmrb_id, pdb_id, seq_id, aa, ss, H, HA, N, CA, CB, C`` (ppm).

Each experiment turns a protein's shift table into a peak list by the residue rules of
triple-resonance NMR (:func:`peak_list`), then :func:`render` draws the peaks on a ppm grid with
linewidths in Hz that depend on the field, and adds Gaussian noise whose standard deviation falls
with the field so that the sensitivity grows as B0^(3/2).

Physical model (estimates, see NMR_NOTES.md)
--------------------------------------------
* Natural linewidth (FWHM, Hz) per atom: ``LW(B) = (dipolar + csa_900 * (B / 900 MHz)^2) * M / 20 kDa``
  with the protein mass ``M`` (110 Da per residue): relaxation rates grow with the rotational
  correlation time, which grows with the mass. For 20 kDa: 15N 4.1 Hz at 400 MHz and 5.9 Hz at
  900 MHz; 13Ca and 13Cb ~14 Hz at any field; 13C' CSA dominated (3.6 Hz at 400, 10 Hz at
  900 MHz, narrower in ppm at low field); amide 1H 17.6 Hz at 400 and 20 Hz at 900 MHz.
* Acquisition: a time-domain signal recorded for ``t_max`` seconds cannot resolve lines narrower
  than about ``1 / t_max``; that width (fixed in Hz, the same at every field) is added to the
  natural one. In the indirect dimensions of 3D experiments it dominates (100-143 Hz).
* Lineshapes are Lorentzian (or Gaussian) sampled at the point centres.
* Peak volumes in ppm space are field independent: a line that is broader in ppm is lower.
  Heights equal the relative intensity at 900 MHz. Sensitivity: the peak-height S/N of a line grows
  as B0^(3/2) for lines of equal Hz width and as 1 / (Hz width) per axis (the peak height of a
  Lorentzian of fixed area in Hz), each spectrum in its own units. On the volume-keeping ppm scale
  used here, where a line of width ``LW`` Hz has height ``prod_k 1 / (LW_k / MHz_k)``, that makes
  the noise SD ``noise_sd * (B / 900)^(d - 3/2)`` for a d-dimensional spectrum, whatever the widths
  (:func:`noise_sd_volume_scale`). (Before this was ``noise_sd * (900 / B)^(3/2)``, which on the
  lowered heights counted the sensitivity loss twice: S/N ~ B0^(3/2 + d) for lines fixed in Hz.)
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

import hashlib
import importlib.resources
import io as _stdio
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from mssr.atomic import write_text
from mssr.spectrum import Axis, Spectrum

Lineshape = Literal["lorentzian", "gaussian"]
FieldMode = Literal["range", "choice"]
Domain = Literal["time", "frequency"]

REFERENCE_FIELD_MHZ = 900.0
"""Field at which peak heights equal their relative intensity and ``noise_sd`` applies, MHz."""

NOISE_SD_900 = 0.02
"""Default noise SD at 900 MHz relative to a unit peak height (SNR 50)."""

STANDARD_FIELDS_MHZ: tuple[int, ...] = (400, 500, 600, 700, 750, 800, 850, 900, 950, 1000, 1100, 1200)
"""1H frequencies of commercial NMR magnets, MHz: a field range draws among these."""

DALTON_PER_RESIDUE = 110.0

# (dipolar Hz, CSA Hz at 900 MHz) for a 20 kDa protein; estimates from a simple relaxation model.
NATURAL_LINEWIDTH_HZ: dict[str, tuple[float, float]] = {
    "H": (17.0, 3.0),
    "N": (3.657, 2.243),  # 4.1 Hz at 400 MHz, 5.9 Hz at 900 MHz
    "CA": (14.0, 0.5),
    "CB": (14.0, 0.5),
    "C": (2.0, 8.0),
}

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


@dataclass(frozen=True)
class Experiment:
    """How one experiment is recorded.

    Attributes
    ----------
    nuclei : tuple of str
        Nucleus per axis in array order (last = directly detected 1H).
    windows : tuple of (float, float)
        (centre ppm, width ppm) per axis.
    sizes : tuple of int
        Default number of points per axis.
    t_max_ms : tuple of float
        Acquisition time per axis, ms; adds ``1 / t_max`` Hz to the linewidth.
    """

    nuclei: tuple[str, ...]
    windows: tuple[tuple[float, float], ...]
    sizes: tuple[int, ...]
    t_max_ms: tuple[float, ...]


_H = (8.5, 6.0)  # amide 1H: 11.5 .. 5.5 ppm, the region usually extracted after processing; holds
# backbone, Asn/Gln NH2 and Trp indole peaks
_N = (119.0, 30.0)
_CACB = (46.0, 60.0)  # 76 .. 16 ppm: Thr Cb (~70) to Ala Cb (~19)

EXPERIMENTS: dict[str, Experiment] = {
    "hsqc_15n": Experiment(("15N", "1H"), (_N, _H), (128, 256), (64.0, 100.0)),
    "hnca": Experiment(("13C", "15N", "1H"), ((53.5, 28.0), _N, _H), (48, 32, 128), (7.0, 10.0, 100.0)),
    "hnco": Experiment(("13C", "15N", "1H"), ((177.0, 10.0), _N, _H), (48, 32, 128), (10.0, 10.0, 100.0)),
    "hncacb": Experiment(("13C", "15N", "1H"), (_CACB, _N, _H), (48, 32, 128), (7.0, 10.0, 100.0)),
    "cbcaconh": Experiment(("13C", "15N", "1H"), (_CACB, _N, _H), (48, 32, 128), (7.0, 10.0, 100.0)),
}
"""Rendered experiments: windows as NMR_NOTES.md "Typical windows" (13C of HNCACB/CBCA(CO)NH
widened to hold the Cb shifts); acquisition times typical of protein triple-resonance work."""

# Carbon peaks of residue i's amide strip: (atom, residue offset, relative signed intensity).
_STRIP_CARBONS: dict[str, tuple[tuple[str, int, float], ...]] = {
    "hnca": (("CA", 0, 1.0), ("CA", -1, 0.5)),
    "hnco": (("C", -1, 1.0),),
    "hncacb": (("CA", 0, 1.0), ("CB", 0, -0.6), ("CA", -1, 0.5), ("CB", -1, -0.3)),
    "cbcaconh": (("CA", -1, 1.0), ("CB", -1, 0.6)),
}


# --------------------------------------------------------------------------- validation


def _validate_experiment(experiment) -> Experiment:
    if not isinstance(experiment, str):
        raise TypeError(f"experiment must be a str, got {type(experiment).__name__}")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment {experiment!r} is not rendered; expected one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[experiment]


def _validate_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _validate_field(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (MHz), got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0 MHz, got {value}")
    return float(value)


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


def _validate_sizes(sizes, exp: Experiment) -> tuple[int, ...]:
    if sizes is None:
        return exp.sizes
    sizes = tuple(sizes)
    if len(sizes) != len(exp.nuclei):
        raise ValueError(f"sizes must have {len(exp.nuclei)} entries (one per axis), got {sizes}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 2 for s in sizes):
        raise ValueError(f"sizes must be ints >= 2, got {sizes}")
    return tuple(int(s) for s in sizes)


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
        One of :data:`EXPERIMENTS`.
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
    exp = _validate_experiment(experiment)
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


# --------------------------------------------------------------------------- physics


def natural_linewidth_hz(atom: str, field_mhz: float, *, mass_kda: float = 20.0) -> float:
    """Relaxation-limited FWHM of one atom's line, Hz (see the module notes; estimates).

    Parameters
    ----------
    atom : str
        'H', 'N', 'CA', 'CB' or 'C' (carbonyl).
    field_mhz : float
        1H frequency of the magnet, MHz.
    mass_kda : float
        Protein mass, kDa; widths scale linearly with it.
    """
    if atom not in NATURAL_LINEWIDTH_HZ:
        raise ValueError(f"atom must be one of {sorted(NATURAL_LINEWIDTH_HZ)}, got {atom!r}")
    field_mhz = _validate_field("field_mhz", field_mhz)
    dipolar, csa = NATURAL_LINEWIDTH_HZ[atom]
    return (dipolar + csa * (field_mhz / REFERENCE_FIELD_MHZ) ** 2) * float(mass_kda) / 20.0


def peak_linewidths_hz(peaks: pd.DataFrame, experiment: str, field_mhz: float, *, mass_kda: float) -> np.ndarray:
    """FWHM of every peak along every axis, Hz: natural + acquisition-limited ``1 / t_max``.

    Returns
    -------
    ndarray, shape (n_peaks, ndim)
    """
    exp = _validate_experiment(experiment)
    ndim = len(exp.nuclei)
    widths = np.empty((len(peaks), ndim))
    for k in range(ndim):
        acquisition_hz = 1000.0 / exp.t_max_ms[k]
        natural = {a: natural_linewidth_hz(a, field_mhz, mass_kda=mass_kda) for a in NATURAL_LINEWIDTH_HZ}
        widths[:, k] = [natural[a] + acquisition_hz for a in peaks[f"atom_{k}"]]
    return widths


def noise_sd_at(field_mhz: float, noise_sd: float = NOISE_SD_900) -> float:
    """Noise SD at ``field_mhz`` for a given SD at 900 MHz: SNR grows as B0^(3/2).

    This holds for spectra whose peak heights do not change with the field (lines of unchanged
    ppm width, or each spectrum in its own units with lines of equal Hz width). The rendered
    spectra keep volumes in ppm instead: use :func:`noise_sd_volume_scale`.
    """
    return float(noise_sd) * (REFERENCE_FIELD_MHZ / _validate_field("field_mhz", field_mhz)) ** 1.5


def noise_sd_volume_scale(field_mhz: float, ndim: int, noise_sd: float = NOISE_SD_900) -> float:
    """Noise SD at ``field_mhz`` of a d-dimensional spectrum whose peak volumes in ppm are kept.

    Derivation, per axis k with linewidth ``LW_k(B)`` Hz and nucleus frequency ``MHz_k ~ B``:
    the rendered height is ``h(B) = w prod_k LW_k(900)/MHz_k(900) / (LW_k(B)/MHz_k(B))``; the
    sensitivity rule gives ``S/N(B) = (w / noise_sd) (B/900)^(3/2) prod_k LW_k(900) / LW_k(B)``.
    Their ratio is the noise SD ``h / (S/N) = noise_sd (900/B)^(3/2) prod_k MHz_k(B)/MHz_k(900)
    = noise_sd (B/900)^(d - 3/2)``: the widths cancel.

    Parameters
    ----------
    field_mhz : float
        1H frequency, MHz.
    ndim : int
        Number of axes d.
    noise_sd : float
        Noise SD at 900 MHz relative to a unit peak height.
    """
    field_mhz = _validate_field("field_mhz", field_mhz)
    if isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer)) or ndim < 1:
        raise ValueError(f"ndim must be an int >= 1, got {ndim!r}")
    return float(noise_sd) * (field_mhz / REFERENCE_FIELD_MHZ) ** (int(ndim) - 1.5)


def experiment_axes(experiment: str, field_mhz: float, *, sizes=None, windows=None) -> tuple[Axis, ...]:
    """The axes of an experiment at a field (array order, last = direct 1H).

    Parameters
    ----------
    experiment : str
        One of :data:`EXPERIMENTS`.
    field_mhz : float
        1H frequency, MHz.
    sizes : sequence of int, optional
        Points per axis; defaults to the experiment's.
    windows : sequence of (centre ppm, width ppm), optional
        Per axis; defaults to the experiment's.
    """
    exp = _validate_experiment(experiment)
    field_mhz = _validate_field("field_mhz", field_mhz)
    sizes = _validate_sizes(sizes, exp)
    windows = exp.windows if windows is None else tuple(tuple(w) for w in windows)
    if len(windows) != len(exp.nuclei):
        raise ValueError(f"windows must have {len(exp.nuclei)} (centre, width) entries, got {windows}")
    return tuple(
        Axis.from_ppm_window(nuc, field_mhz, c + w / 2.0, c - w / 2.0, n)
        for nuc, (c, w), n in zip(exp.nuclei, windows, sizes)
    )


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
        One of :data:`EXPERIMENTS`.
    field_mhz : float
        1H frequency of the magnet, MHz.
    sizes, windows : optional
        Points per axis and (centre, width) ppm windows per axis; default per experiment.
    rng : numpy.random.Generator
        Draws side-chain shifts, intensities and noise.
    noise_sd : float
        Noise SD at 900 MHz relative to a unit peak; at other fields
        :func:`noise_sd_volume_scale` (peak-height S/N ~ B0^(3/2) for lines of equal Hz width).
    lineshape : {'lorentzian', 'gaussian'}

    Returns
    -------
    Spectrum
        float32 data; meta ``protein`` ('bmrb4032'), ``experiment``, ``field_mhz``, ``n_peaks``
        (peaks whose centre lies in the window), ``noise_sd`` (at this field), ``lineshape``,
        ``source`` ('synthetic').
    """
    field_mhz = _validate_field("field_mhz", field_mhz)
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
    high_mhz = _validate_field("high_mhz", high_mhz)
    low_mhz = _validate_field("low_mhz", low_mhz)
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
    high_mhz = _validate_field("high_mhz", high_mhz)
    lows = [_validate_field("low_mhzs[]", f) for f in low_mhzs]
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


# --------------------------------------------------------------------------- data set

MANIFEST_COLUMNS = ("protein", "experiment", "path", "format", "ndim", "shape", "nuclei", "field_mhz", "sha256")

_PIPE_SUFFIX = {2: ".ft2", 3: ".ft3", 4: ".ft4"}


def draw_field(rng: np.random.Generator, fields_mhz: Sequence[float], *, mode: FieldMode = "range") -> float:
    """Draw a spectrometer field, MHz.

    ``mode='range'``: ``fields_mhz`` is ``(low, high)`` and the field is drawn uniformly among the
    :data:`STANDARD_FIELDS_MHZ` magnets in that closed range. ``mode='choice'``: drawn uniformly
    from ``fields_mhz`` itself.
    """
    fields = [float(f) for f in fields_mhz]
    if not fields or not all(np.isfinite(f) and f > 0 for f in fields):
        raise ValueError(f"fields_mhz must be positive MHz values, got {fields_mhz}")
    if mode == "range":
        if len(fields) != 2 or fields[0] > fields[1]:
            raise ValueError(f"fields_mhz must be (low, high) MHz for mode='range', got {fields_mhz}")
        fields = [float(f) for f in STANDARD_FIELDS_MHZ if fields[0] <= f <= fields[1]]
        if not fields:
            raise ValueError(f"no standard magnet field ({STANDARD_FIELDS_MHZ}) lies in {fields_mhz}")
    elif mode != "choice":
        raise ValueError(f"mode must be 'range' or 'choice', got {mode!r}")
    return float(fields[int(rng.integers(len(fields)))])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def render_dataset(
    out_dir,
    *,
    n_proteins: int,
    experiments: Sequence[str],
    fields_mhz: Sequence[float] = (600, 950),
    field_mode: FieldMode = "range",
    seed: int,
    formats: Sequence[str] = ("ucsf", "pipe"),
    sizes: dict | None = None,
    windows: dict | None = None,
    noise_sd: float = NOISE_SD_900,
) -> Path:
    """Render a demo data set as real spectrum files with a manifest.

    Proteins are drawn with :func:`pick_proteins`; each gets one field (:func:`draw_field`) and
    every experiment of ``experiments`` rendered at it, written with :func:`mssr.io.write` to
    ``out_dir/<protein>/<experiment>.<ucsf|ft2|ft3>``. The format cycles through ``formats`` with
    (protein index + experiment index), so every experiment appears in every format. Each
    protein's draws come from a generator seeded by ``(seed, bmrb_id, experiment)``: one spectrum
    does not change when the protein or experiment lists change.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    n_proteins : int
        Number of proteins.
    experiments : sequence of str
        Experiment names (:data:`EXPERIMENTS`).
    fields_mhz : sequence of float
        ``(low, high)`` MHz range (``field_mode='range'``) or the fields to choose from.
    field_mode : {'range', 'choice'}
    seed : int
        Seed of the protein and field draws and of the rendering.
    formats : sequence of {'ucsf', 'pipe'}
        File formats to alternate.
    sizes : dict of str to tuple of int, optional
        Points per axis per experiment; defaults to :data:`EXPERIMENTS`.
    windows : dict of str to tuple of (float, float), optional
        (centre ppm, width ppm) per axis per experiment; defaults to :data:`EXPERIMENTS`.
    noise_sd : float
        Noise SD at 900 MHz (see :func:`render_spectrum`).

    Returns
    -------
    Path
        ``out_dir/manifest.csv`` with the columns :data:`MANIFEST_COLUMNS` (``path`` relative to
        ``out_dir``; ``sha256`` of each file), written atomically. Every file is read back
        (shape and nuclei checked) before it is listed; an empty ``quarantine.csv`` is written
        beside the manifest, as the fetch stage does for other sources.
    """
    from mssr import io as mssr_io  # the only module that knows file formats

    out_dir = Path(out_dir)
    experiments = list(experiments)
    if not experiments:
        raise ValueError("experiments must name at least one experiment")
    for e in experiments:
        _validate_experiment(e)
    formats = list(formats)
    bad = [f for f in formats if f not in ("ucsf", "pipe")]
    if not formats or bad:
        raise ValueError(f"formats must be a non-empty sequence of 'ucsf'/'pipe', got {formats}")
    sizes = sizes or {}
    windows = windows or {}
    refdb = load_refdb()
    rows = []
    for p_idx, bmrb_id in enumerate(pick_proteins(n_proteins, seed=seed, refdb=refdb)):
        table = protein_table(refdb, bmrb_id)
        name = protein_name(bmrb_id)
        field = draw_field(np.random.default_rng([seed, bmrb_id]), fields_mhz, mode=field_mode)
        for e_idx, experiment in enumerate(experiments):
            rng = np.random.default_rng([seed, bmrb_id, zlib.crc32(experiment.encode())])
            spectrum = render_spectrum(table, experiment, field, sizes=sizes.get(experiment),
                                       windows=windows.get(experiment), rng=rng, noise_sd=noise_sd)
            fmt = formats[(p_idx + e_idx) % len(formats)]
            suffix = ".ucsf" if fmt == "ucsf" else _PIPE_SUFFIX[spectrum.ndim]
            rel = Path(name) / f"{experiment}{suffix}"
            (out_dir / name).mkdir(parents=True, exist_ok=True)
            mssr_io.write(spectrum, out_dir / rel)
            back = mssr_io.read(out_dir / rel, lazy=True)
            if back.shape != spectrum.shape or back.nuclei != spectrum.nuclei:
                raise ValueError(
                    f"{out_dir / rel}: read back as {back.shape} {back.nuclei}, written as "
                    f"{spectrum.shape} {spectrum.nuclei}"
                )
            rows.append({
                "protein": name,
                "experiment": experiment,
                "path": rel.as_posix(),
                "format": fmt,
                "ndim": spectrum.ndim,
                "shape": "x".join(str(s) for s in spectrum.shape),
                "nuclei": "/".join(spectrum.nuclei),
                "field_mhz": field,
                "sha256": _sha256(out_dir / rel),
            })
    manifest = out_dir / "manifest.csv"
    write_text(manifest, pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).to_csv(index=False))
    # Rendered files cannot be unreadable (each was read back above): the quarantine list is empty.
    write_text(out_dir / "quarantine.csv", pd.DataFrame(columns=["path", "reason"]).to_csv(index=False))
    return manifest
