"""Tests of mssr.evaluation.tables: summaries, wide/Markdown tables, files."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from pandas.testing import assert_frame_equal

from mssr import factors
from mssr.evaluation import tables
from stats_helpers import pool_row, protein_data


def _metrics_table(rng, *, methods=("wiener", "mssr", "baseline"), factors_=(2.25, 1.125), n=12, nan_rows=0):
    rows = []
    for method in methods:
        for factor in factors_:
            for sample in range(n):
                row = {"method": method, "factor": factor, "sample": sample}
                for metric in tables.METRICS:
                    row[metric] = rng.normal()
                if sample < nan_rows:
                    row["peak_r2"] = np.nan
                rows.append(row)
    return pd.DataFrame(rows)


# -- summarize -------------------------------------------------------------------------------------


def test_summarize_means_counts_and_order():
    df = _metrics_table(np.random.default_rng(0), n=8, nan_rows=3)
    summary = tables.summarize(df, n_boot=200, seed=0)
    assert list(summary.columns) == ["method", "factor", "metric", "mean", "ci_low", "ci_high", "n"]
    detailed = tables.summarize(df, n_boot=200, seed=0, details=True)
    assert_frame_equal(detailed.drop(columns=["statistic", "n_proteins"]), summary)
    assert (detailed["statistic"] == "mean").all()  # no pooling sums in this table
    assert (detailed["n_proteins"] == detailed["n"]).all()  # no protein column: spectra are the units
    assert len(summary) == 3 * 2 * 9
    # Methods in the house order, factors ascending, metrics in METRICS order.
    assert list(dict.fromkeys(summary["method"])) == ["mssr", "baseline", "wiener"]
    first = summary[summary["method"] == "mssr"]
    assert list(dict.fromkeys(first["factor"])) == [1.125, 2.25]
    assert list(first["metric"][:9]) == list(tables.METRICS)

    expected = df.groupby(["method", "factor"])[list(tables.METRICS)].mean()
    for row in summary.itertuples(index=False):
        assert row.mean == pytest.approx(expected.loc[(row.method, row.factor), row.metric])
        assert row.n == (5 if row.metric == "peak_r2" else 8)
        assert row.ci_low <= row.mean <= row.ci_high


def test_summarize_is_deterministic_and_group_independent():
    df = _metrics_table(np.random.default_rng(1))
    a = tables.summarize(df, n_boot=300, seed=5)
    b = tables.summarize(df, n_boot=300, seed=5)
    assert_frame_equal(a, b)
    c = tables.summarize(df, n_boot=300, seed=6)
    assert_allclose(c["mean"], a["mean"])
    assert not np.allclose(c["ci_low"], a["ci_low"])
    # A group's interval does not depend on which other groups the table holds.
    only_mssr = tables.summarize(df[df["method"] == "mssr"], n_boot=300, seed=5)
    assert_frame_equal(only_mssr, a[a["method"] == "mssr"].reset_index(drop=True))


def test_summarize_single_sample_and_all_nan_group():
    df = pd.DataFrame(
        {"method": ["mssr", "identity", "identity"], "factor": [2.0, 2.0, 2.0], "mse": [0.5, np.nan, np.nan]}
    )
    summary = tables.summarize(df, n_boot=50)
    single = summary[summary["method"] == "mssr"].iloc[0]
    assert (single["mean"], single["ci_low"], single["ci_high"], single["n"]) == (0.5, 0.5, 0.5, 1)
    empty = summary[summary["method"] == "identity"].iloc[0]
    assert empty["n"] == 0 and np.isnan(empty["mean"]) and np.isnan(empty["ci_high"])


def test_summarize_custom_groups_and_metrics():
    df = pd.DataFrame({"steps": [10, 10, 20, 20], "repeats": [3, 3, 3, 3], "mse": [1.0, 3.0, 0.5, 0.7]})
    summary = tables.summarize(df, by=("repeats", "steps"), metrics=["mse"], n_boot=100)
    assert list(summary["steps"]) == [10, 20]
    assert_allclose(summary["mean"], [2.0, 0.6])


def test_summarize_validates_inputs():
    df = _metrics_table(np.random.default_rng(2), n=2)
    with pytest.raises(TypeError, match="df"):
        tables.summarize(df.to_dict())
    with pytest.raises(ValueError, match="testset"):
        tables.summarize(df, by=("testset",))
    with pytest.raises(ValueError, match="n_boot"):
        tables.summarize(df, n_boot=0)
    with pytest.raises(TypeError, match="seed"):
        tables.summarize(df, seed=1.5)
    with pytest.raises(TypeError, match="method"):
        tables.summarize(df, by=("factor",), metrics=["method"])
    with pytest.raises(ValueError, match="none of the metric columns"):
        tables.summarize(df[["method", "factor", "sample"]])


# -- wide and Markdown -----------------------------------------------------------------------------


def test_to_wide_cells_and_n_marker():
    df = pd.DataFrame(
        {
            "method": ["mssr", "mssr"],
            "factor": [1.5, 1.5],
            "mse": [0.125, 0.125],
            "peak_r2": [0.75, np.nan],
        }
    )
    wide = tables.to_wide(tables.summarize(df, n_boot=100))
    assert list(wide.columns) == ["n", "mse", "peak_r2"]
    assert wide.loc[("mssr", 1.5), "n"] == 2
    # Identical values: every bootstrap mean equals them, so the interval collapses.
    assert wide.loc[("mssr", 1.5), "mse"] == "0.125 [0.125, 0.125]"
    assert wide.loc[("mssr", 1.5), "peak_r2"] == "0.75 [0.75, 0.75] (n=1)"


def test_to_markdown_lists_every_method_and_factor():
    df = _metrics_table(np.random.default_rng(3), methods=("mssr", "baseline", "identity", "wiener"),
                        factors_=(1.125, 9 / 7, 2.25), n=4)
    text = tables.to_markdown(tables.summarize(df, n_boot=100), digits=3)
    lines = text.strip().splitlines()
    assert len(lines) == 2 + 4 * 3
    assert lines[0].startswith("| method | factor | n | mse | r2 | ssim | hallucination_ratio")
    for method in ("mssr", "baseline", "identity", "wiener"):
        assert sum(line.startswith(f"| {method} |") for line in lines) == 3
    for label in ("1.125", "1.286", "2.250"):
        assert sum(f"| {label} |" in line for line in lines) == 4
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_to_markdown_metric_selection():
    df = _metrics_table(np.random.default_rng(4), n=3)
    text = tables.to_markdown(tables.summarize(df, n_boot=50), metrics=list(tables.GLOBAL_METRICS))
    header = text.splitlines()[0]
    assert header == "| method | factor | n | mse | r2 | ssim |"
    with pytest.raises(ValueError, match="psnr"):
        tables.to_markdown(tables.summarize(df, n_boot=50), metrics=["psnr"])


# -- files -----------------------------------------------------------------------------------------


def test_write_tables_files(tmp_path):
    df = _metrics_table(np.random.default_rng(5), n=5, nan_rows=2)
    df["testset"] = np.where(df["sample"] % 2 == 0, "blur", "physical")
    paths = tables.write_tables(df, tmp_path / "tables", n_boot=100, seed=3)
    assert [p.name for p in paths] == ["summary.csv", "summary.md", "table1.csv", "table1.md", "paired.csv",
                                       "paired.md"]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(p.name for p in paths)

    summary = pd.read_csv(paths[0])
    expected = tables.summarize(df, n_boot=100, seed=3, by=("testset", "method", "factor"))
    assert_frame_equal(summary, expected, check_dtype=False)

    md = paths[1].read_text()
    for heading in ("Global metrics, test set 'blur'", "Local (peak) metrics, test set 'physical'"):
        assert heading in md
    assert "100 resamples, seed 3" in md

    table1 = pd.read_csv(paths[2])
    assert len(table1) == 15
    assert_allclose(table1["factor_value"], [r["factor_value"] for r in factors.table1()])
    table1_md = paths[3].read_text()
    assert "| 900 | 400 | 2.250 | 9/4 | 13 | - |" in table1_md
    assert "| 900 | 500 | 1.800 | 9/5 | 11 | 1.78 |" in table1_md


def test_write_tables_reads_csv_and_validates(tmp_path):
    df = _metrics_table(np.random.default_rng(6), n=3)
    csv = tmp_path / "metrics.csv"
    df.to_csv(csv, index=False)
    paths = tables.write_tables(csv, tmp_path / "out", n_boot=50, seed=0)
    assert_frame_equal(pd.read_csv(paths[0]), tables.summarize(df, n_boot=50, seed=0), check_dtype=False)
    with pytest.raises(ValueError, match="missing.csv"):
        tables.write_tables(tmp_path / "missing.csv", tmp_path / "out", n_boot=10, seed=0)
    with pytest.raises(ValueError, match="method"):
        tables.write_tables(df.drop(columns="method"), tmp_path / "out", n_boot=10, seed=0)


# -- proteins as clusters, pooled peak R^2 -----------------------------------------------------------


def test_summarize_clusters_by_protein():
    rng = np.random.default_rng(7)
    values, proteins = protein_data(rng, 6, 20, 1.0, 0.2)
    df = pd.DataFrame({"method": "mssr", "factor": 1.5, "mse": values, "protein": proteins})
    by_protein = tables.summarize(df, n_boot=500, details=True).iloc[0]
    independent = tables.summarize(df, n_boot=500, cluster=None, details=True).iloc[0]
    assert (by_protein["n"], by_protein["n_proteins"]) == (120, 6)
    assert independent["n_proteins"] == 120
    assert by_protein["mean"] == pytest.approx(values.mean())
    assert by_protein["ci_high"] - by_protein["ci_low"] > 3 * (independent["ci_high"] - independent["ci_low"])
    with pytest.raises(ValueError, match="cluster column"):
        tables.summarize(df, cluster="patient")


def test_summarize_pools_peak_r2_where_the_sums_are_present():
    # Two spectra whose own R^2 is hugely negative (nearly equal true heights) pool to a sane value.
    a = pool_row([0.50, 0.51], [0.30, 0.70])
    b = pool_row([0.10, 0.90], [0.12, 0.88])
    df = pd.DataFrame([{**a, "peak_r2": -700.0}, {**b, "peak_r2": 0.99}])
    df["method"], df["factor"], df["protein"] = "mssr", 1.5, ["p0", "p1"]
    row = tables.summarize(df, n_boot=200, metrics=["peak_r2"], details=True).iloc[0]
    assert row["statistic"] == "pooled"
    a_true, a_pred = np.array([0.5, 0.51, 0.1, 0.9]), np.array([0.3, 0.7, 0.12, 0.88])
    assert row["mean"] == pytest.approx(1 - np.square(a_true - a_pred).sum() / np.square(a_true - a_true.mean()).sum())
    assert -1 < row["mean"] < 1


# -- paired differences ------------------------------------------------------------------------------


def _paired_frame(rng, *, gain, n_proteins=8, per_protein=6, tau=0.3, sigma=0.05):
    """mssr = identity - gain on mse, identity's protein effects shared (paired design)."""
    base, proteins = protein_data(rng, n_proteins, per_protein, tau, sigma, shift=1.0)
    noise = rng.normal(0, sigma, base.size)
    rows = []
    for sample, (value, protein, e) in enumerate(zip(base, proteins, noise)):
        rows.append({"testset": "blur", "method": "identity", "factor": 1.5, "sample": sample, "protein": protein,
                     "mse": value, "ssim": 0.5})
        rows.append({"testset": "blur", "method": "mssr", "factor": 1.5, "sample": sample, "protein": protein,
                     "mse": value - gain + e, "ssim": 0.5 + gain})
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # pairing must not rely on order


