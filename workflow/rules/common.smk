# All the Python of the workflow: config validation, wildcard constraints, paths, input functions.

import json
import sys
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# The workflow scripts import the package from this checkout, also where it is not installed.
sys.path.insert(0, str(Path(workflow.basedir)))

from mssr.config_checks import check_pipeline_config  # noqa: E402
from mssr.config import PAPER_DEGRADE_KEYS, native_baseline_config  # noqa: E402
from mssr.factors import FACTOR_LABELS  # noqa: E402

# What the schema cannot say (keys that must agree, steps vs T, split sums, duplicated YAML keys):
# refused here, naming the key, rather than hours later inside a job.
check_pipeline_config(config, configfiles=workflow.configfiles)

RUN = config["run"]
OUT = f"results/{RUN}"
FACTORS = list(FACTOR_LABELS) if config["factors"] == "all" else sorted(config["factors"], key=float)
LEARNED = ["mssr", "baseline"]
CLASSICAL = list(config["metrics"].get("classical", ["identity"]))
METHODS = LEARNED + CLASSICAL
# Physically true low/high-field pairs exist only where the spectra are rendered (demo source).
_unknown_heldout = sorted(set(config.get("continuous", {}).get("heldout", [])) - set(FACTORS))
if _unknown_heldout:
    raise ValueError(
        f"config continuous.heldout: {', '.join(_unknown_heldout)} not among the run's factors ({', '.join(FACTORS)})"
    )
TESTSETS = ["blur", "physical"] if config["data"]["source"] == "demo" else ["blur"]
# Measured 800 MHz planes broadened physically (peakipy's sdist): independent of the data source.
if (config["data"].get("real_testset") or {}).get("enabled", False):
    TESTSETS.append("real")

wildcard_constraints:
    factor=r"\d\.\d{3}",
    learned="|".join(LEARNED),
    classical="|".join(CLASSICAL),
    testset="|".join(TESTSETS),

# With an executor like SLURM these run on the submitting host, not as cluster jobs: they are
# cheap, and fetch downloads, which compute nodes often cannot.
localrules: all, fetch, tracking_store, split, tables, plot, provenance


def gpu_resources(scale=1.0):
    """SLURM resources of a GPU job (training, sampling); ignored by local runs."""
    res = config.get("resources", {})
    return dict(
        gpu=1,
        cpus_per_task=res.get("threads", 1),
        mem_mb=res.get("gpu_mem_mb", 16000),
        runtime=int(res.get("gpu_runtime_min", 60) * scale),
    )


# What training reads (mssr.config.train_from_config): a change anywhere else (metrics, sampling,
# plots, the test inputs' seed, the MLflow server) must not retrain models. The degrade keys are
# those of the configured low-field model only; the baselines also read the baseline section;
# the tracking section reaches the training scripts through snakemake.config, not params.
def _training_degrade(degrade):
    model = degrade.get("model", "paper")
    keys = PAPER_DEGRADE_KEYS if model == "paper" else ("physical",)
    return {"model": model, **{key: degrade[key] for key in keys if key in degrade}}


TRAIN_CONFIG = {
    "data": {"size": config["data"]["size"]},
    **{key: config[key] for key in ("model", "diffusion", "train")},
    "degrade": _training_degrade(config["degrade"]),
}
BASELINE_TRAIN_CONFIG = {**TRAIN_CONFIG, "baseline": config["baseline"]}

JOB_THREADS = config.get("resources", {}).get("threads", 1)

# What the native-resolution model's training reads (the patches come from the split's proteins).
NATIVE_TRAIN_CONFIG = {key: config[key] for key in ("native", "diffusion", "train") if key in config}
if isinstance(NATIVE_TRAIN_CONFIG.get("native"), dict):  # the sampler validation is not training
    NATIVE_TRAIN_CONFIG["native"] = {k: v for k, v in NATIVE_TRAIN_CONFIG["native"].items() if k != "validate"}


def model_dir(learned, factor):
    return f"{OUT}/models/mssr" if learned == "mssr" else f"{OUT}/models/baseline_{factor}"


def infer_model(wildcards):
    return str(Path(model_dir(wildcards.learned, wildcards.factor), "model.safetensors"))


def predictions(testset):
    return [f"{OUT}/predictions/{testset}/{m}/{f}.h5" for m in METHODS for f in FACTORS]


# The real test set (measured spectra broadened physically) scores the shipped model unless
# real.model names another model directory; "release" means this run's own native model.
_real = config.get("real") or {}
if _real.get("model", "shipped") == "shipped":
    from mssr.enhance.models import DEFAULT_MODEL_DIR as _SHIPPED  # noqa: E402

    REAL_MODEL_DIR = str(_SHIPPED)
elif _real.get("model") == "release":
    REAL_MODEL_DIR = f"{OUT}/models/mssr_native"
else:
    REAL_MODEL_DIR = str(_real["model"])
REAL_MODEL_FILES = [f"{REAL_MODEL_DIR}/model.safetensors", f"{REAL_MODEL_DIR}/config.json"]


def all_outputs():
    if config.get("mode", "native") == "native":
        return [
            f"{OUT}/tables/native.csv",
            f"{OUT}/tables/native_summary.md",
            *expand(f"{OUT}/figures/native/protein_L_{{factor}}.png", factor=FACTORS),
        ]
    real = [f"{OUT}/tables/real.csv", f"{OUT}/figures/real_protein_L.png"] if _real.get("enabled", False) else []
    if (config.get("native") or {}).get("validate"):
        real.append(f"{OUT}/tables/native_samplers_summary.csv")
    return real + [
        f"{OUT}/tables/metrics.csv",
        f"{OUT}/tables/summary.md",
        f"{OUT}/figures/figures.json",
        f"{OUT}/tables/heldout.csv",
        f"{OUT}/figures/heldout.png",
        f"{OUT}/tables/samplers.csv",
        f"{OUT}/figures/samplers.png",
    ]
