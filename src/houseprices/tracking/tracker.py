"""The run tree of one pipeline execution: a pipeline run (the unit of comparison, with the
params that trained it and the headline metrics; every stage of one ``dvc repro`` finds it
again through a shared id), a child per stage or model, a grandchild per fold or trial.

:meth:`Tracker.open` is where a stage connects to the store. When the store fails (at the start
or mid-stage) the stage fails with one line; with ``tracking.required: false`` it warns once and
goes on with the tracker off, every later call doing nothing: stages never ask about tracking.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from houseprices.errors import TrackingError
from houseprices.paths import in_workspace, repo_root
from houseprices.tracking import lifecycle
from houseprices.tracking.failures import StoreError, first_line, sqlite_path, translate
from houseprices.tracking.lineage import lineage_tags, pipeline_run_id, pipeline_run_name
from houseprices.tracking.packaging import log_price_model
from houseprices.tracking.registry import VERSION_LINEAGE, crown, describe_version
from houseprices.tracking.store import check_reachable, ensure_experiment, tracking_uri
from houseprices.tracking.tags import KIND_TAG, PARENT_TAG, PIPELINE_RUN_TAG
from houseprices.util.database import bound_database_waits, created_by_one
from houseprices.util.files import on_commit, staged
from houseprices.util.processes import held_signals

PIPELINE = "pipeline"  # ``Tracker.run``'s parent for a stage: the pipeline run


def connect(params, root: Path | None = None) -> tuple[MlflowClient, str]:
    """A client for ``params.tracking`` and the experiment's id, the store made ready (a moved
    repo's artifact root, stale RUNNING runs); raises TrackingError naming the URI."""
    root = root or repo_root()
    uri = tracking_uri(params.tracking.uri, root)
    bound_database_waits()
    try:
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)

        def open_store() -> tuple[MlflowClient, str]:  # its first use creates a new store's schema
            client = MlflowClient(uri)
            return client, ensure_experiment(client, uri, params.tracking.experiment, root)

        client, experiment_id = created_by_one(sqlite_path(uri), open_store)
        mlflow.set_experiment(experiment_id=experiment_id)
        lifecycle.relocate_artifact_root(uri, root)
        lifecycle.close_stale_runs(client, experiment_id)
    except Exception as err:  # noqa: BLE001 - every store failure becomes one TrackingError
        found = translate(err, uri)
        raise found if isinstance(found, TrackingError) else StoreError(str(found or first_line(err, uri))) from None
    return client, experiment_id


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, object]:
    """{'mlp': {'lr': 1}} -> {'mlp.lr': 1}: MLflow params are flat, named by their dotted path."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        flat.update(flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping) else {f"{prefix}{key}": value})
    return flat


def _tracked(method):
    """A tracker call that does nothing while tracking is off, and turns a store failure into
    the stage's one-line error (or, when tracking is not required, into tracking off)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        tracker = getattr(self, "tracker", self)
        if tracker.off or getattr(self, "run_id", "-") is None:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            error = translate(err, tracker.client.tracking_uri)
            if not isinstance(error, TrackingError):
                raise
            tracker.failed(error)
            return None

    return call


