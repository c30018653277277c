"""Every MLflow run a stage opens ends FINISHED, FAILED or KILLED, and its store is ready.

The runs a process opens are kept here, so a signal ends them as KILLED (the runner). SIGKILL
cannot be caught: each run carries its owner (host, pid, start time), and the next stage that
opens the store ends as KILLED the RUNNING runs of this host whose owner is gone (runs of other
hosts are left alone). A repository copied or moved with its ``mlflow.db`` logs into its own
``mlruns/``."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from houseprices.tracking import tags as tag
from houseprices.tracking.failures import sqlite_path
from houseprices.util.processes import dvc_run_alive, process_alive, started_ms

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)
OPEN_RUNS: list[tuple[MlflowClient, str]] = []  # (client, run id): the runs this process opened and has not ended


def end_open_runs(status: str) -> None:
    """End every run this process opened, the newest first; a failing store is left to the
    next stage's :func:`close_stale_runs`."""
    while OPEN_RUNS:
        client, run_id = OPEN_RUNS.pop()
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, status)


def owner_tags() -> dict[str, str]:
    """Who owns the runs this process opens; checked by :func:`close_stale_runs`."""
    pid = os.getpid()
    return {
        tag.OWNER_HOST: socket.gethostname(),
        tag.OWNER_PID: str(pid),
        tag.OWNER_STARTED: str(started_ms(pid) or 0),
        tag.THREADS_TAG: os.environ.get("OMP_NUM_THREADS", ""),
    }


def _owner_gone(tags: dict[str, str], host: str) -> bool:
    """True for runs of this host whose owner process is gone (False when it cannot be told;
    a pipeline run is held by the ``dvc`` process whose later stages may still come)."""
    if tags.get(tag.OWNER_HOST) != host or not tags.get(tag.OWNER_PID, "").isdigit():
        return False
    if tags.get(tag.KIND_TAG) == "pipeline" and dvc_run_alive(tags.get(tag.PIPELINE_RUN_TAG, "")):
        return False
    started = tags.get(tag.OWNER_STARTED, "0")
    return not process_alive(int(tags[tag.OWNER_PID]), int(started) if started.isdigit() else None)


def close_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """End as KILLED the RUNNING runs whose owner process on this host is gone, and the
    untagged RUNNING runs below them (folds, trials); returns their ids."""
    host = socket.gethostname()
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
    by_id = {r.info.run_id: r.data.tags for r in running}
    stale = {rid for rid, tags in by_id.items() if _owner_gone(tags, host)}
    while more := {
        r for r, t in by_id.items() if r not in stale and tag.OWNER_PID not in t and t.get(tag.PARENT_TAG) in stale
    }:
        stale |= more
    ids = sorted(stale)
    for rid in ids:
        client.set_terminated(rid, "KILLED")
    if ids:
        logger.warning(
            "ended %d MLflow run(s) left RUNNING by a process that is gone as KILLED: %s", len(ids), ", ".join(ids)
        )
    return ids


def relocate_artifact_root(uri: str, root: Path) -> list[tuple[str, str]]:
    """A copied or moved repo logs into its own ``mlruns/``: in the repo's default store
    (``sqlite:///<root>/mlflow.db``) every artifact location under another folder's ``mlruns/``
    is rewritten to this repo's, through MLflow's own table models, so new runs land here and
    earlier runs' artifacts are read from the copied ``mlruns/``. Returns the (old, new) roots."""
    db = sqlite_path(uri)
    if db is None or db.resolve() != (root / "mlflow.db").resolve() or not db.is_file():
        return []
    import sqlalchemy as sa
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion
    from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlLoggedModel, SqlRun

    new = (root / "mlruns").resolve().as_uri()
    columns = (
        SqlExperiment.artifact_location,
        SqlRun.artifact_uri,
        SqlLoggedModel.artifact_location,
        SqlModelVersion.source,
        SqlModelVersion.storage_location,
    )
    engine = sa.create_engine(uri)
    try:
        with engine.begin() as con:
            moves = sorted({_foreign_root(loc, new) for loc in con.scalars(sa.select(columns[0]))} - {None})
            for old, column in itertools.product(moves, columns):
                moved = sa.func.substr(column, 1, len(old)) == old
                con.execute(
                    sa.update(column.class_).where(moved).values({column: new + sa.func.substr(column, len(old) + 1)})
                )
    finally:
        engine.dispose()
    for old in moves:
        logger.warning("%s: artifact root moved from %s to %s (this repo was copied or moved)", db, old, new)
    return [(old, new) for old in moves]


def _foreign_root(location: str | None, new: str) -> str | None:
    """``file:///other/repo/mlruns`` of a location under another repo's ``mlruns/`` (MLflow's
    unused Default experiment, a plain path, stays as it is)."""
    head, sep, rest = (location or "").partition("/mlruns")
    old = head + sep
    return old if head.startswith("file:") and sep and old != new and rest[:1] in ("", "/") else None
