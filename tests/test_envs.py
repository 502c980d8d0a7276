"""The conda environment file and pyproject pin the same packages at the same versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name_version(requirement: str):
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([^\s;]+)", requirement)
    assert m, f"unpinned requirement: {requirement!r}"
    return m.group(1).lower().replace("_", "-"), m.group(3)


def test_conda_env_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = dict(_name_version(r) for r in project["dependencies"])
    env = yaml.safe_load((ROOT / "envs" / "mssr.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = dict(_name_version(r) for r in pip_section if not r.startswith("-e"))
    assert conda_pins == pinned
    assert any(d.startswith("python=") for d in env["dependencies"] if isinstance(d, str))


def test_every_rule_uses_an_environment_file_that_exists():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().exists(), f"{smk.name}: {env} missing"
