"""Axes of an opened data set: nucleus from label and frequency, ppm scale, pseudo dimensions."""

from __future__ import annotations

import math
import re

from mssr.io.common import Source, SpectrumFileError
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis

# A nucleus is accepted for an axis when its frequency ratio to 1H matches within this fraction.
_NUCLEUS_RATIO_TOLERANCE = 0.01
_ELEMENT_NUCLEUS = {"H": "1H", "D": "2H", "C": "13C", "N": "15N", "F": "19F", "P": "31P"}

_DIMENSION_NAME = re.compile(r"^\s*[Ff][1-4]\s*$")


def _nucleus_from_label(label: str) -> str | None:
    """'1H', 'HN', 'H1' -> '1H'; '15N', 'N15', 'N' -> '15N'; 'CA', 'C13' -> '13C'; 'ID', 'X', 'F2' -> None."""
    # 'F1'..'F4' (TopSpin/Sparky dimension names) name a dimension, not fluorine
    if _DIMENSION_NAME.match(label):
        return None
    match = re.match(r"^\s*(\d*)\s*([A-Za-z])", label)
    if match is None:
        return None
    mass, element = match.groups()
    nucleus = _ELEMENT_NUCLEUS.get(element.upper())
    if mass and nucleus is not None and f"{mass}{element.upper()}" in GYROMAGNETIC_RATIO_TO_1H:
        return f"{mass}{element.upper()}"
    return nucleus


def _nucleus_matching(obs_mhz: float, field_mhz: float, preferred: str | None) -> str | None:
    candidates = ([preferred] if preferred else []) + list(GYROMAGNETIC_RATIO_TO_1H)
    for nucleus in candidates:
        expected = GYROMAGNETIC_RATIO_TO_1H[nucleus] * field_mhz
        if abs(obs_mhz - expected) <= _NUCLEUS_RATIO_TOLERANCE * expected:
            return nucleus
    return None


def resolve_axes(source: Source) -> list[Axis | None]:
    """An Axis per dimension, or None for a pseudo dimension (no nucleus matches its frequency)."""
    headers = source.axes
    labelled = [_nucleus_from_label(h.label) for h in headers]
    direct = headers[-1]
    if labelled[-1] is not None and direct.frequency_domain:
        field_mhz = direct.obs_mhz / GYROMAGNETIC_RATIO_TO_1H[labelled[-1]]
    else:
        # unlabelled direct axis: protein spectra detect 1H, the highest frequency in the file
        field_mhz = max(h.obs_mhz for h in headers)
    axes: list[Axis | None] = []
    for i, (h, label_nucleus) in enumerate(zip(headers, labelled)):
        nucleus = _nucleus_matching(h.obs_mhz, field_mhz, label_nucleus)
        if not h.frequency_domain and source.ndim >= 3 and i != source.ndim - 1:
            # the series axis of a pseudo-3D/4D (relaxation delays) is never Fourier transformed,
            # whatever spectrometer frequency the conversion script copied into its header
            axes.append(None)
            continue
        if nucleus is not None and not h.frequency_domain:
            raise SpectrumFileError(
                source.path, f"axis {i} ({nucleus}, label {h.label!r}) is in the time domain: not Fourier transformed"
            )
        if nucleus is None:
            if i == source.ndim - 1:
                raise SpectrumFileError(
                    source.path, f"the direct axis (label {h.label!r}, {h.obs_mhz:g} MHz) is not a frequency axis"
                )
            axes.append(None)
            continue
        if not (math.isfinite(h.ppm_first) and math.isfinite(h.ppm_per_point) and h.ppm_per_point > 0):
            raise SpectrumFileError(
                source.path, f"corrupt header: axis {i} ppm of point 0 {h.ppm_first}, spacing {h.ppm_per_point} ppm"
            )
        axes.append(
            Axis(
                nucleus=nucleus,
                obs_mhz=h.obs_mhz,
                sw_hz=h.ppm_per_point * h.obs_mhz * h.size,
                ppm_first=h.ppm_first,
                size=h.size,
            )
        )
    return axes


def pseudo_problem(source: Source, axes: list[Axis | None], pseudo: list[int]) -> str:
    parts = ", ".join(
        f"axis {i} (label {source.axes[i].label!r}, {source.axes[i].obs_mhz:g} MHz, {source.axes[i].size} points)"
        for i in pseudo
    )
    direct = next(a for a in reversed(axes) if a is not None)
    problem = (
        f"{parts} {'is' if len(pseudo) == 1 else 'are'} not a frequency axis of this {direct.field_mhz:.2f} MHz "
        f"spectrum of shape {source.shape}: it is a pseudo-{source.ndim}D series"
    )
    if len(pseudo) == 1 and source.ndim >= 3:
        count = source.axes[pseudo[0]].size
        problem += (f"; read its {count} spectra one at a time: `mssr enhance --plane INDEX` (0..{count - 1}), "
                    f"or mssr.io.iter_planes(path, axis={pseudo[0]}) in Python")
    return problem

