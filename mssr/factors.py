"""Spectrometer field pairs and upscaling factors (the paper's Table 1).

The paper pairs proton frequencies of 400, 500, 600, 700, 800 and 900 MHz. Every pair
(high > low) defines an upscaling factor ``f = high / low``; the 15 pairs give 14 unique factors
(900/600 and 600/400 both give 3/2). MSSR conditions its network on the class index of ``f``.

The paper prints 1.78 for 900/500 MHz; the exact ratio is 9/5 = 1.80, which is what this module
reports.
"""

from __future__ import annotations

from fractions import Fraction
from numbers import Real

FIELDS_MHZ: tuple[int, ...] = (400, 500, 600, 700, 800, 900)
"""Proton spectrometer frequencies of Table 1, MHz."""

FIELD_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (high, low) for high in FIELDS_MHZ for low in FIELDS_MHZ if high > low
)
"""The 15 (high MHz, low MHz) pairs of Table 1."""

FACTORS: tuple[Fraction, ...] = tuple(sorted({Fraction(h, lo) for h, lo in FIELD_PAIRS}))
"""The 14 unique upscaling factors, exact, ascending."""

# The value printed in the paper's Table 1 where it differs from the exact ratio.
PAPER_PRINTED = {(900, 500): "1.78"}


def _validate_factor(factor) -> Fraction:
    if isinstance(factor, bool) or not isinstance(factor, (Real, str)):
        raise TypeError(f"factor must be a number or a label such as '2.250', got {type(factor).__name__}")
    if isinstance(factor, str):
        try:
            value = float(factor)
        except ValueError as exc:
            raise ValueError(f"factor label {factor!r} is not a number") from exc
    else:
        value = factor
    for known in FACTORS:
        if abs(float(known) - float(value)) < 5e-4:
            return known
    raise ValueError(
        f"factor {factor} is not one of the 14 Table-1 factors: "
        + ", ".join(factor_label(f) for f in FACTORS)
    )


def as_factor(factor) -> Fraction:
    """Return the exact Table-1 factor closest (within 5e-4) to ``factor``.

    Parameters
    ----------
    factor : float, Fraction or str
        A factor value (``2.25``), exact ratio (``Fraction(9, 4)``) or label (``'2.250'``).

    Returns
    -------
    Fraction
        The exact factor.

    Raises
    ------
    ValueError
        If no Table-1 factor is within 5e-4 of ``factor``.
    """
    return _validate_factor(factor)


def factor_to_class(factor) -> int:
    """Class index 0..13 of a Table-1 factor (ascending order)."""
    return FACTORS.index(_validate_factor(factor))


def class_to_factor(index: int) -> Fraction:
    """Table-1 factor of class ``index`` (0..13)."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    if not 0 <= index < len(FACTORS):
        raise ValueError(f"index must be in 0..{len(FACTORS) - 1}, got {index}")
    return FACTORS[index]


def factor_label(factor) -> str:
    """Path-safe label of a factor with three decimals, e.g. ``'2.250'``."""
    return f"{float(Fraction(factor)):.3f}"


FACTOR_LABELS: tuple[str, ...] = tuple(factor_label(f) for f in FACTORS)
"""Labels of :data:`FACTORS`, used in file paths and wildcards."""


def pairs_for(factor) -> list[tuple[int, int]]:
    """All Table-1 (high MHz, low MHz) pairs that give ``factor``."""
    exact = _validate_factor(factor)
    return [(h, lo) for h, lo in FIELD_PAIRS if Fraction(h, lo) == exact]


def table1() -> list[dict]:
    """Table 1 recomputed: one row per field pair.

    Returns
    -------
    list of dict
        Keys ``high_mhz``, ``low_mhz``, ``factor`` (exact ratio as a string ``'9/4'``),
        ``factor_value`` (float), ``label`` (3 decimals), ``class_index`` and ``paper_printed``
        (the value the paper prints where it differs, else ``''``).
    """
    rows = []
    for high, low in sorted(FIELD_PAIRS, key=lambda p: (Fraction(*p), -p[0])):
        f = Fraction(high, low)
        rows.append(
            {
                "high_mhz": high,
                "low_mhz": low,
                "factor": f"{f.numerator}/{f.denominator}",
                "factor_value": float(f),
                "label": factor_label(f),
                "class_index": factor_to_class(f),
                "paper_printed": PAPER_PRINTED.get((high, low), ""),
            }
        )
    return rows


def format_table1() -> str:
    """Table 1 as aligned text, with a note where the paper's printed value is off."""
    lines = ["high MHz  low MHz  factor  exact  class"]
    for r in table1():
        note = f"   (paper prints {r['paper_printed']})" if r["paper_printed"] else ""
        lines.append(
            f"{r['high_mhz']:>8}  {r['low_mhz']:>7}  {r['factor_value']:>6.3f}  {r['factor']:>5}"
            f"  {r['class_index']:>5}{note}"
        )
    lines.append(f"{len(FIELD_PAIRS)} field pairs, {len(FACTORS)} unique factors (3/2 occurs twice).")
    return "\n".join(lines)


def factors_on_host(factors, n: int | None = None, *, sequences: bool = True):
    """Upscaling factors, one per spectrum, checked and returned as a float64 CPU tensor of shape (n,).

    Factors are per-sample metadata: they are checked on the host, where the sampling and
    training loops keep them.

    Parameters
    ----------
    factors : torch.Tensor or sequence of float
        ``high MHz / low MHz`` of each spectrum (dimensionless, finite, >= 1).
    n : int, optional
        The number of spectra; None: any 1-D length.
    sequences : bool
        Accept a sequence of numbers as well as a tensor.

    Returns
    -------
    torch.Tensor
        float64, shape (n,), on the CPU.

    Raises
    ------
    TypeError
        If ``factors`` is not a real tensor (or, with ``sequences``, a sequence of numbers).
    ValueError
        If its shape is not (n,) or a factor is not finite or is below 1.
    """
    import numpy as np
    import torch

    if isinstance(factors, torch.Tensor):
        if factors.dtype == torch.bool or factors.is_complex():
            raise TypeError(f"factors must be a real tensor, got dtype {factors.dtype}")
        host = factors.detach().to("cpu", torch.float64)
    elif not sequences:
        raise TypeError(f"factors must be a torch.Tensor, got {type(factors).__name__}")
    else:
        try:
            host = torch.as_tensor(np.asarray(factors, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"factors must be a sequence of numbers, got {type(factors).__name__}") from exc
    if host.ndim != 1 or (n is not None and host.shape[0] != n):
        wanted = "B" if n is None else n
        raise ValueError(f"factors must have shape ({wanted},) (one per spectrum), got {tuple(host.shape)}")
    if not torch.isfinite(host).all() or (host < 1.0).any():
        raise ValueError(f"factors must be finite and >= 1 (high MHz / low MHz), got {host.tolist()}")
    return host
