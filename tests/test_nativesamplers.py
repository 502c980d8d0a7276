"""Tests of mssr.evaluation.nativesamplers and PatchPairs.protein_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mssr.data.patches import PatchConfig, PatchPairs, render_patch
from mssr.evaluation import nativesamplers
from mssr.model.diffusion import Diffusion, DiffusionConfig


def _refdb():
    rows = []
    for bmrb, shifts in ((4032, [(118.0, 8.2), (120.5, 7.9), (123.1, 8.6)]),
                         (5107, [(110.2, 7.4), (126.0, 9.1), (115.5, 8.0), (121.0, 7.1)])):
        for i, (n, h) in enumerate(shifts):
            rows.append({"bmrb_id": bmrb, "pdb_id": "1abc", "seq_id": i + 1, "aa": "A", "ss": "C", "H": h,
                         "HA": 4.3, "N": n, "CA": 52.0, "CB": 19.0, "C": 176.0})
    return pd.DataFrame(rows)


def test_protein_of_names_the_protein_whose_peaks_make_the_item():
    cfg = PatchConfig(size=32)
    ds = PatchPairs([4032, 5107], cfg, length=16, seed=3, refdb=_refdb())
    seen = set()
    for i in range(16):
        key = (0, 0, i)
        protein = ds.protein_of(key)
        seen.add(protein)
        # replay the item from that protein's peaks alone: it must be the same pair
        rng = np.random.default_rng([3, 0, 0, i])
        rng.integers(len(ds.peaks))
        x0, x_lr, f = render_patch(ds.peaks[ds.proteins.index(protein)], cfg, rng)
        a0, alr, af = ds[key]
        np.testing.assert_array_equal(x0, a0)
        np.testing.assert_array_equal(x_lr, alr)
        assert f == af
    assert seen == {4032, 5107}


class _Enhancer:
    """A residual model whose network returns a fixed fraction of the true residual of each patch."""

    def __init__(self, x0, x_lr, fraction):
        self.diffusion = Diffusion(DiffusionConfig(timesteps=1000, prediction="residual"))
        self.x0, self.x_lr, self.fraction = x0, x_lr, fraction

    def predictor(self, x_t, x_lr, t, factors):
        # every chain sees its patch's input; find the patch by it
        idx = [int(torch.argmin((self.x_lr - x).abs().amax(dim=(1, 2, 3)))) for x in x_lr]
        return self.fraction * (self.x0[idx] - x_lr)


def _default():
    from mssr.enhance.native import NativeSampling

    return NativeSampling(sampler="ddpm", steps=100, repeats=2, start_step=40)


def test_variants_are_the_protocol_the_default_then_the_configured_ones():
    variants = nativesamplers.native_variants([{"name": "ddim_5", "sampler": "ddim", "steps": 5}], _default())
    assert [v.name for v in variants] == ["protocol", "default", "ddim_5"]
    assert (variants[0].sampler, variants[0].steps, variants[0].repeats, variants[0].start_step) == ("ddpm", 500, 5, None)
    assert (variants[1].steps, variants[1].repeats, variants[1].start_step) == (100, 2, 40)
    assert variants[2].repeats == 5  # the protocol's, as in the samplers section
    with pytest.raises(ValueError, match="default"):
        nativesamplers.native_variants([{"name": "default", "sampler": "ddim", "steps": 5}], _default())
    with pytest.raises(ValueError, match=r"native\.validate\.variants\[0\]"):
        nativesamplers.native_variants([{"name": "x", "sampler": "euler", "steps": 5}], _default())


def test_sampler_table_scores_each_variant_against_the_truth():
    rng = np.random.default_rng(0)
    x0 = torch.as_tensor(rng.normal(0, 0.05, (6, 1, 8, 8)), dtype=torch.float32)
    x_lr = x0 + torch.as_tensor(rng.normal(0, 0.02, (6, 1, 8, 8)), dtype=torch.float32)
    factors = torch.full((6,), 1.5, dtype=torch.float64)
    proteins = np.array(["a", "a", "b", "b", "c", "c"])
    enhancer = _Enhancer(x0, x_lr, 0.5)
    variants = nativesamplers.native_variants([{"name": "ddim_5", "sampler": "ddim", "steps": 5, "repeats": 2}],
                                              _default())
    table = nativesamplers.sampler_table(enhancer, x0, x_lr, factors, proteins, variants, batch_size=4)
    assert list(table.columns) == list(nativesamplers.COLUMNS)
    # identity: the input's own error; a network returning half the residual: a quarter of it at the end
    peak2 = x_lr.abs().amax(dim=(1, 2, 3)).double().pow(2).numpy()
    identity = ((x_lr - x0).double().pow(2).mean(dim=(1, 2, 3)).numpy()) / peak2
    got = table[table.variant == "identity"].rel_mse.to_numpy()
    np.testing.assert_allclose(got, identity, rtol=1e-6)
    for name in ("protocol", "default", "ddim_5"):
        np.testing.assert_allclose(table[table.variant == name].rel_mse.to_numpy(), 0.25 * identity, rtol=1e-3)
    nfe = table.groupby("variant").nfe.first()
    assert (nfe["ddim_5"], nfe["protocol"], nfe["default"], nfe["identity"]) == (10, 2500, 8, 0)
    summary = nativesamplers.compare(table, n_boot=200)
    row = summary.set_index("variant").loc["ddim_5"]
    assert row.diff_vs_protocol == pytest.approx(0.0, abs=1e-6 * identity.mean())
    assert row.within_protocol_ci
    assert not summary.set_index("variant").loc["identity"].within_protocol_ci


def test_the_projection_removes_an_offset_from_the_projected_variants_only():
    # noise-free low-field data y = H x0 (a Lorentzian broadening) and a network whose estimate is
    # the truth plus an offset of 0.05: projected onto y, the estimate is the truth again
    from mssr import degrade
    from mssr.model.anchor import Consistency

    rng = np.random.default_rng(1)
    x0 = np.zeros((4, 32, 32))
    for n in range(4):
        for _ in range(3):
            r, c = rng.uniform(6, 26, 2)
            t = np.arange(32.0)
            x0[n] += 0.3 * np.outer(1 / (1 + ((t - r) / 1.5) ** 2), 1 / (1 + ((t - c) / 1.2) ** 2))
    widths = np.array([[2.0, 1.5]] * 4)
    from mssr.model.anchor import mirrored

    y = np.stack([np.fft.irfft2(degrade.lorentzian_transfer(w, (64, 64)) * np.fft.rfft2(mirrored(p)), s=(64, 64))[:32, :32]
                  for p, w in zip(x0, widths)])
    x0_t = torch.as_tensor(x0[:, None], dtype=torch.float32)
    x_lr = torch.as_tensor(y[:, None], dtype=torch.float32)
    enhancer = _Enhancer(x0_t + 0.05, x_lr, 1.0)  # the network's x0: truth + 0.05
    variants = nativesamplers.native_variants([], _default())
    variants.append(nativesamplers.SamplerVariant(nativesamplers.UNPROJECTED, "ddpm", 100, 2, 40))
    table = nativesamplers.sampler_table(enhancer, x0_t, x_lr, torch.full((4,), 1.5, dtype=torch.float64),
                                         np.array(["a", "a", "b", "b"]), variants, batch_size=4,
                                         projection=Consistency(y, widths), unprojected=[nativesamplers.UNPROJECTED])
    by = table.groupby("variant")
    peak2 = x_lr.abs().amax(dim=(1, 2, 3)).double().pow(2).numpy()
    np.testing.assert_allclose(table[table.variant == nativesamplers.UNPROJECTED].rel_mse, 0.05**2 / peak2, rtol=1e-3)
    assert by.rel_mse.max()["default"] < 1e-4 * (0.05**2 / peak2).min()
    assert by.projected.first().to_dict() == {"default": True, nativesamplers.UNPROJECTED: False,
                                             "identity": False, "protocol": True}


def test_validation_patches_give_anchored_patches_with_their_margin(monkeypatch):
    import mssr.evaluation.nativesamplers as ns
    from mssr.model.anchor import deconvolve

    cfg = PatchConfig(size=32, anchor=True, snr=(1e3, 1e3))
    real = PatchPairs
    monkeypatch.setattr(ns, "PatchPairs", lambda proteins, c, **kw: real(proteins, c, refdb=_refdb(), **kw))
    data: dict = {}
    x0, x_lr, factors, _ = ns.validation_patches([4032, 5107], cfg, n=3, seed=1, data=data)
    m = data["margin"]
    assert m == 16 and data["x0"].shape == data["x_lr"].shape == data["low"].shape == (3, 64, 64)
    inner = (slice(m, m + 32), slice(m, m + 32))
    for i in range(3):
        np.testing.assert_allclose(data["x0"][i][inner], x0[i, 0].numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(data["x_lr"][i][inner], x_lr[i, 0].numpy(), rtol=1e-6, atol=1e-7)
        # the anchor is the deconvolution of the low-field patch with the kernel recorded
        again = deconvolve(data["low"][i].astype(np.float64), data["added_fwhm_px"][i])
        np.testing.assert_allclose(again, data["x_lr"][i], atol=1e-5 * np.abs(again).max())
