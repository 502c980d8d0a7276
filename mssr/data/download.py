"""Downloads and archives: resumable checksummed HTTP downloads, safe archive extraction.

:func:`download` resumes a partial ``.part`` file with a Range request, retries transient
failures (timeouts, 408/425/429/5xx) with exponential backoff, verifies the SHA-256 digest and
moves a file that fails it aside (``.bad``). :func:`safe_extract` refuses archive members that
would land outside the target (absolute paths, ``..``, links pointing out, device files) and
extracts through a staging folder, so a failed extraction leaves nothing half written.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from mssr import _validate
from mssr.provenance import sha256_file

log = logging.getLogger("mssr.data.fetch")

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
"""File name endings recognised as archives."""

_USER_AGENT = "mssr-fetch (+https://nmrdb.ethz.ch data set client)"
# Statuses that say "try again later"; every other 4xx is the request's fault and final.
_RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


# --------------------------------------------------------------------------------------------
# errors


class DownloadError(RuntimeError):
    """A download failed for good (retries exhausted or a final HTTP error)."""


class ChecksumError(ValueError):
    """A file's SHA-256 digest differs from the expected one."""

    def __init__(self, path, expected: str, actual: str, moved_to=None):
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        self.moved_to = None if moved_to is None else Path(moved_to)
        where = f"; the bad file was moved to {self.moved_to}" if self.moved_to else ""
        super().__init__(f"SHA-256 mismatch for {self.path}: expected {expected}, got {actual}{where}")


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or is not a plain file."""

    def __init__(self, archive, member: str, reason: str):
        self.archive = Path(archive)
        self.member = member
        super().__init__(f"refusing to extract {self.archive}: member {member!r} {reason}; nothing was extracted")


class _RetryableError(Exception):
    """A transient failure inside one download attempt."""


# --------------------------------------------------------------------------------------------
# validation


def checked_url(url) -> str:
    """An http(s) URL with a host. Raises TypeError/ValueError naming ``url``."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"url must be an http(s) URL with a host, got {url!r}")
    return url


def checked_sha256(sha256, name: str = "sha256") -> str | None:
    """A SHA-256 hex digest, stripped and lower-cased; None for None or ''. Raises naming ``name``."""
    if sha256 is None or sha256 == "":
        return None
    if not isinstance(sha256, str):
        raise TypeError(f"{name} must be a hex str or None, got {type(sha256).__name__}")
    digest = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"{name} must be 64 hexadecimal characters, got {sha256!r}")
    return digest


# --------------------------------------------------------------------------------------------
# checksums


def sha256_files(root: Path, files: Sequence[Path]) -> str:
    """Digest of a spectrum stored as several files.

    One file gives its own digest (``sha256sum``). Several files give the SHA-256 of the lines
    ``"<sha256>  <path relative to root>\\n"`` sorted by path, i.e. of ``sha256sum``'s output,
    so that renaming, adding or changing any file changes the digest.
    """
    if len(files) == 1:
        return sha256_file(files[0])
    lines = sorted(f"{sha256_file(f)}  {f.relative_to(root).as_posix()}\n" for f in files)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _move_aside(path: Path, dest: Path) -> Path:
    """Rename ``path`` to ``dest + '.bad'`` (replacing an older one) and return the new path."""
    bad = dest.with_name(dest.name + ".bad")
    os.replace(path, bad)
    return bad


# --------------------------------------------------------------------------------------------
# download


