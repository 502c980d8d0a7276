"""Training data: high-field spectra paired with low-field inputs, keyed for exact resumption.

:func:`mssr.model.train.train` learns from a :class:`TrainingData`: two torch Datasets whose
items are addressed by keys ``(stream, epoch, index)`` and depend on that key only (see
:mod:`mssr.model.train`), so the pairs are the same whatever the batch size, the worker count or
where a resumed run restarts. :func:`training_data` builds them; it is the one place that knows
what kind of data set a run trains on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from mssr import degrade
from mssr.provenance import sha256_file
from mssr.spectrum import Axis

if TYPE_CHECKING:
    from mssr.model.train import TrainConfig

# Stream tags of the keyed random draws (see the :mod:`mssr.model.train` docstring).
ORDER, DEGRADE, LOSS, DROPOUT, VAL = 101, 102, 103, 104, 105
INIT = 106


def key_seed(*key: int) -> int:
    """A 63-bit seed for torch, derived from an integer key."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0] >> 1)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, ORDER, epoch]).permutation(n)



class DegradedPairs(torch.utils.data.Dataset):
    """High-field spectra paired with low-field versions simulated on access.

    Items are addressed by ``(stream, epoch, index)``; the factor and the noise of an item
    depend on that key only, so the pairs are the same whatever the batch size, the worker
    count, or where a resumed run restarts.

    Parameters
    ----------
    x : ndarray, shape (N, H, W), float32
        High-field spectra (normalized).
    headers : list of dict
        Their Spectrum headers (axes are read for the physical model).
    factors : sequence of float
        Factors drawn from, uniformly, per item.
    model : {'paper', 'physical'}
        Low-field model.
    params : dict
        Its parameters.
    seed : int
        Base seed.
    """

    def __init__(self, x: np.ndarray, headers: Sequence[Mapping], factors: Sequence[float], *,
                 model: str, params: Mapping, seed: int):
        self.x = x
        self.factors = np.asarray(factors, dtype=np.float64)
        self.model = model
        self.params = dict(params)
        self.seed = int(seed)
        self.axes = (
            [tuple(Axis.from_dict(a) for a in h["axes"]) for h in headers] if model == "physical" else None
        )

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, key: tuple[int, int, int]):
        stream, epoch, index = key
        rng = np.random.default_rng([self.seed, stream, epoch, index])
        factor = float(self.factors[rng.integers(len(self.factors))])
        params = dict(self.params)
        if self.axes is not None:
            params["axes"] = self.axes[index]
        x0 = self.x[index]
        x_lr = degrade.simulate(x0, factor, model=self.model, rng=rng, **params)
        return x0, x_lr, factor


def collate(items):
    x0 = torch.from_numpy(np.stack([it[0] for it in items]))[:, None]
    x_lr = torch.from_numpy(np.stack([it[1] for it in items]))[:, None]
    factors = torch.tensor([it[2] for it in items], dtype=torch.float64)
    return x0, x_lr, factors


class EpochBatches(torch.utils.data.Sampler):
    """Batches of item keys of one epoch, in its keyed order, from batch ``start`` on."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int):
        self.keys = [(DEGRADE, epoch, int(i)) for i in epoch_order(seed, epoch, n)]
        self.batch_size = batch_size
        self.start = start

    def __iter__(self):
        for b in range(self.start, len(self)):
            yield self.keys[b * self.batch_size : (b + 1) * self.batch_size]

    def total(self) -> int:
        return math.ceil(len(self.keys) / self.batch_size)

    def __len__(self) -> int:
        return self.total()


def read_sample_set(path, sample_size: int, name: str):
    from mssr.data.store import read_samples

    data = read_samples(path, extra=False)
    if len(data) == 0 and name == "train":
        raise ValueError(f"{path}: the training set is empty")
    if data.x.ndim != 3 or data.x.shape[1:] != (sample_size, sample_size):
        raise ValueError(
            f"{path}: spectra have shape {data.x.shape[1:]}, the model expects {sample_size} x {sample_size} px "
            f"(ModelConfig.sample_size)"
        )
    return data.x.astype(np.float32, copy=False), data.headers



class TrainingData(NamedTuple):
    """The data of a training run, as :func:`train` consumes it.

    Attributes
    ----------
    train, val : torch.utils.data.Dataset
        Indexed by item keys ``(stream, epoch, index)`` with ``0 <= index < len(dataset)``; an
        item is ``(x0, x_lr, factor)``: the high-field target and its low-field input, float32
        arrays of one shape (H, W) in points, and the factor as a float. An item must depend on
        its key only (see the module docstring), so that resumption is exact.
    sha256 : dict
        ``{name: sha256}`` of the files the data come from: it enters the checkpoint's
        fingerprint and the run's provenance.
    """

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    sha256: dict


def training_data(train_h5, val_h5, model_cfg, train_cfg: TrainConfig, factors: Sequence[float]) -> TrainingData:
    """Training and validation sets: whole S x S sample sets, degraded on access (:class:`DegradedPairs`)."""
    sha256 = {"train": sha256_file(train_h5), "val": sha256_file(val_h5)}
    sets = []
    for path, name in ((train_h5, "train"), (val_h5, "val")):
        x, headers = read_sample_set(path, model_cfg.sample_size, name)
        sets.append(DegradedPairs(x, headers, factors, model=train_cfg.degrade_model,
                                  params=train_cfg.degrade_params, seed=train_cfg.seed))
    return TrainingData(sets[0], sets[1], sha256)


def validation_batches(val_set, batch_size: int) -> list:
    """The validation pairs, computed once: the same keys at every validation."""
    keys = [(VAL, 0, i) for i in range(len(val_set))]
    return [collate([val_set[k] for k in keys[i : i + batch_size]]) for i in range(0, len(keys), batch_size)]
