"""Continuous-factor MSSR on unseen factors, and sampler options against the protocol (mssr.evaluation.heldout, mssr.evaluation.samplers)."""

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import ndimage

from mssr.evaluation import heldout as heldout_study
from mssr.evaluation import samplers as sampler_study
from mssr.data.store import read_samples, write_samples
from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.factors import as_factor
from mssr.model.sample import Enhancer, SampleConfig
from mssr.evaluation.metrics import METRIC_NAMES
from mssr.spectrum import Axis, Spectrum
from mssr.evaluation.testsets import build_blur, read_testset

S = 16
N = 3
T = 50
RUN = ["1.250", "1.286", "1.333", "2.000", "2.250"]
HELDOUT = ["1.286", "2.000"]
TRAINED = ["1.250", "1.333", "2.250"]
TEST_SEED = 1234
DIFFUSION = DiffusionConfig(timesteps=T)
SAMPLE = {"sampler": "ddpm", "steps": 3, "repeats": 2, "batch_size": 64, "start_step": None, "seed": 0,
          "device": "cpu"}
METRICS = {"peak_sigma": 1.0, "peak_window": 3, "peak_alpha": 3.0, "match_threshold_px": 2.0, "bootstrap": 20}
DEGRADE = {"model": "paper", "sigma_lr": 0.01, "test_seed": TEST_SEED}
CONTINUOUS = {"heldout": HELDOUT, "epochs": 1, "reference": "neighbours", "off_table_mhz": [[950, 600], [1000, 400]]}
SAMPLERS = {"n_samples": 2, "factors": 2, "variants": [
    {"name": "ddim_5", "sampler": "ddim", "steps": 5, "repeats": 1},
    {"name": "dpmsolver_3", "sampler": "dpmsolver", "steps": 3},
    {"name": "ddpm_from_25", "sampler": "ddpm", "steps": 5, "start_step": 25},
]}
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory, gaussian_peaks, micro_model):
    root = tmp_path_factory.mktemp("compare")
    axes = (Axis.from_ppm_window("15N", 800, 130, 105, S), Axis.from_ppm_window("1H", 800, 10, 6, S))
    x = gaussian_peaks(N, S, 0)
    test = write_samples(root / "test.h5", x, [Spectrum(xi, axes).header() for xi in x])
    testset = build_blur(test, root / "testset_blur.h5", factors=RUN, model="paper", seed=TEST_SEED, sigma_lr=0.01)
    return {
        "root": root,
        "test": test,
        "testset": testset,
        "continuous": micro_model(root / "mssr_continuous", size=S, conditioning="continuous", factors=TRAINED,
                                  timesteps=T, seed=1),
        "mssr": micro_model(root / "mssr", size=S, factors=RUN, timesteps=T, seed=2),
        "baselines": [micro_model(root / f"baseline_{f}", size=S, conditioning="none", factors=[f], factor=f,
                                  timesteps=T, seed=3 + i) for i, f in enumerate(HELDOUT)],
    }


def _assert_metrics_defined(df):
    values = df[list(METRIC_NAMES)]
    # peak R^2 of a spectrum without matched peaks is its worst value, -inf (mssr.evaluation.metrics)
    others = values.drop(columns="peak_r2")
    assert np.isfinite(others.to_numpy()).all()
    assert (np.isfinite(values["peak_r2"]) | (values["peak_r2"] == -np.inf)).all()


def _heldout(files, **overrides):
    kwargs = dict(continuous_model=files["continuous"], class_model=files["mssr"], baseline_models=files["baselines"],
                  continuous=CONTINUOUS, sample=SAMPLE, degrade=DEGRADE, metrics=METRICS)
    kwargs.update(overrides)
    return heldout_study.heldout_table(files["testset"], files["test"], **kwargs)


