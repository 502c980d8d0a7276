"""Tests of mssr.io: format detection, reading, writing and refusing bad spectrum files."""

from __future__ import annotations

import os
import shutil
import struct

import nmrglue as ng
import numpy as np
import pytest

from mssr import io
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H, Axis, Spectrum

FIELD_MHZ = 600.13
# (nucleus, ppm of point 0, ppm per point) per axis, for 2D (15N, 1H), 3D (13C, 15N, 1H), 4D
AXIS_PLANS = {
    2: [("15N", 131.2, 0.25), ("1H", 10.9, 0.011)],
    3: [("13C", 66.0, 0.4), ("15N", 131.2, 0.25), ("1H", 10.9, 0.011)],
    4: [("13C", 180.5, 0.12), ("13C", 66.0, 0.4), ("15N", 131.2, 0.25), ("1H", 10.9, 0.011)],
}


def make_axes(shape, field_mhz=FIELD_MHZ) -> tuple[Axis, ...]:
    plan = AXIS_PLANS[len(shape)]
    axes = []
    for (nucleus, ppm_first, ppm_per_point), size in zip(plan, shape):
        obs = field_mhz * GYROMAGNETIC_RATIO_TO_1H[nucleus]
        axes.append(Axis(nucleus, obs, ppm_per_point * obs * size, ppm_first, size))
    return tuple(axes)


def make_spectrum(shape, seed=0) -> Spectrum:
    data = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return Spectrum(data, make_axes(shape), {"experiment": "test"})


