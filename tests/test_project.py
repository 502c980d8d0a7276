import numpy as np
import pandas as pd
import pytest

from mssr import io as mssr_io
from mssr.data import project as project_mod
from mssr.data.project import default_pairs, project, project_manifest
from mssr.data.store import read_attrs, read_planes
from mssr.spectrum import Axis, Spectrum


def axes_3d(sizes=(2, 2, 3), nuclei=("13C", "15N", "1H"), field=600.0):
    windows = {"13C": (70.0, 40.0), "15N": (134.0, 104.0), "1H": (11.0, 6.0)}
    return tuple(Axis.from_ppm_window(n, field, *windows[n], s) for n, s in zip(nuclei, sizes))


# a[c, n, h]: 13C x 15N x 1H = 2 x 2 x 3
A = np.array(
    [
        [[1.0, -5.0, 2.0], [0.0, 3.0, -1.0]],
        [[-4.0, 2.0, 2.0], [6.0, -7.0, 0.5]],
    ],
    dtype=np.float32,
)
# onto 15N-1H (over 13C), by hand
SUM_NH = [[-3.0, -3.0, 4.0], [6.0, -4.0, -0.5]]
MAX_NH = [[1.0, 2.0, 2.0], [6.0, 3.0, 0.5]]
SIGNED_NH = [[-4.0, -5.0, 2.0], [6.0, -7.0, -1.0]]
# onto 13C-1H (over 15N)
SUM_CH = [[1.0, -2.0, 1.0], [2.0, -5.0, 2.5]]
MAX_CH = [[1.0, 3.0, 2.0], [6.0, 2.0, 2.0]]
SIGNED_CH = [[1.0, -5.0, 2.0], [6.0, -7.0, 2.0]]


@pytest.mark.parametrize(
    "method, nh, ch",
    [("sum", SUM_NH, SUM_CH), ("max", MAX_NH, MAX_CH), ("signed_max", SIGNED_NH, SIGNED_CH)],
)
def test_methods_against_hand_values(method, nh, ch):
    s = Spectrum(A, axes_3d(), meta={"experiment": "hnca", "protein": "p1"})
    planes = project(s, method=method)
    assert [p.meta["projection"] for p in planes] == ["15N-1H", "13C-1H"]
    np.testing.assert_allclose(planes[0].data, nh)
    np.testing.assert_allclose(planes[1].data, ch)
    for p in planes:
        assert p.data.dtype == np.float32
        assert p.meta["method"] == method and p.meta["experiment"] == "hnca" and p.meta["protein"] == "p1"
        assert p.meta["parent_shape"] == "2x2x3"


def test_axis_metadata_preserved():
    axes = axes_3d((5, 4, 6))
    s = Spectrum(np.random.default_rng(0).normal(size=(5, 4, 6)).astype(np.float32), axes, meta={"experiment": "hnco"})
    nh, ch = project(s)
    assert nh.axes == (axes[1], axes[2]) and ch.axes == (axes[0], axes[2])
    np.testing.assert_allclose(nh.ppm_scale(0), axes[1].ppm_scale())
    assert nh.field_mhz == pytest.approx(600.0)


def test_opposite_sign_peaks_hncacb_like():
    # Ca (+1.0) and Cb (-0.8) of one amide at the same 15N/1H, on different 13C planes
    data = np.zeros((8, 3, 4), dtype=np.float32)
    data[2, 1, 2] = 1.0
    data[6, 1, 2] = -0.8
    data[5, 0, 1] = -0.9  # a lone Cb
    s = Spectrum(data, axes_3d((8, 3, 4)), meta={"experiment": "hncacb"})
    nh_signed = project(s, method="signed_max")[0].data
    nh_sum = project(s, method="sum")[0].data
    nh_max = project(s, method="max")[0].data
    assert nh_signed[1, 2] == pytest.approx(1.0) and nh_signed[0, 1] == pytest.approx(-0.9)
    assert nh_sum[1, 2] == pytest.approx(0.2)  # aligned opposite signs cancel in a sum
    assert nh_max[0, 1] == 0.0  # the negative peak is lost by the skyline
    ch_signed = project(s, method="signed_max")[1].data
    assert ch_signed[6, 2] == pytest.approx(-0.8) and ch_signed[2, 2] == pytest.approx(1.0)
    # exact cancellation: equal magnitudes
    data[6, 1, 2] = -1.0
    assert project(s.with_data(data), method="sum")[0].data[1, 2] == 0.0


