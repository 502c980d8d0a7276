"""The outputs of ``mssr enhance``: their names, the checks made before any work, and writing them as one set.

Per 2D plane four files: the estimate (``<stem><ext>``), its uncertainty (``<stem>_std<ext>``),
with ``plot`` a PNG (``<stem>.png``), and the sidecar ``<stem><ext>.json`` that says what was
done. All the files of one run (every plane's) are a :class:`mssr.atomic.FileSet`: written under
temporary names, then renamed together, the sidecars last; so after any interruption either the
previous set is there untouched or the new one complete, never a mix, and no temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mssr import io as mssr_io
from mssr.atomic import FileSet
from mssr.enhance.inputs import TEMPLATE_FIELD, InputSpectrum, input_files, is_template

SIDECAR_FORMAT = "mssr.enhance"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class Outputs:
    """The files of one enhanced plane."""

    spectrum: Path
    std: Path
    sidecar: Path
    plot: Path | None

    def files(self) -> list[Path]:
        """Every file, the sidecar last."""
        return [p for p in (self.spectrum, self.std, self.plot, self.sidecar) if p is not None]


def output_format(path: Path, option: str) -> str:
    """'ucsf' or 'pipe' from the suffix of ``path``, else ValueError naming ``option``."""
    suffix = path.suffix.lower()
    if suffix in mssr_io.UCSF_SUFFIXES:
        return "ucsf"
    if suffix in mssr_io.PIPE_SUFFIXES:
        return "pipe"
    raise ValueError(
        f"{option}: {path} has suffix {path.suffix!r}; the format is chosen by it: "
        f"{', '.join(mssr_io.UCSF_SUFFIXES)} (UCSF) or {', '.join(mssr_io.PIPE_SUFFIXES)} (NMRPipe)"
    )


def _default_base(inp: InputSpectrum, to_mhz: float) -> tuple[Path, str]:
    """(output path of a 2D result, before any projection label; note) beside the input."""
    given = Path(inp.path)
    tag = f"{'' if inp.plane is None else f'_plane{inp.plane}'}_mssr{to_mhz:g}"
    if inp.format == "bruker":
        procno = given.parent if given.is_file() else given
        if not (procno / "procs").is_file():  # an experiment directory with one pdata/<procno>
            procno = next(p for p in sorted((given / "pdata").iterdir()) if p.is_dir() and p.name.isdigit())
        expno = procno.parent.parent
        note = "Bruker input: the output is NMRPipe (mssr.io cannot write Bruker processed data)"
        return expno.parent / f"{expno.name}_pdata{procno.name}{tag}.ft2", note
    if given.is_dir():  # a directory of NMRPipe planes
        return given.parent / f"{given.name}{tag}.ft2", ""
    stem, suffix = os.path.splitext(given.name)
    if is_template(inp.path):  # an NMRPipe series template such as ft/test%03d.ft3
        stem = TEMPLATE_FIELD.sub("", stem).rstrip("_-.") or given.parent.name
    known = mssr_io.UCSF_SUFFIXES if inp.format == "ucsf" else mssr_io.PIPE_SUFFIXES
    if suffix.lower() not in known:
        suffix = ".ucsf" if inp.format == "ucsf" else ".ft2"
    # outputs are 2D: an NMRPipe .ft3/.ft4 name would say otherwise
    if suffix.lower() in (".ft3", ".ft4"):
        suffix = ".ft2"
    return given.parent / f"{stem}{tag}{suffix}", ""


def plan_outputs(inp: InputSpectrum, names: list[str], output, to_mhz: float, *, plot: bool,
                 force: bool) -> tuple[list[Outputs], str, list[str]]:
    """The output files of each plane (``names``: the planes' distinct names), their format and notes.

    Every path is checked here, before the model is loaded (:func:`check_outputs`).
    """
    notes: list[str] = []
    if output is None:
        base, note = _default_base(inp, to_mhz)
        if note:
            notes.append(note)
        option = "output (default name)"
    else:
        if isinstance(output, (bytes, bytearray)) or not isinstance(output, (str, os.PathLike)):
            raise TypeError(f"output (-o) must be a path, got {type(output).__name__}")
        base = Path(output)
        option = "output (-o)"
        if inp.format == "bruker":
            notes.append(f"Bruker input: written as {output_format(base, option)} (mssr.io cannot write Bruker)")
    fmt = output_format(base, option)
    if inp.spectrum.ndim > 2:
        stem = base.name[: -len(base.suffix)] if base.suffix else base.name
        targets = [base.with_name(f"{stem}_{name}{base.suffix}") for name in names]
        notes.append(f"{inp.spectrum.ndim}D input: enhanced its 2D projection(s) {', '.join(names)}, one output each")
    else:
        targets = [base]
    outputs = []
    for target in targets:
        stem = target.name[: -len(target.suffix)]
        outputs.append(Outputs(
            spectrum=target,
            std=target.with_name(f"{stem}_std{target.suffix}"),
            sidecar=target.with_name(target.name + ".json"),
            plot=target.with_name(f"{stem}.png") if plot else None,
        ))
    check_outputs(inp, outputs, force=force, option=option)
    return outputs, fmt, notes


def check_outputs(inp: InputSpectrum, outputs: list[Outputs], *, force: bool, option: str = "output (-o)") -> None:
    """Refuse outputs that are the input, repeat, are directories, exist (without ``force``) or cannot be written."""
    _, files = input_files(inp.path, inp.format)
    protected = {os.path.realpath(p) for p in files} | {os.path.realpath(inp.path)}
    planned = [p for o in outputs for p in o.files()]
    seen = set()
    for path in planned:
        real = os.path.realpath(path)
        if real in protected:
            raise ValueError(f"{option}: {path} is the input {inp.path} (or one of its files); "
                             "the input is never overwritten: choose another output path")
        if real in seen:
            raise ValueError(f"{option}: {path} would be written twice; choose another output path")
        seen.add(real)
        if os.path.isdir(path):
            raise ValueError(f"{option}: {path} is a directory; give a file name")
        if os.path.lexists(path) and not os.path.isfile(path):
            raise ValueError(f"{option}: {path} exists and is not a regular file")
    for directory in sorted({p.parent for p in planned}):
        check_writable_directory(directory, option)
    existing = [str(p) for p in planned if os.path.lexists(p)]
    if existing and not force:
        raise FileExistsError(f"{option}: {', '.join(existing)} already exist(s); pass force=True (--force) "
                              "to replace them or choose another output path")


def check_writable_directory(directory: Path, option: str) -> None:
    """Refuse a folder that cannot receive files: a file on the way, no permission, a read-only file system.

    A missing folder is fine when its nearest existing ancestor is a writable directory (it is
    created when the outputs are written). An existing folder is probed by creating and removing
    a temporary file, which also catches read-only mounts and the root user's limits.
    """
    ancestor = Path(directory)
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not os.path.isdir(ancestor):
        raise ValueError(f"{option}: cannot create the folder {directory}: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".mssr-write-test.")
    except OSError as exc:
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else (
            "read-only file system" if exc.errno == errno.EROFS else exc.strerror)
        raise ValueError(f"{option}: cannot write in {ancestor} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def stale_files(outputs: list[Outputs]) -> list[Path]:
    """Files an earlier run listed in the sidecars being replaced that this run does not write (its PNG, ...)."""
    ours = {p for o in outputs for p in o.files()}
    stale = []
    for out in outputs:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(out.sidecar.read_text(encoding="utf-8"))
            if record.get("format") != SIDECAR_FORMAT:
                continue
            for value in (record.get("outputs") or {}).values():
                if value and Path(value) not in ours and Path(value).parent == out.sidecar.parent:
                    stale.append(Path(value))
    return stale


def output_set(outputs: list[Outputs]) -> FileSet:
    """The :class:`~mssr.atomic.FileSet` that writes ``outputs`` together, sidecars last, stale parts removed."""
    return FileSet(last=[o.sidecar for o in outputs], stale=stale_files(outputs))
