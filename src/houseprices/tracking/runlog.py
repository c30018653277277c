"""One MLflow run as stages see it: params, metrics, tags, artifacts, models.

:class:`RunLog` writes to a run by id; :class:`NullRun` has the same methods and does
nothing, so stage code never asks whether tracking is on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from houseprices.util.timing import timed

CURVE_KEYS = ("train_loss", "valid_loss", "holdout_loss")
# MlflowClient.log_batch limits per call.
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, object]:
    """{'mlp': {'lr': 1}} -> {'mlp.lr': 1}: MLflow params are flat."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def param_text(value: object) -> str:
    return ("" if value is None else str(value))[:6000]


def log_batch(
    client: MlflowClient, run_id: str, *, metrics: list[Metric] = (), params: list[Param] = (), tags: list[RunTag] = ()
) -> None:
    """``log_batch`` in chunks that respect MLflow's per-call limits."""
    for field, items in (("metrics", list(metrics)), ("params", list(params)), ("tags", list(tags))):
        size = BATCH_LIMITS[field]
        for start in range(0, len(items), size):
            client.log_batch(run_id, **{field: items[start : start + size]})


def log_params(params: Mapping[str, object], run_id: str | None = None) -> None:
    """Params on ``run_id``, or on the active run (kept for stages that use MLflow's fluent API)."""
    import mlflow

    run_id = run_id or mlflow.active_run().info.run_id
    log_batch(MlflowClient(), run_id, params=[Param(k, param_text(v)) for k, v in params.items()])


def curve_metrics(curves: pd.DataFrame) -> list[tuple[str, float, int]]:
    """(key, value, epoch) for each finite loss of one fold's curve: the same keys in every
    fold run (the fold is the run, not part of the key)."""
    out = []
    for row in curves.itertuples():
        for key in CURVE_KEYS:
            value = float(getattr(row, key, np.nan))
            if np.isfinite(value):
                out.append((key, value, int(row.epoch)))
    return out


class RunLog:
    """Writes to one run by id through the client (no reliance on the active-run stack)."""

    def __init__(self, client: MlflowClient, run_id: str, model_logger=None):
        self.client = client
        self.run_id = run_id
        self._model_logger = model_logger

    @timed("tracking")
    def log_params(self, params: Mapping[str, object]) -> None:
        log_batch(self.client, self.run_id, params=[Param(k, param_text(v)) for k, v in params.items()])

    @timed("tracking")
    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        log_batch(self.client, self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    @timed("tracking")
    def log_curves(self, curves: pd.DataFrame) -> None:
        """Per-epoch losses as step metrics (step = epoch)."""
        now = int(time.time() * 1000)
        log_batch(self.client, self.run_id, metrics=[Metric(k, v, now, step) for k, v, step in curve_metrics(curves)])

    @timed("tracking")
    def set_tags(self, tags: Mapping[str, object]) -> None:
        log_batch(self.client, self.run_id, tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()])

    @timed("tracking")
    def log_step_metrics(
        self, metrics: Iterable[tuple[str, float, int]], tags: Mapping[str, object] | None = None
    ) -> None:
        """(key, value, step) metrics and tags in one ``log_batch`` (one store write, not one each)."""
        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), now, step) for k, v, step in metrics],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    @timed("tracking")
    def log_artifacts(self, paths: Iterable[Path | str], folder: str | None = None) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), folder)

    @timed("tracking")
    def log_dict(self, data: object, name: str) -> None:
        self.client.log_dict(self.run_id, data, name)

    @timed("tracking")
    def log_model(
        self,
        model,
        rows: pd.DataFrame,
        *,
        register: bool = False,
        description: str = "",
        version_tags: Mapping[str, str] | None = None,
        member_files: Mapping[str, Path] | None = None,
    ):
        """Log ``model`` (a PriceModel) on this run; with ``register``, also as a new
        registered version. ``member_files``: its members as the files they were saved to,
        loaded with the model (``model.members`` may then be empty). Returns the version (or None)."""
        if self._model_logger is None:
            return None
        return self._model_logger(
            model,
            rows,
            register=register,
            description=description,
            version_tags=dict(version_tags or {}),
            member_files=member_files,
        )


class NullRun:
    """What stages get when tracking is off: every method accepts the call and does nothing."""

    run_id = ""

    def log_params(self, params: Mapping[str, object]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        pass

    def log_curves(self, curves: pd.DataFrame) -> None:
        pass

    def set_tags(self, tags: Mapping[str, object]) -> None:
        pass

    def log_step_metrics(
        self, metrics: Iterable[tuple[str, float, int]], tags: Mapping[str, object] | None = None
    ) -> None:
        pass

    def log_artifacts(self, paths: Iterable[Path | str], folder: str | None = None) -> None:
        pass

    def log_dict(self, data: object, name: str) -> None:
        pass

    def log_model(
        self,
        model,
        rows: pd.DataFrame,
        *,
        register: bool = False,
        description: str = "",
        version_tags: Mapping[str, str] | None = None,
        member_files: Mapping[str, Path] | None = None,
    ):
        return None
