"""Tests of mssr.model.network: configuration, UNet construction, conditioning, save/load."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from mssr.model.diffusion import Diffusion, DiffusionConfig
from mssr.model.network import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    NoisePredictor,
    build_unet,
    continuous_label,
    count_parameters,
    load_model,
    paper_config,
    pipeline_model_config,
    save_model,
)

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(2)


def tiny(conditioning="class", **overrides) -> ModelConfig:
    settings = dict(sample_size=16, block_out_channels=(8, 16), layers_per_block=1, attention_levels=(False, True),
                    mid_attention=True, attention_head_dim=8, conditioning=conditioning, norm_num_groups=4)
    settings.update(overrides)
    return ModelConfig(**settings)


def tiny_unet(conditioning="class", seed=0):
    torch.manual_seed(seed)
    return build_unet(tiny(conditioning)).eval()


def inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, 1, 16, 16, generator=g)
    x_lr = torch.rand(batch, 1, 16, 16, generator=g) * 2 - 1
    t = torch.tensor([10, 1500][:batch] + [700] * max(0, batch - 2))
    return x_t, x_lr, t


# --------------------------------------------------------------------------------- config


def test_config_round_trip_and_lists_become_tuples():
    cfg = tiny("continuous", dropout=0.1)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["block_out_channels"] == [8, 16]
    again = ModelConfig.from_dict(d)
    assert again == cfg and isinstance(again.block_out_channels, tuple)
    assert ModelConfig.from_dict({}) == ModelConfig()


def test_config_names_an_unknown_key():
    with pytest.raises(ValueError, match="channel_mult"):
        ModelConfig.from_dict({**tiny().to_dict(), "channel_mult": [1, 2]})


@pytest.mark.parametrize(
    "overrides, error, name",
    [
        ({"norm_num_groups": 3}, ValueError, "norm_num_groups"),
        ({"attention_levels": (True,)}, ValueError, "attention_levels"),
        ({"sample_size": 15}, ValueError, "sample_size"),
        ({"conditioning": "film"}, ValueError, "conditioning"),
        ({"attention_head_dim": 5}, ValueError, "attention_head_dim"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"layers_per_block": 1.5}, TypeError, "layers_per_block"),
        ({"attention_levels": (0, 1)}, TypeError, "attention_levels"),
    ],
)
def test_config_rejects_bad_values(overrides, error, name):
    with pytest.raises(error, match=name):
        tiny(**overrides)


# --------------------------------------------------------------------------------- network


def test_unet_layout_follows_the_config():
    unet = build_unet(tiny())
    assert unet.config.in_channels == 2 and unet.config.out_channels == 1
    assert unet.config.down_block_types == ("DownBlock2D", "AttnDownBlock2D")
    assert unet.config.up_block_types == ("AttnUpBlock2D", "UpBlock2D")
    assert unet.config.center_input_sample is False


@pytest.mark.parametrize("conditioning", ["class", "continuous", "none"])
def test_factor_embedding_exists_only_for_its_conditioning(conditioning):
    unet = build_unet(tiny(conditioning))
    embedding = unet.class_embedding
    if conditioning == "class":
        assert isinstance(embedding, nn.Embedding)
        assert embedding.num_embeddings == 14 and embedding.embedding_dim == 4 * 8
    elif conditioning == "continuous":
        assert type(embedding).__name__ == "TimestepEmbedding"
    else:
        assert embedding is None
    assert NoisePredictor(unet).conditioning == conditioning


def test_class_embedding_is_summed_with_the_time_embedding():
    """Paper eq. 3: every residual block receives SiLU(time_emb(t) + class_emb(f))."""
    unet = tiny_unet("class")
    x_t, x_lr, t = inputs()
    factors = torch.tensor([1.5, 2.25])
    received = {}

    def record(module, args, out):
        received["temb"] = args[0]

    hook = unet.down_blocks[0].resnets[0].time_emb_proj.register_forward_hook(record)
    with torch.no_grad():
        NoisePredictor(unet)(x_t, x_lr, t, factors)
        hook.remove()
        time_emb = unet.time_embedding(unet.time_proj(t))
        class_emb = unet.class_embedding(torch.tensor([8, 13]))
    torch.testing.assert_close(received["temb"], nn.functional.silu(time_emb + class_emb))


def test_factor_class_changes_the_output_and_baseline_ignores_it():
    x_t, x_lr, t = inputs()
    with torch.no_grad():
        conditioned = NoisePredictor(tiny_unet("class"))
        a = conditioned(x_t, x_lr, t, torch.tensor([1.5, 1.5]))
        b = conditioned(x_t, x_lr, t, torch.tensor([2.25, 2.25]))
        baseline = NoisePredictor(tiny_unet("none"))
        c = baseline(x_t, x_lr, t, torch.tensor([1.5, 1.5]))
        d = baseline(x_t, x_lr, t, torch.tensor([2.25, 2.25]))
    assert a.shape == (2, 1, 16, 16)
    assert (a - b).abs().max() > 1e-4
    assert torch.equal(c, d)


def test_class_indices_follow_table_1():
    predictor = NoisePredictor(tiny_unet("class"))
    labels = predictor.condition(torch.tensor([9 / 8, 1.5, 9 / 4, 900 / 400, 8 / 7, 1.5]))
    assert labels.tolist() == [0, 8, 13, 13, 1, 8]
    with pytest.raises(ValueError, match="not one of the 14"):
        predictor.condition(torch.tensor([950 / 600]))
    with pytest.raises(ValueError, match="factors"):
        predictor.condition(torch.tensor([0.5]))
    assert NoisePredictor(tiny_unet("none")).condition(torch.tensor([1.5])) is None


def test_continuous_conditioning_takes_any_factor():
    predictor = NoisePredictor(tiny_unet("continuous"))
    label = predictor.condition(torch.tensor([950 / 600]))
    assert label.dtype == torch.float32
    assert label.item() == pytest.approx(1000 * math.log(950 / 600), rel=1e-6)
    x_t, x_lr, t = inputs()
    with torch.no_grad():
        between = predictor(x_t, x_lr, t, torch.tensor([950 / 600] * 2))
        low = predictor(x_t, x_lr, t, torch.tensor([1.5, 1.5]))
        high = predictor(x_t, x_lr, t, torch.tensor([1.6, 1.6]))
    assert torch.isfinite(between).all()
    assert (between - low).abs().max() > 1e-5 and (between - high).abs().max() > 1e-5


def test_continuous_label_separates_neighbouring_factors():
    from diffusers.models.embeddings import get_timestep_embedding

    projections = get_timestep_embedding(continuous_label(torch.tensor([9 / 8, 8 / 7])), 64, flip_sin_to_cos=True,
                                          downscale_freq_shift=0)
    cosine = nn.functional.cosine_similarity(projections[0], projections[1], dim=0)
    raw = get_timestep_embedding(torch.tensor([9 / 8, 8 / 7]), 64, flip_sin_to_cos=True, downscale_freq_shift=0)
    assert cosine < 0.7 < 0.99 < nn.functional.cosine_similarity(raw[0], raw[1], dim=0)


def test_predictor_checks_its_inputs():
    predictor = NoisePredictor(tiny_unet("class"))
    x_t, x_lr, t = inputs()
    with pytest.raises(ValueError, match="x_t"):
        predictor(x_t[:, :, :15], x_lr[:, :, :15], t, torch.tensor([1.5, 1.5]))
    with pytest.raises(ValueError, match="x_lr"):
        predictor(x_t, x_lr[:1], t, torch.tensor([1.5, 1.5]))
    with pytest.raises(ValueError, match="factors"):
        predictor(x_t, x_lr, t, torch.tensor([1.5]))
    with pytest.raises(TypeError, match="factors"):
        predictor(x_t, x_lr, t, [1.5, 1.5])


def test_predictor_keeps_the_callers_dtype():
    predictor = NoisePredictor(tiny_unet("class"))
    x_t, x_lr, t = inputs()
    with torch.no_grad():
        out32 = predictor(x_t, x_lr, t, torch.tensor([1.5, 2.0]))
        out64 = predictor(x_t.double(), x_lr.double(), t, torch.tensor([1.5, 2.0]))
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32)


def test_predictor_trains_and_samples_with_the_diffusion():
    predictor = NoisePredictor(build_unet(tiny("class")))
    diffusion = Diffusion(DiffusionConfig(timesteps=100))
    x0 = torch.rand(3, 1, 16, 16) * 2 - 1
    loss = diffusion.training_loss(predictor, x0, x0, [1.5, 2.0, 2.25], generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for p in predictor.unet.class_embedding.parameters())
    predictor.eval()
    mean, std = diffusion.sample(predictor, x0, [1.5, 2.0, 2.25], steps=5, repeats=2, batch_size=4,
                                 generator=torch.Generator().manual_seed(0), progress=False)
    assert mean.shape == std.shape == x0.shape
    assert mean.abs().max() <= 1 and (std > 0).any()


# --------------------------------------------------------------------------------- sizes


def test_paper_network_is_read_from_configs_paper_yaml_and_has_about_34_million_parameters():
    cfg = paper_config()
    paper = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    assert cfg.sample_size == paper["data"]["size"] == 256
    assert cfg.to_dict() == {**paper["model"], "sample_size": 256}
    n = count_parameters(build_unet(cfg))
    assert n == 34_886_849
    assert abs(n / 34e6 - 1) < 0.05
    import mssr.model.network as network

    assert network.PAPER_CONFIG == cfg  # the name the benchmarks import reads the same file


def test_pipeline_model_config_merges_files_like_snakemake(tmp_path):
    (tmp_path / "over.yaml").write_text("data: {size: 48}\nmodel: {block_out_channels: [8, 16, 32], norm_num_groups: 4}\n")
    cfg = pipeline_model_config(ROOT / "config.yaml", tmp_path / "over.yaml")
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())["model"]
    # the override's keys win; the others (nested in the same section) stay the template's
    assert cfg.sample_size == 48 and cfg.block_out_channels == (8, 16, 32) and cfg.norm_num_groups == 4
    assert cfg.attention_levels == tuple(demo["attention_levels"]) and cfg.conditioning == demo["conditioning"]
    with pytest.raises(ValueError, match="no such"):
        pipeline_model_config(tmp_path / "missing.yaml")


def test_default_network_is_small_and_runs():
    unet = build_unet(ModelConfig()).eval()
    assert count_parameters(unet) == 1_114_881
    x = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        out = NoisePredictor(unet)(x, x, torch.tensor([5]), torch.tensor([2.0]))
    assert out.shape == (1, 1, 64, 64)


def test_count_parameters_counts_every_parameter():
    assert count_parameters(nn.Linear(3, 4)) == 3 * 4 + 4
    with pytest.raises(TypeError, match="unet"):
        count_parameters("unet")


# --------------------------------------------------------------------------------- save / load


@pytest.fixture
def saved(tmp_path):
    cfg = tiny("class")
    torch.manual_seed(1)
    unet = build_unet(cfg).eval()
    extra = {"diffusion": DiffusionConfig().to_dict(), "factors": ["1.500"], "run": "abc"}
    save_model(unet, cfg, tmp_path / "m", extra=extra)
    return unet, cfg, extra, tmp_path / "m"


def _rewrite_config(directory, change):
    path = directory / CONFIG_FILE
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _rewrite_weights(directory, change):
    from safetensors.torch import load_file, save_file

    from mssr.provenance import sha256_file

    path = directory / WEIGHTS_FILE
    state = load_file(str(path))
    change(state)
    save_file(state, str(path))
    digest = sha256_file(path)
    _rewrite_config(directory, lambda d: d["weights"].update(sha256=digest))


def test_save_load_round_trip_gives_identical_outputs(saved):
    unet, cfg, extra, directory = saved
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]  # no temporary files left
    header_length = struct.unpack("<Q", (directory / WEIGHTS_FILE).read_bytes()[:8])[0]
    assert (directory / WEIGHTS_FILE).read_bytes()[8:9] == b"{" and header_length > 0  # safetensors, not pickle
    loaded, loaded_cfg, loaded_extra = load_model(directory)
    assert loaded_cfg == cfg and loaded_extra == extra
    assert not loaded.training
    x_t, x_lr, t = inputs()
    factors = torch.tensor([1.125, 2.25])
    with torch.no_grad():
        assert torch.equal(NoisePredictor(unet)(x_t, x_lr, t, factors), NoisePredictor(loaded)(x_t, x_lr, t, factors))


def test_save_refuses_a_mismatched_config_and_unserializable_extra(tmp_path):
    unet = build_unet(tiny("class"))
    with pytest.raises(ValueError, match="num_class_embeds"):
        save_model(unet, tiny("none"), tmp_path, extra={})
    with pytest.raises(TypeError, match="extra"):
        save_model(unet, tiny("class"), tmp_path, extra={"when": object()})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "corrupt, file, message",
    [
        (lambda d: (d / CONFIG_FILE).unlink(), CONFIG_FILE, "not found"),
        (lambda d: (d / WEIGHTS_FILE).unlink(), WEIGHTS_FILE, "not found"),
        (lambda d: (d / CONFIG_FILE).write_text("{not json"), CONFIG_FILE, "JSON"),
        (lambda d: _rewrite_config(d, lambda c: c.pop("format")), CONFIG_FILE, "format"),
        (lambda d: _rewrite_config(d, lambda c: c["model"].update(width=3)), CONFIG_FILE, "width"),
        (lambda d: (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:-4]), WEIGHTS_FILE, "SHA-256"),
        (lambda d: _rewrite_config(d, lambda c: c["model"].update(block_out_channels=[8, 32])), WEIGHTS_FILE,
         "mis-shaped"),
        (lambda d: _rewrite_weights(d, lambda s: s.pop("conv_out.bias")), WEIGHTS_FILE, "missing"),
        (lambda d: _rewrite_weights(d, lambda s: s.update(extra_layer=torch.zeros(2))), WEIGHTS_FILE,
         "unexpected"),
    ],
)
def test_load_rejects_corrupt_files_naming_them(saved, corrupt, file, message):
    directory = saved[3]
    corrupt(directory)
    with pytest.raises(ValueError, match=message) as info:
        load_model(directory)
    assert file in str(info.value)


def test_load_rejects_unreadable_safetensors(saved):
    directory = saved[3]
    (directory / WEIGHTS_FILE).write_bytes(b"\xff" * 64)
    from mssr.provenance import sha256_file

    digest = sha256_file(directory / WEIGHTS_FILE)
    _rewrite_config(directory, lambda d: d["weights"].update(sha256=digest))
    with pytest.raises(ValueError, match="safetensors") as info:
        load_model(directory)
    assert WEIGHTS_FILE in str(info.value)
