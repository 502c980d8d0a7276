import json

import numpy as np
import pytest

from mssr.data.split import assign_splits, split_counts, split_file
from mssr.data.store import read_samples, write_samples
from mssr.spectrum import Axis, Spectrum


def test_counts_hand_values():
    assert split_counts(100, (0.8, 0.1, 0.1)) == (80, 10, 10)
    assert split_counts(20, (0.8, 0.1, 0.1)) == (16, 2, 2)
    # 9 x (0.8, 0.1, 0.1) = (7.2, 0.9, 0.9): floors (7, 0, 0), two left go to the larger remainders
    assert split_counts(9, (0.8, 0.1, 0.1)) == (7, 1, 1)
    # 5 x 0.1 = 0.5 each -> val and test would be 0 or 1 by rounding; each gets at least one
    assert split_counts(5, (0.8, 0.1, 0.1)) == (3, 1, 1)
    assert split_counts(3, (0.98, 0.01, 0.01)) == (1, 1, 1)
    assert split_counts(10, (0.9, 0.1, 0.0)) == (9, 1, 0)
    assert split_counts(2, (0.8, 0.1, 0.1)) == (1, 0, 1)
    assert split_counts(1, (0.8, 0.1, 0.1)) == (1, 0, 0)


@pytest.mark.parametrize("n", range(3, 15))
def test_every_split_non_empty_from_three_proteins(n):
    assignment = assign_splits([f"p{i}" for i in range(n)], seed=n)
    assert set(assignment.values()) == {"train", "val", "test"}
    assert len(assignment) == n


def test_fractions_approximate_and_deterministic():
    proteins = [f"bmrb{i}" for i in range(200)]
    a = assign_splits(proteins, fractions=(0.7, 0.2, 0.1), seed=4)
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 140, "val": 40, "test": 20}
    assert a == assign_splits(list(reversed(proteins)) * 2, fractions=(0.7, 0.2, 0.1), seed=4)
    assert a != assign_splits(proteins, fractions=(0.7, 0.2, 0.1), seed=5)


def test_fraction_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(["a", "b", "c"], fractions=(0.5, 0.2, 0.2), seed=0)
    with pytest.raises(ValueError, match="three"):
        assign_splits(["a"], fractions=(0.5, 0.5), seed=0)


def _samples(path, proteins):
    axes = (Axis.from_ppm_window("15N", 600, 134, 104, 4), Axis.from_ppm_window("1H", 600, 11, 6, 4))
    x = np.stack([np.full((4, 4), i, dtype=np.float32) for i in range(len(proteins))])
    headers = [Spectrum(x[i], axes, meta={"protein": p, "sample": i}).header() for i, p in enumerate(proteins)]
    write_samples(path, x, headers, attrs={"stage": "preprocess"})


def test_split_file_by_protein(tmp_path):
    # 12 proteins with 1-4 planes each
    proteins = [f"p{i:02d}" for i in range(12) for _ in range(1 + i % 4)]
    _samples(tmp_path / "samples.h5", proteins)
    record = split_file(tmp_path / "samples.h5", tmp_path / "out", fractions=(0.5, 0.25, 0.25), seed=1)
    seen_samples, seen_proteins = [], {}
    for name in ("train", "val", "test"):
        s = read_samples(tmp_path / "out" / f"{name}.h5")
        assert s.attrs["split"] == name
        seen_samples += s.meta("sample")
        for p in s.meta("protein"):
            assert seen_proteins.setdefault(p, name) == name  # never in two splits
            assert record["assignment"][p] == name
        # the data travel with their headers
        np.testing.assert_array_equal(s.x[:, 0, 0], s.meta("sample"))
        assert record["counts"][name]["samples"] == len(s)
    assert sorted(seen_samples) == list(range(len(proteins)))  # every sample exactly once
    assert {k: v["proteins"] for k, v in record["counts"].items()} == {"train": 6, "val": 3, "test": 3}
    on_disk = json.loads((tmp_path / "out" / "split.json").read_text())
    assert on_disk == record and on_disk["seed"] == 1


def test_split_file_refuses_samples_without_protein(tmp_path):
    _samples(tmp_path / "s.h5", ["a", "", "c"])
    with pytest.raises(ValueError, match="protein"):
        split_file(tmp_path / "s.h5", tmp_path / "out", seed=0)
