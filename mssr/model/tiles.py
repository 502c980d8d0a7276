"""Whole planes through a patch-trained network: overlapping tiles, blended at every step.

:class:`TiledPredictor` has the signature of a predictor (``eps = f(x_t, x_lr, t, factors)``) for
planes of any size: it cuts each plane into overlapping square tiles, runs the network on batches
of tiles and blends the tiles' noise predictions with weights that fall smoothly to a small value
at the tile edges (where the network sees zero padding). Blending the predictions at every
sampling step, not the finished samples, makes the tiles agree as the chains evolve
(MultiDiffusion, Bar-Tal et al. 2023, eq. 5: the fused estimate is the weighted least-squares
average of the per-tile estimates). Memory is bounded by ``batch_size`` tiles whatever the plane's
size; the plane itself is held once per chain.
"""

from __future__ import annotations

import math

import torch

TILE: int = 256
"""Default tile side, points."""

OVERLAP: int = 48
"""Default overlap of neighbouring tiles, points."""

EDGE_WEIGHT: float = 1e-3
"""Blending weight at the outermost point of a tile (relative to its centre)."""


def _validate_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles covering ``length`` points, neighbours overlapping >= ``overlap``.

    The first tile starts at 0 and the last ends at ``length``; the starts in between are spread
    evenly. ``length <= tile`` gives one tile (the plane is padded to it).
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_window(tile: int, overlap: int, *, device=None) -> torch.Tensor:
    """1D blending weights of a tile: a raised-cosine ramp over ``overlap`` points at each end.

    Returns
    -------
    torch.Tensor
        float32, shape (tile,), from :data:`EDGE_WEIGHT` at the ends to 1 in the middle.
    """
    w = torch.ones(tile, dtype=torch.float32, device=device)
    if overlap > 0:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap, dtype=torch.float32, device=device) + 0.5) / overlap)
        ramp = EDGE_WEIGHT + (1.0 - EDGE_WEIGHT) * ramp
        w[:overlap] = ramp
        w[-overlap:] = ramp.flip(0)
    return w


class TiledPredictor:
    """A noise predictor for whole planes, from one trained on patches.

    Parameters
    ----------
    predictor : callable
        ``predictor(x_t, x_lr, t, factors) -> eps`` on tiles (e.g.
        :class:`mssr.model.network.NoisePredictor`).
    multiple : int
        Tile sides must be a multiple of this (``2 ** (levels - 1)`` of the UNet).
    tile : int
        Tile side, points (rounded up to ``multiple``).
    overlap : int
        Overlap of neighbouring tiles, points (< tile / 2).
    batch_size : int
        Tiles per network call.
    """

    def __init__(self, predictor, *, multiple: int = 1, tile: int = TILE, overlap: int = OVERLAP,
                 batch_size: int = 8):
        multiple = _validate_int("multiple", multiple, 1)
        tile = _validate_int("tile", tile, 8)
        overlap = _validate_int("overlap", overlap, 0)
        self.batch_size = _validate_int("batch_size", batch_size, 1)
        self.tile = math.ceil(tile / multiple) * multiple
        if not overlap < self.tile / 2:
            raise ValueError(f"overlap ({overlap}) must be less than half the tile ({self.tile})")
        self.overlap = overlap
        self.predictor = predictor

    def __call__(self, x_t: torch.Tensor, x_lr: torch.Tensor, t: torch.Tensor, factors) -> torch.Tensor:
        """Blended noise prediction for planes ``x_t``, ``x_lr`` of shape (B, 1, H, W)."""
        if x_t.ndim != 4 or x_t.shape != x_lr.shape or x_t.shape[1] != 1:
            raise ValueError(f"x_t and x_lr must both have shape (B, 1, H, W), got {tuple(x_t.shape)} "
                             f"and {tuple(x_lr.shape)}")
        batch, _, height, width = x_t.shape
        size = self.tile
        # 1. planes smaller than a tile are padded (reflected) to it; the padding is cut off at the end
        pad_h, pad_w = max(0, size - height), max(0, size - width)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x_t = torch.nn.functional.pad(x_t, (0, pad_w, 0, pad_h), mode=mode)
            x_lr = torch.nn.functional.pad(x_lr, (0, pad_w, 0, pad_h), mode=mode)
        full_h, full_w = x_t.shape[-2:]
        rows = tile_starts(full_h, size, self.overlap)
        cols = tile_starts(full_w, size, self.overlap)
        window = blend_window(size, self.overlap, device=x_t.device)
        weight = window[:, None] * window[None, :]
        eps = torch.zeros((batch, 1, full_h, full_w), dtype=torch.float32, device=x_t.device)
        norm = torch.zeros((full_h, full_w), dtype=torch.float32, device=x_t.device)
        for r in rows:
            for c in cols:
                norm[r:r + size, c:c + size] += weight
        factors = torch.as_tensor(factors)
        # 2. every (chain, tile) pair, in batches of tiles
        jobs = [(b, r, c) for b in range(batch) for r in rows for c in cols]
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            xt = torch.stack([x_t[b, :, r:r + size, c:c + size] for b, r, c in chunk])
            xl = torch.stack([x_lr[b, :, r:r + size, c:c + size] for b, r, c in chunk])
            idx = torch.tensor([b for b, _, _ in chunk])
            out = self.predictor(xt, xl, t[idx.to(t.device)], factors[idx]).to(torch.float32)
            for k, (b, r, c) in enumerate(chunk):
                eps[b, :, r:r + size, c:c + size] += out[k] * weight
        # 3. weighted average over the tiles that cover each point
        eps = eps / norm
        return eps[..., :height, :width].to(x_t.dtype)


__all__ = ["EDGE_WEIGHT", "OVERLAP", "TILE", "TiledPredictor", "blend_window", "tile_starts"]
