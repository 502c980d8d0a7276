"""The demo data set: spectra rendered from RefDB shifts, written as files with a manifest.

:func:`render_dataset` draws proteins (:func:`mssr.data.synthetic.pick_proteins`) and one
magnet field per protein (:func:`draw_field`), renders each experiment
(:func:`mssr.data.synthetic.render_spectrum`), writes it in the formats of :mod:`mssr.io`, reads
it back and lists it in ``manifest.csv``. It is the ``demo`` source of :mod:`mssr.data.fetch`.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from mssr.atomic import write_text
from mssr.data.physics import NOISE_SD_900, validate_experiment
from mssr.data.synthetic import load_refdb, pick_proteins, protein_name, protein_table, render_spectrum
from mssr.provenance import sha256_file

FieldMode = Literal["range", "choice"]

STANDARD_FIELDS_MHZ: tuple[int, ...] = (400, 500, 600, 700, 750, 800, 850, 900, 950, 1000, 1100, 1200)
"""1H frequencies of commercial NMR magnets, MHz: a field range draws among these."""

MANIFEST_COLUMNS = ("protein", "experiment", "path", "format", "ndim", "shape", "nuclei", "field_mhz", "sha256")

_PIPE_SUFFIX = {2: ".ft2", 3: ".ft3", 4: ".ft4"}


def draw_field(rng: np.random.Generator, fields_mhz: Sequence[float], *, mode: FieldMode = "range") -> float:
    """Draw a spectrometer field, MHz.

    ``mode='range'``: ``fields_mhz`` is ``(low, high)`` and the field is drawn uniformly among the
    :data:`STANDARD_FIELDS_MHZ` magnets in that closed range. ``mode='choice'``: drawn uniformly
    from ``fields_mhz`` itself.
    """
    fields = [float(f) for f in fields_mhz]
    if not fields or not all(np.isfinite(f) and f > 0 for f in fields):
        raise ValueError(f"fields_mhz must be positive MHz values, got {fields_mhz}")
    if mode == "range":
        if len(fields) != 2 or fields[0] > fields[1]:
            raise ValueError(f"fields_mhz must be (low, high) MHz for mode='range', got {fields_mhz}")
        fields = [float(f) for f in STANDARD_FIELDS_MHZ if fields[0] <= f <= fields[1]]
        if not fields:
            raise ValueError(f"no standard magnet field ({STANDARD_FIELDS_MHZ}) lies in {fields_mhz}")
    elif mode != "choice":
        raise ValueError(f"mode must be 'range' or 'choice', got {mode!r}")
    return float(fields[int(rng.integers(len(fields)))])


def render_dataset(
    out_dir,
    *,
    n_proteins: int,
    experiments: Sequence[str],
    fields_mhz: Sequence[float] = (600, 950),
    field_mode: FieldMode = "range",
    seed: int,
    formats: Sequence[str] = ("ucsf", "pipe"),
    sizes: dict | None = None,
    windows: dict | None = None,
    noise_sd: float = NOISE_SD_900,
) -> Path:
    """Render a demo data set as real spectrum files with a manifest.

    Proteins are drawn with :func:`mssr.data.synthetic.pick_proteins`; each gets one field
    (:func:`draw_field`) and every experiment of ``experiments`` rendered at it, written with
    :func:`mssr.io.write` to ``out_dir/<protein>/<experiment>.<ucsf|ft2|ft3>``. The format
    cycles through ``formats`` with (protein index + experiment index), so every experiment
    appears in every format. Each protein's draws come from a generator seeded by
    ``(seed, bmrb_id, experiment)``: one spectrum does not change when the protein or experiment
    lists change.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    n_proteins : int
        Number of proteins.
    experiments : sequence of str
        Experiment names (:data:`mssr.data.physics.EXPERIMENTS`).
    fields_mhz : sequence of float
        ``(low, high)`` MHz range (``field_mode='range'``) or the fields to choose from.
    field_mode : {'range', 'choice'}
    seed : int
        Seed of the protein and field draws and of the rendering.
    formats : sequence of {'ucsf', 'pipe'}
        File formats to alternate.
    sizes : dict of str to tuple of int, optional
        Points per axis per experiment; defaults to :data:`mssr.data.physics.EXPERIMENTS`.
    windows : dict of str to tuple of (float, float), optional
        (centre ppm, width ppm) per axis per experiment; defaults to
        :data:`mssr.data.physics.EXPERIMENTS`.
    noise_sd : float
        Noise SD at 900 MHz (see :func:`mssr.data.synthetic.render_spectrum`).

    Returns
    -------
    Path
        ``out_dir/manifest.csv`` with the columns :data:`MANIFEST_COLUMNS` (``path`` relative to
        ``out_dir``; ``sha256`` of each file), written atomically. Every file is read back
        (shape and nuclei checked) before it is listed; an empty ``quarantine.csv`` is written
        beside the manifest, as the fetch stage does for other sources.
    """
    from mssr import io as mssr_io  # the only module that knows file formats

    out_dir = Path(out_dir)
    experiments = list(experiments)
    if not experiments:
        raise ValueError("experiments must name at least one experiment")
    for e in experiments:
        validate_experiment(e)
    formats = list(formats)
    bad = [f for f in formats if f not in ("ucsf", "pipe")]
    if not formats or bad:
        raise ValueError(f"formats must be a non-empty sequence of 'ucsf'/'pipe', got {formats}")
    sizes = sizes or {}
    windows = windows or {}
    refdb = load_refdb()
    rows = []
    for p_idx, bmrb_id in enumerate(pick_proteins(n_proteins, seed=seed, refdb=refdb)):
        table = protein_table(refdb, bmrb_id)
        name = protein_name(bmrb_id)
        field = draw_field(np.random.default_rng([seed, bmrb_id]), fields_mhz, mode=field_mode)
        for e_idx, experiment in enumerate(experiments):
            rng = np.random.default_rng([seed, bmrb_id, zlib.crc32(experiment.encode())])
            spectrum = render_spectrum(table, experiment, field, sizes=sizes.get(experiment),
                                       windows=windows.get(experiment), rng=rng, noise_sd=noise_sd)
            fmt = formats[(p_idx + e_idx) % len(formats)]
            suffix = ".ucsf" if fmt == "ucsf" else _PIPE_SUFFIX[spectrum.ndim]
            rel = Path(name) / f"{experiment}{suffix}"
            (out_dir / name).mkdir(parents=True, exist_ok=True)
            mssr_io.write(spectrum, out_dir / rel)
            back = mssr_io.read(out_dir / rel, lazy=True)
            if back.shape != spectrum.shape or back.nuclei != spectrum.nuclei:
                raise ValueError(
                    f"{out_dir / rel}: read back as {back.shape} {back.nuclei}, written as "
                    f"{spectrum.shape} {spectrum.nuclei}"
                )
            rows.append({
                "protein": name,
                "experiment": experiment,
                "path": rel.as_posix(),
                "format": fmt,
                "ndim": spectrum.ndim,
                "shape": "x".join(str(s) for s in spectrum.shape),
                "nuclei": "/".join(spectrum.nuclei),
                "field_mhz": field,
                "sha256": sha256_file(out_dir / rel),
            })
    manifest = out_dir / "manifest.csv"
    write_text(manifest, pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).to_csv(index=False))
    # Rendered files cannot be unreadable (each was read back above): the quarantine list is empty.
    write_text(out_dir / "quarantine.csv", pd.DataFrame(columns=["path", "reason"]).to_csv(index=False))
    return manifest