def _signed_max_reference(x, axes):
    kept = [i for i in range(x.ndim) if i not in axes]
    out = np.empty([x.shape[i] for i in kept], dtype=x.dtype)
    for idx in np.ndindex(*out.shape):
        sl = [slice(None)] * x.ndim
        for k, i in zip(kept, idx):
            sl[k] = i
        values = x[tuple(sl)].ravel()
        out[idx] = values[np.argmax(np.abs(values))]
    return out


@pytest.mark.parametrize("method", ["sum", "max", "signed_max"])
def test_slabs_give_the_same_planes(method, monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 5, 6)).astype(np.float32)
    s = Spectrum(x, axes_3d((7, 5, 6)), meta={"experiment": "hnca"})
    monkeypatch.setattr(project_mod, "_SLAB_BYTES", 5 * 6 * 4 * 2)  # two rows of axis 0 per slab
    nh, ch = project(s, method=method)
    reference = {"sum": lambda a, ax: a.sum(axis=ax), "max": lambda a, ax: a.max(axis=ax),
                 "signed_max": _signed_max_reference}[method]
    np.testing.assert_allclose(nh.data, reference(x, (0,)), rtol=1e-6)
    np.testing.assert_allclose(ch.data, reference(x, (1,)), rtol=1e-6)


def test_memmap_input(tmp_path):
    x = np.random.default_rng(2).normal(size=(6, 4, 5)).astype(np.float32)
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    ro = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="r", shape=x.shape)
    planes = project(Spectrum(ro, axes_3d((6, 4, 5)), meta={"experiment": "hnca"}), method="signed_max")
    np.testing.assert_array_equal(planes[0].data, _signed_max_reference(x, (0,)))
    assert type(planes[0].data) is np.ndarray


def test_4d_pairs_with_direct_axis():
    axes = (Axis.from_ppm_window("13C", 700, 70, 10, 3), Axis.from_ppm_window("1H", 700, 6, 0, 4),
            Axis.from_ppm_window("15N", 700, 134, 104, 5), Axis.from_ppm_window("1H", 700, 11, 6, 6))
    x = np.random.default_rng(3).normal(size=(3, 4, 5, 6))
    planes = project(Spectrum(x, axes, meta={"experiment": "noesy_4d"}), method="sum")
    assert [p.meta["projection"] for p in planes] == ["13C-1H", "1H-1H", "15N-1H"]
    np.testing.assert_allclose(planes[1].data, x.sum(axis=(0, 2)))
    np.testing.assert_allclose(planes[2].data, x.sum(axis=(0, 1)))
    assert all(p.axes[1] == axes[3] for p in planes)
    assert planes[1].data.dtype == np.float64


def test_experiment_rules_and_direct_axis_last():
    # 15N-NOESY-HSQC (1H indirect, 15N, 1H direct): only the 15N-1H plane
    noesy = Spectrum(np.zeros((4, 3, 5)), axes_3d((4, 3, 5), ("1H", "15N", "1H")), meta={"experiment": "noesy_15n"})
    assert default_pairs(noesy) == [(1, 2)]
    # a 3D whose 1H axis comes first: the plane still ends with 1H
    x = np.random.default_rng(4).normal(size=(5, 3, 4))
    s = Spectrum(x, axes_3d((5, 3, 4), ("1H", "13C", "15N")), meta={"experiment": "hcch_tocsy"})
    (plane,) = project(s, method="max")
    assert plane.nuclei == ("13C", "1H") and plane.meta["projection"] == "13C-1H"
    np.testing.assert_allclose(plane.data, x.max(axis=2).T)


