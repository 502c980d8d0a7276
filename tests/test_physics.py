"""Tests of mssr.data.physics: natural line widths against the values of the module notes."""

import pytest

from mssr.data import physics


def test_natural_linewidths_match_the_notes():
    # NMR_NOTES.md (20 kDa): 15N 4.1 Hz at 400 and 5.9 Hz at 900 MHz; 13Ca ~14 Hz at both
    assert physics.natural_linewidth_hz("N", 400) == pytest.approx(4.1, abs=0.01)
    assert physics.natural_linewidth_hz("N", 900) == pytest.approx(5.9, abs=0.01)
    assert physics.natural_linewidth_hz("CA", 400) == pytest.approx(14.0, abs=0.6)
    assert physics.natural_linewidth_hz("CA", 900) == pytest.approx(14.0, abs=0.6)
    # carbonyl: CSA dominated, narrower in ppm at low field
    c_lo, c_hi = physics.natural_linewidth_hz("C", 400), physics.natural_linewidth_hz("C", 900)
    assert c_lo / 400 < c_hi / 900
    assert physics.natural_linewidth_hz("N", 900, mass_kda=10) == pytest.approx(2.95, abs=0.01)
