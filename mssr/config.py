"""From the pipeline's configuration (config.yaml, validated by the workflow) to typed configs.

The one place that maps config sections onto :class:`mssr.model.network.ModelConfig`,
:class:`mssr.model.diffusion.DiffusionConfig`, :class:`mssr.model.train.TrainConfig` and the low-field model's
parameters, so that training, inference, test sets and ``mssr enhance`` read the config the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from mssr.factors import as_factor

PAPER_DEGRADE_KEYS = ("sigma_lr",)


def set_threads(threads: int | None) -> None:
    """Limit torch's intra-op CPU threads to a job's share of the machine (None: leave as is)."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def degrade_params(degrade: dict) -> dict:
    """Keyword parameters of :func:`mssr.degrade.simulate` for the configured model.

    ``paper`` takes ``sigma_lr`` (noise SD, normalized scale); ``physical`` takes the keys of the
    ``physical`` subsection (``sigma_high``, ``lineshape``); each sample's axes and field come from
    its header.
    """
    model = degrade.get("model", "paper")
    if model == "paper":
        return {k: degrade[k] for k in PAPER_DEGRADE_KEYS if k in degrade}
    if model == "physical":
        return dict(degrade.get("physical") or {})
    raise ValueError(f"degrade.model must be 'paper' or 'physical', got {model!r}")


def model_config(cfg: dict):
    """:class:`mssr.model.network.ModelConfig` of the ``model`` section at the data's size S (pixels)."""
    from mssr.model.network import ModelConfig

    return ModelConfig.from_dict({**cfg["model"], "sample_size": int(cfg["data"]["size"])})


def diffusion_config(cfg: dict):
    """:class:`mssr.model.diffusion.DiffusionConfig` of the ``diffusion`` section."""
    from mssr.model.diffusion import DiffusionConfig

    return DiffusionConfig.from_dict(dict(cfg["diffusion"]))


def train_config(cfg: dict, *, factors, baseline: bool):
    """:class:`mssr.model.train.TrainConfig`: the ``train`` section, the baseline's epochs, the factors drawn
    during training and the low-field model."""
    from mssr.model.train import TrainConfig

    section = dict(cfg["train"])
    if baseline:
        section.update(cfg.get("baseline") or {})
    section["factors"] = [float(as_factor(f)) for f in factors]
    section["degrade_model"] = cfg["degrade"].get("model", "paper")
    section["degrade_params"] = degrade_params(cfg["degrade"])
    return TrainConfig.from_dict(section)


def tracking_config(cfg: dict, store_json=None):
    """Tracking of a training run: the store created by the workflow, else the ``tracking`` section."""
    from mssr.tracking import TrackingConfig

    section = dict(cfg.get("tracking") or {})
    uri = section.get("uri")
    if store_json is not None and Path(store_json).exists():
        record = json.loads(Path(store_json).read_text())
        uri = record.get("uri", uri) if record.get("reachable", True) else uri
    return TrackingConfig(experiment=section.get("experiment") or "mssr", uri=uri)


def train_from_config(cfg: dict, train_h5, val_h5, out_dir, *, factor=None, factors, store_json=None,
                      threads: int | None = None) -> Path:
    """Train MSSR (``factor=None``) or one factor's baseline as the pipeline config says.

    Parameters
    ----------
    cfg : dict
        The whole pipeline configuration.
    train_h5, val_h5 : path
        Training and validation sets.
    out_dir : path
        Model folder.
    factor : str or float, optional
        The baseline's factor; None for MSSR.
    factors : sequence
        The run's factors (MSSR draws from them).
    store_json : path, optional
        The tracking store record written by the workflow's ``tracking_store`` rule.
    threads : int, optional
        CPU threads of torch (the job's share of the machine).
    """
    from mssr.model.train import train

    set_threads(threads)
    return train(
        train_h5, val_h5, out_dir,
        model_cfg=model_config(cfg),
        diffusion_cfg=diffusion_config(cfg),
        train_cfg=train_config(cfg, factors=[factor] if factor is not None else factors, baseline=factor is not None),
        factor=factor,
        tracking=tracking_config(cfg, store_json),
    )


def native_configs(cfg: dict) -> dict:
    """Typed configs of the native-resolution model from the ``native`` section.

    Returns
    -------
    dict
        ``model`` (ModelConfig, continuous conditioning, ``sample_size`` = the patch side),
        ``diffusion`` (the ``diffusion`` section updated by ``native.diffusion``), ``train`` (the ``train`` section updated by
        ``native.train``), ``patches`` (PatchConfig), ``epoch_length``, ``val_length`` and
        ``sample`` (the sampler settings recorded as the model's default).
    """
    from mssr.data.patches import PatchConfig
    from mssr.model.network import ModelConfig
    from mssr.model.train import TrainConfig

    section = cfg.get("native")
    if not isinstance(section, dict):
        raise ValueError("config: the 'native' section is missing (native-resolution mode)")
    patches = PatchConfig.from_dict(dict(section.get("patches") or {}))
    model = ModelConfig.from_dict({**section["model"], "conditioning": "continuous", "sample_size": patches.size})
    train_section = {**cfg["train"], **(section.get("train") or {})}
    train_section["degrade_model"] = "physical"
    train_section["degrade_params"] = {}
    return {
        "model": model,
        "diffusion": diffusion_config({"diffusion": {**cfg["diffusion"], **(section.get("diffusion") or {})}}),
        "train": TrainConfig.from_dict(train_section),
        "patches": patches,
        "epoch_length": int(section["epoch_length"]),
        "val_length": int(section["val_length"]),
        "sample": dict(section["sample"]),
    }


def native_baseline_config(cfg: dict, factor) -> dict:
    """A native baseline's training config: ``cfg`` (with a ``native`` section) at one Table-1 factor.

    A copy of ``cfg`` whose ``native.patches.factor`` is the exact factor of ``factor`` (a value or
    label, :func:`mssr.factors.as_factor`): every pair is drawn at it (:class:`mssr.data.patches.PatchConfig`).
    """
    import copy

    from mssr.factors import as_factor

    out = copy.deepcopy(cfg)
    out["native"]["patches"] = {**(out["native"].get("patches") or {}), "factor": float(as_factor(factor))}
    return out


def train_native_from_config(cfg: dict, split_json, out_dir, *, store_json=None, threads: int | None = None,
                             run_name: str = "mssr_native") -> Path:
    """Train the native-resolution model as the ``native`` config section says.

    Parameters
    ----------
    cfg : dict
        The whole pipeline configuration.
    split_json : path
        The run's ``split.json`` (training and validation proteins).
    out_dir : path
        Model folder.
    store_json : path, optional
        The tracking store record of the workflow's ``tracking_store`` rule.
    threads : int, optional
        CPU threads of torch.
    run_name : str
        The MLflow run's name (``native_baseline_<factor>`` for a baseline).
    """
    from mssr.model.native import native_record, patch_training_data
    from mssr.model.train import train

    set_threads(threads)
    typed = native_configs(cfg)
    data = patch_training_data(split_json, typed["patches"], length=typed["epoch_length"],
                               val_length=typed["val_length"], seed=typed["train"].seed)
    tracking = tracking_config(cfg, store_json)
    tracking = type(tracking)(experiment=tracking.experiment, uri=tracking.uri, run_name=run_name)
    return train(
        None, None, out_dir,
        model_cfg=typed["model"], diffusion_cfg=typed["diffusion"], train_cfg=typed["train"],
        tracking=tracking, data=data, record=native_record(typed["patches"], typed["sample"]),
    )
