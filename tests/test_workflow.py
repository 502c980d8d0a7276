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


@pytest.mark.parametrize("path", ["config.yaml", "configs/paper.yaml", "tests/data/micro.yaml"])
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
     ("factors: ['1.780']\n", "1.780")],
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