@pytest.fixture(scope="module")
def heldout(files):
    out_csv, out_png = files["root"] / "tables/heldout.csv", files["root"] / "figures/heldout.png"
    heldout_study.write_heldout(files["testset"], files["test"], out_csv, out_png, continuous_model=files["continuous"],
                          class_model=files["mssr"], baseline_models=files["baselines"], continuous=CONTINUOUS,
                          sample=SAMPLE, degrade=DEGRADE, metrics=METRICS, threads=1)
    assert out_png.read_bytes()[:8] == PNG
    return pd.read_csv(out_csv)


# ---------------------------------------------------------------------------------------------
# factors and configs


def test_training_factors_are_the_run_minus_the_heldout():
    assert heldout_study.continuous_training_factors(RUN, HELDOUT) == TRAINED
    every = heldout_study.continuous_training_factors("all", ["1.286", "1.600", "2.000"])
    assert len(every) == 11 and "1.600" not in every and every == sorted(every, key=float)
    with pytest.raises(ValueError, match="continuous.heldout"):
        heldout_study.continuous_training_factors(["1.250", "1.333"], ["1.286"])
    with pytest.raises(ValueError, match="no factor to train"):
        heldout_study.continuous_training_factors(["1.250"], ["1.250"])
    with pytest.raises(ValueError, match="continuous.heldout"):
        heldout_study.continuous_training_factors(RUN, ["1.59"])


def test_offtable_factors_are_field_ratios_outside_table1():
    # 950/600 = 19/12, 1000/400 = 5/2, 400/80 = 5; 1900/1200 repeats 19/12.
    assert_allclose(heldout_study.offtable_factors([[1000, 400], [950, 600], [400, 80], [1900, 1200]]), [19 / 12, 2.5, 5.0])
    with pytest.raises(ValueError, match=r"off_table_mhz\[1\].*1.500"):
        heldout_study.offtable_factors([[950, 600], [900, 600]])
    with pytest.raises(ValueError, match=r"off_table_mhz\[0\]"):
        heldout_study.offtable_factors([[400, 950]])
    with pytest.raises(TypeError, match="off_table_mhz"):
        heldout_study.offtable_factors([[950]])


def test_reference_factors_are_the_trained_neighbours():
    # 1.286 sits between 1.250 and 1.333; 2.000 between 1.333 and 2.250.
    assert heldout_study.reference_factors(RUN, TRAINED, HELDOUT, "neighbours") == ["1.250", "1.333", "2.250"]
    assert heldout_study.reference_factors(RUN, TRAINED, ["1.286"], "neighbours") == ["1.250", "1.333"]
    assert heldout_study.reference_factors(RUN, TRAINED, HELDOUT, "all") == TRAINED
    assert heldout_study.reference_factors(RUN, TRAINED, HELDOUT, "none") == []
    with pytest.raises(ValueError, match="reference"):
        heldout_study.reference_factors(RUN, TRAINED, HELDOUT, "nearest")


def test_continuous_config_overrides_conditioning_and_epochs_only():
    cfg = {"model": {"conditioning": "class", "block_out_channels": [8, 16]}, "train": {"epochs": 200, "lr": 0.001}}
    out = heldout_study.continuous_config(cfg, epochs=7)
    assert out["model"] == {"conditioning": "continuous", "block_out_channels": [8, 16]}
    assert out["train"] == {"epochs": 7, "lr": 0.001}
    assert cfg["model"]["conditioning"] == "class" and cfg["train"]["epochs"] == 200
    assert heldout_study.continuous_config(cfg)["train"]["epochs"] == 200
    with pytest.raises(ValueError, match="continuous.epochs"):
        heldout_study.continuous_config(cfg, epochs=0)