def download(
    url: str,
    dest,
    *,
    sha256: str | None = None,
    retries: int = 5,
    timeout: float = 60,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming an interrupted transfer, and verify its digest.

    Bytes arrive in ``dest + '.part'``; an existing ``.part`` file is resumed with an HTTP
    ``Range: bytes=<size>-`` request. A server that ignores the range (status 200 instead of
    206) or answers a different range is read again from byte 0. Connection errors, timeouts,
    transfers that end early and HTTP 408/425/429/5xx are retried up to ``retries`` times,
    sleeping ``backoff_s * 2**k`` seconds (at most ``max_backoff_s``) before retry ``k + 1``;
    other HTTP errors (404, 403...) stop at once. The finished file is checked against
    ``sha256`` and only then renamed onto ``dest`` (atomic: ``dest`` is complete or absent).

    Parameters
    ----------
    url : str
        http(s) URL.
    dest : str or Path
        Final file path; parent folders are created.
    sha256 : str, optional
        Expected SHA-256 hex digest. An existing ``dest`` with this digest is not downloaded
        again; one with another digest is moved to ``dest + '.bad'`` and downloaded again.
    retries : int
        Further attempts after the first one (>= 0).
    timeout : float
        Socket timeout per connection and per read, s.
    chunk_size : int
        Bytes read per call, > 0.
    progress : bool
        Show a progress bar on stderr.
    backoff_s, max_backoff_s : float
        First and largest pause between attempts, s.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ChecksumError
        The downloaded bytes do not have the expected digest; they were moved to
        ``dest + '.bad'`` and ``dest`` was not created.
    DownloadError
        Retries exhausted or a final HTTP error; a partial ``.part`` file is kept for the
        next call to resume.
    """
    url = checked_url(url)
    sha256 = checked_sha256(sha256)
    retries = _validate.integer("retries", retries, 0)
    chunk_size = _validate.integer("chunk_size", chunk_size, 1)
    timeout = _validate.positive("timeout", timeout)
    backoff_s = _validate.nonnegative("backoff_s", backoff_s)
    max_backoff_s = _validate.nonnegative("max_backoff_s", max_backoff_s)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    if dest.exists():
        if sha256 is None:
            log.info("%s exists; not downloading %s again", dest, url)
            return dest
        actual = sha256_file(dest)
        if actual == sha256:
            log.info("%s exists with the expected SHA-256; not downloading again", dest)
            return dest
        bad = _move_aside(dest, dest)
        log.warning("%s has SHA-256 %s, expected %s; moved to %s and downloading again", dest, actual, sha256, bad)

    # The partial file needs a stable name (not atomic_path's random one) so that a later
    # call can find and resume it; the final os.replace keeps the result atomic.
    part = dest.with_name(dest.name + ".part")
    validator = None  # ETag / Last-Modified of the first response, sent back as If-Range
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            pause = min(backoff_s * 2 ** (attempt - 1), max_backoff_s)
            log.warning("download of %s failed (%s); retry %d/%d in %.3g s", url, last_error, attempt, retries, pause)
            time.sleep(pause)
        try:
            validator = _fetch_into(url, part, validator, timeout=timeout, chunk_size=chunk_size, progress=progress)
            break
        except _RetryableError as exc:
            last_error = exc
    else:
        kept = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"could not download {url} to {dest} after {retries + 1} attempts; last error: {last_error}"
            f" ({kept} bytes kept in {part}; run again to resume)"
        ) from (last_error.__cause__ or last_error)

    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            raise ChecksumError(dest, sha256, actual, moved_to=_move_aside(part, dest))
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, validator, *, timeout: float, chunk_size: int, progress: bool):
    """One attempt: append the missing bytes of ``url`` to ``part``; return the validator.

    Raises _RetryableError (with the cause chained) for transient failures and DownloadError
    for final ones.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            if exc.code == 416 and offset:
                total = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", exc.headers.get("Content-Range") or "")
                if total is not None and int(total.group(1)) == offset:
                    return validator  # an earlier run received every byte but stopped before the rename
                # The resource is shorter than the .part: its bytes cannot be trusted.
                part.unlink()
                raise _RetryableError(f"HTTP 416: {offset} bytes already kept exceed the file; restarting") from exc
            if exc.code in _RETRYABLE_HTTP:
                raise _RetryableError(f"HTTP {exc.code} {exc.reason}") from exc
            raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _RetryableError(f"{type(exc).__name__}: {exc}") from exc

    with response:
        status = response.status
        expected_total = None
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                # A range other than the one asked for: do not splice it in.
                part.unlink(missing_ok=True)
                raise _RetryableError(f"server answered range start {start}, asked {offset}; restarting")
            expected_total = total
            mode = "ab"
        elif status == 200:
            if offset:
                log.info("%s ignored the range request; reading from byte 0", url)
            offset = 0
            mode = "wb"
        else:
            raise DownloadError(f"could not download {url}: unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        if expected_total is None and length is not None and length.isdigit():
            expected_total = offset + int(length)
        validator = validator or response.headers.get("ETag") or response.headers.get("Last-Modified")

        received = offset
        bar = _progress_bar(part.name.removesuffix(".part"), expected_total, offset, progress)
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        chunk = response.read(chunk_size)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _RetryableError(f"connection lost after {received} bytes: {exc}") from exc
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            if bar is not None:
                bar.close()
    if expected_total is not None and received != expected_total:
        # http.client returns b'' when the peer closes early instead of raising.
        raise _RetryableError(f"transfer ended at byte {received} of {expected_total}")
    return validator


def _parse_content_range(value):
    """(first byte, total size or None) of a ``Content-Range: bytes a-b/n`` header."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if match is None:
        raise _RetryableError(f"206 response with an unreadable Content-Range {value!r}")
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _progress_bar(name: str, total, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr)


# --------------------------------------------------------------------------------------------
# safe extraction


def archive_stem(path) -> str:
    """File name of an archive without its archive suffix (``'a.tar.gz'`` -> ``'a'``)."""
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _member_parts(archive: Path, name: str) -> tuple[str, ...]:
    """Path components of a member name; refuse absolute names and '..'."""
    # Archives written on Windows may use backslashes; judge them as separators too.
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise UnsafeArchiveError(archive, name, "has an absolute path")
    parts = tuple(p for p in normalized.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "contains '..' and would escape the target folder")
    return parts


def _check_link(archive: Path, name: str, link_parent: tuple[str, ...], linkname: str, kind: str):
    """Refuse a link whose target, seen from ``link_parent``, leaves the target folder."""
    target = linkname.replace("\\", "/")
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        raise UnsafeArchiveError(archive, name, f"is a {kind} to the absolute path {linkname!r}")
    depth = list(link_parent)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not depth:
                raise UnsafeArchiveError(archive, name, f"is a {kind} to {linkname!r}, outside the target folder")
            depth.pop()
        else:
            depth.append(part)


def _check_through_link(archive: Path, name: str, parts: tuple[str, ...], links: set):
    """Refuse a member written through a symlink the archive itself created.

    A link can be harmless on its own (``x -> .``) and still let a later member escape
    (``x/y -> ..``): the lexical checks cannot see through it, so no member may pass one.
    """
    for i in range(1, len(parts)):
        if parts[:i] in links:
            link = "/".join(parts[:i])
            raise UnsafeArchiveError(archive, name, f"is written through the archive's own symlink {link!r}")


def _check_tar(archive: Path, tf: tarfile.TarFile) -> int:
    total = 0
    links: set = set()
    for member in tf.getmembers():
        parts = _member_parts(archive, member.name)
        _check_through_link(archive, member.name, parts, links)
        if member.issym():
            links.add(parts)
            _check_link(archive, member.name, parts[:-1], member.linkname, "symlink")
        elif member.islnk():
            # Hard link names are relative to the archive root.
            _check_link(archive, member.name, (), member.linkname, "hard link")
        elif member.ischr() or member.isblk():
            raise UnsafeArchiveError(archive, member.name, "is a device file")
        elif member.isfifo():
            raise UnsafeArchiveError(archive, member.name, "is a FIFO")
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(archive, member.name, f"has an unsupported type {member.type!r}")
        total += max(member.size, 0) if member.isfile() else 0
    return total


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> int:
    total = 0
    links: set = set()
    for info in zf.infolist():
        parts = _member_parts(archive, info.filename)
        _check_through_link(archive, info.filename, parts, links)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            links.add(parts)
            _check_link(archive, info.filename, parts[:-1], zf.read(info).decode("utf-8", "replace"), "symlink")
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise UnsafeArchiveError(archive, info.filename, "is a device file")
        elif stat.S_ISFIFO(mode):
            raise UnsafeArchiveError(archive, info.filename, "is a FIFO")
        total += info.file_size
    return total


def safe_extract(archive, target) -> Path:
    """Extract a tar (plain, gz, bz2, xz) or zip archive into ``target``, refusing unsafe members.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    symbolic or hard links pointing outside ``target``, device files and FIFOs raise
    :class:`UnsafeArchiveError`. Tar archives are then extracted with tarfile's ``'data'``
    filter as a second line of defence. Extraction happens in a temporary folder beside
    ``target`` whose top-level entries are moved into ``target`` only when all succeeded, so a
    failure leaves ``target`` as it was. Top-level entries of the archive replace entries of the
    same name already in ``target``.

    Parameters
    ----------
    archive : str or Path
        The archive; the format is recognised from its content, not its name.
    target : str or Path
        Destination folder (created if missing).

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    UnsafeArchiveError
        Names the archive and the offending member.
    ValueError
        ``archive`` is neither a tar nor a zip file.
    OSError
        Not enough free disk space for the uncompressed content.
    """
    archive = Path(archive)
    target = Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        kind = "zip"
    elif tarfile.is_tarfile(archive):
        kind = "tar"
    else:
        raise ValueError(f"archive {archive} is neither a tar (gz/bz2/xz) nor a zip file")

    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.extract-"))
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                _check_space(archive, _check_zip(archive, zf), staging)
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                _check_space(archive, _check_tar(archive, tf), staging)
                if not hasattr(tarfile, "data_filter"):
                    # Python < 3.10.12 / 3.11.4 has no extraction filters; the checks above suffice.
                    tf.extractall(staging)
                else:
                    try:
                        tf.extractall(staging, filter="data")
                    except tarfile.FilterError as exc:
                        member = getattr(getattr(exc, "tarinfo", None), "name", "?")
                        reason = f"was refused by tarfile's data filter ({exc})"
                        raise UnsafeArchiveError(archive, member, reason) from exc
        _move_entries(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_space(archive: Path, needed: int, where: Path):
    free = shutil.disk_usage(where).free
    if needed > free:
        raise OSError(f"extracting {archive} needs {needed} bytes but only {free} are free in {where}")


def _move_entries(staging: Path, target: Path):
    """Move the top-level entries of ``staging`` into ``target`` (replacing same names)."""
    target.mkdir(parents=True, exist_ok=True)
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    try:
        for entry in sorted(staging.iterdir()):
            destination = target / entry.name
            if destination.exists() or destination.is_symlink():
                os.replace(destination, trash / entry.name)
            os.replace(entry, destination)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
