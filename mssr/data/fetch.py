"""Fetch raw spectra: download (:mod:`mssr.data.download`), extract safely, write the manifest.

Sources
-------
``artina``
    The 100-protein NMR spectra data set used by ARTINA (Klukowski, Riek, Guentert, Nature
    Communications 13:6151, 2022; Scientific Data 2023, "The 100-protein NMR spectra dataset"),
    distributed by ETH Zurich (https://nmrdb.ethz.ch). One folder per protein (named by its PDB
    code) holding that protein's spectra, named by experiment (``N15HSQC``, ``HNCA``,
    ``CBCAcoNH``, ``C13NOESY``...). Archives are downloaded from the configured URLs (or taken
    from a folder holding an already downloaded copy), verified against their SHA-256 digests
    and extracted.
``local``
    A folder of already extracted spectra in the same layout: only the manifest is written.
``demo``
    Spectra rendered from real assigned chemical shifts by :mod:`mssr.data.demo`.

Output folder
-------------
::

    <out_dir>/manifest.csv       one row per readable spectrum (columns: MANIFEST_COLUMNS)
    <out_dir>/quarantine.csv     files that could not be read, with the reason
    <out_dir>/fetch.json         source, URLs, archive digests, dates
    <out_dir>/downloads/         archives as downloaded (artina)
    <out_dir>/extracted/<name>/  one folder per archive (artina)

Paths in the manifest are relative to the manifest's folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import shutil
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import pandas as pd

from mssr import _validate
from mssr import io as spectrum_io
from mssr.atomic import atomic_path, write_text
from mssr.data.download import (  # the errors are re-exported: fetch raises them
    ARCHIVE_SUFFIXES,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    archive_stem,
    checked_sha256,
    checked_url,
    download,
    safe_extract,
    sha256_files,
)
from mssr.provenance import sha256_file

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("protein", "experiment", "path", "format", "ndim", "shape", "nuclei", "field_mhz", "sha256")
"""Columns of ``manifest.csv``."""

QUARANTINE_COLUMNS = ("path", "reason")
"""Columns of ``quarantine.csv``."""


# --------------------------------------------------------------------------------------------
# experiment names


def _squash(text: str) -> str:
    """Lower-case ``text`` and drop everything but letters and digits."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


# Keys are squashed names (lower case, no separators); values are canonical experiment names.
# A value ending in '*' names a family whose nucleus is read from the spectrum's axes.
_EXPERIMENT_ALIASES = {
    "hsqc_15n": ("n15hsqc", "15nhsqc", "hsqc15n", "hsqcn15", "hsqcn", "nhsqc", "hnhsqc", "hsqcnh"),
    # 'ali'/'aro' (aliphatic/aromatic) name 13C regions.
    "hsqc_13c": (
        "c13hsqc", "13chsqc", "hsqc13c", "hsqcc13", "hsqcc", "chsqc", "hsqcali", "hsqcaro", "hsqccali",
        "hsqccaro", "c13hsqcali", "c13hsqcaro", "chsqcali", "chsqcaro", "hsqc13cali", "hsqc13caro",
    ),
    "hnca": ("hnca",),
    "hnco": ("hnco",),
    "hncacb": ("hncacb",),
    "cbcaconh": ("cbcaconh", "hncocacb", "hncocbca"),
    "hncoca": ("hncoca",),
    "hncaco": ("hncaco",),
    "hbhaconh": ("hbhaconh",),
    "hbhanh": ("hbhanh",),
    "cconh": ("cconh", "ccconh", "cconhtocsy", "ccconhtocsy"),
    "hcconh": ("hcconh", "hccconh", "hcconhtocsy", "hccconhtocsy"),
    "hcch_tocsy": ("hcchtocsy", "hcchtocsyali", "hcchtocsyaro"),
    "hcch_cosy": ("hcchcosy",),
    "noesy_15n": (
        "n15noesy", "15nnoesy", "noesy15n", "noesyn15", "noesyn", "nnoesy", "n15noesyhsqc", "15nnoesyhsqc",
        "noesyhsqc15n", "noesyhsqcn", "nnoesyhsqc",
    ),
    "noesy_13c": (
        "c13noesy", "13cnoesy", "noesy13c", "noesyc13", "noesyc", "cnoesy", "noesyali", "noesyaro",
        "c13noesyali", "c13noesyaro", "noesycali", "noesycaro", "cnoesyali", "cnoesyaro", "c13noesyhsqc",
        "13cnoesyhsqc", "noesyhsqc13c", "noesyhsqcc", "cnoesyhsqc",
    ),
    # Bare names whose heteronucleus only the spectrum's axes tell.
    "hsqc_*": ("hsqc",),
    "noesy_*": ("noesy", "noesyhsqc"),
}
_ALIAS_TO_EXPERIMENT = {alias: name for name, aliases in _EXPERIMENT_ALIASES.items() for alias in aliases}
KNOWN_EXPERIMENTS = tuple(sorted(name for name in _EXPERIMENT_ALIASES if not name.endswith("*")))
"""Canonical experiment names the alias table maps to."""

