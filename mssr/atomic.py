"""Atomic file output: a file, or a set of files, appears complete under its final name(s), or not at all;
SIGINT and SIGTERM turned into an exception so that the cleanup runs."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
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


# --------------------------------------------------------------------------------------------
# interruptions and sets of files
# --------------------------------------------------------------------------------------------


class Interrupted(BaseException):
    """Raised in the main thread when SIGINT or SIGTERM arrives inside :func:`interruptible`.

    A BaseException (like KeyboardInterrupt), so that ``except Exception`` does not swallow it
    while every ``finally`` and cleanup handler runs.

    Attributes
    ----------
    signum : int
        The signal received.
    exit_code : int
        ``128 + signum``, the shell's convention (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interruptible():
    """Turn SIGINT and SIGTERM into :class:`Interrupted` inside the block (main thread only).

    SIGTERM (what ``kill`` and SLURM send) otherwise ends Python without running any cleanup,
    leaving temporary files behind. The first signal raises; later ones are ignored until the
    block is left, so that the cleanup it triggers is not itself interrupted. The previous
    handlers are restored on exit. Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for sig in INTERRUPT_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT/SIGTERM back for a short critical section; one that came is acted on when it ends.

    Python runs signal handlers in the main thread between bytecodes, whichever thread the kernel
    delivered the signal to (torch's worker threads included), so a recording handler installed
    here sees every such signal. Outside the main thread nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if pending:
            old = previous[pending[0]]
            if callable(old):
                old(pending[0], None)
            elif old == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


class FileSet:
    """Files that appear together, complete, or not at all.

    Every member is first written under a hidden temporary name beside its final path
    (:meth:`stage`). :meth:`commit` then, with SIGINT/SIGTERM deferred: removes the existing
    ``last`` files (the sidecars that vouch for a set) and the ``stale`` files of an earlier
    set, renames the members onto their final paths, the ``last`` ones after all others.
    :meth:`discard` (also run on any exception inside ``with``) removes the temporary files
    and leaves the final paths as they were. An interruption before the commit therefore
    leaves the previous set untouched, one after it the new set complete; only SIGKILL or a
    power cut inside the commit's few renames can leave a mix, and then without a sidecar.

    Parameters
    ----------
    last : iterable of path
        Members renamed last (a set is complete when these exist).
    stale : iterable of path
        Files of an earlier set that are not members; removed by :meth:`commit`.

    Examples
    --------
    >>> with FileSet(last=["out.json"]) as files:  # doctest: +SKIP
    ...     write_spectrum(files.stage("out.ft2"))
    ...     write_text(files.stage("out.json"), record)
    """

    def __init__(self, *, last=(), stale=()):
        self._last = [Path(p) for p in last]
        self._stale = [Path(p) for p in stale]
        self._staged: dict[Path, Path] = {}
        self._done = False

    def stage(self, path) -> Path:
        """A new temporary path for member ``path`` (parents created; suffix of ``path`` kept)."""
        path = Path(path)
        if path in self._staged:
            raise ValueError(f"{path} is staged twice")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part" + path.suffix)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        self._staged[path] = Path(tmp)
        return Path(tmp)

    @property
    def members(self) -> list[Path]:
        """Final paths of the staged members, in staging order."""
        return list(self._staged)

    def commit(self) -> list[Path]:
        """Put every staged member in place (see the class notes); returns their final paths."""
        missing = [p for p in self._last if p not in self._staged]
        if missing:
            raise ValueError(f"not staged: {', '.join(map(str, missing))}")
        ordered = [p for p in self._staged if p not in self._last] + [p for p in self._staged if p in self._last]
        with _signals_deferred():
            for path in self._last + [p for p in self._stale if p not in self._staged]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            for path in ordered:
                os.replace(self._staged[path], path)
            self._done = True
        return ordered

    def discard(self) -> None:
        """Remove every temporary file; final paths are not touched."""
        if self._done:
            return
        for tmp in self._staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._done = True

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()
