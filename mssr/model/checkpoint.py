"""Training checkpoints: the state of a run on disk, written atomically, read with ``weights_only``.

A checkpoint holds the network, EMA, optimizer and scheduler states, the position (epoch,
batch, step), the global RNG states (torch, CUDA, numpy, Python), the history and the
fingerprint of the run it belongs to. :func:`load_checkpoint` returns None for a checkpoint of
another run, and raises :class:`CheckpointError` (after moving the file aside) for one it cannot
read: a damaged checkpoint stops training instead of silently starting it over.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mssr.atomic import atomic_path

log = logging.getLogger("mssr.model.train")

CHECKPOINT_FORMAT = "mssr.train-checkpoint"
CHECKPOINT_VERSION = 1


def rng_states() -> dict:
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }


def set_rng_states(states: Mapping) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state({
        "bit_generator": n["bit_generator"],
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
        "has_gauss": n["has_gauss"],
        "gauss": n["gauss"],
    })
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))



def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class CheckpointError(RuntimeError):
    """``checkpoint.pt`` exists but is not a readable mssr training checkpoint.

    Training stops rather than silently starting over (on a cluster that would throw hours
    away). The file is first moved aside to ``checkpoint.pt.unreadable`` (``.unreadable-1``,
    ... if that exists), so that the next run trains from scratch unless a good checkpoint is
    put back in its place.

    Attributes
    ----------
    path : Path
        The checkpoint that could not be read.
    moved_to : Path
        Where it is now.
    """

    def __init__(self, path: Path, moved_to: Path, reason: str):
        self.path = Path(path)
        self.moved_to = Path(moved_to)
        super().__init__(
            f"{path}: unreadable training checkpoint ({reason}); moved to {moved_to} and training stopped "
            f"instead of starting over. Put a good checkpoint back at {path} to resume, or run again to "
            f"train from scratch."
        )


def _move_aside(path: Path) -> Path:
    target = path.with_name(path.name + ".unreadable")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.unreadable-{n}")
    path.rename(target)
    return target


def load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The checkpoint at ``path`` if it belongs to this run; None if absent or of another run.

    Raises
    ------
    CheckpointError
        If the file cannot be read as an mssr checkpoint (it is moved aside first).
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(path, _move_aside(path), f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, _move_aside(path), "not an mssr training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != fingerprint:
        log.warning("%s: written for another configuration or other data; training from scratch", path)
        return None
    return state
