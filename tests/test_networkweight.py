"""The network weight of an anchored native model: its choice by field ratio, where a model keeps it, the option."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from mssr.cli import main
from mssr.enhance.models import DEFAULT_MODEL_DIR
from mssr.enhance.native import default_sampling
from mssr.evaluation.networkweight import choose
from mssr.model.network_weight import FILE, read_network_weight


def _scan(ratios: dict) -> pd.DataFrame:
    """A scan table: ``ratios[(factor, protein, plane)]`` = MSE / anchor MSE at weights 0, 0.5, 1."""
    rows = []
    for (factor, protein, plane), values in ratios.items():
        for weight, ratio in zip((0.0, 0.5, 1.0), values):
            rows.append({"factor": factor, "protein": protein, "plane": plane, "weight": weight, "mse_ratio": ratio})
    return pd.DataFrame(rows)


def test_the_weight_of_each_factor_is_the_lowest_relative_mse_averaged_by_protein():
    table = _scan({
        # f = 1.33: both proteins are best without the network
        (1.3338, "A", 0): (1.0, 1.2, 1.4), (1.3338, "B", 0): (1.0, 1.3, 2.0),
        # f = 2: three planes of protein A lose a little with it, the one plane of B gains much:
        # by plane the mean is lowest at 0 (1.0 vs 1.025 at 1), by protein at 1 (0.825)
        (2.0008, "A", 0): (1.0, 1.08, 1.15), (2.0008, "A", 1): (1.0, 1.08, 1.15),
        (2.0008, "A", 2): (1.0, 1.08, 1.15), (2.0008, "B", 0): (1.0, 0.7, 0.5),
    })
    assert choose(table) == [[1.3338, 0.0], [2.0008, 1.0]]


def test_a_model_directory_carries_its_weight_into_the_sampler_default(tmp_path):
    from mssr.model.sample import Enhancer

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    (model / FILE).write_text(json.dumps({"network_weight": [[1.33, 0.2], [2.0, 0.9]]}))
    enhancer = Enhancer(model, device="cpu")
    assert default_sampling(enhancer.extra).network_weight == ((1.33, 0.2), (2.0, 0.9))
    # an explicit weight overrides the model's
    assert default_sampling(enhancer.extra, network_weight=0.5).network_weight == 0.5
    (model / FILE).write_text(json.dumps({"network_weight": [[2.0, 1.4]]}))
    with pytest.raises(ValueError, match=f"{FILE}.*in \\[0, 1\\]"):
        read_network_weight(model)
    (model / FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"{FILE}: not a network-weight calibration"):
        Enhancer(model, device="cpu")


def test_a_bad_network_weight_option_is_refused_by_name(tmp_path, capsys):
    path = tmp_path / "x.ucsf"
    path.write_bytes(b"")
    assert main(["enhance", str(path), "--from-mhz", "400", "--to-mhz", "800", "--network-weight", "1.5"]) == 2
    assert "--network-weight" in capsys.readouterr().err