def test_train_continuous_trains_a_continuous_model_without_the_heldout_factors(files, tmp_path, gaussian_peaks):
    axes = (Axis.from_ppm_window("15N", 800, 130, 105, S), Axis.from_ppm_window("1H", 800, 10, 6, S))
    paths = {}
    for name, n, seed in (("train", 8, 5), ("val", 4, 6)):
        x = gaussian_peaks(n, S, seed)
        paths[name] = write_samples(tmp_path / f"{name}.h5", x, [Spectrum(xi, axes).header() for xi in x])
    cfg = {
        "data": {"size": S},
        "model": {"conditioning": "class", "block_out_channels": [8, 16], "layers_per_block": 1,
                  "attention_levels": [False, False], "mid_attention": False, "norm_num_groups": 4},
        "diffusion": {"timesteps": T},
        "train": {"epochs": 5, "batch_size": 8, "lr": 0.001, "ema_decay": 0.0, "checkpoint_every": 0,
                  "device": "cpu"},
        "degrade": dict(DEGRADE),
        "tracking": {"uri": None, "experiment": "t"},
    }
    out = heldout_study.train_continuous(cfg, paths["train"], paths["val"], tmp_path / "model", factors=RUN,
                                   heldout=HELDOUT, epochs=1, threads=1)
    record = json.loads((out / "config.json").read_text())
    assert record["model"]["conditioning"] == "continuous"
    assert record["extra"]["factor_labels"] == TRAINED
    assert record["extra"]["train"]["epochs"] == 1
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 1  # one epoch of one batch of 8


# ---------------------------------------------------------------------------------------------
# held-out table


def test_heldout_table_has_the_columns_and_every_spectrum(heldout):
    assert list(heldout.columns) == list(heldout_study.HELDOUT_COLUMNS)
    counts = heldout.groupby(["method", "factor"])["sample"].apply(sorted)
    assert all(c == list(range(N)) for c in counts)
    _assert_metrics_defined(heldout)


def test_heldout_factors_have_every_method_and_the_right_flags(heldout):
    for label in HELDOUT:
        rows = heldout[np.isclose(heldout["factor"], float(as_factor(label)))]
        assert set(rows["method"]) == set(heldout_study.HELDOUT_METHODS)
        assert rows["table1"].all() and rows["heldout"].all() and not rows["extrapolated"].any()
    # The continuous model's in-distribution reference: its trained neighbours, continuous only.
    trained = heldout[heldout["table1"] & ~heldout["heldout"]]
    assert set(trained["method"]) == {heldout_study.CONTINUOUS_METHOD}
    assert sorted(f"{f:.3f}" for f in trained["factor"].unique()) == ["1.250", "1.333", "2.250"]


def test_offtable_factors_have_only_the_continuous_model_and_classical_methods(heldout):
    off = heldout[~heldout["table1"]]
    assert_allclose(sorted(off["factor"].unique()), [950 / 600, 1000 / 400])
    for f, rows in off.groupby("factor"):
        assert set(rows["method"]) == {heldout_study.CONTINUOUS_METHOD, "identity", "richardson_lucy"}
        assert rows["heldout"].all()
        # Trained on 1.250..2.250: 950/600 interpolates, 1000/400 extrapolates.
        assert rows["extrapolated"].all() == (f > 2.25)


def test_identity_scores_the_stored_and_the_recomputed_inputs(heldout, files):
    x, x_lr, labels, _ = read_testset(files["testset"])
    identity = heldout[heldout["method"] == "identity"].set_index(["factor", "sample"])["mse"]
    for label in HELDOUT:
        expected = ((x_lr[labels.index(label)] - x) ** 2).mean(axis=(1, 2))
        assert_allclose(identity.loc[float(as_factor(label))].to_numpy(), expected, rtol=1e-6)
    # Off table, computed independently: Gaussian blur sigma = 1/f px + N(0, 0.01^2), the noise of
    # spectrum i drawn from default_rng([seed, numerator, denominator, i]) of f = 19/12.
    for i in range(N):
        rng = np.random.default_rng([TEST_SEED, 19, 12, i])
        low = ndimage.gaussian_filter(x[i].astype(np.float64), 12 / 19, mode="reflect", truncate=4.0)
        low = (low + rng.normal(0.0, 0.01, size=low.shape)).astype(np.float32)
        assert_allclose(identity.loc[(950 / 600, i)], ((low - x[i]) ** 2).mean(), rtol=1e-5)


