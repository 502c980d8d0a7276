"""Tests of mssr.data.fetch against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import contextlib
import hashlib
import io as _bytes_io
import json
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nmrglue as ng
import numpy as np
import pandas as pd
import pytest

from mssr.data import fetch as F
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H

# --------------------------------------------------------------------------------------------
# tiny spectra in the ARTINA layout


def _udic(nuclei, shape, field_mhz, centres_ppm, widths_ppm):
    udic = ng.fileiobase.create_blank_udic(len(shape))
    for i, (nucleus, size, centre, width) in enumerate(zip(nuclei, shape, centres_ppm, widths_ppm)):
        obs = field_mhz * GYROMAGNETIC_RATIO_TO_1H[nucleus]
        udic[i].update(size=size, sw=width * obs, obs=obs, car=centre * obs, label=nucleus)
        udic[i].update(complex=False, time=False, freq=True)
    return udic


_WINDOWS = {"1H": (8.25, 4.5), "15N": (119.0, 30.0), "13C": (53.5, 28.0)}


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def write_ucsf(path: Path, nuclei, shape, field_mhz, seed=0):
    """A Sparky/UCSF file written by nmrglue (independent of the package's writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    udic = _udic(nuclei, shape, field_mhz, [_WINDOWS[n][0] for n in nuclei], [_WINDOWS[n][1] for n in nuclei])
    ng.sparky.write(str(path), ng.sparky.create_dic(udic), _data(shape, seed), overwrite=True)
    return path


def write_pipe(path: Path, nuclei, shape, field_mhz, seed=0):
    """A single-file NMRPipe spectrum written by nmrglue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    udic = _udic(nuclei, shape, field_mhz, [_WINDOWS[n][0] for n in nuclei], [_WINDOWS[n][1] for n in nuclei])
    ng.pipe.write(str(path), ng.pipe.create_dic(udic), _data(shape, seed), overwrite=True)
    return path


# (relative path, format, nuclei, shape, 1H MHz, expected experiment)
GOOD_SPECTRA = [
    ("2K52/N15HSQC.ucsf", "ucsf", ("15N", "1H"), (6, 8), 600.13, "hsqc_15n"),
    ("2K52/HNCA.ucsf", "ucsf", ("13C", "15N", "1H"), (4, 5, 8), 600.13, "hnca"),
    ("2LEA/hsqc_c_ali.ft2", "pipe", ("13C", "1H"), (6, 8), 800.25, "hsqc_13c"),
    ("2LEA/CBCAcoNH.ucsf", "ucsf", ("13C", "15N", "1H"), (4, 5, 8), 800.25, "cbcaconh"),
    ("2LEA/weird-exp.ucsf", "ucsf", ("15N", "1H"), (6, 8), 800.25, "weird_exp"),
]
BROKEN_SPECTRUM = "2LEA/N15NOESY.ucsf"


def make_dataset(root: Path) -> dict:
    """Write GOOD_SPECTRA and one corrupt file under ``root``; return {relative path: bytes}."""
    for i, (rel, fmt, nuclei, shape, mhz, _) in enumerate(GOOD_SPECTRA):
        (write_ucsf if fmt == "ucsf" else write_pipe)(root / rel, nuclei, shape, mhz, seed=i)
    broken = root / BROKEN_SPECTRUM
    good = (root / GOOD_SPECTRA[0][0]).read_bytes()
    broken.write_bytes(good[:150])  # a UCSF header cut short: no axis headers, no data
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def make_tar_gz(src: Path, wrapper: str) -> bytes:
    buffer = _bytes_io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for path in sorted(src.rglob("*")):
            tf.add(path, arcname=f"{wrapper}/{path.relative_to(src).as_posix()}", recursive=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("artina_src")
    files = make_dataset(root)
    payload = make_tar_gz(root, "artina100")
    return {"root": root, "files": files, "payload": payload, "sha256": hashlib.sha256(payload).hexdigest()}


# --------------------------------------------------------------------------------------------
# a local HTTP server with scripted misbehaviour


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        server.requests.append(dict(self.headers))
        number = len(server.requests)
        payload = server.payload
        if self.path != "/data/artina.tar.gz":
            self.send_error(404)
            return
        if server.mode == "fail":
            self.send_error(503)
            return
        if server.mode == "stall_first" and number == 1:
            server.release.wait(timeout=5)  # longer than the client's timeout; set when the test ends
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and server.mode != "ignore_range":
            start = int(range_header.removeprefix("bytes=").split("-")[0])
        if start >= len(payload):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(payload)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = payload[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        if server.mode == "cut_first" and number == 1:
            # Promise the whole body, send part of it, hang up.
            self.wfile.write(body[: server.cut_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@contextlib.contextmanager
def serve(payload: bytes, mode: str = "normal", cut_at: int = 0):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.payload, server.mode, server.cut_at, server.requests = payload, mode, cut_at, []
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data/artina.tar.gz", server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


FAST = {"backoff_s": 0.0, "timeout": 5, "progress": False}


# --------------------------------------------------------------------------------------------
# download


def test_download_verifies_and_renames_atomically(dataset, tmp_path):
    dest = tmp_path / "dl" / "artina.tar.gz"
    with serve(dataset["payload"]) as (url, server):
        got = F.download(url, dest, sha256=dataset["sha256"].upper(), **FAST)
        assert got == dest
        assert dest.read_bytes() == dataset["payload"]
        assert not dest.with_name(dest.name + ".part").exists()
        assert "Range" not in server.requests[0]
        # A second call finds the verified file and does not ask the server again.
        F.download(url, dest, sha256=dataset["sha256"], **FAST)
        assert len(server.requests) == 1


def test_interrupted_transfer_resumes_with_range(dataset, tmp_path):
    payload, cut = dataset["payload"], 1000
    dest = tmp_path / "artina.tar.gz"
    with serve(payload, mode="cut_first", cut_at=cut) as (url, server):
        F.download(url, dest, sha256=dataset["sha256"], retries=2, **FAST)
        assert len(server.requests) == 2
        assert "Range" not in server.requests[0]
        assert server.requests[1]["Range"] == f"bytes={cut}-"
    assert dest.read_bytes() == payload


def test_partial_file_from_an_earlier_run_is_resumed(dataset, tmp_path):
    payload, cut = dataset["payload"], 777
    dest = tmp_path / "artina.tar.gz"
    with serve(payload, mode="cut_first", cut_at=cut) as (url, server):
        with pytest.raises(F.DownloadError, match="run again to resume"):
            F.download(url, dest, sha256=dataset["sha256"], retries=0, **FAST)
        part = dest.with_name(dest.name + ".part")
        assert part.read_bytes() == payload[:cut]
        assert not dest.exists()
        F.download(url, dest, sha256=dataset["sha256"], retries=0, **FAST)
        assert server.requests[1]["Range"] == f"bytes={cut}-"
    assert dest.read_bytes() == payload and not part.exists()


def test_server_ignoring_range_is_read_from_the_start(dataset, tmp_path):
    payload = dataset["payload"]
    dest = tmp_path / "artina.tar.gz"
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(b"\xff" * 500)  # bytes that must not survive into the result
    with serve(payload, mode="ignore_range") as (url, server):
        F.download(url, dest, sha256=dataset["sha256"], **FAST)
        assert server.requests[0]["Range"] == "bytes=500-"
    assert dest.read_bytes() == payload


def test_complete_partial_file_is_kept(dataset, tmp_path):
    dest = tmp_path / "artina.tar.gz"
    dest.with_name(dest.name + ".part").write_bytes(dataset["payload"])
    with serve(dataset["payload"]) as (url, server):
        F.download(url, dest, sha256=dataset["sha256"], **FAST)
        assert [r["Range"] for r in server.requests] == [f"bytes={len(dataset['payload'])}-"]
    assert dest.read_bytes() == dataset["payload"]


def test_existing_file_with_another_digest_is_replaced(dataset, tmp_path):
    dest = tmp_path / "artina.tar.gz"
    dest.write_bytes(b"stale copy")
    with serve(dataset["payload"]) as (url, server):
        F.download(url, dest, sha256=dataset["sha256"], **FAST)
        assert len(server.requests) == 1
    assert dest.read_bytes() == dataset["payload"]
    assert dest.with_name(dest.name + ".bad").read_bytes() == b"stale copy"


def test_wrong_checksum_stops_and_moves_the_file_aside(dataset, tmp_path):
    wrong = hashlib.sha256(b"something else").hexdigest()
    dest = tmp_path / "artina.tar.gz"
    with serve(dataset["payload"]) as (url, _):
        with pytest.raises(F.ChecksumError) as info:
            F.download(url, dest, sha256=wrong, **FAST)
    message = str(info.value)
    assert str(dest) in message and wrong in message and dataset["sha256"] in message
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".part").exists()
    assert dest.with_name(dest.name + ".bad").read_bytes() == dataset["payload"]


def test_retries_exhausted_is_a_clear_error(dataset, tmp_path):
    dest = tmp_path / "artina.tar.gz"
    with serve(dataset["payload"], mode="fail") as (url, server):
        with pytest.raises(F.DownloadError) as info:
            F.download(url, dest, retries=2, **FAST)
        assert len(server.requests) == 3
    assert url in str(info.value) and "3 attempts" in str(info.value) and "503" in str(info.value)
    assert not dest.exists()


def test_timeout_is_retried(dataset, tmp_path):
    dest = tmp_path / "artina.tar.gz"
    with serve(dataset["payload"], mode="stall_first") as (url, server):
        F.download(url, dest, sha256=dataset["sha256"], retries=1, backoff_s=0.0, timeout=0.3, progress=False)
        assert len(server.requests) == 2
    assert dest.read_bytes() == dataset["payload"]


def test_refused_connection_is_retried_then_reported(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(F.DownloadError, match="after 2 attempts"):
        F.download(f"http://127.0.0.1:{port}/x.tar.gz", tmp_path / "x.tar.gz", retries=1, **FAST)


def test_not_found_is_not_retried(dataset, tmp_path):
    with serve(dataset["payload"]) as (url, server):
        with pytest.raises(F.DownloadError, match="HTTP 404"):
            F.download(url.replace("artina", "missing"), tmp_path / "m.tar.gz", retries=3, **FAST)
        assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": "ftp://example.org/a.zip"}, ValueError),
        ({"sha256": "abc"}, ValueError),
        ({"retries": -1}, ValueError),
        ({"retries": 1.5}, TypeError),
        ({"timeout": 0}, ValueError),
    ],
)
def test_download_rejects_bad_arguments(tmp_path, kwargs, error):
    args = {"url": "http://127.0.0.1:9/a.zip", "dest": tmp_path / "a.zip", **kwargs}
    with pytest.raises(error, match=next(iter(kwargs))):
        F.download(args.pop("url"), args.pop("dest"), **args)


# --------------------------------------------------------------------------------------------
# safe extraction


def _tar_with(members) -> bytes:
    """A tar.gz holding a harmless file, then ``members`` as (TarInfo, bytes or None)."""
    buffer = _bytes_io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        ok = tarfile.TarInfo("pkg/ok.txt")
        ok.size = 2
        tf.addfile(ok, _bytes_io.BytesIO(b"ok"))
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, _bytes_io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _unsafe_tars(outside: Path):
    return {
        "dotdot": [(_info("../evil.txt"), b"evil")],
        "nested_dotdot": [(_info("pkg/../../evil.txt"), b"evil")],
        "absolute": [(_info(str(outside / "evil.txt")), b"evil")],
        "symlink_etc": [(_info("pkg/etc", tarfile.SYMTYPE, "/etc"), None)],
        "symlink_up": [(_info("pkg/up", tarfile.SYMTYPE, "../../.."), None)],
        "hardlink_out": [(_info("pkg/passwd", tarfile.LNKTYPE, "../etc/passwd"), None)],
        "through_own_link": [
            (_info("pkg/here", tarfile.SYMTYPE, "."), None),
            (_info("pkg/here/up", tarfile.SYMTYPE, "../.."), None),  # lexically inside, really outside
            (_info("pkg/here/up/evil.txt"), b"evil"),
        ],
        "device": [(_info("pkg/null", tarfile.CHRTYPE), None)],
        "fifo": [(_info("pkg/pipe", tarfile.FIFOTYPE), None)],
    }


@pytest.mark.parametrize("case", sorted(_unsafe_tars(Path("/x"))))
def test_unsafe_tar_is_refused_and_nothing_is_written(tmp_path, case):
    work = tmp_path / "work"
    target = work / "extracted"
    members = _unsafe_tars(tmp_path)[case]
    archive = tmp_path / f"{case}.tar.gz"
    archive.write_bytes(_tar_with(members))
    with pytest.raises(F.UnsafeArchiveError) as info:
        F.safe_extract(archive, target)
    assert str(archive) in str(info.value)
    assert info.value.member in {m.name for m, _ in members}
    assert repr(info.value.member) in str(info.value)
    assert not target.exists()  # not even the harmless member was put in place
    assert list(work.iterdir()) == []  # no staging folder left behind
    assert not (tmp_path / "evil.txt").exists() and not (work / "evil.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "pkg\\..\\..\\evil.txt"])
def test_unsafe_zip_is_refused(tmp_path, name):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/ok.txt", "ok")
        zf.writestr(zipfile.ZipInfo(name), "evil")
    target = tmp_path / "work" / "extracted"
    with pytest.raises(F.UnsafeArchiveError, match="bad.zip"):
        F.safe_extract(archive, target)
    assert not target.exists() and not (tmp_path / "evil.txt").exists()


def test_zip_symlink_outside_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("pkg/etc")
        link.external_attr = (0o120777 << 16)  # S_IFLNK | 0777
        zf.writestr(link, "/etc")
    with pytest.raises(F.UnsafeArchiveError, match="absolute path"):
        F.safe_extract(archive, tmp_path / "out")


def test_safe_archives_extract_completely(tmp_path):
    tar = tmp_path / "good.tar.bz2"
    with tarfile.open(tar, "w:bz2") as tf:
        for name, data in [("pkg/a/one.txt", b"1"), ("pkg/two.txt", b"22")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, _bytes_io.BytesIO(data))
        tf.addfile(_info("pkg/link", tarfile.SYMTYPE, "a/one.txt"))
    zipped = tmp_path / "good.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("other/three.txt", "333")
    target = tmp_path / "out"
    F.safe_extract(tar, target)
    F.safe_extract(zipped, target)
    assert (target / "pkg/a/one.txt").read_bytes() == b"1"
    assert (target / "pkg/two.txt").read_bytes() == b"22"
    assert (target / "pkg/link").resolve() == (target / "pkg/a/one.txt").resolve()
    assert (target / "other/three.txt").read_text() == "333"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tar.bz2", "good.zip", "out"]


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="neither a tar"):
        F.safe_extract(junk, tmp_path / "out")


# --------------------------------------------------------------------------------------------
# experiment names


@pytest.mark.parametrize(
    ("name", "nuclei", "expected"),
    [
        ("N15HSQC", None, "hsqc_15n"),
        ("hsqc_n", None, "hsqc_15n"),
        ("HNCA", None, "hnca"),
        ("HNCACB", None, "hncacb"),
        ("CBCAcoNH", None, "cbcaconh"),
        ("CBCA(CO)NH", None, "cbcaconh"),
        ("HNCO", None, "hnco"),
        ("HNcoCA", None, "hncoca"),
        ("C13HSQC", None, "hsqc_13c"),
        ("hsqc_c_ali", None, "hsqc_13c"),
        ("hsqc_c_aro", None, "hsqc_13c"),
        ("N15NOESY", None, "noesy_15n"),
        ("noesy_n", None, "noesy_15n"),
        ("C13NOESY", None, "noesy_13c"),
        ("HCCH_TOCSY", None, "hcch_tocsy"),
        ("H(CCCO)NH-TOCSY", None, "hcconh"),
        ("C13NOESY_aro", None, "noesy_13c"),
        ("2k52_hnca_900", None, "hnca"),
        ("HSQC", ("15N", "1H"), "hsqc_15n"),
        ("hsqc", ("13C", "1H"), "hsqc_13c"),
        ("NOESY", ("1H", "15N", "1H"), "noesy_15n"),
        ("HSQC", None, None),
        ("noesy", ("13C", "15N", "1H"), None),
        ("mystery", None, None),
    ],
)
def test_experiment_aliases(name, nuclei, expected):
    assert F.experiment_from_name(name, nuclei) == expected


def test_every_alias_names_one_experiment():
    aliases = [a for names in F._EXPERIMENT_ALIASES.values() for a in names]
    assert len(aliases) == len(set(aliases))
    assert all(F.experiment_from_name(name) == name for name in F.KNOWN_EXPERIMENTS)


# --------------------------------------------------------------------------------------------
# manifest and fetch


def _expected_rows(prefix: str, files: dict):
    rows = []
    for rel, fmt, nuclei, shape, mhz, experiment in GOOD_SPECTRA:
        rows.append(
            {
                "protein": rel.split("/")[0],
                "experiment": experiment,
                "path": f"{prefix}{rel}",
                "format": fmt,
                "ndim": len(shape),
                "shape": "x".join(map(str, shape)),
                "nuclei": "/".join(nuclei),
                "field_mhz": mhz,
                "sha256": hashlib.sha256(files[rel]).hexdigest(),
            }
        )
    return pd.DataFrame(rows).sort_values(["protein", "experiment", "path"], ignore_index=True)


def _assert_manifest(manifest: pd.DataFrame, expected: pd.DataFrame):
    assert list(manifest.columns) == list(F.MANIFEST_COLUMNS)
    text_columns = ["protein", "experiment", "path", "format", "shape", "nuclei", "sha256"]
    pd.testing.assert_frame_equal(manifest[text_columns], expected[text_columns], check_dtype=False)
    assert manifest["ndim"].tolist() == expected["ndim"].tolist()
    np.testing.assert_allclose(manifest["field_mhz"], expected["field_mhz"], rtol=1e-6)


def test_fetch_artina_downloads_extracts_and_writes_manifest(dataset, tmp_path):
    out = tmp_path / "raw"
    with serve(dataset["payload"]) as (url, server):
        artina = {"urls": [url], "sha256": {"artina.tar.gz": dataset["sha256"]}, "retries": 1}
        cfg = {"source": "artina", "artina": artina}
        manifest_path = F.fetch(cfg, out)
        assert len(server.requests) == 1
    assert manifest_path == out / "manifest.csv"
    manifest = pd.read_csv(manifest_path)
    _assert_manifest(manifest, _expected_rows("extracted/artina/artina100/", dataset["files"]))
    for rel in manifest["path"]:
        assert (out / rel).is_file()

    quarantine = pd.read_csv(out / "quarantine.csv")
    assert quarantine["path"].tolist() == [f"extracted/artina/artina100/{BROKEN_SPECTRUM}"]
    assert quarantine["reason"].str.len().min() > 10

    record = json.loads((out / "fetch.json").read_text())
    assert record["source"] == "artina" and record["urls"] == [url]
    assert record["sha256"] == {"artina.tar.gz": dataset["sha256"]}
    assert record["n_spectra"] == len(GOOD_SPECTRA) and record["n_quarantined"] == 1
    assert record["unknown_experiments"] == ["weird_exp"]
    assert record["started_utc"] <= record["finished_utc"]


def test_fetch_artina_from_an_already_downloaded_copy(dataset, tmp_path):
    archives = tmp_path / "downloaded"
    archives.mkdir()
    (archives / "artina.tar.gz").write_bytes(dataset["payload"])
    cfg = {
        "source": "artina",
        "urls": ["https://nmrdb.example/files/artina.tar.gz"],  # never contacted
        "sha256": [dataset["sha256"]],
        "archive_dir": str(archives),
    }
    out = tmp_path / "raw"
    first = pd.read_csv(F.fetch(cfg, out))
    second = pd.read_csv(F.fetch(cfg, out))  # already extracted: same result
    _assert_manifest(first, _expected_rows("extracted/artina/artina100/", dataset["files"]))
    pd.testing.assert_frame_equal(first, second)
    assert not (out / "downloads").exists()


def test_fetch_artina_wrong_checksum_writes_no_manifest(dataset, tmp_path):
    out = tmp_path / "raw"
    with serve(dataset["payload"]) as (url, _):
        with pytest.raises(F.ChecksumError, match="artina.tar.gz"):
            F.fetch({"source": "artina", "urls": [url], "sha256": ["0" * 64], **{"retries": 0}}, out)
    assert not (out / "manifest.csv").exists() and not (out / "extracted").exists()


def test_build_manifest_quarantines_corrupt_files(dataset, tmp_path):
    root = tmp_path / "local"
    make_dataset(root)
    (root / "2K52" / "garbage.ft2").write_bytes(b"\x00\x01" * 50)
    manifest, quarantine = F.build_manifest(root)
    _assert_manifest(manifest, _expected_rows("", dataset["files"]))
    assert sorted(quarantine["path"]) == sorted([BROKEN_SPECTRUM, "2K52/garbage.ft2"])
    assert all(quarantine["reason"].str.contains("Error"))


def test_field_hint_quarantines_contradicting_headers(tmp_path):
    root = tmp_path / "local"
    write_ucsf(root / "P1" / "N15HSQC.ucsf", ("15N", "1H"), (6, 8), 600.13)
    write_ucsf(root / "P2" / "N15HSQC.ucsf", ("15N", "1H"), (6, 8), 900.0)
    manifest, quarantine = F.build_manifest(root, field_hint={"P1": 600.0, "P2": 600.0})
    assert manifest["protein"].tolist() == ["P1"]
    assert quarantine["path"].tolist() == ["P2/N15HSQC.ucsf"]
    assert "900.00 MHz" in quarantine["reason"][0]


def test_fetch_local_and_empty_folder(tmp_path):
    src = tmp_path / "spectra"
    write_ucsf(src / "1ABC" / "hnco" / "spectrum.ucsf", ("13C", "15N", "1H"), (4, 5, 8), 700.13)
    out = tmp_path / "raw"
    manifest = pd.read_csv(F.fetch({"source": "local", "local": {"path": str(src)}}, out))
    rows = manifest[["protein", "experiment", "path"]].values.tolist()
    assert rows == [["1ABC", "hnco", "../spectra/1ABC/hnco/spectrum.ucsf"]]
    assert pd.read_csv(out / "quarantine.csv").empty
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable spectrum"):
        F.fetch({"source": "local", "path": str(tmp_path / "empty")}, tmp_path / "raw2")


def test_fetch_demo_renders_and_agrees_with_the_scanner(tmp_path, monkeypatch):
    from mssr.data import demo as demo_module

    calls = []
    real = demo_module.render_dataset

    def spy(out_dir, **kwargs):
        calls.append(kwargs)
        return real(out_dir, **kwargs)

    monkeypatch.setattr(demo_module, "render_dataset", spy)
    sizes = {"hsqc_15n": [16, 16], "hnca": [6, 8, 16]}
    demo = {"n_proteins": 2, "experiments": ["hsqc_15n", "hnca"], "seed": 1, "sizes": sizes}
    out = tmp_path / "raw"
    rendered = pd.read_csv(F.fetch({"source": "demo", "demo": demo, "artina": {"urls": []}}, out))
    assert calls == [demo]
    assert len(rendered) == 4 and json.loads((out / "fetch.json").read_text())["source"] == "demo"
    # The scanner finds the same spectra, names and digests in the rendered layout.
    scanned, quarantine = F.build_manifest(out)
    assert quarantine.empty
    _assert_manifest(scanned, rendered.sort_values(["protein", "experiment", "path"], ignore_index=True))


def _write_bruker(expno: Path, shape, field_mhz, seed=0):
    """A 2D 15N-1H Bruker processed data set (procs, proc2s, 2rr) written by nmrglue."""

    def proc(size, sf, sw_ppm, first_ppm, nucleus):
        return {
            "SI": size, "XDIM": size, "SW_p": sw_ppm * sf, "SF": sf, "OFFSET": first_ppm, "AXNUC": nucleus,
            "NC_proc": 0, "BYTORDP": 0, "DTYPP": 0,
            "_comments": [], "_coreheader": ["##TITLE= Parameter file", "##JCAMPDX= 5.0"],
        }

    dic = {
        "procs": proc(shape[1], field_mhz, 4.5, 10.5, "1H"),
        "proc2s": proc(shape[0], field_mhz * GYROMAGNETIC_RATIO_TO_1H["15N"], 30.0, 134.0, "15N"),
    }
    data = (np.random.default_rng(seed).integers(-1000, 1000, shape) * 1000).astype(np.int32)
    ng.bruker.write_pdata(str(expno), dic, data, write_procs=True, pdata_folder=1, overwrite=True, scale_data=True)


def _multi_file_digest(base: Path, names):
    """The documented digest of a spectrum stored in several files: sha256 of sha256sum's lines."""
    lines = sorted(f"{hashlib.sha256((base / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_manifest_finds_pipe_series_and_bruker_folders(tmp_path):
    root = tmp_path / "local"
    # A 3D NMRPipe series (one file per plane) named by its folder.
    series_dir = root / "1ABC" / "HNCO"
    series_dir.mkdir(parents=True)
    udic = _udic(("13C", "15N", "1H"), (4, 5, 8), 700.13, [176.0, 119.0, 8.25], [10.0, 30.0, 4.5])
    ng.pipe.write(str(series_dir / "test%03d.ft3"), ng.pipe.create_dic(udic), _data((4, 5, 8), 1), overwrite=True)
    # Two numbered 2D files that are separate spectra, not planes of one.
    write_pipe(root / "1ABC" / "N15HSQC_1.ft2", ("15N", "1H"), (6, 8), 700.13, seed=2)
    write_pipe(root / "1ABC" / "N15HSQC_2.ft2", ("15N", "1H"), (6, 8), 700.13, seed=3)
    # A Bruker experiment whose folder says the experiment and the axes say the nucleus.
    _write_bruker(root / "1ABC" / "hsqc" / "3", (8, 16), 600.13)

    manifest, quarantine = F.build_manifest(root, relative_to=tmp_path)
    assert quarantine.empty
    expno = root / "1ABC/hsqc/3"
    bruker_files = [p.relative_to(expno).as_posix() for p in expno.rglob("*") if p.is_file()]
    expected = pd.DataFrame(
        [
            ["1ABC", "hnco", "local/1ABC/HNCO/test%03d.ft3", "pipe", 3, "4x5x8", "13C/15N/1H", 700.13,
             _multi_file_digest(series_dir, [f"test00{i}.ft3" for i in range(1, 5)])],
            ["1ABC", "hsqc_15n", "local/1ABC/N15HSQC_1.ft2", "pipe", 2, "6x8", "15N/1H", 700.13,
             hashlib.sha256((root / "1ABC/N15HSQC_1.ft2").read_bytes()).hexdigest()],
            ["1ABC", "hsqc_15n", "local/1ABC/N15HSQC_2.ft2", "pipe", 2, "6x8", "15N/1H", 700.13,
             hashlib.sha256((root / "1ABC/N15HSQC_2.ft2").read_bytes()).hexdigest()],
            ["1ABC", "hsqc_15n", "local/1ABC/hsqc/3/pdata/1", "bruker", 2, "8x16", "15N/1H", 600.13,
             _multi_file_digest(expno, bruker_files)],
        ],
        columns=list(F.MANIFEST_COLUMNS),
    )
    _assert_manifest(manifest, expected)


@pytest.mark.parametrize(
    ("cfg", "error", "match"),
    [
        ({"source": "zenodo"}, ValueError, "source"),
        ({"source": "artina"}, ValueError, "urls"),
        ({"source": "artina", "urls": ["http://127.0.0.1:9/a.zip"], "sha": []}, ValueError, "sha"),
        ({"source": "artina", "urls": ["http://127.0.0.1:9/a.zip"], "sha256": ["0" * 64] * 2}, ValueError, "2 entries"),
        ({"source": "local", "local": {"path": None}}, ValueError, "path"),
        ({"source": "local", "local": {"dir": "x"}}, ValueError, "unknown option"),
        (["artina"], TypeError, "source_cfg"),
    ],
)
def test_fetch_rejects_bad_configs(tmp_path, cfg, error, match):
    with pytest.raises(error, match=match):
        F.fetch(cfg, tmp_path / "raw")
