"""The workflow's static checks: lint, config schema, config template."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def _config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "good condition" in proc.stdout + proc.stderr


@pytest.mark.parametrize("path", ["config.yaml", "configs/paper.yaml", "tests/data/micro.yaml", "configs/release.yaml",
                                  "tests/data/micro_native.yaml", "configs/real_unseen.yaml"])
def test_configs_validate_against_the_schema(path):
    cfg = _config()
    override = yaml.safe_load((ROOT / path).read_text())
    for key, value in override.items():  # snakemake merges config files key by key, nested dicts too
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    jsonschema.validate(cfg, SCHEMA)


def test_every_leaf_key_of_the_template_is_commented():
    previous = ""
    for number, line in enumerate((ROOT / "config.yaml").read_text().splitlines(), 1):
        m = re.match(r"^\s*([A-Za-z_]+):\s*(\S.*)?$", line)
        if m and m.group(2) and not m.group(2).startswith("#"):
            assert "#" in line or previous.startswith("#"), f"config.yaml:{number}: {line.strip()!r} has no comment"
        if line.strip():
            previous = line.strip()


def test_every_schema_key_has_a_description_or_a_type():
    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert "type" in sub or "oneOf" in sub or "$ref" in sub, f"{path}.{key} has no type"
            walk(sub, f"{path}.{key}")

    walk(SCHEMA, "config")


@pytest.mark.parametrize(
    "override, named",
    [("data:\n  size: 3\n", "size"), ("sample:\n  sampler: euler\n", "sampler"), ("trian:\n  epochs: 1\n", "trian"),
     ("factors: ['1.780']\n", "1.780"),
     # keys that must agree with each other: refused at the start (mssr.config_checks), not hours later in a job
     ("data:\n  size: 33\n", "data.size"),
     ("model:\n  norm_num_groups: 7\n", "model.norm_num_groups"),
     ("model:\n  attention_levels: [false, true]\n", "model.attention_levels"),
     ("sample:\n  steps: 5000\n", "sample.steps"),
     ("samplers:\n  variants:\n    - {name: dpm_50, sampler: dpmsolver, steps: 50}\n", "samplers.variants"),
     ("samplers:\n  variants:\n    - {name: ddim_7, sampler: ddim, steps: 7}\n", "ddim_7"),
     ("data:\n  split: {train: 0.8, val: 0.2, test: 0.1}\n", "data.split"),
     ("run: ..\n", "['run']"),
     ("sample:\n  steps: 5\n  steps: 6\n", "duplicated key"),
     ],
)
def test_a_bad_config_stops_the_run_naming_the_key(tmp_path, override, named):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "bad.yaml").write_text(override)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
         str(tmp_path / "bad.yaml"), "-n"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert named in proc.stdout + proc.stderr


def test_config_checks_name_file_and_lines_of_a_duplicated_key(tmp_path):
    from mssr.config_checks import ConfigError, check_yaml_files

    (tmp_path / "dup.yaml").write_text("model:\n  dropout: 0.0\n  layers_per_block: 1\n  dropout: 0.1\n")
    with pytest.raises(ConfigError, match=r"config dropout: duplicated key in .*dup\.yaml, lines 2 and 4"):
        check_yaml_files([tmp_path / "dup.yaml"])
    (tmp_path / "broken.yaml").write_text("sample:\n  steps: [1, 2\n  repeats: 2\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line 3"):
        check_yaml_files([tmp_path / "broken.yaml"])
    check_yaml_files([ROOT / "config.yaml", ROOT / "configs/paper.yaml", ROOT / "tests/data/micro.yaml"])


@pytest.mark.parametrize("path", ["config.yaml", "configs/paper.yaml", "tests/data/micro.yaml"])
def test_shipped_configs_pass_the_start_of_run_checks(path):
    from mssr.config_checks import check_pipeline_config

    cfg = _config()
    for key, value in yaml.safe_load((ROOT / path).read_text()).items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and isinstance(cfg.get(key), dict) else value
    check_pipeline_config(cfg, configfiles=[ROOT / path])