# Folder and file names that describe storage, not an experiment.
_GENERIC_NAMES = frozenset({"pdata", "data", "test", "spectrum", "spectra", "spec", "ft", "ft2", "ft3", "ft4", "ucsf"})


def experiment_from_name(name: str, nuclei: Sequence[str] | None = None) -> str | None:
    """Canonical experiment name for a file stem or folder name, or None if unknown.

    The name is split at non-alphanumeric characters; the longest run of consecutive tokens
    whose squashed form (lower case, separators removed) is in the alias table wins, so
    ``'N15HSQC'``, ``'hsqc_n'``, ``'2k52_HNCA_900'`` and ``'CBCA(CO)NH'`` are recognised.
    Names that do not say the heteronucleus (``'HSQC'``, ``'NOESY'``) are resolved with
    ``nuclei`` ('15N' -> ``*_15n``, '13C' -> ``*_13c``) and are None without it.

    Parameters
    ----------
    name : str
        File stem or folder name.
    nuclei : sequence of str, optional
        The spectrum's nuclei in array order, e.g. ``('15N', '1H')``.

    Examples
    --------
    >>> experiment_from_name("hsqc_c_aro")
    'hsqc_13c'
    >>> experiment_from_name("HSQC", ("15N", "1H"))
    'hsqc_15n'
    """
    tokens = [t for t in re.split(r"[^0-9A-Za-z]+", name) if t]
    for length in range(len(tokens), 0, -1):
        for start in range(len(tokens) - length + 1):
            found = _ALIAS_TO_EXPERIMENT.get(_squash("".join(tokens[start : start + length])))
            if found is None:
                continue
            if not found.endswith("*"):
                return found
            hetero = [n for n in (nuclei or ()) if n in ("15N", "13C")]
            if len(set(hetero)) == 1:
                return found[:-1] + hetero[0].lower()
            # The family is known but the nucleus is not: keep looking, then give up.
    return None


def _fallback_experiment(candidates: Sequence[str]) -> str:
    """A lower-case name for an unknown experiment: the first non-generic candidate."""
    cleaned = [re.sub(r"[^0-9a-z]+", "_", c.lower()).strip("_") for c in candidates]
    for name in cleaned:
        if name and not name.isdigit() and name not in _GENERIC_NAMES:
            return name
    return next((name for name in cleaned if name), "unknown")


# --------------------------------------------------------------------------------------------
# finding spectra


_PIPE_SUFFIXES = (".ft2", ".ft3", ".ft4", ".ft")
_PIPE_SERIES = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.ft[234]?)$", re.IGNORECASE)
_BRUKER_DATA = ("1r", "2rr", "3rrr", "4rrrr")


class _Candidate:
    """A spectrum on disk: the path(s) given to the reader and the files it consists of."""

    def __init__(self, read_path: Path, fmt: str, files: list[Path], name_hints: list[str], base: Path,
                 other_paths: Sequence[Path] = (), singles: Sequence["_Candidate"] = ()):
        self.read_path = read_path
        self.format = fmt
        self.files = files
        self.name_hints = name_hints  # innermost first: file stem, then enclosing folders
        self.base = base  # folder the files' names are taken relative to in the digest
        self.other_paths = list(other_paths)  # further ways to read the same files, tried in order
        self.singles = list(singles)  # the files read one by one when no way reads them together