def test_heldout_times_are_per_spectrum_and_positive_for_learned_methods(heldout):
    learned = heldout[heldout["method"].isin([heldout_study.CONTINUOUS_METHOD, "mssr", "baseline"])]
    assert (learned["seconds"] > 0).all()
    assert (heldout["seconds"] >= 0).all()
    # One timing per (method, factor), repeated on each of its spectra.
    assert (heldout.groupby(["method", "factor"])["seconds"].nunique() == 1).all()


def test_offtable_inputs_reproduce_the_stored_testset_inputs(files):
    x, x_lr, labels, _ = read_testset(files["testset"])
    truth, recomputed, headers = heldout_study.offtable_inputs(files["test"], [1.25, 2.0], degrade=DEGRADE)
    np.testing.assert_array_equal(truth, x)
    np.testing.assert_array_equal(recomputed[0], x_lr[labels.index("1.250")])
    np.testing.assert_array_equal(recomputed[1], x_lr[labels.index("2.000")])
    assert len(headers) == N


def test_heldout_refuses_inconsistent_inputs(files, tmp_path):
    with pytest.raises(ValueError, match="retrain"):
        _heldout(files, continuous={**CONTINUOUS, "heldout": ["1.286"]})
    with pytest.raises(ValueError, match=r"no baseline for the held-out factor\(s\) \['2.000'\]"):
        _heldout(files, baseline_models=files["baselines"][:1])
    with pytest.raises(ValueError, match="continuous_model.*'class'"):
        _heldout(files, continuous_model=files["mssr"])
    with pytest.raises(ValueError, match="Table-1 factor 1.500"):
        _heldout(files, continuous={**CONTINUOUS, "off_table_mhz": [[900, 600]]})
    with pytest.raises(ValueError, match="seed and parameters"):
        _heldout(files, degrade={**DEGRADE, "test_seed": 7})
    with pytest.raises(ValueError, match="seed and parameters"):
        _heldout(files, degrade={**DEGRADE, "sigma_lr": 0.02})
    x = read_samples(files["test"])
    reversed_split = write_samples(tmp_path / "test.h5", x.x[::-1].copy(), x.headers[::-1])
    with pytest.raises(ValueError, match="not the test split"):
        heldout_study.heldout_table(files["testset"], reversed_split, continuous_model=files["continuous"], class_model=files["mssr"],
                              baseline_models=files["baselines"], continuous=CONTINUOUS, sample=SAMPLE,
                              degrade=DEGRADE, metrics=METRICS)


# ---------------------------------------------------------------------------------------------
# samplers


@pytest.fixture(scope="module")
def samplers(files):
    out_csv, out_png = files["root"] / "tables/samplers.csv", files["root"] / "figures/samplers.png"
    sampler_study.write_samplers(files["mssr"], files["testset"], out_csv, out_png, samplers=SAMPLERS, sample=SAMPLE,
                           metrics=METRICS, factors=RUN, threads=1)
    assert out_png.read_bytes()[:8] == PNG
    return pd.read_csv(out_csv)


def test_every_sampler_variant_is_present_with_positive_times(samplers):
    assert list(samplers.columns) == list(sampler_study.SAMPLER_COLUMNS)
    names = [sampler_study.PROTOCOL, "ddim_5", "dpmsolver_3", "ddpm_from_25"]
    assert list(dict.fromkeys(samplers["variant"])) == names
    # factors: 2 -> the smallest and the largest of the run; n_samples: 2 -> spectra 0 and 1.
    for name in names:
        rows = samplers[samplers["variant"] == name]
        assert sorted(f"{f:.3f}" for f in rows["factor"].unique()) == ["1.250", "2.250"]
        assert sorted(rows["sample"]) == [0, 0, 1, 1]
        assert (rows["seconds"] > 0).all()
    _assert_metrics_defined(samplers)


