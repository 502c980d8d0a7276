"""Test data shared by the statistics tests (test_bootstrap.py, test_tables.py)."""

from __future__ import annotations

import numpy as np


def protein_data(rng, n_proteins, per_protein, tau, sigma, shift=0.0):
    """Values with protein effects N(0, tau^2) and spectrum noise N(0, sigma^2)."""
    effect = rng.normal(0.0, tau, n_proteins)
    values = shift + (effect[:, None] + rng.normal(0.0, sigma, (n_proteins, per_protein))).ravel()
    proteins = np.repeat([f"p{i}" for i in range(n_proteins)], per_protein)
    return values, proteins


def pool_row(a_true, a_pred):
    """The sums :data:`mssr.evaluation.bootstrap.POOL_COLUMNS` of one spectrum's matched heights."""
    a_true, a_pred = np.asarray(a_true, float), np.asarray(a_pred, float)
    return {"n_pairs": len(a_true), "peak_ss_res": np.square(a_true - a_pred).sum(),
            "peak_sum_true": a_true.sum(), "peak_sumsq_true": np.square(a_true).sum()}
