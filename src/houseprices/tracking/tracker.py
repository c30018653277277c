"""The run tree of one pipeline execution: a pipeline run (the unit of comparison, with
the params that trained it and the headline metrics), a child per stage or model, a
grandchild per fold or trial.

Every stage of one ``dvc repro`` / ``dvc exp run`` logs under one pipeline run, found
again through a shared pipeline-run id. :meth:`Tracker.open` is the one place where a
stage connects to the store; with tracking off it returns a :class:`NullTracker`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from houseprices.errors import TrackingError
from houseprices.tracking.failures import as_tracking_error, fail_fast_on_store_error
from houseprices.tracking.lifecycle import owner_tags, prepare_store
from houseprices.tracking.lineage import lineage_tags, pipeline_run_id, pipeline_run_name
from houseprices.tracking.packaging import log_price_model
from houseprices.tracking.registry import PREDICTIONS_TAG, VERSION_LINEAGE, crown, describe_version
from houseprices.tracking.runlog import NullRun, RunLog, flatten
from houseprices.tracking.store import (
    check_reachable,
    ensure_experiment,
    in_workspace,
    opened_once,
    repo_root,
    tracking_uri,
)
from houseprices.tracking.tags import KIND_TAG, PIPELINE_RUN_TAG
from houseprices.util.database import bound_database_waits
from houseprices.util.timing import around, section, timed


def _client_and_experiment(uri: str, experiment: str, root: Path) -> tuple[MlflowClient, str]:
    """The client (its first use creates a new store's schema) and the experiment's id."""
    client = MlflowClient(uri)
    return client, ensure_experiment(client, uri, experiment, root)


def connect(params, root: Path | None = None) -> tuple[MlflowClient, str]:
    """A client for ``params.tracking`` and the experiment's id; raises TrackingError
    (naming the URI) when the store cannot be used."""
    cfg = params.tracking
    root = root or repo_root()
    uri = tracking_uri(cfg.uri, root)
    bound_database_waits()
    try:
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        client, experiment_id = opened_once(uri, lambda: _client_and_experiment(uri, cfg.experiment, root))
        mlflow.set_experiment(experiment_id=experiment_id)
        prepare_store(uri, root, cfg.experiment)  # moved repo, stale RUNNING runs
    except Exception as err:  # noqa: BLE001 - every store failure becomes one TrackingError
        raise as_tracking_error(err, uri) from None
    return client, experiment_id


def pipeline_params(params) -> dict[str, object]:
    """What trained the pipeline, with readable flat names: ``seed``, ``cv.*``,
    ``features.*``, ``ensemble.*`` and each member's params as ``<member>.<param>``."""
    members = {m: params.model(m).model_dump(mode="json") for m in params.ensemble_members}
    return flatten(
        {
            "seed": params.seed,
            "cv": params.cv.model_dump(mode="json"),
            "features": params.features.model_dump(mode="json"),
            "ensemble": params.ensemble.model_dump(mode="json"),
            **members,
        }
    )


class Tracker:
    """One stage's view of MLflow."""

    enabled = True

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        tracking_cfg,
        lineage: dict[str, str],
        run_params: Mapping[str, object],
    ):
        self.client = client
        self.experiment_id = experiment_id
        self.cfg = tracking_cfg
        self.lineage = lineage
        self.run_params = run_params
        # Walking the process tree and searching the store happen once per stage.
        self.pipeline_id = pipeline_run_id()
        self._parent_id: str | None = None

    @classmethod
    @timed("tracking")
    def open(cls, params, params_file: Path | str = "params.yaml", root: Path | None = None) -> Tracker | NullTracker:
        """Tracker for ``params.tracking``; fails fast (naming the URI) when the store is
        unreachable, or warns and returns a :class:`NullTracker` if ``tracking.required`` is false."""
        try:
            client, experiment_id = connect(params, root)
        except TrackingError as error:
            if params.tracking.required:
                raise
            warnings.warn(f"{error}; training without tracking (tracking.required is false)", stacklevel=2)
            return NullTracker()
        lineage = lineage_tags(Path.cwd(), Path(params_file), [params.data.train, params.data.test])
        lineage.update(owner_tags())  # host and pid: a run left RUNNING by a killed process is closed later
        return cls(client, experiment_id, params.tracking, lineage, pipeline_params(params))

    @timed("tracking")
    def _pipeline_parent(self) -> str:
        """The pipeline run's id, looked up (or created with lineage and params) once."""
        if self._parent_id is None:
            found = self.client.search_runs(
                [self.experiment_id],
                f"tags.`{PIPELINE_RUN_TAG}` = '{self.pipeline_id}' and tags.`{KIND_TAG}` = 'pipeline'",
                max_results=1,
            )
            if found:
                self._parent_id = found[0].info.run_id
            else:
                run = self.client.create_run(
                    self.experiment_id,
                    run_name=pipeline_run_name(self.lineage),
                    tags={**self.lineage, PIPELINE_RUN_TAG: self.pipeline_id, KIND_TAG: "pipeline"},
                )
                self._parent_id = run.info.run_id
                self._run_log(self._parent_id).log_params(self.run_params)
        return self._parent_id

    def _run_log(self, run_id: str) -> RunLog:
        return RunLog(self.client, run_id, self._log_model if self.cfg.log_models else None)

    @contextlib.contextmanager
    def stage_run(self, name: str, kind: str, params: Mapping[str, object] | None = None) -> Iterator[RunLog]:
        """A child of the pipeline run (created on first use) for one stage or model."""
        parent_id = self._pipeline_parent()
        tags = {KIND_TAG: kind, PIPELINE_RUN_TAG: self.pipeline_id, **self.lineage}
        with around("tracking", mlflow.start_run(run_id=parent_id)):
            with around("tracking", mlflow.start_run(run_name=name, nested=True, tags=tags)) as run, self._fail_fast():
                log = self._run_log(run.info.run_id)
                log.log_params(params or {})
                yield log

    @contextlib.contextmanager
    def top_run(self, name: str, kind: str, params: Mapping[str, object] | None = None) -> Iterator[RunLog]:
        """A run of its own, outside any pipeline run (a search: its trials are its children)."""
        with (
            around("tracking", mlflow.start_run(run_name=name, tags={KIND_TAG: kind, **self.lineage})) as run,
            self._fail_fast(),
        ):
            log = self._run_log(run.info.run_id)
            log.log_params(params or {})
            yield log

    @contextlib.contextmanager
    def child_run(self, name: str, kind: str, params: Mapping[str, object] | None = None) -> Iterator[RunLog]:
        """A child of the current stage run (a fold, a trial), live while the block runs."""
        with (
            around("tracking", mlflow.start_run(run_name=name, nested=True, tags={KIND_TAG: kind})) as run,
            self._fail_fast(),
        ):
            log = self._run_log(run.info.run_id)
            log.log_params(params or {})
            yield log

    @contextlib.contextmanager
    def finished_child_run(
        self, name: str, kind: str, params: Mapping[str, object], started: float, ended: float
    ) -> Iterator[RunLog]:
        """A child of the current run for work done elsewhere (a fold fit in a worker process),
        spanning that work's own start and end (epoch seconds), not the logging's."""
        parent = mlflow.active_run()
        with section("tracking"), self._fail_fast():
            run = self.client.create_run(
                parent.info.experiment_id,
                start_time=int(started * 1000),
                tags={MLFLOW_PARENT_RUN_ID: parent.info.run_id, KIND_TAG: kind},
                run_name=name,
            )
            run_id = run.info.run_id
            log = self._run_log(run_id)
            log.log_params(params)
            try:
                yield log
            except BaseException:
                self.client.set_terminated(run_id, "FAILED")
                raise
            self.client.set_terminated(run_id, "FINISHED", end_time=int(ended * 1000))

    def _fail_fast(self):
        return fail_fast_on_store_error(self.client.tracking_uri)

    @timed("tracking")
    def set_parent_metrics(self, metrics: Mapping[str, float]) -> None:
        """Headline metrics on the pipeline run, for side-by-side comparison."""
        self._run_log(self._pipeline_parent()).log_metrics(metrics)

    def _log_model(
        self, model, rows, *, register: bool, description: str, version_tags: dict[str, str], member_files=None
    ):
        name = self.cfg.registered_model if register else ""
        info = log_price_model(model, rows, registered_name=name or None, member_files=member_files)
        version = getattr(info, "registered_model_version", None)
        if version is not None:
            describe_version(
                self.client,
                name,
                str(version),
                description,
                {
                    **{k: self.lineage.get(k, "") for k in VERSION_LINEAGE},
                    PIPELINE_RUN_TAG: self.pipeline_id,
                    **version_tags,
                },
            )
        return version

    @timed("tracking")
    def crown(self, predictions: Path, submission: Path) -> None:
        """Mark the registered version behind ``submission`` (see :mod:`.registry`)."""
        if self.cfg.registered_model and self.cfg.log_models:
            crown(
                self.client,
                self.cfg.registered_model,
                Path(predictions),
                Path(submission),
                pipeline_tag=(PIPELINE_RUN_TAG, self.pipeline_id),
                workspace=in_workspace(),
            )


class NullTracker:
    """Tracking off: the same interface, nothing logged."""

    enabled = False
    pipeline_id = ""

    @contextlib.contextmanager
    def stage_run(self, name: str, kind: str, params: Mapping[str, object] | None = None) -> Iterator[NullRun]:
        yield NullRun()

    @contextlib.contextmanager
    def child_run(self, name: str, kind: str, params: Mapping[str, object] | None = None) -> Iterator[NullRun]:
        yield NullRun()

    top_run = child_run

    @contextlib.contextmanager
    def finished_child_run(self, name: str, kind: str, params, started: float, ended: float) -> Iterator[NullRun]:
        yield NullRun()

    def set_parent_metrics(self, metrics: Mapping[str, float]) -> None:
        pass

    def crown(self, predictions: Path, submission: Path) -> None:
        pass


__all__ = ["PREDICTIONS_TAG", "NullTracker", "Tracker", "connect", "pipeline_params"]
