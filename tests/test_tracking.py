"""MLflow tracking: local store, fallback on an unreachable server, failures mid-run, flattening."""

import json
import logging
import socket
import threading
import time

import pytest

from mssr import tracking
from mssr.provenance import git_commit


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    directory = tmp_path_factory.mktemp("store")
    tracking.ensure_store(tracking.sqlite_uri(directory), "mssr-test")
    return directory


@pytest.fixture(autouse=True)
def _no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


# ---------------------------------------------------------------------------------------------
# pure helpers


def test_flatten_nested_config_and_truncate():
    cfg = {"train": {"lr": 1e-3, "factors": [1.125, 2.25], "opt": {"betas": (0.9, 0.99)}},
           "model": {"conditioning": "class", "dropout": None}, "seed": 0, "empty": {}, "long": "x" * 7000}
    flat = tracking.flatten(cfg)
    assert flat["train.lr"] == "0.001"
    assert flat["train.factors"] == "[1.125, 2.25]"
    assert flat["train.opt.betas"] == "[0.9, 0.99]"
    assert flat["model.conditioning"] == "class"
    assert flat["model.dropout"] == "null"
    assert flat["seed"] == "0"
    assert flat["empty"] == "{}"
    assert len(flat["long"]) == tracking.MAX_PARAM_VALUE_LENGTH and flat["long"].endswith("...")
    assert set(flat) == {"train.lr", "train.factors", "train.opt.betas", "model.conditioning",
                         "model.dropout", "seed", "empty", "long"}
    with pytest.raises(TypeError, match="config"):
        tracking.flatten([1, 2])


def test_limits_match_mlflow():
    from mlflow.utils import validation

    assert tracking.MAX_PARAM_VALUE_LENGTH == validation.MAX_PARAM_VAL_LENGTH
    assert tracking.MAX_TAG_VALUE_LENGTH == validation.MAX_TAG_VAL_LENGTH
    assert tracking.MAX_KEY_LENGTH == validation.MAX_ENTITY_KEY_LENGTH


def test_default_uri_env_wins(tmp_path, monkeypatch):
    assert tracking.default_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.default_uri(tmp_path) == "http://tracking.example:5000"


