"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

# A measured spectrum for the file-format tests: the peakipy 2.2.1 source distribution
# (mssr.data.real) ships an 800 MHz 1H-15N HSQC series of protein L as NMRPipe (test1.ft2) and UCSF (test1.ucsf).
PROTEIN_L_MEMBERS = {"ft2": "test/test_protein_L/test1.ft2", "ucsf": "test/test_protein_L/test1.ucsf"}
# Set to 1 (as CI does) to fail instead of skip when the download is impossible.
REQUIRE_DOWNLOADS_ENV = "MSSR_TEST_REQUIRE_DOWNLOADS"


def _test_cache() -> Path:
    return Path(os.environ.get("MSSR_TEST_CACHE") or Path.home() / ".cache" / "mssr-tests")


def _unavailable(reason: str):
    if os.environ.get(REQUIRE_DOWNLOADS_ENV) == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def peakipy_sdist() -> Path:
    """The peakipy 2.2.1 sdist, fetched once with pip into the test cache and checksummed.

    The cache is ``$MSSR_TEST_CACHE`` or ``~/.cache/mssr-tests``; the download is
    :func:`mssr.data.real.fetch_peakipy_sdist` (pip prepares the sdist's metadata, which installs
    its build backend in an isolated environment, so the first run needs PyPI for both). Without
    network the tests that use it are skipped (failed when ``MSSR_TEST_REQUIRE_DOWNLOADS=1``).
    """
    from mssr.data.real import fetch_peakipy_sdist

    try:
        return fetch_peakipy_sdist(_test_cache())
    except RuntimeError as exc:
        if "sha256" in str(exc):
            pytest.fail(str(exc))
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def protein_l_files(peakipy_sdist, tmp_path_factory) -> dict[str, Path]:
    """``{'ft2': Path, 'ucsf': Path}``: protein L test1.ft2 and test1.ucsf extracted from the sdist."""
    out = tmp_path_factory.mktemp("protein_L")
    files = {}
    with tarfile.open(peakipy_sdist, "r:gz") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        for key, suffix in PROTEIN_L_MEMBERS.items():
            found = [name for name in members if name == suffix or name.endswith("/" + suffix)]
            if len(found) != 1:
                pytest.fail(f"{peakipy_sdist} holds {len(found)} files named {suffix}")
            target = out / Path(suffix).name
            with archive.extractfile(members[found[0]]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            files[key] = target
    return files


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real single-node SLURM (all CPUs, 90 % of the memory, 2 fake GPUs), started once per session.

    See ``tests/slurm_harness.py``. It needs root on Debian and the executor plugin
    (``pip install "mssr[cluster]"``); elsewhere the tests that use it are skipped with the reason,
    except in CI (``CI=true``), where they fail. The daemons it started are stopped, by pid, at the end.
    """
    import importlib.util

    import slurm_harness

    ok, reason = slurm_harness.slurm_available()
    if ok and importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        ok, reason = False, 'the SLURM executor plugin is missing: pip install "mssr[cluster]"'
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the SLURM tests cannot run: {reason}")
        pytest.skip(reason)
    with slurm_harness.running_slurm(n_gpus=2) as started:
        yield started


# ---------------------------------------------------------------------------------------------
# small models and spectra shared by the test modules


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one CPU thread for a test module (reproducible sums; the CPU is shared), restored after.

    Request it before the module's expensive fixtures: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gaussian_peaks(n: int, size: int, seed: int, *, n_peaks: int = 3):
    """``n`` spectra of ``size`` x ``size`` px, each ``n_peaks`` round Gaussians (SD 1 px), max |x| = 1, float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    x = np.zeros((n, size, size), np.float32)
    for i in range(n):
        for _ in range(n_peaks):
            cy, cx = rng.uniform(2, size - 2, 2)
            x[i] += rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
        x[i] /= np.abs(x[i]).max()
    return x


@pytest.fixture(scope="session")
def gaussian_peaks():
    """The function ``(n, size, seed, *, n_peaks=3) -> (n, size, size) float32`` of seeded Gaussian-peak spectra."""
    return _gaussian_peaks


def _save_micro_model(directory, *, size: int = 16, conditioning: str = "class", factors=None, factor=None,
                      timesteps: int = 50, seed: int = 0, extra=None) -> Path:
    """An untrained micro UNet (widths 8, 16; no attention) saved as training saves a model.

    ``factors`` (default: the 14 of Table 1) and ``factor`` (a baseline's) go into the record with
    the diffusion config of ``timesteps``; ``extra`` adds or replaces record keys.
    """
    import torch

    from mssr.factors import FACTORS, as_factor
    from mssr.model.diffusion import DiffusionConfig
    from mssr.model.network import ModelConfig, build_unet, save_model

    factors = FACTORS if factors is None else factors
    cfg = ModelConfig(sample_size=size, block_out_channels=(8, 16), layers_per_block=1,
                      attention_levels=(False, False), mid_attention=False, norm_num_groups=4,
                      conditioning=conditioning)
    torch.manual_seed(seed)
    record = {"kind": "mssr" if factor is None else "baseline",
              "diffusion": DiffusionConfig(timesteps=timesteps).to_dict(),
              "factors": [float(as_factor(f)) for f in factors], "factor": factor, "mlflow_run_id": None,
              "tracking_uri": None, **(extra or {})}
    return save_model(build_unet(cfg), cfg, directory, extra=record)


@pytest.fixture(scope="session")
def micro_model():
    """The function that saves an untrained micro model (see ``_save_micro_model``) and returns its folder."""
    return _save_micro_model


@pytest.fixture(scope="session")
def micro_workdir(peakipy_sdist):
    """The function that makes a workdir for a micro run: config.yaml, and ``micro.yaml`` from
    ``tests/data/<name>`` reading the real spectra from the sdist the tests fetched and checksummed."""
    import shutil

    import yaml

    root = Path(__file__).resolve().parents[1]

    def make(workdir: Path, name: str) -> Path:
        shutil.copy(root / "config.yaml", workdir / "config.yaml")
        micro = yaml.safe_load((root / "tests" / "data" / name).read_text())
        micro["data"]["real_testset"]["cache"] = str(peakipy_sdist.parent)
        (workdir / "micro.yaml").write_text(yaml.safe_dump(micro))
        return workdir

    return make