def _skip(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _find_spectra(root: Path) -> list[_Candidate]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _skip(d))
        filenames = sorted(f for f in filenames if not _skip(f))
        folders = list(reversed(here.relative_to(root).parts))

        if here.parent.name.lower() == "pdata" and any(f in filenames for f in _BRUKER_DATA) and "procs" in filenames:
            files = [here / f for f in filenames if f in _BRUKER_DATA or f.startswith("proc")]
            expno = here.parent.parent
            files += [expno / f for f in ("acqus", "acqu2s", "acqu3s", "acqu4s") if (expno / f).is_file()]
            # Hints: the expno folder and the folders above it (the pdata number says nothing).
            found.append(_Candidate(here, "bruker", sorted(files), folders[2:], expno))
            dirnames[:] = []
            continue

        singles = {}
        for f in filenames:
            lower = f.lower()
            fmt = "ucsf" if lower.endswith(".ucsf") else "pipe" if lower.endswith(_PIPE_SUFFIXES) else None
            if fmt is not None:
                singles[f] = _Candidate(here / f, fmt, [here / f], [Path(f).stem, *folders], here)

        # Numbered NMRPipe files (test001.ft3, test002.ft3...) are usually the planes of one 3D/4D
        # spectrum; the reader decides, and if it refuses, each file is tried on its own.
        series: dict[tuple[str, str], list[str]] = {}
        for f in singles:
            match = _PIPE_SERIES.match(f)
            if match:
                series.setdefault((match["prefix"], match["suffix"]), []).append(match["number"])
        grouped = set()
        for (prefix, suffix), numbers in sorted(series.items()):
            if len(numbers) < 2:
                continue
            numbers.sort(key=int)
            widths = {len(n) for n in numbers}
            padded = len(widths) == 1 and numbers[0].startswith("0")
            templates = [f"{prefix}%0{len(numbers[0])}d{suffix}" if padded else f"{prefix}%d{suffix}"]
            if padded and suffix.lower() == ".ft4" and len(numbers[0]) % 2 == 0:
                half = len(numbers[0]) // 2  # 4D planes counted by two fields: test001001.ft4
                templates.insert(0, f"{prefix}%0{half}d%0{half}d{suffix}")
            names = [f"{prefix}{n}{suffix}" for n in numbers]
            grouped.update(names)
            found.append(
                _Candidate(
                    here / templates[0], "pipe", [here / n for n in names], [prefix.rstrip("_-. "), *folders], here,
                    other_paths=[here / t for t in templates[1:]], singles=[singles[n] for n in names],
                )
            )
        found.extend(c for f, c in singles.items() if f not in grouped)
    return found


def _protein_depth(relative_parts: list[tuple[str, ...]]) -> int:
    """Index of the path component naming the protein.

    The first folder level (from the top) at which the spectra split into two or more folders,
    provided every spectrum lies in a folder at that level: folders that wrap everything
    (``artina/artina100/2K52/...``, ``artina/artina100/2LEA/...``) are skipped. Without such a
    level (a single protein) it is 0, the top folder; pass ``protein_depth`` to say otherwise.
    """
    depth = 0
    while all(len(p) > depth + 1 for p in relative_parts):
        if len({p[depth] for p in relative_parts}) >= 2:
            return depth
        depth += 1
    return 0


# --------------------------------------------------------------------------------------------
# manifest


def _validate_field_hint(field_hint):
    if field_hint is None:
        return None
    if isinstance(field_hint, Mapping):
        return {str(k): _validate.positive(f"field_hint[{k!r}]", v) for k, v in field_hint.items()}
    if isinstance(field_hint, bool) or not isinstance(field_hint, (int, float)):
        raise TypeError(
            f"field_hint must be a number (MHz), a mapping protein -> MHz, or None, got {type(field_hint).__name__}"
        )
    if not math.isfinite(field_hint) or field_hint <= 0:
        raise ValueError(f"field_hint must be finite and > 0 MHz, got {field_hint}")
    return float(field_hint)


