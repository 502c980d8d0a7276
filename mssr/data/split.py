"""Train/validation/test splits by protein.

All spectra and projections of one protein land in one split: planes of the same protein share
peak positions, so splitting by spectrum would leak test peaks into training.

Counts per split (``n`` proteins, fractions ``f``)
--------------------------------------------------
1. Largest remainder: each split gets ``floor(n f)``; the proteins left over go to the splits
   with the largest remainders ``n f - floor(n f)`` (ties: train, val, test).
2. With ``n >= 3``, every split with ``f > 0`` gets at least one protein, taken from the split
   that has the most.
3. With ``n < 3`` not every split can be filled: one protein goes to train, a second one to test
   (to val if the test fraction is 0).

The proteins are sorted, shuffled with ``numpy.random.default_rng(seed)`` and dealt out in the
order train, val, test, so the result depends on the set of proteins and the seed only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from mssr.atomic import write_text
from mssr.data.store import read_samples, write_samples

log = logging.getLogger(__name__)

SplitName = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


def _validate_fractions(fractions) -> tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
    except TypeError as exc:
        raise TypeError(f"fractions must be a sequence of three numbers, got {fractions!r}") from exc
    if len(values) != 3:
        raise ValueError(f"fractions must have three entries (train, val, test), got {fractions!r}")
    if not all(np.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"fractions must be finite and >= 0, got {fractions!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions!r} (sum {sum(values)})")
    if values[0] == 0:
        raise ValueError("fractions: the train fraction must be > 0")
    return values


def split_counts(n: int, fractions) -> tuple[int, int, int]:
    """Number of proteins per split (train, val, test) by the rules of the module notes."""
    fractions = _validate_fractions(fractions)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if n < 3:
        counts = [min(n, 1), 0, 0]
        if n == 2:
            counts[2 if fractions[2] > 0 else 1 if fractions[1] > 0 else 0] += 1
        return tuple(counts)
    quotas = [n * f for f in fractions]
    counts = [int(np.floor(q)) for q in quotas]
    by_remainder = sorted(range(3), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    for i in range(3):
        if fractions[i] > 0 and counts[i] == 0:
            donor = max(range(3), key=lambda k: (counts[k], -k))
            counts[donor] -= 1
            counts[i] += 1
    return tuple(counts)


def assign_splits(proteins, *, fractions=(0.8, 0.1, 0.1), seed: int) -> dict[str, str]:
    """Assign every protein to 'train', 'val' or 'test'.

    Parameters
    ----------
    proteins : iterable of str
        Protein names; repeats are allowed (one entry per sample) and count once.
    fractions : (float, float, float)
        Train, val, test fractions of the proteins; sum 1, train > 0.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    dict of str to str
        Protein -> split name, sorted by protein.
    """
    names = sorted({str(p) for p in proteins})
    counts = split_counts(len(names), fractions)
    order = np.random.default_rng(seed).permutation(len(names))
    labels = np.repeat(np.array(SPLITS), counts)
    assignment = {names[i]: str(label) for i, label in zip(order, labels)}
    return dict(sorted(assignment.items()))


def split_file(samples_h5, out_dir, *, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict:
    """Split a sample set by protein into ``train.h5``, ``val.h5``, ``test.h5`` and ``split.json``.

    Parameters
    ----------
    samples_h5 : str or Path
        Sample set whose headers carry ``meta['protein']`` (:func:`mssr.data.preprocess.preprocess_file`).
    out_dir : str or Path
        Output folder.
    fractions : (float, float, float)
        Train, val, test fractions of the proteins.
    seed : int
        Seed of the assignment.

    Returns
    -------
    dict
        The content of ``split.json``: ``seed``, ``fractions``, ``assignment`` (protein -> split),
        ``counts`` (per split: ``proteins``, ``samples``) and ``source``. Every file is written
        atomically; an empty split gets a file with zero samples.

    Raises
    ------
    ValueError
        A sample has no protein, or the file holds further arrays beside ``x`` (their layout is
        not known here, so they are not split silently).
    """
    samples_h5 = Path(samples_h5)
    out_dir = Path(out_dir)
    data = read_samples(samples_h5)
    if data.extra:
        raise ValueError(
            f"{samples_h5}: holds arrays {sorted(data.extra)} beside 'x'; split the sample set before adding them"
        )
    proteins = data.meta("protein")
    missing = [i for i, p in enumerate(proteins) if p in (None, "")]
    if missing:
        raise ValueError(f"{samples_h5}: samples {missing[:5]} have no meta 'protein'")
    assignment = assign_splits(proteins, fractions=fractions, seed=seed)
    sample_split = np.array([assignment[str(p)] for p in proteins])
    counts = {}
    for name in SPLITS:
        idx = np.flatnonzero(sample_split == name)
        write_samples(out_dir / f"{name}.h5", data.x[idx], [data.headers[i] for i in idx],
                      attrs={**data.attrs, "stage": "split", "split": name, "seed": seed})
        counts[name] = {"proteins": sum(1 for s in assignment.values() if s == name), "samples": int(idx.size)}
        log.info("%s: %d proteins, %d samples", name, counts[name]["proteins"], counts[name]["samples"])
    record = {"seed": seed, "fractions": list(_validate_fractions(fractions)), "assignment": assignment,
              "counts": counts, "source": str(samples_h5)}
    write_text(out_dir / "split.json", json.dumps(record, indent=1))
    return record