def test_2d_passes_through_transposed_if_needed():
    n = Axis.from_ppm_window("15N", 600, 134, 104, 3)
    h = Axis.from_ppm_window("1H", 600, 11, 6, 4)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    (plane,) = project(Spectrum(x, (h, n), meta={"experiment": "hsqc_15n"}))
    assert plane.axes == (n, h) and plane.meta["projection"] == "15N-1H" and plane.meta["method"] == "none"
    np.testing.assert_array_equal(plane.data, x.T)
    (same,) = project(Spectrum(x.T.copy(), (n, h)))
    np.testing.assert_array_equal(same.data, x.T)


def test_validation():
    s = Spectrum(A, axes_3d())
    with pytest.raises(ValueError, match="method"):
        project(s, method="mean")
    with pytest.raises(ValueError, match="pairs"):
        project(s, pairs=[(0, 0)])
    with pytest.raises(TypeError, match="spectrum"):
        project(A)


def test_project_manifest(tmp_path):
    rng = np.random.default_rng(5)
    hsqc = Spectrum(rng.normal(size=(6, 8)).astype(np.float32),
                    (Axis.from_ppm_window("15N", 800, 134, 104, 6), Axis.from_ppm_window("1H", 800, 11, 6, 8)))
    hnca = Spectrum(rng.normal(size=(5, 6, 8)).astype(np.float32), axes_3d((5, 6, 8), field=800.0))
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    mssr_io.write(hsqc, tmp_path / "p1" / "hsqc_15n.ucsf")
    mssr_io.write(hnca, tmp_path / "p2" / "hnca.ft3")
    pd.DataFrame({"protein": ["p1", "p2"], "experiment": ["hsqc_15n", "hnca"],
                  "path": ["p1/hsqc_15n.ucsf", "p2/hnca.ft3"], "format": ["ucsf", "pipe"],
                  "field_mhz": [800.0, 800.0]}).to_csv(tmp_path / "manifest.csv", index=False)
    counts = project_manifest(tmp_path / "manifest.csv", tmp_path / "planes.h5", method="signed_max")
    assert counts["spectra"] == 2 and counts["planes"] == 3
    assert counts["by_experiment"] == {"hsqc_15n": {"spectra": 1, "planes": 1}, "hnca": {"spectra": 1, "planes": 2}}
    planes = read_planes(tmp_path / "planes.h5")
    assert [(p.meta["protein"], p.meta["experiment"], p.meta["projection"], p.meta["source"]) for p in planes] == [
        ("p1", "hsqc_15n", "15N-1H", "p1/hsqc_15n.ucsf"), ("p2", "hnca", "15N-1H", "p2/hnca.ft3"),
        ("p2", "hnca", "13C-1H", "p2/hnca.ft3")]
    np.testing.assert_allclose(planes[0].data, hsqc.data, rtol=1e-6)
    np.testing.assert_allclose(planes[2].data, _signed_max_reference(hnca.data, (1,)), rtol=1e-6)
    for got, want in zip(planes[2].axes, (hnca.axes[0], hnca.axes[2])):
        np.testing.assert_allclose(got.ppm_scale(), want.ppm_scale(), atol=1e-6)
    assert read_attrs(tmp_path / "planes.h5")["planes"] == 3

    pd.DataFrame({"protein": ["p3"], "experiment": ["hnca"], "path": ["p3/missing.ft3"]}).to_csv(
        tmp_path / "bad.csv", index=False)
    with pytest.raises((ValueError, FileNotFoundError), match="missing.ft3"):
        project_manifest(tmp_path / "bad.csv", tmp_path / "bad.h5")


@pytest.mark.parametrize("slab_bytes", [1, 1 << 20])
def test_signed_max_tie_prefers_positive(slab_bytes, monkeypatch):
    monkeypatch.setattr(project_mod, "_SLAB_BYTES", slab_bytes)  # 1: one row of axis 0 per slab
    data = np.zeros((4, 2, 3), dtype=np.float32)
    data[0, 0, 0], data[3, 0, 0] = -0.5, 0.5
    data[1, 1, 2], data[2, 1, 2] = 0.5, -0.5
    nh = project(Spectrum(data, axes_3d((4, 2, 3)), meta={"experiment": "hncacb"}), method="signed_max")[0].data
    assert nh[0, 0] == 0.5 and nh[1, 2] == 0.5