FIELD_HINT_TOLERANCE = 0.02
"""Largest relative difference between a header's 1H field and ``field_hint`` that is accepted."""


def build_manifest(root, *, field_hint=None, relative_to=None, protein_depth: int | None = None):
    """Find the spectra under ``root``, read their headers and tabulate them.

    Recognised spectra: Sparky/UCSF files (``*.ucsf``), NMRPipe files (``*.ft2``, ``*.ft3``,
    ``*.ft4``, ``*.ft``) and NMRPipe plane series (``test001.ft3``, ``test002.ft3``... given to
    the reader as the template ``test%03d.ft3``), and Bruker processed data folders
    (``<expno>/pdata/<procno>`` holding ``procs`` and ``2rr``/``3rrr``/``4rrrr``). Each header
    is read with ``mssr.io.read(path, lazy=True)``; a file that fails goes to the quarantine
    table with the reason instead of stopping the scan.

    The protein is the top folder below ``root``, or, when every spectrum lies under the same
    wrapper folder(s), the first folder level at which the spectra split (see
    ``protein_depth``). The experiment comes from the file stem, else from the enclosing
    folders, through an alias table (:func:`experiment_from_name`); an unknown name is kept
    lower-cased and logged.

    Parameters
    ----------
    root : str or Path
        Folder to scan (hidden entries and ``__MACOSX`` are skipped).
    field_hint : float or mapping of str to float, optional
        Expected 1H spectrometer frequency, MHz, for every spectrum or per protein. A spectrum
        whose header says otherwise by more than ``FIELD_HINT_TOLERANCE`` (2 %) is quarantined
        (headers written with a converter's default frequency are a known failure).
    relative_to : str or Path, optional
        Folder the ``path`` column is relative to (the manifest's folder); default ``root``.
    protein_depth : int, optional
        Index of the path component (relative to ``root``) that names the protein; by default
        detected as described above (a single protein under a wrapper folder gets the wrapper's
        name unless this is given).

    Returns
    -------
    manifest : pandas.DataFrame
        Columns :data:`MANIFEST_COLUMNS`, sorted by protein, experiment and path. ``shape`` is
        ``'128x64x512'`` and ``nuclei`` ``'15N/13C/1H'`` in array order; ``field_mhz`` is the
        1H frequency, MHz; ``sha256`` is the file's digest (``sha256sum``); a spectrum stored in
        several files (NMRPipe series, Bruker folder) gets the SHA-256 of the sorted lines
        ``"<sha256>  <relative name>\n"`` of its files.
    quarantine : pandas.DataFrame
        Columns :data:`QUARANTINE_COLUMNS`.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"root must be an existing folder, got {root}")
    relative_to = Path(relative_to) if relative_to is not None else root
    field_hint = _validate_field_hint(field_hint)
    if protein_depth is not None:
        protein_depth = _validate.integer("protein_depth", protein_depth, 0)

    candidates = _find_spectra(root)
    rel_parts = [c.read_path.relative_to(root).parts for c in candidates]
    depth = protein_depth if protein_depth is not None else (_protein_depth(rel_parts) if rel_parts else 0)

    rows, quarantine, unknown = [], [], set()
    pending = list(zip(candidates, rel_parts))
    while pending:
        cand, parts = pending.pop(0)
        rel_path = Path(os.path.relpath(cand.read_path, relative_to)).as_posix()
        if len(parts) <= depth + 1:
            reason = f"not inside a protein folder (expected at depth {depth} below {root})"
            quarantine.append({"path": rel_path, "reason": reason})
            continue
        protein = parts[depth]
        spectrum, read_path, error = None, cand.read_path, None
        for read_path in (cand.read_path, *cand.other_paths):
            try:
                spectrum = spectrum_io.read(read_path, lazy=True)
                break
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the scan
                error = error or exc
        if spectrum is None:
            if cand.singles:
                pending.extend((c, c.read_path.relative_to(root).parts) for c in cand.singles)
            else:
                quarantine.append({"path": rel_path, "reason": f"{type(error).__name__}: {error}"})
            continue
        rel_path = Path(os.path.relpath(read_path, relative_to)).as_posix()
        nuclei = tuple(spectrum.nuclei)
        field_mhz = float(spectrum.field_mhz)
        expected = field_hint.get(protein) if isinstance(field_hint, dict) else field_hint
        if expected is not None and abs(field_mhz - expected) > FIELD_HINT_TOLERANCE * expected:
            reason = f"header field {field_mhz:.2f} MHz contradicts field_hint {expected:.2f} MHz"
            quarantine.append({"path": rel_path, "reason": reason})
            continue
        hints = cand.name_hints[: max(len(cand.name_hints) - depth - 1, 1)]  # not the protein folder or above
        experiment = next((e for e in (experiment_from_name(h, nuclei) for h in hints) if e), None)
        if experiment is None:
            experiment = _fallback_experiment(hints)
            unknown.add(experiment)
        rows.append(
            {
                "protein": protein,
                "experiment": experiment,
                "path": rel_path,
                "format": cand.format,
                "ndim": int(spectrum.ndim),
                "shape": "x".join(str(n) for n in spectrum.shape),
                "nuclei": "/".join(nuclei),
                "field_mhz": field_mhz,
                "sha256": sha256_files(cand.base, cand.files),
            }
        )
        del spectrum  # a memory map of a large file: release it before the next one
    if unknown:
        log.warning("experiment names not in the alias table, kept as they are: %s", ", ".join(sorted(unknown)))

    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest = manifest.astype({"ndim": "int64", "field_mhz": "float64"})
    manifest = manifest.sort_values(["protein", "experiment", "path"], ignore_index=True)
    quarantined = pd.DataFrame(quarantine, columns=list(QUARANTINE_COLUMNS)).sort_values("path", ignore_index=True)
    return manifest, quarantined


# --------------------------------------------------------------------------------------------
# fetch


_SOURCES = ("artina", "local", "demo")
_ARTINA_KEYS = frozenset({"urls", "sha256", "archive_dir", "extract", "retries", "timeout"})
_LOCAL_KEYS = frozenset({"path", "field_hint", "protein_depth"})
_EXTRACT_MARKER = ".mssr-extracted.json"


def _source_options(source_cfg) -> tuple[str, dict]:
    if not isinstance(source_cfg, Mapping):
        raise TypeError(f"source_cfg must be a mapping, got {type(source_cfg).__name__}")
    source = source_cfg.get("source")
    if source not in _SOURCES:
        raise ValueError(f"source_cfg['source'] must be one of {_SOURCES}, got {source!r}")
    nested = source_cfg.get(source)
    if isinstance(nested, Mapping):
        # Config-file style: {'source': 'artina', 'artina': {...}, 'demo': {...}}
        return source, dict(nested)
    return source, {k: v for k, v in source_cfg.items() if k != "source" and k not in _SOURCES}


def _check_keys(source: str, options: dict, allowed: frozenset):
    unknown = sorted(set(options) - allowed - {"field_hint", "protein_depth"})
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for source {source!r}; allowed: {sorted(allowed)}")


def _url_filename(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if not name:
        raise ValueError(f"url {url!r} does not end in a file name")
    return name


def _artina_digests(urls: list[str], sha256) -> list[str | None]:
    if sha256 is None:
        return [None] * len(urls)
    if isinstance(sha256, Mapping):
        digests = []
        for url in urls:
            value = sha256.get(url, sha256.get(_url_filename(url)))
            digests.append(checked_sha256(value, f"sha256[{_url_filename(url)!r}]"))
        return digests
    if isinstance(sha256, (list, tuple)):
        if len(sha256) != len(urls):
            raise ValueError(f"sha256 has {len(sha256)} entries but urls has {len(urls)}")
        return [checked_sha256(s, f"sha256[{i}]") for i, s in enumerate(sha256)]
    if isinstance(sha256, str) and len(urls) == 1:
        return [checked_sha256(sha256)]
    raise TypeError("sha256 must be a list parallel to urls, a mapping url or file name -> digest, or None")


def _extracted_digest(marker: Path) -> str | None:
    """Digest of the archive an earlier run extracted into the marker's folder, if any."""
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _fetch_artina(options: dict, out_dir: Path) -> dict:
    urls = options.get("urls") or []
    if isinstance(urls, str) or not isinstance(urls, (list, tuple)):
        raise TypeError(f"urls must be a list of URLs, got {type(urls).__name__}")
    urls = [checked_url(u) for u in urls]
    digests = _artina_digests(urls, options.get("sha256"))
    extract = options.get("extract", True)
    if not isinstance(extract, bool):
        raise TypeError(f"extract must be true or false, got {extract!r}")
    archive_dir = options.get("archive_dir")

    archives: list[tuple[Path, str | None, str | None, bool]] = []  # (file, expected digest, url, verified)
    if archive_dir is not None:
        archive_dir = Path(archive_dir).expanduser()
        if not archive_dir.is_dir():
            raise NotADirectoryError(f"archive_dir must be an existing folder, got {archive_dir}")
        if urls:
            for url, digest in zip(urls, digests):
                path = archive_dir / _url_filename(url)
                if not path.is_file():
                    raise FileNotFoundError(f"archive_dir {archive_dir} lacks {path.name} (the file of {url})")
                archives.append((path, digest, url, False))
        else:
            found = sorted(
                p for p in archive_dir.iterdir() if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)
            )
            if not found:
                raise FileNotFoundError(f"archive_dir {archive_dir} holds no archive ({', '.join(ARCHIVE_SUFFIXES)})")
            archives.extend((p, None, None, False) for p in found)
    else:
        if not urls:
            raise ValueError("source 'artina' needs urls (or archive_dir, a folder with the downloaded archives)")
        retries = options.get("retries", 5)
        timeout = options.get("timeout", 60)
        for url, digest in zip(urls, digests):
            dest = out_dir / "downloads" / _url_filename(url)
            path = download(url, dest, sha256=digest, retries=retries, timeout=timeout)
            archives.append((path, digest, url, digest is not None))

    records = []
    for path, expected, url, verified in archives:
        actual = expected if verified else sha256_file(path)  # archives run to gigabytes: hash once
        if expected is not None and actual != expected:
            raise ChecksumError(path, expected, actual)
        if expected is None:
            log.warning("no sha256 configured for %s; its digest is %s (pin it in the config)", path.name, actual)
        stem = archive_stem(path)
        if stem in ("", ".", ".."):
            raise ValueError(f"archive file name {path.name!r} leaves no folder name to extract into")
        target = out_dir / "extracted" / stem
        if extract:
            marker = target / _EXTRACT_MARKER
            if _extracted_digest(marker) != actual:
                # Another archive (or an interrupted run) left this folder: its files must not
                # mix with the new archive's.
                shutil.rmtree(target, ignore_errors=True)
                safe_extract(path, target)
                write_text(marker, json.dumps({"archive": path.name, "sha256": actual}, indent=1))
        extracted_to = target.relative_to(out_dir).as_posix()
        records.append({"file": path.name, "url": url, "sha256": actual, "extracted_to": extracted_to})
    return {"archives": records, "scan_root": out_dir / "extracted"}