def assert_axes_close(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.nucleus == e.nucleus
        assert a.size == e.size
        assert a.obs_mhz == pytest.approx(e.obs_mhz, rel=1e-6)
        assert a.ppm_first == pytest.approx(e.ppm_first, rel=1e-6)
        assert a.ppm_per_point == pytest.approx(e.ppm_per_point, rel=1e-6)


def pipe_udic(shape, *, complex_direct=False):
    """nmrglue udic for the axes of ``make_axes(shape)`` (nmrglue puts the carrier at size / 2)."""
    udic = ng.fileiobase.create_blank_udic(len(shape))
    for i, axis in enumerate(make_axes(shape)):
        centre = axis.ppm_first - axis.size / 2 * axis.ppm_per_point
        udic[i].update(size=axis.size, sw=axis.sw_hz, obs=axis.obs_mhz, car=centre * axis.obs_mhz,
                       label=axis.nucleus, complex=complex_direct and i == len(shape) - 1, time=False, freq=True)
    return udic


# ---- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".ucsf", ".ft2", ".pipe"])
@pytest.mark.parametrize("shape", [(12, 20), (7, 9), (5, 6, 10), (3, 7, 9)])
def test_write_read_round_trip(tmp_path, suffix, shape):
    spectrum = make_spectrum(shape, seed=sum(shape))
    path = io.write(spectrum, tmp_path / f"s{suffix}")
    back = io.read(path)
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(back.data, spectrum.data)
    assert_axes_close(back.axes, spectrum.axes)
    assert back.meta == {"source": str(path), "format": "ucsf" if suffix == ".ucsf" else "pipe"}
    assert back.field_mhz == pytest.approx(FIELD_MHZ, rel=1e-6)


def test_pipe_4d_stream_round_trip(tmp_path):
    spectrum = make_spectrum((3, 4, 5, 6), seed=4)
    back = io.read(io.write(spectrum, tmp_path / "s.ft4"))
    np.testing.assert_array_equal(back.data, spectrum.data)
    assert_axes_close(back.axes, spectrum.axes)


@pytest.mark.parametrize("shape", [(12, 20), (7, 9), (5, 6, 10)])
def test_written_files_read_by_nmrglue(tmp_path, shape):
    """An independent reader (nmrglue) finds the same values and ppm limits in what we write."""
    spectrum = make_spectrum(shape, seed=1)
    io.write(spectrum, tmp_path / "s.ucsf")
    io.write(spectrum, tmp_path / "s.ft3")
    for module, name in ((ng.sparky, "s.ucsf"), (ng.pipe, "s.ft3")):
        dic, data = module.read(str(tmp_path / name))
        np.testing.assert_array_equal(data, spectrum.data)
        for dim, axis in enumerate(spectrum.axes):
            np.testing.assert_allclose(module.make_uc(dic, data, dim).ppm_limits(), axis.ppm_limits, rtol=1e-6)
    dic, _ = ng.pipe.read(str(tmp_path / "s.ft3"))
    if len(shape) == 3:
        assert dic["FDPIPEFLAG"] == 1.0 and dic["FDF3SIZE"] == shape[0]
    assert dic["FDMAX"] == pytest.approx(spectrum.data.max())


def test_write_keeps_float32_and_rejects_bad_requests(tmp_path):
    spectrum = make_spectrum((6, 8))
    with pytest.raises(ValueError, match="suffix"):
        io.write(spectrum, tmp_path / "s.txt")
    io.write(spectrum, tmp_path / "s.txt", format="pipe")
    assert io.detect_format(tmp_path / "s.txt") == "pipe"
    with pytest.raises(ValueError, match="format must be one of"):
        io.write(spectrum, tmp_path / "s.ucsf", format="bruker")
    with pytest.raises(ValueError, match="4D spectrum cannot be written as ucsf"):
        io.write(make_spectrum((2, 3, 4, 5)), tmp_path / "s4.ucsf")
    with pytest.raises(TypeError, match="spectrum must be"):
        io.write(spectrum.data, tmp_path / "s.ucsf")
    with pytest.raises(TypeError, match="path must be"):
        io.write(spectrum, 3)


def test_write_is_atomic(tmp_path):
    target = tmp_path / "s.ucsf"
    io.write(make_spectrum((6, 8), seed=1), target)
    before = target.read_bytes()
    bad = make_spectrum((6, 8), seed=2)
    bad.data[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        io.write(bad, target)
    assert target.read_bytes() == before
    io.write(make_spectrum((6, 8), seed=3), target)  # replaces an existing file
    np.testing.assert_array_equal(io.read(target).data, make_spectrum((6, 8), seed=3).data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ucsf"]


def test_source_date_epoch_makes_files_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    spectrum = make_spectrum((6, 8))
    for suffix in (".ucsf", ".ft2"):
        first = io.write(spectrum, tmp_path / f"a{suffix}").read_bytes()
        assert io.write(spectrum, tmp_path / f"b{suffix}").read_bytes() == first


# ---- format detection ------------------------------------------------------------------------


def test_detect_format_by_content_not_suffix(tmp_path):
    spectrum = make_spectrum((6, 8))
    io.write(spectrum, tmp_path / "a.ucsf")
    io.write(spectrum, tmp_path / "b.ft2")
    os.replace(tmp_path / "a.ucsf", tmp_path / "a.ft2")
    os.replace(tmp_path / "b.ft2", tmp_path / "b.ucsf")
    assert io.detect_format(tmp_path / "a.ft2") == "ucsf"
    assert io.detect_format(tmp_path / "b.ucsf") == "pipe"
    np.testing.assert_array_equal(io.read(tmp_path / "b.ucsf").data, spectrum.data)


def test_big_endian_pipe_file(tmp_path):
    spectrum = make_spectrum((6, 8))
    io.write(spectrum, tmp_path / "le.ft2")
    swapped = np.fromfile(tmp_path / "le.ft2", dtype="<f4").astype(">f4")
    raw = bytearray(swapped.tobytes())
    raw[64:72] = (tmp_path / "le.ft2").read_bytes()[64:72]  # labels are characters in any byte order
    raw[72:80] = (tmp_path / "le.ft2").read_bytes()[72:80]
    (tmp_path / "be.ft2").write_bytes(bytes(raw))
    back = io.read(tmp_path / "be.ft2")
    np.testing.assert_array_equal(back.data, spectrum.data)
    assert back.data.dtype == np.dtype("float32")
    assert_axes_close(back.axes, spectrum.axes)


# ---- UCSF tiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, tiles", [((11, 17), (4, 5)), ((5, 9, 13), (2, 4, 3))])
def test_ucsf_tiles_match_nmrglue(tmp_path, shape, tiles):
    """Tiles that do not divide the axes: our untiling agrees with nmrglue's own reader."""
    spectrum = make_spectrum(shape, seed=7)
    udic = pipe_udic(shape)
    dic = ng.sparky.create_dic(udic)
    for i, tile in enumerate(tiles):
        dic[f"w{i + 1}"]["bsize"] = tile
    padded = np.prod([-(-n // t) * t for n, t in zip(shape, tiles)])
    dic["seek_pos"] = int(180 + 128 * len(shape) + 4 * padded)
    ng.sparky.write(str(tmp_path / "t.ucsf"), dic, spectrum.data, overwrite=True)
    _, expected = ng.sparky.read(str(tmp_path / "t.ucsf"))
    back = io.read(tmp_path / "t.ucsf")
    np.testing.assert_array_equal(back.data, expected)
    np.testing.assert_array_equal(back.data, spectrum.data)
    assert_axes_close(back.axes, spectrum.axes)
    if len(shape) == 3:
        for axis in range(3):
            planes = list(io.iter_planes(tmp_path / "t.ucsf", axis))
            assert len(planes) == shape[axis]
            for index, plane in enumerate(planes):
                np.testing.assert_array_equal(plane.data, np.take(spectrum.data, index, axis=axis))
                assert plane.axes == tuple(a for i, a in enumerate(back.axes) if i != axis)
                assert plane.meta["plane_ppm"] == pytest.approx(back.axes[axis].index_to_ppm(index))


# ---- NMRPipe: lazy reading, streams, multi-file series, complex data ------------------------


def test_lazy_read_returns_memmap_for_pipe(tmp_path):
    spectrum = make_spectrum((4, 6, 10), seed=5)
    io.write(spectrum, tmp_path / "s.ft3")
    io.write(spectrum, tmp_path / "s.ucsf")
    lazy = io.read(tmp_path / "s.ft3", lazy=True)
    assert isinstance(lazy.data, np.memmap)
    np.testing.assert_array_equal(lazy.data, spectrum.data)
    eager = io.read(tmp_path / "s.ft3")
    assert not isinstance(eager.data, np.memmap)
    ucsf = io.read(tmp_path / "s.ucsf", lazy=True)  # tiled: read into memory
    assert not isinstance(ucsf.data, np.memmap)
    np.testing.assert_array_equal(ucsf.data, spectrum.data)
    planes = list(io.iter_planes(tmp_path / "s.ft3", 1))
    np.testing.assert_array_equal(np.stack([p.data for p in planes], axis=1), spectrum.data)


@pytest.fixture
def pipe_series(tmp_path):
    """A multi-file 3D NMRPipe series written by nmrglue (ser/test001.ft3 ... test005.ft3)."""
    shape = (5, 6, 8)
    data = make_spectrum(shape, seed=9).data
    (tmp_path / "ser").mkdir()
    template = str(tmp_path / "ser" / "test%03d.ft3")
    ng.pipe.write(template, ng.pipe.create_dic(pipe_udic(shape)), data, overwrite=True)
    return template, data


def test_multi_file_pipe_series(pipe_series):
    template, data = pipe_series
    dic, expected = ng.pipe.read(template)
    np.testing.assert_array_equal(expected, data)
    for source in (template, os.path.dirname(template)):
        assert io.detect_format(source) == "pipe"
        spectrum = io.read(source, lazy=True)
        np.testing.assert_array_equal(spectrum.data, data)
        assert spectrum.meta == {"source": source, "format": "pipe"}
        for dim, axis in enumerate(spectrum.axes):
            np.testing.assert_allclose(ng.pipe.make_uc(dic, expected, dim).ppm_limits(), axis.ppm_limits, rtol=1e-6)
        assert spectrum.nuclei == ("13C", "15N", "1H")
    for axis in range(3):
        planes = [p.data for p in io.iter_planes(template, axis)]
        np.testing.assert_array_equal(np.stack(planes, axis=axis), data)


def test_multi_file_pipe_series_errors(pipe_series):
    template, _ = pipe_series
    with pytest.raises(io.SpectrumFileError, match=r"one plane of a multi-file 3D .*test%03d\.ft3"):
        io.read(template % 2)
    shutil.copy(template % 5, template % 6)
    with pytest.raises(io.SpectrumFileError, match="says 5 planes but .*test006.ft3 exists"):
        io.read(template)
    os.remove(template % 6)
    os.remove(template % 4)
    with pytest.raises(io.SpectrumFileError, match="test004.ft3 is missing"):
        io.read(template)
    with pytest.raises(FileNotFoundError, match="nothing001"):
        io.read(template.replace("test", "nothing"))


@pytest.mark.parametrize("template", ["t%03d.ft4", "t%02d%03d.ft4"])
def test_multi_file_pipe_4d(tmp_path, template):
    shape = (3, 2, 4, 5)
    data = make_spectrum(shape, seed=11).data
    dic = ng.pipe.create_dic(pipe_udic(shape))
    dic["FDF4SIZE"] = float(shape[0])  # nmrglue's create_dic stores the 4th size in FDF3SIZE
    ng.pipe.write(str(tmp_path / template), dic, data, overwrite=True)
    expected_dic, expected = ng.pipe.read(str(tmp_path / template))
    np.testing.assert_array_equal(expected, data)
    spectrum = io.read(tmp_path / template)
    np.testing.assert_array_equal(spectrum.data, data)
    assert spectrum.nuclei == ("13C", "13C", "15N", "1H")
    for dim, axis in enumerate(spectrum.axes):
        uc = ng.pipe.make_uc(expected_dic, expected, dim)
        np.testing.assert_allclose(uc.ppm_limits(), axis.ppm_limits, rtol=1e-6)
    cubes = [p.data for p in io.iter_planes(tmp_path / template, 2)]
    np.testing.assert_array_equal(np.stack(cubes, axis=2), data)


def test_complex_direct_dimension_keeps_real_part(tmp_path):
    rng = np.random.default_rng(3)
    data = (rng.normal(size=(6, 8)) + 1j * rng.normal(size=(6, 8))).astype(np.complex64)
    ng.pipe.write(str(tmp_path / "c.ft2"), ng.pipe.create_dic(pipe_udic((6, 8), complex_direct=True)), data,
                  overwrite=True)
    spectrum = io.read(tmp_path / "c.ft2")
    np.testing.assert_array_equal(spectrum.data, data.real)
    assert_axes_close(spectrum.axes, make_axes((6, 8)))
    lazy = io.read(tmp_path / "c.ft2", lazy=True)
    np.testing.assert_array_equal(lazy.data, data.real)


def test_pipe_labels_and_unlabelled_axes(tmp_path):
    """NMRPipe labels such as 'HN', 'N15', 'X' resolve to nuclei through the frequencies."""
    shape = (5, 6, 8)
    for labels in (["CA", "N15", "HN"], ["X", "Y", "Z"], ["C13", "15N", "H1"]):
        udic = pipe_udic(shape)
        for i, label in enumerate(labels):
            udic[i]["label"] = label
        dic = ng.pipe.create_dic(udic)
        dic["FDPIPEFLAG"] = 1.0
        ng.pipe.write(str(tmp_path / "l.ft3"), dic, make_spectrum(shape).data, overwrite=True)
        assert io.read(tmp_path / "l.ft3").nuclei == ("13C", "15N", "1H"), labels


def test_dimension_name_labels_are_not_fluorine(tmp_path):
    """'F1'/'F2' labels (dimension names) resolve through the frequencies, not to 19F.

    With 'F2' read as 19F the magnet would be 1H MHz / 0.9409 and the 15N axis would match no
    nucleus, so the file was refused as a pseudo-2D series.
    """
    udic = pipe_udic((6, 8))
    udic[0]["label"], udic[1]["label"] = "F1", "F2"
    ng.pipe.write(str(tmp_path / "f.ft2"), ng.pipe.create_dic(udic), make_spectrum((6, 8)).data, overwrite=True)
    spectrum = io.read(tmp_path / "f.ft2")
    assert spectrum.nuclei == ("15N", "1H")
    assert_axes_close(spectrum.axes, make_axes((6, 8)))


# ---- Bruker ----------------------------------------------------------------------------------


def write_bruker(expno, shape, data, nc_proc=2):
    """A TopSpin procno directory ``expno/pdata/1`` written by nmrglue; returns its path."""
    axes = make_axes(shape)
    xdim = [max(1, n // 2) for n in shape]
    dic = {}
    for i, axis in enumerate(axes):
        name = "procs" if i == len(shape) - 1 else f"proc{len(shape) - i}s"
        dic[name] = {
            "SI": axis.size, "XDIM": xdim[i], "SW_p": axis.sw_hz, "SF": axis.obs_mhz, "OFFSET": axis.ppm_first,
            "AXNUC": axis.nucleus, "NC_proc": nc_proc, "BYTORDP": 0, "DTYPP": 0, "PPARMOD": len(shape) - 1,
            "_comments": [], "_coreheader": ["##TITLE= Parameter file", "##JCAMPDX= 5.0"],
        }
    ng.bruker.write_pdata(str(expno), dic, data, write_procs=True, pdata_folder=1, scale_data=True, overwrite=True)
    return expno / "pdata" / "1"


@pytest.mark.parametrize("shape", [(8, 12), (4, 6, 8)])
def test_bruker_pdata(tmp_path, shape):
    rng = np.random.default_rng(2)
    data = rng.integers(-10**6, 10**6, size=shape).astype(np.float64) * 4  # NC_proc = 2: values x 2**2
    procno = write_bruker(tmp_path / "1", shape, data)
    binary = procno / (str(len(shape)) + "r" * len(shape))
    assert binary.stat().st_size == 4 * data.size
    for path in (procno, tmp_path / "1", binary):
        assert io.detect_format(path) == "bruker"
    spectrum = io.read(procno)
    assert spectrum.data.dtype == np.float32
    np.testing.assert_array_equal(spectrum.data, data.astype(np.float32))
    assert spectrum.meta == {"source": str(procno), "format": "bruker"}
    # TopSpin: OFFSET is the ppm of point 0, SW_p (Hz) spans SI points at SF MHz
    assert_axes_close(spectrum.axes, make_axes(shape))
    if len(shape) == 3:
        planes = [p.data for p in io.iter_planes(procno, 0)]
        np.testing.assert_array_equal(np.stack(planes), data.astype(np.float32))


def test_bruker_errors(tmp_path):
    data = np.arange(96, dtype=np.float64).reshape(8, 12) * 4
    procno = write_bruker(tmp_path / "1", (8, 12), data)
    with open(procno / "2rr", "r+b") as f:
        f.truncate(4 * 90)
    with pytest.raises(io.SpectrumFileError, match="2rr.*truncated.*384 bytes, the file has 360"):
        io.read(procno)
    procno = write_bruker(tmp_path / "2", (8, 12), data)
    procs = (procno / "procs").read_text()
    assert "##$XDIM= 6\n" in procs
    (procno / "procs").write_text(procs.replace("##$XDIM= 6\n", "##$XDIM= 5\n"))  # submatrices that do not tile
    with pytest.raises(io.SpectrumFileError, match="cannot be arranged"):
        io.read(procno)
    procno = write_bruker(tmp_path / "3", (8, 12), data)
    (procno / "procs").write_text((procno / "procs").read_text().replace("##$SF=", "##$XSF="))
    with pytest.raises(io.SpectrumFileError, match=r"procs lacks \['SF'\]"):
        io.read(procno)


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def good_files(tmp_path):
    spectrum = make_spectrum((12, 20), seed=12)
    return spectrum, io.write(spectrum, tmp_path / "g.ucsf"), io.write(spectrum, tmp_path / "g.ft2")


def test_nonexistent_path(tmp_path):
    for name in ("missing.ucsf", "missing_dir/", "planes%03d.ft3"):
        with pytest.raises(FileNotFoundError, match="missing|planes001"):
            io.read(tmp_path / name)


def test_unknown_format(tmp_path):
    (tmp_path / "noise.ucsf").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(io.SpectrumFileError, match="noise.ucsf: unknown format"):
        io.read(tmp_path / "noise.ucsf")
    (tmp_path / "dir").mkdir()
    with pytest.raises(io.SpectrumFileError, match="dir: directory holds neither"):
        io.read(tmp_path / "dir")


def test_corrupt_magic(good_files, tmp_path):
    _, ucsf, pipe = good_files
    raw = bytearray(ucsf.read_bytes())
    raw[0:4] = b"XCSF"
    (tmp_path / "bad.ucsf").write_bytes(bytes(raw))
    raw = bytearray(pipe.read_bytes())
    raw[8:12] = struct.pack("<f", 1.0)  # FDFLTORDER
    (tmp_path / "bad.ft2").write_bytes(bytes(raw))
    for name in ("bad.ucsf", "bad.ft2"):
        with pytest.raises(io.SpectrumFileError, match=f"{name}: unknown format") as caught:
            io.read(tmp_path / name)
        assert isinstance(caught.value, ValueError)
        assert caught.value.path == str(tmp_path / name)


@pytest.mark.parametrize("cut", [4, 500, 2000])
def test_truncated_files(good_files, tmp_path, cut):
    _, ucsf, pipe = good_files
    for source in (ucsf, pipe):
        raw = source.read_bytes()
        target = tmp_path / f"cut{source.suffix}"
        target.write_bytes(raw[: len(raw) - cut])
        with pytest.raises(io.SpectrumFileError, match=r"cut\.\w+: .*truncated"):
            io.read(target)
    (tmp_path / "head.ucsf").write_bytes(ucsf.read_bytes()[:100])
    with pytest.raises(io.SpectrumFileError, match="truncated UCSF header"):
        io.read(tmp_path / "head.ucsf")
    (tmp_path / "head.ft2").write_bytes(pipe.read_bytes()[:1000])
    with pytest.raises(io.SpectrumFileError, match="truncated NMRPipe header"):
        io.read(tmp_path / "head.ft2")


def test_extra_bytes_are_refused(good_files, tmp_path):
    _, ucsf, pipe = good_files
    for source in (ucsf, pipe):
        target = tmp_path / f"long{source.suffix}"
        target.write_bytes(source.read_bytes() + b"\0" * 16)
        with pytest.raises(io.SpectrumFileError, match="longer than its header says"):
            io.read(target)


def test_header_size_disagrees_with_data(good_files, tmp_path):
    _, ucsf, pipe = good_files
    raw = bytearray(pipe.read_bytes())
    raw[4 * 99 : 4 * 100] = struct.pack("<f", 21.0)  # FDSIZE 20 -> 21
    (tmp_path / "size.ft2").write_bytes(bytes(raw))
    # 2048-byte header + 12 x 21 float32 = 3056 bytes expected; 12 x 20 were written
    expected = r"size\.ft2: .*data of shape \(12, 21\) needs 3056 bytes, the file has 3008"
    with pytest.raises(io.SpectrumFileError, match=expected):
        io.read(tmp_path / "size.ft2")
    raw = bytearray(ucsf.read_bytes())
    raw[180 + 8 : 180 + 12] = struct.pack(">I", 11)  # w1 npoints 12 -> 11 with tiles of 12
    (tmp_path / "size.ucsf").write_bytes(bytes(raw))
    back = io.read(tmp_path / "size.ucsf")  # 11 points still fill one 12-point tile: a valid file
    assert back.shape == (11, 20)
    raw[180 + 8 : 180 + 12] = struct.pack(">I", 13)
    (tmp_path / "size.ucsf").write_bytes(bytes(raw))
    with pytest.raises(io.SpectrumFileError, match="truncated"):
        io.read(tmp_path / "size.ucsf")
    raw[180 + 8 : 180 + 12] = struct.pack(">I", 0)
    (tmp_path / "size.ucsf").write_bytes(bytes(raw))
    with pytest.raises(io.SpectrumFileError, match="npoints = 0 is not a positive integer"):
        io.read(tmp_path / "size.ucsf")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(tmp_path, bad):
    spectrum = make_spectrum((4, 6, 8), seed=6)
    data = spectrum.data.copy()
    data[3, 5, 7] = bad
    udic = pipe_udic(data.shape)
    ng.sparky.write(str(tmp_path / "n.ucsf"), ng.sparky.create_dic(udic), data, overwrite=True)
    dic = ng.pipe.create_dic(udic)
    dic["FDPIPEFLAG"] = 1.0
    ng.pipe.write(str(tmp_path / "n.ft3"), dic, data, overwrite=True)
    for name in ("n.ucsf", "n.ft3"):
        for lazy in (False, True):
            with pytest.raises(io.SpectrumFileError, match=rf"{name}: .*non-finite.*\(3, 5, 7\)"):
                io.read(tmp_path / name, lazy=lazy)
    planes = io.iter_planes(tmp_path / "n.ft3", 0)
    for _ in range(3):
        next(planes)
    with pytest.raises(io.SpectrumFileError, match="plane 3 along axis 0 holds non-finite"):
        next(planes)


def test_one_dimensional_spectrum(tmp_path):
    udic = ng.fileiobase.create_blank_udic(1)
    udic[0].update(size=16, sw=6000.0, obs=FIELD_MHZ, car=4.7 * FIELD_MHZ, label="1H", time=False, freq=True,
                   complex=False)
    values = np.random.default_rng(1).normal(size=16).astype(np.float32)
    ng.pipe.write(str(tmp_path / "one.ft1"), ng.pipe.create_dic(udic), values, overwrite=True)
    with pytest.raises(io.SpectrumFileError, match=r"one\.ft1: 1D spectrum of shape \(16,\); at least 2D"):
        io.read(tmp_path / "one.ft1")
    spectrum = io.read(tmp_path / "one.ft1", min_ndim=1)
    np.testing.assert_array_equal(spectrum.data, values)
    uc = ng.pipe.make_uc(*ng.pipe.read(str(tmp_path / "one.ft1")))
    assert spectrum.ppm_limits(0) == pytest.approx(uc.ppm_limits())
    with pytest.raises(io.SpectrumFileError, match="at least 3D"):
        io.read(io.write(make_spectrum((6, 8)), tmp_path / "two.ft2"), min_ndim=3)
    with pytest.raises(io.SpectrumFileError, match="at least 3D"):
        io.iter_planes(tmp_path / "two.ft2")
    with pytest.raises(ValueError, match="min_ndim must be between 1 and 4"):
        io.read(tmp_path / "two.ft2", min_ndim=0)


def test_time_domain_axis_is_refused(tmp_path):
    udic = pipe_udic((6, 8))
    udic[0].update(time=True, freq=False)
    ng.pipe.write(str(tmp_path / "td.ft2"), ng.pipe.create_dic(udic), make_spectrum((6, 8)).data, overwrite=True)
    with pytest.raises(io.SpectrumFileError, match="axis 0 .*15N.* time domain: not Fourier transformed"):
        io.read(tmp_path / "td.ft2")


def test_untransformed_series_axis_is_a_pseudo_dimension(tmp_path):
    """A pseudo-3D whose series axis keeps the 1H frequency in its header is read as a series.

    Conversion scripts often copy the spectrometer frequency into the never-transformed series
    axis; it then matched 1H and the file was refused as 'not Fourier transformed'.
    """
    planes_2d = make_axes((6, 8))
    udic = ng.fileiobase.create_blank_udic(3)
    udic[0].update(size=3, sw=1.0, obs=FIELD_MHZ, car=0.0, label="TAU", complex=False, time=True, freq=False)
    for i, axis in enumerate(planes_2d, start=1):
        centre = axis.ppm_first - axis.size / 2 * axis.ppm_per_point
        udic[i].update(size=axis.size, sw=axis.sw_hz, obs=axis.obs_mhz, car=centre * axis.obs_mhz,
                       label=axis.nucleus, complex=False, time=False, freq=True)
    dic = ng.pipe.create_dic(udic)
    dic["FDPIPEFLAG"] = 1.0
    data = np.random.default_rng(3).normal(size=(3, 6, 8)).astype(np.float32)
    ng.pipe.write(str(tmp_path / "series.ft3"), dic, data, overwrite=True)
    with pytest.raises(io.SpectrumFileError, match=r"pseudo-3D series; read its 3 spectra .*axis=0"):
        io.read(tmp_path / "series.ft3")
    planes = list(io.iter_planes(tmp_path / "series.ft3", 0))
    assert len(planes) == 3
    for index, plane in enumerate(planes):
        np.testing.assert_array_equal(plane.data, data[index])
        assert plane.nuclei == ("15N", "1H") and "plane_ppm" not in plane.meta
        assert_axes_close(plane.axes, planes_2d)


def test_info(tmp_path):
    spectrum = make_spectrum((5, 6, 10))
    text = io.info(io.write(spectrum, tmp_path / "s.ucsf"))
    assert "shape (5, 6, 10)" in text and "format: ucsf" in text
    for axis in spectrum.axes:
        assert f"ppm {axis.ppm_first:8.3f} .. {axis.ppm_last:8.3f}" in text
    assert f"field {FIELD_MHZ:.2f} MHz" in text


# ---- a real measured spectrum ----------------------------------------------------------------


def test_protein_l_hsqc_series(protein_l_files):
    """peakipy's 800 MHz 1H-15N HSQC series of protein L, as NMRPipe and as UCSF.

    Both files hold a pseudo-3D of 4 HSQC planes (a relaxation series): NMRPipe stores it as a
    (4, 256, 546) stream with the series first ('ID' axis, 1 MHz), UCSF as (256, 4, 546) with
    the series in the middle (labelled '1H' at 1 MHz). The values are identical (same scaling).
    """
    ft2, ucsf = protein_l_files["ft2"], protein_l_files["ucsf"]
    assert io.detect_format(ft2) == "pipe" and io.detect_format(ucsf) == "ucsf"
    with pytest.raises(io.SpectrumFileError, match=r"pseudo-3D series; read its 4 spectra .*axis=0"):
        io.read(ft2)
    with pytest.raises(io.SpectrumFileError, match=r"pseudo-3D series; read its 4 spectra .*axis=1"):
        io.read(ucsf)
    pipe_planes = list(io.iter_planes(ft2, 0))
    ucsf_planes = list(io.iter_planes(ucsf, 1))
    _, pipe_data = ng.pipe.read(str(ft2))
    _, ucsf_data = ng.sparky.read(str(ucsf))
    assert pipe_data.shape == (4, 256, 546) and ucsf_data.shape == (256, 4, 546)
    assert len(pipe_planes) == len(ucsf_planes) == 4
    for index, (p, u) in enumerate(zip(pipe_planes, ucsf_planes)):
        assert p.shape == u.shape == (256, 546)
        np.testing.assert_array_equal(p.data, u.data)
        np.testing.assert_array_equal(p.data, pipe_data[index])
        np.testing.assert_array_equal(u.data, ucsf_data[:, index, :])
        for spectrum in (p, u):
            assert spectrum.nuclei == ("15N", "1H")
            assert spectrum.field_mhz == pytest.approx(800.304, abs=0.01)
            assert spectrum.axes[0].obs_mhz == pytest.approx(81.103, abs=0.001)
            np.testing.assert_allclose(spectrum.ppm_limits(0), (130.538, 106.634), atol=0.01)
            np.testing.assert_allclose(spectrum.ppm_limits(1), (10.498, 6.502), atol=0.01)
    # a relaxation series: every plane weaker than the one before
    maxima = [p.data.max() for p in pipe_planes]
    assert maxima == sorted(maxima, reverse=True) and maxima[-1] < 0.5 * maxima[0]
    text = io.info(ucsf)
    assert "pseudo-3D series: 4 planes along axis 1" in text and "format: ucsf" in text


# ---- paths that are not spectrum files (issue "Bad input and interruptions", 7 and 11) ---------


def test_7_fifo_socket_and_the_like_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "hsqc.ucsf"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes: it is never opened
    for call in (io.read, io.info, io.detect_format, lambda p: list(io.iter_planes(p, 0))):
        with pytest.raises(io.SpectrumFileError, match=r"hsqc\.ucsf: is a FIFO \(named pipe\), not a regular file"):
            call(fifo)


@pytest.mark.parametrize("name", ["hsqc_10%D2O.ft2", "hsqc_10%D2O.ucsf", "t%03d.ft2"])
def test_7_an_existing_file_with_percent_in_its_name_is_a_file(tmp_path, name):
    spectrum = make_spectrum((6, 8), seed=5)
    io.write(spectrum, tmp_path / name)
    back = io.read(tmp_path / name)
    np.testing.assert_array_equal(back.data, spectrum.data)
    assert name in io.info(tmp_path / name)


def test_11_empty_file_link_loop_and_dangling_link_are_named(tmp_path):
    (tmp_path / "empty.ft2").write_bytes(b"")
    with pytest.raises(io.SpectrumFileError, match=r"empty\.ft2: file is empty \(0 bytes\)"):
        io.read(tmp_path / "empty.ft2")
    (tmp_path / "loop.ucsf").symlink_to(tmp_path / "loop.ucsf")
    with pytest.raises(io.SpectrumFileError, match="loop.ucsf: symbolic link loop"):
        io.read(tmp_path / "loop.ucsf")
    (tmp_path / "dangling.ucsf").symlink_to(tmp_path / "gone.ucsf")
    with pytest.raises(FileNotFoundError, match=r"dangling symbolic link \(to '.*gone\.ucsf'"):
        io.read(tmp_path / "dangling.ucsf")


def test_11_header_and_data_in_different_byte_orders_are_named_not_blamed_on_nan(tmp_path):
    """Values whose byte-swapped bit pattern is a NaN: with the header alone swapped the data read as NaN,
    and the message says that every value is finite in the other byte order."""
    value = np.frombuffer(bytes([0xFF, 0xFF, 0x80, 0x3F]), dtype="<f4")[0]  # 1.0039..., swapped: a NaN
    assert np.isfinite(value) and np.isnan(np.array([value], dtype="<f4").byteswap()[0])
    spectrum = Spectrum(np.full((6, 8), value, dtype=np.float32), make_axes((6, 8)))
    path = io.write(spectrum, tmp_path / "le.ft2")
    raw = bytearray(path.read_bytes())
    header = np.frombuffer(bytes(raw[:2048]), dtype="<f4").astype(">f4").tobytes()
    text = [(16, 24), (286, 294), (297, 352), (464, 472)]  # text words keep their bytes in either order
    header = bytearray(header)
    for start, stop in text:
        header[4 * start : 4 * stop] = raw[4 * start : 4 * stop]
    (tmp_path / "swapped.ft2").write_bytes(bytes(header) + bytes(raw[2048:]))
    with pytest.raises(io.SpectrumFileError, match="non-finite.*other byte order every value is finite"):
        io.read(tmp_path / "swapped.ft2")


@pytest.mark.parametrize("remove, expected", [
    ("proc2s", r"Bruker data file 2rr \(2D\) but the parameter file\(s\) proc2s are missing"),
    ("procs", r"Bruker data file 2rr \(2D\) but the parameter file\(s\) procs are missing"),
    ("2rr", r"describes a 2D spectrum but 2rr is missing"),
])
def test_11_bruker_names_the_missing_file(tmp_path, remove, expected):
    procno = write_bruker(tmp_path / "1", (8, 12), np.arange(96, dtype=np.float64).reshape(8, 12) * 4)
    (procno / remove).unlink()
    with pytest.raises(io.SpectrumFileError, match=expected):
        io.read(procno)