def test_sampler_variants_record_their_settings_and_network_evaluations(samplers):
    first = samplers.drop_duplicates("variant").set_index("variant")
    # protocol: 3 ddpm steps x 2 repeats; ddim_5: 5 x 1; dpmsolver_3: 3 x 2 (repeats default to the
    # protocol's); ddpm_from_25: trailing timesteps 49, 39, 29, 19, 9 of which 19 and 9 are <= 25, x 2.
    assert first["nfe"].to_dict() == {"protocol": 6, "ddim_5": 5, "dpmsolver_3": 6, "ddpm_from_25": 4}
    assert first["repeats"].to_dict() == {"protocol": 2, "ddim_5": 1, "dpmsolver_3": 2, "ddpm_from_25": 2}
    assert first.loc["ddpm_from_25", "start_step"] == 25 and pd.isna(first.loc["protocol", "start_step"])


def test_protocol_variant_samples_as_the_sample_section_says(samplers, files):
    from mssr.evaluation.scoring import metric_options, score

    x, x_lr, labels, s = read_testset(files["testset"])
    mean, _ = Enhancer(files["mssr"], device="cpu").sample(x_lr[labels.index("2.250")][:2], 2.25,
                                                           SampleConfig.from_dict(SAMPLE), progress=False)
    expected = score(x[:2], mean, s.headers[:2], metric_options(METRICS))["mse"].to_numpy()
    rows = samplers[(samplers["variant"] == sampler_study.PROTOCOL) & np.isclose(samplers["factor"], 2.25)]
    assert_allclose(rows["mse"].to_numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("variant, message", [
    ({"name": "ddim_7", "sampler": "ddim", "steps": 7}, "ddim_7.*does not divide"),
    ({"name": "dpm_10", "sampler": "dpmsolver", "steps": 10}, "dpm_10.*repeated timesteps"),
    ({"name": "late", "sampler": "ddpm", "steps": 5, "start_step": 5}, "late.*below every timestep"),
    ({"name": "long", "sampler": "ddpm", "steps": 60}, "long.*<= T"),
])
def test_impossible_schedules_are_refused_before_sampling(variant, message, files):
    with pytest.raises(ValueError, match=message):
        sampler_study.sampler_table(files["mssr"], files["testset"], samplers={**SAMPLERS, "variants": [variant]},
                              sample=SAMPLE, metrics=METRICS, factors=RUN)


def test_sampler_variants_validation():
    variants = sampler_study.sampler_variants(SAMPLERS, SAMPLE)
    assert variants[0] == sampler_study.SamplerVariant("protocol", "ddpm", 3, 2, None)
    assert variants[1] == sampler_study.SamplerVariant("ddim_5", "ddim", 5, 1, None)
    assert [v.name for v in variants] == ["protocol", "ddim_5", "dpmsolver_3", "ddpm_from_25"]
    assert sampler_study.check_variants(variants, Diffusion(DIFFUSION)) == [3, 5, 3, 2]
    with pytest.raises(ValueError, match="used twice"):
        sampler_study.sampler_variants({"variants": [{"name": "protocol", "sampler": "ddim", "steps": 5}]}, SAMPLE)
    with pytest.raises(ValueError, match=r"variants\[0\].sampler"):
        sampler_study.sampler_variants({"variants": [{"name": "a", "sampler": "euler", "steps": 5}]}, SAMPLE)
    with pytest.raises(ValueError, match=r"variants\[0\] has unknown key"):
        sampler_study.sampler_variants({"variants": [{"name": "a", "sampler": "ddim", "steps": 5, "eta": 1}]}, SAMPLE)
    with pytest.raises(TypeError, match=r"variants\[0\].steps"):
        sampler_study.sampler_variants({"variants": [{"name": "a", "sampler": "ddim", "steps": 5.0}]}, SAMPLE)