def test_paired_difference_ci_and_verdicts():
    df = _paired_frame(np.random.default_rng(0), gain=0.1)
    table = tables.paired(df, learned=["mssr"], n_boot=1000)
    assert list(table.columns) == list(tables.PAIRED_COLUMNS)
    mse = table[table["metric"] == "mse"].iloc[0]
    a = df[df["method"] == "mssr"].set_index("sample")["mse"]
    b = df[df["method"] == "identity"].set_index("sample")["mse"]
    assert mse["difference"] == pytest.approx((a - b.loc[a.index]).mean())
    assert (mse["reference"], mse["n_spectra"], mse["n_proteins"]) == ("identity", 48, 8)
    # The protein effects cancel in the pairs: the interval is about the within-pair noise alone.
    assert mse["ci_low"] < -0.1 + 0.03 and mse["ci_high"] > -0.1 - 0.03 and mse["ci_high"] < 0
    assert mse["verdict"] == "better" and not mse["higher_is_better"]
    ssim = table[table["metric"] == "ssim"].iloc[0]
    assert ssim["verdict"] == "better" and ssim["higher_is_better"]
    # Unpaired intervals of the two means would overlap heavily: tau = 0.3 >> gain.
    summary = tables.summarize(df, n_boot=1000, by=("method",), metrics=["mse"])
    lows, highs = summary["ci_low"].to_numpy(), summary["ci_high"].to_numpy()
    assert max(lows) < min(highs)


