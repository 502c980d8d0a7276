"""Tests of mssr.data.demo: magnet fields drawn, the demo data set's files and manifest."""

import hashlib
import zlib

import numpy as np
import pandas as pd
import pytest

from mssr import io as mssr_io
from mssr.data import demo, synthetic


def test_draw_field_range_and_choice():
    rng = np.random.default_rng(0)
    drawn = {demo.draw_field(rng, (600, 950)) for _ in range(200)}
    assert drawn == {600.0, 700.0, 750.0, 800.0, 850.0, 900.0, 950.0}
    assert {demo.draw_field(rng, [500, 800], mode="choice") for _ in range(50)} == {500.0, 800.0}
    with pytest.raises(ValueError, match="fields_mhz"):
        demo.draw_field(rng, (950, 600))


def test_render_dataset_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # file headers carry a date: fix it to compare bytes
    sizes = {"hsqc_15n": (16, 32), "hnca": (8, 6, 16)}
    manifest = demo.render_dataset(tmp_path, n_proteins=2, experiments=["hsqc_15n", "hnca"], seed=3,
                                   sizes=sizes)
    table = pd.read_csv(manifest)
    assert tuple(table.columns) == demo.MANIFEST_COLUMNS
    assert len(table) == 4
    assert set(table["format"]) == {"ucsf", "pipe"}
    assert set(table.loc[table["experiment"] == "hsqc_15n", "format"]) == {"ucsf", "pipe"}
    suffixes = {p.rsplit(".", 1)[1] for p in table["path"]}
    assert suffixes == {"ucsf", "ft2", "ft3"}
    refdb = synthetic.load_refdb()
    for row in table.itertuples():
        path = tmp_path / row.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
        assert row.field_mhz in demo.STANDARD_FIELDS_MHZ and 600 <= row.field_mhz <= 950
        spectrum = mssr_io.read(path)
        assert "x".join(map(str, spectrum.shape)) == row.shape and "/".join(spectrum.nuclei) == row.nuclei
        assert spectrum.field_mhz == pytest.approx(row.field_mhz, rel=1e-6)
        bmrb_id = int(row.protein[4:])
        rng = np.random.default_rng([3, bmrb_id, zlib.crc32(row.experiment.encode())])
        again = synthetic.render_spectrum(synthetic.protein_table(refdb, bmrb_id), row.experiment, row.field_mhz,
                                          sizes=sizes[row.experiment], rng=rng)
        np.testing.assert_allclose(np.asarray(spectrum.data), again.data, rtol=1e-6, atol=1e-7)
    assert (tmp_path / "quarantine.csv").read_text().strip() == "path,reason"
    # same seed: same bytes
    again_dir = tmp_path / "again"
    demo.render_dataset(again_dir, n_proteins=2, experiments=["hsqc_15n", "hnca"], seed=3, sizes=sizes)
    assert list(pd.read_csv(again_dir / "manifest.csv")["sha256"]) == list(table["sha256"])
