"""Logging of a pipeline job into its log file (the workflow scripts' one preamble).

The package never imports snakemake: a workflow script passes its ``snakemake.log[0]``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def log_to(path, *, level: int = logging.INFO) -> None:
    """Send stderr (tracebacks, warnings, progress bars) and the ``logging`` records to ``path``.

    The file is opened for writing (truncated) and line-buffered, so that a job killed midway
    leaves its last lines; the root logger logs at ``level`` in :data:`LOG_FORMAT`.

    Parameters
    ----------
    path : str or Path
        The job's log file (a workflow rule's ``log:``).
    level : int
        Lowest level logged.

    Raises
    ------
    TypeError
        If ``path`` is not a str or Path.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    sys.stderr = open(path, "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=level, format=LOG_FORMAT, force=True)
