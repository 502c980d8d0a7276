from fractions import Fraction

import pytest

from mssr import factors
from mssr.cli import main


def test_fifteen_pairs_fourteen_factors_ascending():
    assert len(factors.FIELD_PAIRS) == 15
    assert len(factors.FACTORS) == 14
    assert list(factors.FACTORS) == sorted(factors.FACTORS)
    assert factors.FACTORS[0] == Fraction(9, 8) and factors.FACTORS[-1] == Fraction(9, 4)


def test_three_halves_is_the_only_duplicate():
    assert sorted(factors.pairs_for(1.5)) == [(600, 400), (900, 600)]
    assert all(len(factors.pairs_for(f)) == 1 for f in factors.FACTORS if f != Fraction(3, 2))


@pytest.mark.parametrize("index", range(14))
def test_class_round_trip(index):
    f = factors.class_to_factor(index)
    assert factors.factor_to_class(f) == index
    assert factors.factor_to_class(factors.factor_label(f)) == index
    assert factors.factor_to_class(float(f)) == index


def test_900_over_500_is_1_80_not_the_printed_1_78():
    row = next(r for r in factors.table1() if (r["high_mhz"], r["low_mhz"]) == (900, 500))
    assert row["factor"] == "9/5" and row["factor_value"] == pytest.approx(1.8)
    assert row["paper_printed"] == "1.78"


@pytest.mark.parametrize("bad", [1.0, 2.5, "1.78", "abc"])
def test_unknown_factor_is_rejected(bad):
    with pytest.raises(ValueError):
        factors.factor_to_class(bad)


def test_bad_types():
    with pytest.raises(TypeError):
        factors.factor_to_class(None)
    with pytest.raises(ValueError):
        factors.class_to_factor(14)


def test_cli_prints_table1(capsys):
    assert main(["factors"]) == 0
    out = capsys.readouterr().out
    assert "paper prints 1.78" in out and "15 field pairs, 14 unique factors" in out


def test_factors_on_host_checks_and_returns_float64_on_the_cpu():
    import numpy as np
    import torch

    from mssr.factors import factors_on_host

    out = factors_on_host([1.5, 2], 2)
    assert out.dtype == torch.float64 and out.device.type == "cpu" and out.tolist() == [1.5, 2.0]
    assert factors_on_host(torch.tensor([1.25], dtype=torch.float32)).tolist() == [1.25]
    assert factors_on_host(np.array([2.25, 1.0])).tolist() == [2.25, 1.0]
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        factors_on_host([1.5, 2.0], 3)
    with pytest.raises(ValueError, match=">= 1"):
        factors_on_host([0.5])
    with pytest.raises(ValueError, match="finite"):
        factors_on_host([float("nan")])
    with pytest.raises(TypeError, match="torch.Tensor"):
        factors_on_host([1.5], sequences=False)
    with pytest.raises(TypeError, match="real tensor"):
        factors_on_host(torch.tensor([True]))
