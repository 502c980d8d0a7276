"""The shared argument checks (mssr._validate): TypeError for a type, ValueError for a value, the name in both."""

import math
from pathlib import Path

import numpy as np
import pytest

from mssr import _validate


@pytest.mark.parametrize("value, expected", [(2, 2.0), (0.5, 0.5), (np.float32(1.5), 1.5), (np.int64(3), 3.0)])
def test_positive_returns_a_float(value, expected):
    out = _validate.positive("width", value)
    assert out == expected and type(out) is float


@pytest.mark.parametrize("check", [_validate.positive, _validate.nonnegative, _validate.number])
@pytest.mark.parametrize("value", [True, "1", None, [1.0]])
def test_numbers_refuse_other_types_naming_the_parameter(check, value):
    with pytest.raises(TypeError, match="width"):
        check("width", value)


@pytest.mark.parametrize("check, bad", [(_validate.positive, 0.0), (_validate.positive, -1), (_validate.nonnegative, -1e-9),
                                        (_validate.number, math.inf), (_validate.positive, math.nan)])
def test_numbers_refuse_bad_values_naming_the_parameter(check, bad):
    with pytest.raises(ValueError, match="width"):
        check("width", bad)


def test_nonnegative_accepts_zero():
    assert _validate.nonnegative("lr", 0) == 0.0


def test_number_in_bounds_and_open_upper_bound():
    assert _validate.number_in("decay", 0.0, 0.0, 1.0, high_open=True) == 0.0
    with pytest.raises(ValueError, match=r"decay must be in \[0.0, 1.0\)"):
        _validate.number_in("decay", 1.0, 0.0, 1.0, high_open=True)
    assert _validate.number_in("decay", 1.0, 0.0, 1.0) == 1.0


def test_integers():
    assert _validate.integer("seed", np.int32(4), 0) == 4 and type(_validate.integer("seed", np.int32(4))) is int
    assert _validate.positive_int("steps", 1) == 1
    with pytest.raises(TypeError, match="steps"):
        _validate.positive_int("steps", 2.0)
    with pytest.raises(TypeError, match="steps"):
        _validate.positive_int("steps", True)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        _validate.positive_int("steps", 0)


def test_choice_path_mapping():
    assert _validate.choice("sampler", "ddim", ("ddpm", "ddim")) == "ddim"
    with pytest.raises(ValueError, match=r"sampler must be one of \('ddpm', 'ddim'\), got 'euler'"):
        _validate.choice("sampler", "euler", ("ddpm", "ddim"))
    assert _validate.path("out", "a/b") == Path("a/b")
    with pytest.raises(TypeError, match="out"):
        _validate.path("out", 3)
    with pytest.raises(ValueError, match="does not exist"):
        _validate.path("out", "/no/such/file", exists=True)
    section = {"a": 1}
    copy = _validate.mapping("section", section)
    assert copy == section and copy is not section
    with pytest.raises(TypeError, match="section"):
        _validate.mapping("section", [1])


def test_rng():
    g = np.random.default_rng(0)
    assert _validate.rng(g) is g
    assert _validate.rng(7).integers(1 << 30) == np.random.default_rng(7).integers(1 << 30)
    assert isinstance(_validate.rng(None), np.random.Generator)
    with pytest.raises(TypeError, match="rng"):
        _validate.rng(1.5)
    with pytest.raises(TypeError, match="rng"):
        _validate.rng(True)
