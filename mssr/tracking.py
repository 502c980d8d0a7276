"""Experiment tracking with MLflow that never loses or stalls a training run.

The default store is a local SQLite database, ``sqlite:///<results_dir>/mlflow.db``, unless the
environment variable ``MLFLOW_TRACKING_URI`` names another (e.g. a tracking server).

Failure handling, in order:

1. The first contact with the store is made with few HTTP retries and a short timeout
   (:data:`HTTP_LIMITS`; variables the user set in the environment win), so an unreachable server
   costs seconds, not minutes.
2. If the store can't be reached, the run goes to a local SQLite store in ``fallback_dir`` and a
   warning names the URI that failed.
3. If a call fails in the middle of a run (server gone, database locked), one warning is logged
   and everything from then on (with the run's params and tags) is appended to a JSON-lines file
   in ``fallback_dir``: training never sees the exception.

``mlflow`` is imported lazily (about 1.6 s), only when a run or store is opened.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mssr.atomic import write_text
from mssr.provenance import git_commit, sha256_file

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "mssr"

MAX_PARAM_VALUE_LENGTH = 6000
"""MLflow's limit on a parameter value, characters (``mlflow.utils.validation``)."""
MAX_TAG_VALUE_LENGTH = 8000
"""MLflow's limit on a tag value, characters."""
MAX_KEY_LENGTH = 250
"""MLflow's limit on a parameter, metric or tag key, characters."""
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000

HTTP_LIMITS: dict[str, str] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
"""Environment settings MLflow's HTTP client reads on every request; applied around each call
unless the user set them."""

GIT_COMMIT_TAG = "mlflow.source.git.commit"
FALLBACK_DB = "mlflow.db"
FALLBACK_JSONL = "tracking.jsonl"


# ---------------------------------------------------------------------------------------------
# pure helpers (no mlflow)


def sqlite_uri(directory) -> str:
    """``sqlite:///<abs directory>/mlflow.db``."""
    return f"sqlite:///{Path(directory).resolve() / FALLBACK_DB}"


def default_uri(results_dir) -> str:
    """The tracking URI to use: ``MLFLOW_TRACKING_URI`` if set, else a SQLite store in ``results_dir``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or sqlite_uri(results_dir)


def flatten(config: Mapping, *, prefix: str = "", sep: str = ".") -> dict[str, str]:
    """Nested mapping -> ``{'train.lr': '0.001', ...}`` with string values cut to MLflow's limit.

    Lists and other non-mapping values are written as JSON (``str`` for what JSON can't hold).

    Parameters
    ----------
    config : mapping
        Possibly nested configuration.
    prefix : str
        Prepended to every key (with ``sep``).
    sep : str
        Separator of nested keys.

    Returns
    -------
    dict of str to str
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping, got {type(config).__name__}")
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, prefix=name, sep=sep))
        else:
            flat[_truncate(name, MAX_KEY_LENGTH)] = _truncate(_as_text(value), MAX_PARAM_VALUE_LENGTH)
    return flat


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def input_tags(inputs: Mapping[str, object]) -> dict[str, str]:
    """``{'input.<name>.sha256': digest}`` for each named input file."""
    return {f"input.{name}.sha256": sha256_file(path) for name, path in inputs.items()}