def test_paired_no_difference_and_worse():
    same = tables.paired(_paired_frame(np.random.default_rng(1), gain=0.0), learned=["mssr"], metrics=["mse"],
                         n_boot=1000).iloc[0]
    assert same["ci_low"] < 0 < same["ci_high"] and same["verdict"] == "no difference"
    worse = tables.paired(_paired_frame(np.random.default_rng(2), gain=-0.1), learned=["mssr"], metrics=["mse"],
                          n_boot=1000).iloc[0]
    assert worse["verdict"] == "worse"
    one = _paired_frame(np.random.default_rng(3), gain=0.1, n_proteins=1)
    assert tables.paired(one, learned=["mssr"], metrics=["mse"]).iloc[0]["verdict"] == "undetermined"
    with pytest.raises(ValueError, match="direction"):
        tables.paired(one.assign(fwhm_1h_hz=1.0), learned=["mssr"], metrics=["fwhm_1h_hz"])


def test_paired_pooled_peak_r2():
    rows = []
    for sample in range(6):
        t = np.array([0.2, 0.5, 0.9]) + 0.01 * sample
        for method, p in (("identity", t * 0.5), ("mssr", t * 0.95)):
            rows.append({"method": method, "factor": 2.25, "sample": sample, "protein": f"p{sample % 3}",
                         "peak_r2": -1.0, **pool_row(t, p)})
    table = tables.paired(pd.DataFrame(rows), metrics=["peak_r2"], n_boot=300)
    row = table.iloc[0]
    assert row["statistic"] == "pooled"
    assert row["difference"] == pytest.approx(row["method_value"] - row["reference_value"])
    assert row["method_value"] > 0.9 > row["reference_value"]
    assert row["verdict"] == "better"