def test_input_tags_are_sha256(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert tracking.input_tags({"train": f}) == {
        "input.train.sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    }


def test_import_is_lazy():
    import subprocess
    import sys

    code = "import sys, mssr.tracking; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------
# local store


def test_local_sqlite_run_logs_params_metrics_tags_artifacts(store_dir, tmp_path):
    uri = tracking.sqlite_uri(store_dir)
    artifact = tmp_path / "history.csv"
    artifact.write_text("step,loss\n1,0.5\n")
    params = {"train": {"lr": 0.001, "epochs": 2}, "factor": "2.250"}
    with tracking.run("mssr-test", "local", uri=uri, params=params, tags={"input.train.sha256": "abc"},
                      fallback_dir=tmp_path / "fb") as r:
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            r.log_metrics({"loss": loss, "lr": 1e-3}, step=step)
        r.set_tags({"stage": "train"})
        r.log_artifact(artifact)
        assert not r.fallback and r.uri == uri
    client = _client(uri)
    stored = client.get_run(r.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "local"
    assert stored.data.params == {"train.lr": "0.001", "train.epochs": "2", "factor": "2.250"}
    assert stored.data.tags["input.train.sha256"] == "abc"
    assert stored.data.tags["stage"] == "train"
    assert stored.data.tags[tracking.GIT_COMMIT_TAG] == git_commit()
    history = client.get_metric_history(r.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert [a.path for a in client.list_artifacts(r.run_id)] == ["history.csv"]
    # artifacts live beside the database, not in the working directory
    assert (store_dir / "mlartifacts").is_dir()
    assert not (tmp_path / "fb").exists()
    experiment = client.get_experiment_by_name("mssr-test")
    runs = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'local'")
    assert len(runs) == 1 and runs[0].data.metrics["loss"] == 0.25


def test_ensure_store_is_idempotent(store_dir):
    uri = tracking.sqlite_uri(store_dir)
    assert tracking.ensure_store(uri, "mssr-test") == tracking.ensure_store(uri, "mssr-test")


def test_failed_training_marks_the_run(store_dir, tmp_path):
    uri = tracking.sqlite_uri(store_dir)
    with pytest.raises(KeyboardInterrupt):
        with tracking.run("mssr-test", "interrupted", uri=uri, fallback_dir=tmp_path) as r:
            raise KeyboardInterrupt
    assert _client(uri).get_run(r.run_id).info.status == "KILLED"
    with pytest.raises(RuntimeError):
        with tracking.run("mssr-test", "crashed", uri=uri, fallback_dir=tmp_path) as r2:
            raise RuntimeError("boom")
    assert _client(uri).get_run(r2.run_id).info.status == "FAILED"


# ---------------------------------------------------------------------------------------------
# failures


def test_unreachable_server_falls_back_to_a_local_store_within_seconds(store_dir, caplog):
    bad = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mssr.tracking"):
        with tracking.run("mssr-test", "fallback", uri=bad, params={"a": 1}, fallback_dir=store_dir) as r:
            r.log_metrics({"loss": 0.5}, step=3)
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed
    assert r.fallback and r.uri == tracking.sqlite_uri(store_dir)
    assert any(bad in rec.getMessage() for rec in caplog.records)
    stored = _client(r.uri).get_run(r.run_id)
    assert stored.data.params == {"a": "1"}
    assert stored.data.metrics == {"loss": 0.5}
    assert stored.info.status == "FINISHED"


def test_silent_server_times_out_and_falls_back(store_dir, monkeypatch):
    # A server that accepts connections and never answers: the request timeout must trigger.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        start = time.monotonic()
        with tracking.run("mssr-test", "silent", uri=f"http://127.0.0.1:{server.getsockname()[1]}",
                          fallback_dir=store_dir) as r:
            r.log_metrics({"loss": 1.0}, step=0)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    assert accepted, "the client never connected"
    assert elapsed < 8, elapsed
    assert r.fallback
    assert _client(r.uri).get_run(r.run_id).data.metrics == {"loss": 1.0}


def test_failure_mid_run_never_raises_and_keeps_a_jsonl_record(store_dir, tmp_path, caplog):
    uri = tracking.sqlite_uri(store_dir)
    calls = []
    with caplog.at_level(logging.WARNING, logger="mssr.tracking"):
        with tracking.run("mssr-test", "midrun", uri=uri, params={"train": {"lr": 0.1}}, fallback_dir=tmp_path) as r:
            r.log_metrics({"loss": 1.0}, step=0)

            def broken(*args, **kwargs):
                calls.append(args)
                raise ConnectionError("store went away")

            r._client.log_batch = broken
            r._client.set_terminated = broken
            r.log_metrics({"loss": 0.5}, step=1)
            r.log_metrics({"loss": 0.25, "val_loss": float("nan")}, step=2)
            r.set_tags({"late": "tag"})
            r.log_artifact(tmp_path)
    assert len(calls) == 1  # after the first failure the store is not retried
    warnings = [rec for rec in caplog.records if "failed" in rec.getMessage()]
    assert len(warnings) == 1
    records = tracking.read_jsonl(tmp_path / tracking.FALLBACK_JSONL)
    kinds = [rec["kind"] for rec in records]
    assert kinds == ["params", "tags", "metrics", "metrics", "tags", "artifact", "end"]
    assert records[0]["params"] == {"train.lr": "0.1"}
    metrics = [(rec["step"], rec["values"]["loss"]) for rec in records if rec["kind"] == "metrics"]
    assert metrics == [(1, 0.5), (2, 0.25)]
    assert records[3]["values"]["val_loss"] == "nan"
    assert all(rec["run_id"] == r.run_id for rec in records)
    # what reached the store before the failure is there
    assert [m.value for m in _client(uri).get_metric_history(r.run_id, "loss")] == [1.0]


def test_no_store_at_all_still_records_the_run(tmp_path, monkeypatch):
    bad = f"http://127.0.0.1:{_closed_port()}"
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the fallback folder should be")
    # both the server and the fallback store fail; the JSON-lines record goes to a usable folder
    monkeypatch.setattr(tracking, "sqlite_uri", lambda d: f"sqlite:///{blocked}/sub/mlflow.db")
    with tracking.run("mssr-test", "nowhere", uri=bad, params={"x": 1}, fallback_dir=tmp_path) as r:
        r.log_metrics({"loss": 2.0}, step=5)
    assert r.run_id.startswith("local-") and r.fallback
    records = tracking.read_jsonl(tmp_path / tracking.FALLBACK_JSONL)
    assert [rec["kind"] for rec in records] == ["params", "tags", "metrics", "end"]
    assert records[2] == {**records[2], "step": 5, "values": {"loss": 2.0}}


def test_ensure_store_file_records_an_unreachable_store(tmp_path, caplog):
    bad = f"http://127.0.0.1:{_closed_port()}"
    out = tmp_path / "tracking" / "store.json"
    with caplog.at_level(logging.WARNING, logger="mssr.tracking"):
        tracking.ensure_store_file({"uri": bad, "experiment": "e"}, tmp_path, out)
    record = json.loads(out.read_text())
    assert record["uri"] == bad and record["reachable"] is False and "error" in record
    assert any(bad in rec.getMessage() for rec in caplog.records)


def test_ensure_store_file_creates_the_default_store(store_dir, tmp_path):
    out = tmp_path / "store.json"
    tracking.ensure_store_file({"uri": None, "experiment": "mssr-test"}, store_dir, out)
    record = json.loads(out.read_text())
    assert record["uri"] == tracking.sqlite_uri(store_dir) and record["reachable"] is True
    assert record["experiment_id"] == tracking.ensure_store(record["uri"], "mssr-test")


# ---------------------------------------------------------------------------------------------
# the JSON-lines record


def test_read_jsonl_skips_only_a_torn_last_line(tmp_path, caplog):
    path = tmp_path / tracking.FALLBACK_JSONL
    path.write_text('{"kind": "params"}\n{"kind": "metrics", "step": 1}\n{"kind": "me')
    with caplog.at_level(logging.WARNING, logger="mssr.tracking"):
        assert tracking.read_jsonl(path) == [{"kind": "params"}, {"kind": "metrics", "step": 1}]
    assert any("torn" in rec.getMessage() for rec in caplog.records)
    path.write_text('{"kind": "params"}\n{"kind": "end"}')  # complete last record, newline lost
    assert [r["kind"] for r in tracking.read_jsonl(path)] == ["params", "end"]


@pytest.mark.parametrize("text, line", [('{"a": 1}\nnot json\n{"b": 2}\n', 2), ('{"a": 1}\n{"b": \n', 2),
                                        ('garbage\n{"a": 1}', 1)])
def test_read_jsonl_raises_on_a_bad_complete_line(tmp_path, text, line):
    path = tmp_path / "record.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"record\.jsonl: line {line} "):
        tracking.read_jsonl(path)


# ---------------------------------------------------------------------------------------------
# evaluation runs


def _evaluation_tables():
    import pandas as pd

    summary = pd.DataFrame({
        "testset": ["blur", "blur", "blur"], "method": ["mssr", "baseline", "identity"], "factor": [1.5, 2.25, 1.5],
        "metric": ["mse", "peak_r2", "mse"], "statistic": ["mean", "pooled", "mean"], "mean": [0.01, 0.8, 0.02],
        "ci_low": [0.008, float("nan"), 0.015], "ci_high": [0.012, float("nan"), 0.03], "n": [4, 4, 4],
        "n_proteins": [2, 2, 2],
    })
    table = pd.DataFrame({
        "testset": "blur", "method": ["mssr", "mssr", "baseline", "baseline", "identity"],
        "factor": [1.5, 2.25, 1.5, 2.25, 1.5], "sample": [0, 0, 0, 0, 0], "protein": ["p1"] * 5,
        "mlflow_run_id": ["run-m", "run-m", "run-b1", "run-b2", ""],
    })
    return summary, table


def test_evaluation_metric_names_and_model_links():
    summary, table = _evaluation_tables()
    metrics = tracking.evaluation_metrics(summary)
    assert metrics == {
        "blur.mssr.1.500.mse": 0.01, "blur.mssr.1.500.mse.ci_low": 0.008, "blur.mssr.1.500.mse.ci_high": 0.012,
        "blur.baseline.2.250.peak_r2": 0.8,
        "blur.identity.1.500.mse": 0.02, "blur.identity.1.500.mse.ci_low": 0.015,
        "blur.identity.1.500.mse.ci_high": 0.03,
    }
    assert tracking.model_run_tags(table) == {
        "model_run.mssr": "run-m", "model_run.baseline.1.500": "run-b1", "model_run.baseline.2.250": "run-b2",
    }
    assert tracking.metric_key("psnr(db)", "a=b") == "psnr_db_.a_b"


def test_log_evaluation_to_a_local_store(store_dir, tmp_path):
    summary, table = _evaluation_tables()
    csv = tmp_path / "summary.csv"
    summary.to_csv(csv, index=False)
    uri = tracking.sqlite_uri(store_dir)
    run_id = tracking.log_evaluation(summary, metrics_table=table, artifacts=[csv], params={"metrics": {"bootstrap": 9}},
                                     experiment="mssr-test", uri=uri, fallback_dir=tmp_path / "fb")
    stored = _client(uri).get_run(run_id)
    assert stored.info.run_name == "evaluation" and stored.info.status == "FINISHED"
    assert stored.data.metrics["blur.mssr.1.500.mse"] == 0.01
    assert stored.data.tags["model_run.mssr"] == "run-m" and stored.data.tags["mssr.kind"] == "evaluation"
    assert stored.data.params["evaluation.metrics.bootstrap"] == "9"
    assert json.loads(stored.data.params["scored.methods"]) == ["baseline", "identity", "mssr"]
    assert [a.path for a in _client(uri).list_artifacts(run_id, "tables")] == ["tables/summary.csv"]


def test_log_evaluation_never_raises_and_keeps_the_tables(tmp_path, monkeypatch, caplog):
    summary, table = _evaluation_tables()
    csv = tmp_path / "summary.csv"
    summary.to_csv(csv, index=False)
    monkeypatch.setattr(tracking, "run", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("store on fire")))
    with caplog.at_level(logging.WARNING, logger="mssr.tracking"):
        assert tracking.log_evaluation(summary, metrics_table=table, artifacts=[csv], fallback_dir=tmp_path) is None
    assert "store on fire" in caplog.text
    assert csv.read_text() == summary.to_csv(index=False)
