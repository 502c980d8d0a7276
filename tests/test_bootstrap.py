"""Tests of mssr.evaluation.bootstrap: percentile and cluster-bootstrap intervals, pooled peak R^2.

The shared test data (:func:`protein_data`, :func:`pool_row`) is in stats_helpers.py.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from mssr.evaluation import bootstrap
from stats_helpers import pool_row, protein_data


# -- bootstrap -------------------------------------------------------------------------------------


def test_bootstrap_large_n_matches_normal_interval():
    rng = np.random.default_rng(11)
    x = rng.normal(3.0, 2.0, size=4000)
    mean, low, high, n = bootstrap.bootstrap_mean_ci(x, n_boot=2000, ci=0.95, rng=1)
    half = stats.norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(x.size)
    assert n == 4000
    assert mean == pytest.approx(x.mean())
    assert low < mean < high
    assert_allclose(high - low, 2 * half, rtol=0.1)
    assert_allclose((low + high) / 2, mean, atol=0.1 * half)


def test_bootstrap_width_shrinks_as_one_over_sqrt_n():
    rng = np.random.default_rng(12)
    population_sd = 1.5
    widths = {}
    for n in (100, 400, 1600):
        x = rng.normal(0.0, population_sd, size=n)
        _, low, high, _ = bootstrap.bootstrap_mean_ci(x, n_boot=2000, rng=2)
        widths[n] = high - low
        # Normal-theory width 2 * 1.96 * sd / sqrt(n).
        assert_allclose(widths[n], 2 * 1.959964 * population_sd / np.sqrt(n), rtol=0.2)
    assert_allclose(widths[400] / widths[100], 0.5, rtol=0.2)
    assert_allclose(widths[1600] / widths[400], 0.5, rtol=0.2)


def test_bootstrap_coverage_close_to_nominal():
    rng = np.random.default_rng(13)
    true_mean = 1.0
    hits = 0
    trials = 200
    for trial in range(trials):
        x = rng.normal(true_mean, 2.0, size=60)
        _, low, high, _ = bootstrap.bootstrap_mean_ci(x, n_boot=1000, ci=0.9, rng=trial)
        hits += low <= true_mean <= high
    # Binomial SD of the coverage at 0.9 over 200 trials is 0.021 (an 80% interval would
    # land outside these bounds); percentile intervals undercover slightly for n = 60.
    assert 0.85 <= hits / trials <= 0.95


def test_bootstrap_single_value_and_nan_handling():
    assert bootstrap.bootstrap_mean_ci([np.nan, 0.25, np.nan]) == (0.25, 0.25, 0.25, 1)
    mean, low, high, n = bootstrap.bootstrap_mean_ci([np.nan, np.nan])
    assert n == 0 and np.isnan(mean) and np.isnan(low) and np.isnan(high)
    values = np.array([1.0, np.nan, 2.0, 4.0, np.nan, 5.0])
    mean, low, high, n = bootstrap.bootstrap_mean_ci(values, rng=0)
    assert n == 4
    assert mean == pytest.approx(3.0)
    # Bootstrap means of four values lie between their minimum and maximum.
    assert 1.0 <= low <= mean <= high <= 5.0


def test_bootstrap_rejects_bad_options():
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap.bootstrap_mean_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match="ci"):
        bootstrap.bootstrap_mean_ci([1.0, 2.0], ci=1.0)
    with pytest.raises(ValueError, match="1-D"):
        bootstrap.bootstrap_mean_ci(np.ones((2, 2)))


# -- cluster bootstrap by protein ------------------------------------------------------------------


def _c4(n):
    """E[s] / sigma for the sample SD of n normal values."""
    from scipy.special import gammaln

    return np.sqrt(2.0 / (n - 1)) * np.exp(gammaln(n / 2) - gammaln((n - 1) / 2))


@pytest.mark.parametrize("n_proteins, per_protein, rtol", [(5, 40, 0.08), (40, 10, 0.08)])
def test_cluster_bootstrap_width_matches_the_between_protein_variance(n_proteins, per_protein, rtol):
    tau, sigma = 1.0, 0.5
    # The mean of protein means has SD sqrt((tau^2 + sigma^2 / m) / C). The bootstrap estimates it
    # from the C protein means, with the plug-in factor sqrt((C - 1) / C) and E[s] = c4 * SD.
    sd = np.sqrt((tau**2 + sigma**2 / per_protein) / n_proteins)
    expected = 2 * stats.norm.ppf(0.975) * sd * np.sqrt((n_proteins - 1) / n_proteins) * _c4(n_proteins)
    cluster_widths, naive_widths = [], []
    for rep in range(100):
        values, proteins = protein_data(np.random.default_rng(rep), n_proteins, per_protein, tau, sigma)
        mean, low, high, n, k = bootstrap.cluster_bootstrap_mean_ci(values, proteins, n_boot=1000, rng=rep)
        assert (n, k) == (n_proteins * per_protein, n_proteins)
        assert mean == pytest.approx(values.mean())
        cluster_widths.append(high - low)
        _, low, high, _, _ = bootstrap.cluster_bootstrap_mean_ci(values, None, n_boot=1000, rng=rep)
        naive_widths.append(high - low)
    assert_allclose(np.mean(cluster_widths), expected, rtol=rtol)
    # Spectra as independent units understate the uncertainty several-fold here.
    assert (np.array(cluster_widths) > 2 * np.array(naive_widths)).all()
    naive_expected = 2 * stats.norm.ppf(0.975) * np.sqrt((tau**2 + sigma**2) / (n_proteins * per_protein))
    # ... and sit near the formula for independent values, which ignores the protein effects.
    assert_allclose(np.mean(naive_widths), naive_expected, rtol=0.2)


def test_cluster_bootstrap_coverage_of_the_protein_mean():
    hits = 0
    for rep in range(200):
        values, proteins = protein_data(np.random.default_rng(1000 + rep), 40, 10, 1.0, 0.5)
        _, low, high, _, _ = bootstrap.cluster_bootstrap_mean_ci(values, proteins, n_boot=500, rng=rep)
        hits += low <= 0.0 <= high
    # Nominal 95%; the percentile interval of 40 clusters runs a little short of it.
    assert 0.88 <= hits / 200 <= 0.99


def test_cluster_bootstrap_single_protein_and_validation():
    mean, low, high, n, k = bootstrap.cluster_bootstrap_mean_ci([1.0, 2.0, np.nan], ["a", "a", "a"], rng=0)
    assert (mean, n, k) == (1.5, 2, 1) and np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="clusters"):
        bootstrap.cluster_bootstrap_mean_ci([1.0, 2.0], ["a"])
    with pytest.raises(ValueError, match="sums"):
        bootstrap.cluster_bootstrap(np.ones(3), lambda t: t[..., 0])


# -- pooled peak R^2 ---------------------------------------------------------------------------------


def test_pooled_peak_r2_equals_r2_over_all_pairs():
    rng = np.random.default_rng(3)
    spectra = [(rng.uniform(0.2, 1, k), None) for k in (3, 1, 7, 0, 5)]
    spectra = [(t, t + rng.normal(0, 0.1, len(t))) for t, _ in spectra]
    rows = pd.DataFrame([pool_row(t, p) for t, p in spectra])
    totals = rows[list(bootstrap.POOL_COLUMNS)].sum().to_numpy()
    a_true = np.concatenate([t for t, _ in spectra])
    a_pred = np.concatenate([p for _, p in spectra])
    expected = 1 - np.square(a_true - a_pred).sum() / np.square(a_true - a_true.mean()).sum()
    assert float(bootstrap.pooled_peak_r2(totals)) == pytest.approx(expected, rel=1e-12)
    assert float(bootstrap.pooled_peak_r2(list(pool_row([0.5], [0.5]).values()))) == 1.0  # SS_tot 0, exact
    assert np.isnan(bootstrap.pooled_peak_r2([0, 0, 0, 0]))