def test_write_tables_writes_paired_differences(tmp_path):
    df = _paired_frame(np.random.default_rng(4), gain=0.1)
    paths = tables.write_tables(df, tmp_path, n_boot=200, seed=1)
    table = pd.read_csv(tmp_path / "paired.csv")
    assert {"ci_low", "ci_high", "n_proteins", "n_spectra", "verdict"} <= set(table.columns)
    assert_frame_equal(table, tables.paired(df, n_boot=200, seed=1), check_dtype=False)
    md = paths[5].read_text()
    assert "| mssr | identity | 2 | 0 | 0 | 0 |" in md
    assert "Test proteins (clusters) per test set: blur: 8." in paths[1].read_text()


# -- from files to tables and MLflow ---------------------------------------------------------------


def _lorentz_plane(centres, amplitudes, fwhm, shape=(32, 32)):
    rows, cols = np.arange(shape[0]), np.arange(shape[1])
    x = np.zeros(shape)
    for (r, c), a in zip(centres, amplitudes):
        x += a * np.outer(1 / (1 + 4 * (rows - r) ** 2 / fwhm ** 2), 1 / (1 + 4 * (cols - c) ** 2 / fwhm ** 2))
    return x / np.abs(x).max()


def test_metrics_table_to_paired_tables_and_an_mlflow_run(tmp_path, monkeypatch):
    from mssr import tracking
    from mssr.data.store import write_samples
    from mssr.evaluation.predictions import write_prediction
    from mssr.evaluation.scoring import METRICS_COLUMNS, metrics_table

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rng = np.random.default_rng(0)
    axes = [{"nucleus": "15N", "obs_mhz": 91.2, "sw_hz": 2736.0, "ppm_first": 134.0, "size": 32},
            {"nucleus": "1H", "obs_mhz": 900.0, "sw_hz": 5400.0, "ppm_first": 11.0, "size": 32}]
    truths, lows, headers = [], [], []
    for i in range(6):
        centres = [tuple(c) for c in rng.integers(4, 28, (4, 2))] + [(16, 10), (16, 14)]
        amps = rng.uniform(0.5, 1.0, 6)
        truths.append(_lorentz_plane(centres, amps, 2.5))
        lows.append(_lorentz_plane(centres, amps, 5.0))
        headers.append({"axes": axes, "meta": {"protein": f"p{i % 3}", "experiment": "hsqc_15n", "method": "none"}})
    x, x_lr = np.stack(truths).astype(np.float32), np.stack(lows)[None].astype(np.float32)
    testset = write_samples(tmp_path / "testset_blur.h5", x, headers, attrs={"testset": "blur", "factors": ["1.500"]},
                            extra={"x_lr": x_lr})
    zeros = np.zeros_like(x)
    preds = [write_prediction(tmp_path / "identity.h5", x_lr[0], zeros, headers, method="identity", factor="1.500",
                              testset="blur"),
             write_prediction(tmp_path / "mssr.h5", 0.9 * x + 0.1 * x_lr[0], zeros, headers, method="mssr",
                              factor="1.500", testset="blur", mlflow_run_id="abc123")]
    out = tmp_path / "tables"
    metrics_table([testset], preds, out / "metrics.csv", metrics={"bootstrap": 50}, peaks_csv=out / "peaks.csv.gz")
    df = pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values=[""])
    assert list(df.columns) == list(METRICS_COLUMNS)
    assert {"protein", "fwhm_1h_hz", "resolved_pairs"} <= set(df.columns)
    assert df.loc[df["method"] == "mssr", "mlflow_run_id"].eq("abc123").all()
    # Close pairs exist in every truth; the blurred input resolves fewer of them than the truth-like method.
    assert (df["n_close_pairs"] >= 1).mean() > 0.5
    by = df.groupby("method")["resolved_pairs"].mean()
    assert by["mssr"] > by["identity"]
    peaks = pd.read_csv(out / "peaks.csv.gz")
    assert {"true_x_ppm", "pred_1h_ppm", "fwhm_1h_hz", "fwhm_x_ratio", "protein"} <= set(peaks.columns)

    uri = tracking.sqlite_uri(tmp_path / "store")
    paths, run_id = tables.write_evaluation(out / "metrics.csv", out, n_boot=50, seed=0,
                                            tracking=tracking.TrackingConfig(experiment="eval-test", uri=uri),
                                            fallback_dir=tmp_path / "fb", params={"metrics": {"bootstrap": 50}})
    paired_table = pd.read_csv(out / "paired.csv")
    assert {"ci_low", "ci_high", "verdict"} <= set(paired_table.columns)
    assert set(paired_table["reference"]) == {"identity"} and (paired_table["n_proteins"] == 3).all()
    from mlflow.tracking import MlflowClient

    stored = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert stored.data.tags["model_run.mssr"] == "abc123"
    assert "blur.mssr.1.500.mse" in stored.data.metrics
    summary = pd.read_csv(paths[0])
    assert stored.data.metrics["blur.mssr.1.500.mse"] == pytest.approx(
        summary.query("method == 'mssr' and metric == 'mse'")["mean"].iloc[0])


def test_the_markdown_headers_say_whether_the_learned_models_had_the_same_budget(tmp_path):
    df = _metrics_table(np.random.default_rng(7), n=3)
    paths = tables.write_tables(df, tmp_path / "a", n_boot=20, seed=0, budgets={"mssr": 150, "baseline": 20})
    for path in (paths[1], paths[5]):
        text = path.read_text()
        assert "did not get the same training budget** (epochs; mssr: 150; baseline: 20)" in text
    paths = tables.write_tables(df, tmp_path / "b", n_boot=20, seed=0, budgets={"mssr": 200, "baseline": 200})
    assert "trained for 200 epochs (the same budget)" in paths[1].read_text()
    assert tables.budget_line({"baseline": (140, 150)}, "steps").endswith("(steps; baseline: 140-150).")
    paths = tables.write_tables(df, tmp_path / "c", n_boot=20, seed=0)
    assert "budget" not in paths[1].read_text()