class Tracker:
    """One stage's view of MLflow (see the module doc)."""

    def __init__(self, params, client: MlflowClient | None = None, experiment_id: str = "", lineage=None):
        self.cfg = params.tracking
        self.client, self.experiment_id = client, experiment_id
        self.off = client is None
        self.lineage = lineage or {}
        # What trained the pipeline, by readable names: seed, cv.*, features.*, ensemble.*, <member>.<param>
        members = {m: params.model(m).model_dump(mode="json") for m in params.ensemble_members}
        sections = {s: getattr(params, s).model_dump(mode="json") for s in ("cv", "features", "ensemble")}
        self.run_params = flatten({"seed": params.seed, **sections, **members})
        self.pipeline_id = pipeline_run_id() if client else ""  # walks the process tree: once per stage
        self.pipeline_run = ""  # its MLflow run, once a stage run opened it
        self.context = resolve_tags() if client else {}  # MLflow's own tags (user, source, git): once, not per run

    @classmethod
    def open(cls, params, params_file: Path | str = "params.yaml", root: Path | None = None) -> Tracker:
        try:
            client, experiment_id = connect(params, root)
        except TrackingError as error:
            tracker = cls(params)
            tracker.failed(error)
            return tracker
        lineage = lineage_tags(Path.cwd(), Path(params_file), [params.data.train, params.data.test])
        lineage.update(lifecycle.owner_tags())  # host and pid: a run left RUNNING by a killed process is closed later
        return cls(params, client, experiment_id, lineage)

    def failed(self, error: TrackingError) -> None:
        """A store failure: the stage's error, or with ``tracking.required: false`` tracking off."""
        if self.cfg.required:  # the runs still open end with one short try each
            os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="2")
            raise error
        warnings.warn(f"{error}; training without tracking (tracking.required is false)", stacklevel=3)
        self.off = True

    @_tracked
    @held_signals()
    def _start(self, name: str, kind: str, parent, span) -> list[str]:
        """Open the run (and, for a stage, the pipeline run, created with lineage and params by
        the first stage of the pipeline execution): their ids, the newest last."""
        tags, opened = {**self.context, KIND_TAG: kind}, []
        if parent == PIPELINE:
            query = f"tags.`{PIPELINE_RUN_TAG}` = '{self.pipeline_id}' and tags.`{KIND_TAG}` = 'pipeline'"
            found = self.client.search_runs([self.experiment_id], query, max_results=1)
            tags.update({PIPELINE_RUN_TAG: self.pipeline_id, **self.lineage})
            if found:
                parent = found[0].info.run_id
                self.client.update_run(parent, "RUNNING")
            else:
                run_name, pipeline_tags = pipeline_run_name(self.lineage), {**tags, KIND_TAG: "pipeline"}
                parent = self.client.create_run(self.experiment_id, run_name=run_name, tags=pipeline_tags).info.run_id
                RunLog(self, parent).log_params(self.run_params)
            lifecycle.OPEN_RUNS.append((self.client, parent))
            opened.append(parent)
            self.pipeline_run = parent
        elif parent is None:
            tags.update(self.lineage)
        if parent:
            tags[PARENT_TAG] = parent if isinstance(parent, str) else parent.run_id
        started = int(span[0] * 1000) if span else None
        run = self.client.create_run(self.experiment_id, start_time=started, tags=tags, run_name=name)
        lifecycle.OPEN_RUNS.append((self.client, run.info.run_id))
        return [*opened, run.info.run_id]

    @_tracked
    @held_signals()
    def _end(self, run_ids: list[str], status: str, ended: float | None = None) -> None:
        for run_id in reversed(run_ids):
            if (self.client, run_id) in lifecycle.OPEN_RUNS:  # not when a signal ended it already
                lifecycle.OPEN_RUNS.remove((self.client, run_id))
                end = int(ended * 1000) if ended and run_id == run_ids[-1] else None
                self.client.set_terminated(run_id, status, end_time=end)

    @contextlib.contextmanager
    def run(self, name: str, kind: str, params=None, *, parent=PIPELINE, span=None) -> Iterator[RunLog]:
        """A run live while the block runs, with ``params`` (nested ones flattened): a stage's
        child of the pipeline run (``parent`` PIPELINE), a child of another run (a fold, a trial)
        or a run of its own (None: a search). ``span``, (start, end) in epoch seconds: work done
        elsewhere (a fold fit in a worker process), which the run spans instead of the logging."""
        ids = self._start(name, kind, parent, span) or []
        log = RunLog(self, ids[-1] if ids else None)
        log.log_params(flatten(params or {}))
        try:
            yield log
        except BaseException:
            with contextlib.suppress(Exception):
                self._end(ids, "FAILED")
            raise
        # A stage's (or a search's) own run finishes when its outputs land: the runner's commit.
        if parent not in (PIPELINE, None) or not on_commit(lambda: self._end(ids, "FINISHED")):
            self._end(ids, "FINISHED", span[1] if span else None)

    @_tracked
    def set_parent_metrics(self, metrics: Mapping[str, float]) -> None:
        """Headline metrics on the pipeline run (a stage's run opened it), for side-by-side comparison."""
        RunLog(self, self.pipeline_run).log_metrics(metrics)

    @_tracked
    def crown(self, predictions: Path, submission: Path) -> None:
        """Mark the registered version behind ``submission`` (see :mod:`.registry`)."""
        if self.cfg.registered_model and self.cfg.log_models:
            crown(self.client, self.cfg.registered_model, predictions, submission, self.pipeline_id, in_workspace())


class RunLog:
    """Writes to one run by id (``log_batch`` splits into MLflow's per-call limits)."""

    def __init__(self, tracker: Tracker, run_id: str | None):
        self.tracker, self.run_id = tracker, run_id

    @_tracked
    def log_params(self, params: Mapping[str, object]) -> None:
        if params:
            texts = {k: ("" if v is None else str(v))[:6000] for k, v in params.items()}
            self.tracker.client.log_batch(self.run_id, params=[Param(k, v) for k, v in texts.items()])

    def log_metrics(self, metrics: Mapping[str, float], tags: Mapping[str, object] | None = None) -> None:
        self.log_steps(((k, v, 0) for k, v in metrics.items()), tags)

    @_tracked
    def log_steps(self, metrics: Iterable[tuple[str, float, int]], tags: Mapping[str, object] | None = None) -> None:
        """(key, value, step) metrics and tags in one ``log_batch`` (one store write, not one each)."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v, step in metrics]
        tags = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        if metrics or tags:
            self.tracker.client.log_batch(self.run_id, metrics, tags=tags)

    @_tracked
    def log_artifacts(self, paths: Iterable[Path | str], folder: str | None = None) -> None:
        for path in paths:
            self.tracker.client.log_artifact(self.run_id, str(staged(path)), folder)

    @_tracked
    def log_dict(self, data: object, name: str) -> None:
        self.tracker.client.log_dict(self.run_id, data, name)

    @_tracked
    def log_model(self, model, rows, *, member_files: Mapping[str, Path], packages, description, version_tags):
        """Log ``model`` (a PriceModel whose members, ``member_files``, load with it and import
        ``packages``) on this run and register it as a new version tagged with its lineage."""
        tracker = self.tracker
        if not tracker.cfg.log_models:
            return None
        name = tracker.cfg.registered_model
        info = log_price_model(model, rows, self.run_id, name or None, member_files, packages)
        version = getattr(info, "registered_model_version", None)
        if version is not None:
            lineage = {k: tracker.lineage.get(k, "") for k in VERSION_LINEAGE}
            tags = {**lineage, PIPELINE_RUN_TAG: tracker.pipeline_id, **version_tags}
            describe_version(tracker.client, name, str(version), description, tags)
        return version