def fetch(source_cfg: dict, out_dir) -> Path:
    """Get the raw spectra of one source into ``out_dir`` and write ``manifest.csv``.

    Parameters
    ----------
    source_cfg : dict
        ``source`` is ``'artina'``, ``'local'`` or ``'demo'``. The chosen source's options are
        either under ``source_cfg[source]`` (config-file style) or beside ``source``:

        artina
            ``urls`` (list of http(s) URLs of the archives); ``sha256`` (list parallel to
            ``urls``, or mapping URL or file name -> hex digest; a missing, null or ``''``
            digest skips the check, and the digest is then computed, logged and recorded);
            ``archive_dir`` (folder with already downloaded archives: nothing is downloaded;
            without ``urls`` every archive in it is used); ``extract`` (default true; false
            uses what an earlier run extracted); ``retries``; ``timeout`` (s). Archive
            ``<name>.tar.gz`` is extracted to ``out_dir/extracted/<name>/`` (again only when
            its digest changed).
        local
            ``path``: folder of already extracted spectra, one sub-folder per protein.
        demo
            Keyword arguments of :func:`mssr.data.demo.render_dataset`.

        ``artina`` and ``local`` also take ``field_hint`` and ``protein_depth`` (see
        :func:`build_manifest`).
    out_dir : str or Path
        Raw-data folder; receives ``manifest.csv``, ``quarantine.csv`` and ``fetch.json``.

    Returns
    -------
    Path
        ``out_dir / 'manifest.csv'``.

    Raises
    ------
    ValueError
        No readable spectrum was found (``quarantine.csv`` is written first and says why).
    """
    source, options = _source_options(source_cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = _now()

    if source == "demo":
        from mssr.data import demo  # renders spectra; imported only when asked for

        # render_dataset reads every file back and writes manifest.csv and quarantine.csv itself.
        manifest_path = Path(demo.render_dataset(out_dir, **options))
        info = {"archives": [], "n_spectra": len(pd.read_csv(manifest_path))}
        _write_fetch_json(out_dir, source, info, started, options)
        return manifest_path
    if source == "artina":
        _check_keys(source, options, _ARTINA_KEYS)
        info = _fetch_artina(options, out_dir)
        scan_root = info.pop("scan_root")
        manifest_options = {k: options[k] for k in ("field_hint", "protein_depth") if k in options}
    else:
        _check_keys(source, options, _LOCAL_KEYS)
        if not options.get("path"):
            raise ValueError("source 'local' needs path, the folder of extracted spectra")
        scan_root = Path(options["path"]).expanduser()
        info = {"archives": [], "path": str(scan_root)}
        manifest_options = {k: options[k] for k in ("field_hint", "protein_depth") if k in options}

    if not scan_root.is_dir():
        raise NotADirectoryError(f"no spectra folder {scan_root} (for source {source!r})")
    manifest, quarantine = build_manifest(scan_root, relative_to=out_dir, **manifest_options)
    _write_csv(quarantine, out_dir / "quarantine.csv")
    if manifest.empty:
        raise ValueError(
            f"no readable spectrum under {scan_root} ({len(quarantine)} file(s) quarantined,"
            f" see {out_dir / 'quarantine.csv'})"
        )
    info["n_spectra"] = len(manifest)
    info["n_quarantined"] = len(quarantine)
    info["unknown_experiments"] = sorted(set(manifest["experiment"]) - set(KNOWN_EXPERIMENTS))
    _write_fetch_json(out_dir, source, info, started, options)
    _write_csv(manifest, out_dir / "manifest.csv")
    return out_dir / "manifest.csv"


def _write_csv(frame: pd.DataFrame, path: Path):
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_fetch_json(out_dir: Path, source: str, info: dict, started: str, options: dict):
    from mssr import __version__

    record = {
        "source": source,
        "urls": [a["url"] for a in info.get("archives", []) if a.get("url")],
        "sha256": {a["file"]: a["sha256"] for a in info.get("archives", [])},
        "started_utc": started,
        "finished_utc": _now(),
        "mssr_version": __version__,
        "options": json.loads(json.dumps(options, default=str)),
        **{k: v for k, v in info.items() if k != "archives"},
        "archives": info.get("archives", []),
    }
    write_text(out_dir / "fetch.json", json.dumps(record, indent=1, default=str) + "\n")


__all__ = ["ARCHIVE_SUFFIXES", "MANIFEST_COLUMNS", "QUARANTINE_COLUMNS", "ChecksumError", "DownloadError",
           "UnsafeArchiveError", "archive_stem", "build_manifest", "download", "experiment_from_name", "fetch",
           "safe_extract", "sha256_file"]
