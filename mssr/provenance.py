"""Provenance: what produced a number (config, code version, packages, inputs, tracking runs)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

from mssr.atomic import write_text

PACKAGES = ("mssr", "torch", "diffusers", "numpy", "scipy", "scikit-image", "pandas", "h5py", "nmrglue",
            "makeshift-nmr", "mlflow", "snakemake", "safetensors", "matplotlib")


def sha256_file(path, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks of ``chunk_size`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def data_sha256(root, files) -> str:
    """SHA-256 of a data set made of several files, as ``sha256sum`` lists a directory.

    Parameters
    ----------
    root : str or Path
        Directory the names are relative to.
    files : iterable of path
        The files of the data set (under ``root``); a single file given as ``[file]`` with
        ``root`` its directory still gets the listing digest, use :func:`sha256_file` for
        ``sha256sum FILE``.

    Returns
    -------
    str
        Hex digest of the text ``"<sha256>  <relative path>\n"`` per file, sorted by path in byte
        order: what ``(cd ROOT && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum)
        | sha256sum`` prints for a directory.
    """
    root = Path(root)
    names = sorted((Path(p).relative_to(root).as_posix() for p in files), key=lambda name: name.encode())
    listing = "".join(f"{sha256_file(root / name)}  {name}\n" for name in names)
    return hashlib.sha256(listing.encode()).hexdigest()


def git_commit(cwd=None) -> str:
    """The git commit of the code (``HEAD``, suffixed ``-dirty`` with uncommitted changes), or 'unknown'."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def package_versions(names=PACKAGES) -> dict:
    """Installed version of each named distribution ('not installed' where missing)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def collect(*, config: dict, inputs=(), model_configs=()) -> dict:
    """The provenance record of a run.

    Parameters
    ----------
    config : dict
        The resolved pipeline configuration.
    inputs : iterable of path
        Files whose SHA-256 is recorded.
    model_configs : iterable of path
        ``config.json`` files of trained models; their MLflow run ids and training provenance are
        copied.
    """
    models = {}
    for path in model_configs:
        cfg = json.loads(Path(path).read_text())
        extra = cfg.get("extra", cfg)
        models[Path(path).parent.name] = {
            key: extra.get(key) for key in ("mlflow_run_id", "tracking_uri", "git_commit", "data_sha256", "final")
            if key in extra
        }
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "config": config,
        "inputs": {str(p): sha256_file(p) for p in inputs},
        "models": models,
    }


def write_provenance(path, *, config: dict, inputs=(), model_configs=()) -> Path:
    """Write :func:`collect`'s record as JSON, atomically."""
    record = collect(config=config, inputs=inputs, model_configs=model_configs)
    return write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
