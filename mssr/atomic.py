"""Atomic file output: a file appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary file lives in the same directory (so the final ``os.replace`` is atomic on
    POSIX) and keeps the suffix of ``path`` (so libraries that pick a format by extension still
    work). On an exception the temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        Final file path; its parent directories are created.
    suffix : str, optional
        Suffix of the temporary file; defaults to the suffix of ``path``.

    Examples
    --------
    >>> with atomic_path("out/table.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix + ".part")
    os.close(fd)
    # mkstemp creates the file owner-only; give the result the permissions of a normally created file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
