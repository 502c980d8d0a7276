"""Start-of-run checks of the pipeline configuration that the JSON schema cannot express.

The schema checks each key alone (type, bounds, enum); :func:`check_pipeline_config` checks
what fails only hours later inside a job: keys that must agree with each other (the network's
levels and the data size, GroupNorm groups and widths, sampling steps and T), the split fractions,
the run name, and YAML files whose duplicated keys would silently keep the last value. Each
problem raises one :class:`ConfigError` naming the key and the rule broken. Called from
``workflow/rules/common.smk``, so ``snakemake -n`` already fails.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SPLIT_TOLERANCE = 1e-9


class ConfigError(ValueError):
    """A configuration that cannot run: the message starts with ``config <key>:``."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(f"config {key}: {problem}")


def check_yaml_files(paths) -> None:
    """Refuse YAML files with a duplicated key (at any depth) or a syntax error, naming file and line.

    Snakemake's loader keeps the last of duplicated keys without a word.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(str(key), f"duplicated key in {loader.name}, lines {seen[key] + 1} and "
                                  f"{key_node.start_mark.line + 1}: YAML keeps the last value silently; keep one")
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    for path in paths:
        path = Path(path)
        if path.suffix.lower() == ".json" or not path.is_file():
            continue
        try:
            with open(path, encoding="utf-8") as stream:  # the loader names the file in its marks
                yaml.load(stream, Loader=StrictLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
            raise ConfigError(str(path), f"YAML syntax error at {where}: {exc.problem}") from None


def _model_key(message: str) -> tuple[str, str]:
    """The config key a ModelConfig/DiffusionConfig message is about, and the message in config terms."""
    message = message.replace("ModelConfig.sample_size", "data.size").replace("ModelConfig.", "model.")
    message = message.replace("DiffusionConfig.", "diffusion.")
    match = re.search(r"\b(data\.size|model\.\w+|diffusion\.\w+)", message)
    return (match.group(1) if match else "model"), message


def _check_model(cfg: dict) -> None:
    from mssr.config import model_config

    try:
        model_config(cfg)
    except (TypeError, ValueError) as exc:
        key, message = _model_key(str(exc))
        raise ConfigError(key, message) from None


def _diffusion(cfg: dict):
    from mssr.config import diffusion_config
    from mssr.model.diffusion import Diffusion

    try:
        return Diffusion(diffusion_config(cfg))
    except (TypeError, ValueError) as exc:
        key, message = _model_key(str(exc))
        raise ConfigError(key, message) from None


def _check_sampling(cfg: dict, diffusion) -> None:
    from mssr.evaluation.samplers import check_variants, sampler_variants
    from mssr.model.sample import SampleConfig

    try:
        SampleConfig.from_dict(dict(cfg["sample"]))
    except (TypeError, ValueError) as exc:
        raise ConfigError("sample", str(exc)) from None
    T = diffusion.timesteps
    sample = cfg["sample"]
    try:
        diffusion.schedule_timesteps(sample["sampler"], sample["steps"], start_step=sample.get("start_step"))
    except (TypeError, ValueError) as exc:
        raise ConfigError("sample.steps", f"{sample['sampler']} with {sample['steps']} steps and start_step "
                          f"{sample.get('start_step')} cannot run on T = diffusion.timesteps = {T}: {exc}") from None
    for steps in (cfg.get("sweep") or {}).get("steps") or []:
        try:
            diffusion.schedule_timesteps(sample["sampler"], steps)
        except (TypeError, ValueError) as exc:
            raise ConfigError("sweep.steps", f"{steps} steps of {sample['sampler']} (sample.sampler) on T = {T}: "
                              f"{exc}") from None
    if "samplers" in cfg:
        try:
            check_variants(sampler_variants(cfg["samplers"], cfg["sample"]), diffusion)
        except (TypeError, ValueError) as exc:
            raise ConfigError("samplers.variants", f"{exc} (T = diffusion.timesteps = {T})") from None


def _check_split(cfg: dict) -> None:
    split = cfg["data"]["split"]
    fractions = {k: split[k] for k in ("train", "val", "test") if k in split}
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=SPLIT_TOLERANCE):
        parts = " + ".join(f"{k} {v:g}" for k, v in fractions.items())
        raise ConfigError("data.split", f"the fractions of proteins must sum to 1, got {parts} = {total:g}")


def _check_run(cfg: dict) -> None:
    run = cfg.get("run")
    if not isinstance(run, str) or not RUN_NAME.match(run) or run in (".", ".."):
        raise ConfigError("run", f"{run!r} must be a plain folder name (letters, digits, '_', '-', '.'; not '.' or "
                          "'..'; no '/'): outputs go to results/<run>/")


def check_pipeline_config(cfg: dict, configfiles=()) -> None:
    """Refuse a pipeline configuration that would fail later inside a job (see the module notes).

    Parameters
    ----------
    cfg : dict
        The merged configuration, already valid against the JSON schema.
    configfiles : iterable of path
        The YAML files it was read from (checked for duplicated keys).

    Raises
    ------
    ConfigError
        The first problem found, naming the key: a duplicated YAML key or syntax error (file and
        lines), ``run`` that is not a plain folder name, ``data.size`` not divisible by
        2 ** (levels - 1), ``model.norm_num_groups`` not dividing every width,
        ``model.attention_levels`` of another length than ``model.block_out_channels``, an invalid
        ``diffusion`` section, ``sample`` / ``sweep.steps`` / ``samplers.variants`` steps the
        schedule cannot take at T, split fractions that do not sum to 1.
    """
    check_yaml_files(configfiles)
    _check_run(cfg)
    _check_split(cfg)
    _check_model(cfg)
    _check_sampling(cfg, _diffusion(cfg))


__all__ = ["ConfigError", "check_pipeline_config", "check_yaml_files"]
