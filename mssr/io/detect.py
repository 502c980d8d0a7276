"""Telling the format of a path and opening it: the one place that dispatches to a format module."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mssr.io import bruker, pipe, ucsf
from mssr.io.common import Source, SpectrumFileError, not_found, path_kind, read_head, validate_path


@dataclass(frozen=True)
class Location:
    """Where a data set is: the path as given, its format, and what to open.

    Attributes
    ----------
    path : str
        As given (a template stays a template).
    format : {'ucsf', 'pipe', 'bruker'}
    target : str
        The file, template or procno directory to open.
    template : bool
        ``target`` is a multi-file NMRPipe template (``ft/test%03d.ft3``).
    """

    path: str
    format: str
    target: str
    template: bool = False


def sniff(path: str, filename: str) -> str | None:
    """'ucsf' or 'pipe' from the first bytes of a regular file, or None."""
    head = read_head(path, filename, 12)
    if ucsf.matches(head):
        return "ucsf"
    if pipe.matches(head):
        return "pipe"
    return None


def locate(path) -> Location:
    """The :class:`Location` of a spectrum path (file, NMRPipe template or directory, Bruker procno).

    An existing file is a file, whatever its name (``hsqc_10%D2O.ft2``); a name with ``%`` that
    is no file is a series template.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path`` (a dangling symbolic link is named as such), or no first file of a template.
    SpectrumFileError
        A FIFO, socket or device; a symbolic link loop; an empty or unreadable file; unknown content.
    """
    given = validate_path(path)
    if pipe.is_template(given) and not os.path.lexists(given):
        first = pipe.template_file(given, 1, 1)
        if not os.path.lexists(first):
            raise not_found(first)
        if path_kind(first) != "file" or sniff(given, first) != "pipe":
            raise SpectrumFileError(given, f"the first file of the template, {first}, is not an NMRPipe file")
        return Location(given, "pipe", given, template=True)
    if path_kind(given) == "dir":
        return _locate_directory(given)
    sniffed = sniff(given, given)
    if sniffed is not None:
        return Location(given, sniffed, given)
    if os.path.basename(given) in bruker.BINARIES:
        parent = os.path.dirname(given) or "."
        if bruker.find_procno(parent) == parent:
            return Location(given, "bruker", parent)
    raise SpectrumFileError(
        given, "unknown format: not UCSF (magic b'UCSF NMR'), not NMRPipe (header words 0 and 2), not Bruker"
    )


def _locate_directory(given: str) -> Location:
    try:
        procno = bruker.find_procno(given)
        template = None if procno is not None else pipe.series_template(given)
    except PermissionError:
        raise SpectrumFileError(given, "directory cannot be read: permission denied") from None
    if procno is not None:
        return Location(given, "bruker", procno)
    if template is not None:
        return Location(given, "pipe", template, template=True)
    raise SpectrumFileError(
        given,
        "directory holds neither Bruker processed data (procs with 1r/2rr/3rrr/4rrrr) "
        "nor a numbered series of NMRPipe planes",
    )


def open_source(path) -> Source:
    """Locate ``path`` and open it with its format's module; an unreadable file raises naming it."""
    location = locate(path)
    try:
        if location.format == "ucsf":
            return ucsf.open_source(location.path, location.target)
        if location.format == "pipe":
            return pipe.open_source(location.path, location.target, multi_file=location.template)
        return bruker.open_source(location.path, location.target)
    except PermissionError as exc:
        raise SpectrumFileError(location.path, f"cannot be read: permission denied ({exc.filename})") from None
    except IsADirectoryError as exc:
        raise SpectrumFileError(location.path, f"{exc.filename} is a directory, not a data file") from None