@contextlib.contextmanager
def http_limits() -> Iterator[None]:
    """Apply :data:`HTTP_LIMITS` to MLflow's HTTP client for the duration of the block."""
    previous = {}
    for name, value in HTTP_LIMITS.items():
        if name not in os.environ:
            previous[name] = None
            os.environ[name] = value
    try:
        yield
    finally:
        for name in previous:
            os.environ.pop(name, None)


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _default_artifact_location(uri: str) -> str | None:
    # MLflow would put a SQLite store's artifacts in ./mlruns of whatever the working directory is.
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def _prepare_sqlite(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def _experiment_id(client, uri: str, experiment: str, artifact_location: str | None) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    try:
        location = artifact_location or _default_artifact_location(uri)
        return client.create_experiment(experiment, artifact_location=location)
    except Exception:
        # Another process may have created it between our lookup and create.
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


def ensure_store(uri: str, experiment: str = DEFAULT_EXPERIMENT, *, artifact_location: str | None = None) -> str:
    """Create the tracking store (for SQLite: the database and its tables) and the experiment.

    Call once before jobs fan out: concurrent first writers of a new SQLite store race.

    Parameters
    ----------
    uri : str
        Tracking URI.
    experiment : str
        Experiment name.
    artifact_location : str, optional
        Artifact root of a new experiment; default for SQLite: ``mlartifacts/`` beside the
        database.

    Returns
    -------
    str
        The experiment id.
    """
    if not isinstance(uri, str) or not uri:
        raise TypeError(f"uri must be a non-empty str, got {uri!r}")
    if not isinstance(experiment, str) or not experiment:
        raise TypeError(f"experiment must be a non-empty str, got {experiment!r}")
    _prepare_sqlite(uri)
    with http_limits():
        return _experiment_id(_client(uri), uri, experiment, artifact_location)


def ensure_store_file(tracking: Mapping | None, results_dir, output) -> Path:
    """Create the store and experiment of a pipeline run and record them in a JSON file.

    A store that can't be reached is recorded (``"reachable": false`` with the error) and logged,
    not raised: training jobs then fall back to local stores themselves.

    Parameters
    ----------
    tracking : mapping or None
        The ``tracking`` config section: ``uri`` (None: :func:`default_uri`), ``experiment``.
    results_dir : path
        The run's results folder (home of the default SQLite store).
    output : path
        JSON file written atomically: ``uri``, ``experiment``, ``experiment_id``, ``reachable``.
    """
    tracking = dict(tracking or {})
    uri = tracking.get("uri") or default_uri(results_dir)
    experiment = tracking.get("experiment") or DEFAULT_EXPERIMENT
    record = {"uri": uri, "experiment": experiment, "experiment_id": None, "reachable": True}
    try:
        record["experiment_id"] = ensure_store(uri, experiment)
    except Exception as exc:  # the store is optional for training: record and go on
        log.warning("tracking store %s is not usable (%s); training runs will log locally", uri, exc)
        record.update(reachable=False, error=f"{type(exc).__name__}: {exc}")
    return write_text(output, json.dumps(record, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# runs


@dataclass(frozen=True)
class TrackingConfig:
    """Where a training run is tracked.

    Attributes
    ----------
    experiment : str
        MLflow experiment name.
    uri : str or None
        Tracking URI; None: ``MLFLOW_TRACKING_URI`` or a SQLite store in the fallback folder.
    run_name : str or None
        Run name; None lets the caller choose one.
    """

    experiment: str = DEFAULT_EXPERIMENT
    uri: str | None = None
    run_name: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrackingConfig":
        if not isinstance(d, Mapping):
            raise TypeError(f"tracking config must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"experiment", "uri", "run_name"})
        if unknown:
            raise ValueError(f"unknown tracking key(s) {unknown}; known: experiment, uri, run_name")
        return cls(**dict(d))


class Run:
    """An open tracking run; all logging methods swallow failures (see the module docstring).

    Attributes
    ----------
    run_id : str
        MLflow run id (``local-<hex>`` when only the JSON-lines record exists).
    uri : str
        Tracking URI the run lives in (the fallback store's after a fallback; ``file://...jsonl``
        for the JSON-lines record).
    fallback : bool
        True if the requested store could not be used.
    jsonl_path : Path
        The last-resort record (written only after a failure).
    """

    def __init__(self, run_name: str, fallback_dir: Path, params: dict[str, str], tags: dict[str, str]):
        self.run_name = run_name
        self.fallback_dir = Path(fallback_dir)
        self.jsonl_path = self.fallback_dir / FALLBACK_JSONL
        self.run_id = f"local-{uuid.uuid4().hex}"
        self.uri = self.jsonl_path.resolve().as_uri()
        self.experiment_id: str | None = None
        self.fallback = False
        self._params = dict(params)
        self._tags = dict(tags)
        self._client = None
        self._failed = False

    @property
    def active_store(self) -> bool:
        """True while logging goes to an MLflow store (False: JSON-lines record)."""
        return self._client is not None and not self._failed

    # -- opening

    def _open(self, uri: str, experiment: str, artifact_location: str | None) -> None:
        _prepare_sqlite(uri)
        with http_limits():
            client = _client(uri)
            experiment_id = _experiment_id(client, uri, experiment, artifact_location)
            created = client.create_run(experiment_id, run_name=self.run_name, tags=self._tags)
            _log_params(client, created.info.run_id, self._params)
        # Only a run that holds its params counts as open; otherwise the caller falls back.
        self._client, self.run_id, self.uri, self.experiment_id = client, created.info.run_id, uri, experiment_id

    # -- failure handling

    def _record(self, kind: str, **fields) -> None:
        # Appended line by line: a last-resort log must survive a crash after any line; a torn final
        # line is the only possible damage.
        self.fallback_dir.mkdir(parents=True, exist_ok=True)
        record = {"kind": kind, "run_name": self.run_name, "run_id": self.run_id, "time": time.time(), **fields}
        line = json.dumps(record, default=str)
        with open(self.jsonl_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def _fail(self, what: str, exc: BaseException) -> None:
        if not self._failed:
            log.warning(
                "tracking: %s failed on %s (%s: %s); the rest of run %s is recorded in %s",
                what, self.uri, type(exc).__name__, exc, self.run_id, self.jsonl_path,
            )
            self._failed = True
            self._record("params", params=self._params)
            self._record("tags", tags=self._tags)

    def _call(self, what: str, fn) -> bool:
        if not self.active_store:
            return False
        try:
            with http_limits():
                fn()
            return True
        except Exception as exc:  # tracking must never stop training
            self._fail(what, exc)
            return False

    # -- public logging API

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log numeric metrics at ``step`` (non-numeric values are skipped with a warning)."""
        values = {}
        for key, value in metrics.items():
            try:
                values[_truncate(str(key), MAX_KEY_LENGTH)] = float(value)
            except (TypeError, ValueError):
                log.warning("tracking: metric %r has non-numeric value %r; skipped", key, value)
        if not values:
            return
        timestamp = int(time.time() * 1000)
        step = 0 if step is None else int(step)

        def send():
            from mlflow.entities import Metric

            items = [Metric(k, v, timestamp, step) for k, v in values.items()]
            for i in range(0, len(items), _METRICS_PER_BATCH):
                self._client.log_batch(self.run_id, metrics=items[i : i + _METRICS_PER_BATCH])

        if not self._call("log_metrics", send):
            finite = {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}
            self._record("metrics", step=step, values=finite)

    def log_params(self, params: Mapping) -> None:
        """Log (nested) parameters, flattened with :func:`flatten`."""
        flat = flatten(params)
        self._params.update(flat)
        if not self._call("log_params", lambda: _log_params(self._client, self.run_id, flat)):
            self._record("params", params=flat)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set tags (values cut to MLflow's limit)."""
        clean = {_truncate(str(k), MAX_KEY_LENGTH): _truncate(str(v), MAX_TAG_VALUE_LENGTH) for k, v in tags.items()}
        self._tags.update(clean)

        def send():
            from mlflow.entities import RunTag

            self._client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in clean.items()])

        if not self._call("set_tags", send):
            self._record("tags", tags=clean)

    def log_artifact(self, path, artifact_path: str | None = None) -> None:
        """Copy a file or a folder (its contents) into the run's artifacts."""
        path = Path(path)

        def send():
            if path.is_dir():
                self._client.log_artifacts(self.run_id, str(path), artifact_path=artifact_path)
            else:
                self._client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

        if not self._call("log_artifact", send):
            self._record("artifact", path=str(path.resolve()), artifact_path=artifact_path)

    def _end(self, status: str) -> None:
        if not self._call("set_terminated", lambda: self._client.set_terminated(self.run_id, status=status)):
            self._record("end", status=status)


def _log_params(client, run_id: str, params: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i : i + _PARAMS_PER_BATCH])


def _validate_run_args(experiment, run_name, fallback_dir) -> None:
    if not isinstance(experiment, str) or not experiment:
        raise TypeError(f"experiment must be a non-empty str, got {experiment!r}")
    if not isinstance(run_name, str) or not run_name:
        raise TypeError(f"run_name must be a non-empty str, got {run_name!r}")
    if not isinstance(fallback_dir, (str, os.PathLike)):
        raise TypeError(f"fallback_dir must be a path, got {type(fallback_dir).__name__}")


@contextlib.contextmanager
def run(
    experiment: str,
    run_name: str,
    *,
    uri: str | None = None,
    params: Mapping | None = None,
    tags: Mapping | None = None,
    fallback_dir,
    artifact_location: str | None = None,
) -> Iterator[Run]:
    """Open a tracked run; on leaving, mark it FINISHED, FAILED (exception) or KILLED (Ctrl-C).

    Parameters
    ----------
    experiment : str
        Experiment name (created if missing).
    run_name : str
        Run name.
    uri : str, optional
        Tracking URI; default ``MLFLOW_TRACKING_URI`` or ``sqlite:///<fallback_dir>/mlflow.db``.
    params : mapping, optional
        Nested configuration, logged flattened (``'train.lr'``).
    tags : mapping, optional
        Tags; the git commit of the code is added as ``mlflow.source.git.commit``.
    fallback_dir : path
        Home of the fallback SQLite store and of the JSON-lines record.
    artifact_location : str, optional
        Artifact root if the experiment is created here.

    Yields
    ------
    Run

    Examples
    --------
    >>> with run("mssr", "baseline_2.250", params=cfg, fallback_dir=out) as r:  # doctest: +SKIP
    ...     r.log_metrics({"loss": 0.1}, step=1)
    """
    _validate_run_args(experiment, run_name, fallback_dir)
    fallback_dir = Path(fallback_dir)
    uri = uri or default_uri(fallback_dir)
    all_tags = {GIT_COMMIT_TAG: git_commit()}
    all_tags.update({_truncate(str(k), MAX_KEY_LENGTH): _truncate(str(v), MAX_TAG_VALUE_LENGTH)
                     for k, v in (tags or {}).items()})
    tracked = Run(run_name, fallback_dir, flatten(params or {}), all_tags)
    fallback_uri = sqlite_uri(fallback_dir)
    try:
        tracked._open(uri, experiment, artifact_location)
    except Exception as exc:
        if uri == fallback_uri:
            log.warning("tracking store %s failed (%s: %s); recording run %s in %s",
                        uri, type(exc).__name__, exc, run_name, tracked.jsonl_path)
        else:
            log.warning("tracking store %s is unreachable (%s: %s); logging run %s to %s instead",
                        uri, type(exc).__name__, exc, run_name, fallback_uri)
            tracked.fallback = True
            try:
                tracked._open(fallback_uri, experiment, None)
            except Exception as exc2:
                log.warning("fallback tracking store %s failed too (%s: %s); recording run %s in %s",
                            fallback_uri, type(exc2).__name__, exc2, run_name, tracked.jsonl_path)
        if not tracked.active_store:
            tracked.fallback = True
            tracked._failed = True
            tracked._record("params", params=tracked._params)
            tracked._record("tags", tags=tracked._tags)
    status = "FINISHED"
    try:
        yield tracked
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        tracked._end(status)


def read_jsonl(path) -> list[dict]:
    """Records of a JSON-lines fallback file.

    Records are appended one line at a time, each line written with its newline, so a crash can
    only leave a torn last line: one without its newline. That line, if it does not parse, is
    skipped. Any other line that does not parse means the file is damaged or not a record file.

    Parameters
    ----------
    path : path
        The JSON-lines file.

    Returns
    -------
    list of dict
        One record per complete line.

    Raises
    ------
    ValueError
        A line other than a torn last one is not valid JSON; the message names the file and the
        line number (1-based).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    # With a final newline the split ends in "" (nothing torn); otherwise the last piece is the
    # line whose newline was never written.
    torn = lines.pop() if lines else ""
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not a JSON record ({exc.msg}); the file is damaged") from exc
    if torn.strip():
        try:
            records.append(json.loads(torn))
        except json.JSONDecodeError:
            log.warning("%s: skipped the torn last line %d (%d characters)", path, len(lines) + 1, len(torn))
    return records


# ---------------------------------------------------------------------------------------------
# evaluation runs

_METRIC_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-. /:]")


def metric_key(*parts) -> str:
    """An MLflow metric name from its parts, joined by ``.``: ``metric_key('mse', 'mssr', '1.500')``.

    MLflow allows letters, digits, ``_ - . space / :`` in names; other characters become ``_``.
    """
    return _truncate(".".join(_METRIC_NAME_BAD.sub("_", str(p)) for p in parts if p is not None and p != ""),
                     MAX_KEY_LENGTH)


def evaluation_metrics(summary) -> dict[str, float]:
    """Summary metrics as MLflow metrics: ``<testset>.<method>.<factor>.<metric>`` -> value.

    Each summary row (:func:`mssr.evaluation.tables.summarize`) gives its value and, beside it,
    ``...<metric>.ci_low`` and ``...<metric>.ci_high``; NaN values are left out. The factor is
    written with three decimals (``1.500``).
    """
    values: dict[str, float] = {}
    for row in summary.to_dict("records"):
        factor = row.get("factor")
        label = f"{float(factor):.3f}" if factor is not None and factor == factor else None
        base = metric_key(row.get("testset"), row.get("method"), label, row["metric"])
        for suffix, column in (("", "mean"), (".ci_low", "ci_low"), (".ci_high", "ci_high")):
            value = row.get(column)
            if value is not None and math.isfinite(float(value)):
                values[base + suffix] = float(value)
    return values


def model_run_tags(metrics_table) -> dict[str, str]:
    """Tags linking an evaluation to the training runs of the models it scored.

    ``model_run.<method>`` (or ``model_run.<method>.<factor>`` where one method has one model
    per factor, as the baselines) -> the MLflow run id recorded in the prediction files.
    """
    if "mlflow_run_id" not in metrics_table.columns:
        return {}
    scored = metrics_table[["method", "factor", "mlflow_run_id"]].dropna().drop_duplicates()
    scored = scored[scored["mlflow_run_id"].astype(str).str.len() > 0]
    tags = {}
    for method, group in scored.groupby("method", sort=True):
        runs = sorted(set(group["mlflow_run_id"].astype(str)))
        if len(runs) == 1:
            tags[f"model_run.{method}"] = runs[0]
        else:
            for row in group.itertuples(index=False):
                tags[f"model_run.{method}.{float(row.factor):.3f}"] = str(row.mlflow_run_id)
    return tags


def log_evaluation(
    summary,
    *,
    metrics_table=None,
    artifacts=(),
    params: Mapping | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
    fallback_dir,
    run_name: str = "evaluation",
) -> str | None:
    """Log one evaluation as an MLflow run: summary metrics, links to the models, the tables.

    Call it after the tables are written: it never raises (a tracking failure is logged as a
    warning and the tables stay where they are), so no evaluation is lost to tracking.

    Parameters
    ----------
    summary : DataFrame
        :func:`mssr.evaluation.tables.summarize` output; logged by :func:`evaluation_metrics`.
    metrics_table : DataFrame, optional
        The per-spectrum table; its ``mlflow_run_id`` column links the model runs
        (:func:`model_run_tags`), and its test sets, methods and factors are logged as params.
    artifacts : sequence of path
        Files copied into the run's ``tables/`` artifacts.
    params : mapping, optional
        Configuration of the evaluation (e.g. the ``metrics`` section), logged flattened.
    experiment, uri, fallback_dir, run_name
        As in :func:`run`.

    Returns
    -------
    str or None
        The run id (``local-...`` for a JSON-lines record), None if even that failed.
    """
    try:
        tags = {"mssr.kind": "evaluation"}
        all_params = {"evaluation": dict(params or {})}
        if metrics_table is not None:
            tags.update(model_run_tags(metrics_table))
            for column in ("testset", "method", "factor"):
                if column in metrics_table.columns:
                    all_params[f"scored.{column}s"] = sorted({str(v) for v in metrics_table[column].dropna()})
            if "protein" in metrics_table.columns:
                all_params["scored.n_proteins"] = int(metrics_table["protein"].nunique())
        with run(experiment, run_name, uri=uri, params=all_params, tags=tags, fallback_dir=fallback_dir) as tracked:
            tracked.log_metrics(evaluation_metrics(summary))
            for path in artifacts:
                tracked.log_artifact(path, artifact_path="tables")
        return tracked.run_id
    except Exception as exc:  # the tables are written already; tracking is a copy
        log.warning("tracking: logging the evaluation failed (%s: %s); the tables are unaffected",
                    type(exc).__name__, exc)
        return None
