import numpy as np
import pytest

from mssr.atomic import atomic_path
from mssr.data.store import read_planes, read_samples, write_planes, write_samples
from mssr.spectrum import Axis, Spectrum


def test_axis_ppm_grid_from_window():
    # 15N at a 900 MHz magnet: 0.101329118 x 900 MHz
    a = Axis.from_ppm_window("15N", 900.0, 135.0, 100.0, 70)
    assert a.obs_mhz == pytest.approx(91.1962062)
    assert a.ppm_per_point == pytest.approx(0.5)
    assert a.ppm_limits == pytest.approx((134.75, 100.25))
    assert a.field_mhz == pytest.approx(900.0)
    np.testing.assert_allclose(a.ppm_to_index(a.ppm_scale()), np.arange(70), atol=1e-9)


def test_resize_keeps_window_edges():
    a = Axis.from_ppm_window("1H", 800.0, 11.0, 6.0, 100)
    b = a.resized(25)
    assert b.ppm_per_point == pytest.approx(0.2)
    assert b.ppm_first + b.ppm_per_point / 2 == pytest.approx(11.0)
    assert b.ppm_last - b.ppm_per_point / 2 == pytest.approx(6.0)


def test_at_field_keeps_ppm_changes_hz():
    a = Axis.from_ppm_window("13C", 900.0, 70.0, 40.0, 64)
    b = a.at_field(400.0)
    assert b.ppm_limits == pytest.approx(a.ppm_limits)
    assert b.sw_hz == pytest.approx(a.sw_hz * 400 / 900)


def test_spectrum_rejects_inconsistent_data():
    a = Axis.from_ppm_window("15N", 600, 130, 100, 8)
    h = Axis.from_ppm_window("1H", 600, 11, 6, 16)
    with pytest.raises(ValueError, match="shape"):
        Spectrum(np.zeros((16, 8)), (a, h))
    with pytest.raises(ValueError, match="real"):
        Spectrum(np.zeros((8, 16), complex), (a, h))
    with pytest.raises(ValueError, match="nucleus"):
        Axis("14N", 60.0, 1000.0, 120.0, 8)


def test_store_round_trip(tmp_path):
    a = Axis.from_ppm_window("15N", 600, 130, 100, 8)
    h = Axis.from_ppm_window("1H", 600, 11, 6, 8)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8)).astype(np.float32)
    headers = [Spectrum(x[i], (a, h), {"protein": f"p{i}"}).header() for i in range(3)]
    write_samples(tmp_path / "s.h5", x, headers, attrs={"stage": "t"}, extra={"std": np.ones((3, 8, 8))})
    s = read_samples(tmp_path / "s.h5")
    np.testing.assert_array_equal(s.x, x)
    assert s.meta("protein") == ["p0", "p1", "p2"]
    assert s.spectrum(2).axes == (a, h)
    assert s.attrs == {"stage": "t"} and s.extra["std"].shape == (3, 8, 8)


def test_store_rejects_nan_and_leaves_no_partial_file(tmp_path):
    x = np.zeros((1, 4, 4), np.float32)
    x[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_samples(tmp_path / "bad.h5", x, [{}])
    assert list(tmp_path.iterdir()) == []


def test_read_of_non_hdf5_names_the_file(tmp_path):
    p = tmp_path / "junk.h5"
    p.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5"):
        read_samples(p)


def test_planes_round_trip_different_sizes(tmp_path):
    s1 = Spectrum(np.ones((4, 6), np.float32), (Axis.from_ppm_window("15N", 700, 130, 100, 4),
                                                Axis.from_ppm_window("1H", 700, 11, 6, 6)))
    s2 = Spectrum(np.ones((5, 3), np.float32), (Axis.from_ppm_window("13C", 700, 70, 40, 5),
                                                Axis.from_ppm_window("1H", 700, 11, 6, 3)))
    write_planes(tmp_path / "p.h5", [s1, s2])
    back = read_planes(tmp_path / "p.h5")
    assert [b.shape for b in back] == [(4, 6), (5, 3)] and back[1].nuclei == ("13C", "1H")


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
