"""Every MLflow run a stage opens ends FINISHED, FAILED or KILLED.

- SIGINT and SIGTERM end the open runs as KILLED, then exit 130 / 143.
- SIGKILL cannot be caught: each run carries its owner (host, pid, process start time),
  and the next stage that opens the store (``Tracker.open``) ends as KILLED the RUNNING
  runs of this host whose owner process is gone, with their untagged children (folds,
  trials). Runs of other hosts are left alone: their liveness cannot be checked here.
- A store that fails mid-stage: exit 2 with one line (see :mod:`houseprices.tracking.failures`),
  or, with ``tracking.required: false``, the stage is run again without tracking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator

from houseprices.errors import TrackingError
from houseprices.tracking.failures import relocate_artifact_root
from houseprices.tracking.tags import (
    KIND_TAG,
    OWNER_HOST,
    OWNER_PID,
    OWNER_STARTED,
    PARENT_TAG,
    PIPELINE_RUN_TAG,
    THREADS_TAG,
)

logger = logging.getLogger(__name__)

TRACKING_OFF_ENV = "HOUSEPRICES_TRACKING_OFF"


# ------------------------------------------------------------------- owners
def _started_ms(pid: int) -> int | None:
    import psutil

    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except (psutil.Error, OSError):
        return None


def owner_tags() -> dict[str, str]:
    """Who owns the runs this process opens; checked by :func:`close_stale_runs`."""
    return {
        OWNER_HOST: socket.gethostname(),
        OWNER_PID: str(os.getpid()),
        OWNER_STARTED: str(_started_ms(os.getpid()) or 0),
        THREADS_TAG: os.environ.get("OMP_NUM_THREADS", ""),
    }


def process_alive(pid: int, started_ms: int | None) -> bool:
    """Alive and the same process (a recycled pid has a later start time)."""
    now = _started_ms(pid)
    if now is None:
        return False
    return not started_ms or abs(now - started_ms) < 2000


def _dvc_alive(pipeline_id: str, host: str) -> bool:
    """Pipeline ids ``dvc-<host>-<pid>-<start ms>`` name the ``dvc`` process running the stages."""
    head, _, rest = pipeline_id.partition(f"dvc-{host}-")
    pid, _, started = rest.partition("-")
    return not head and pid.isdigit() and started.isdigit() and process_alive(int(pid), int(started))


def _owner_gone(tags: dict[str, str], host: str) -> bool | None:
    """True/False for runs of this host with an owner tag; None when it cannot be told."""
    if tags.get(OWNER_HOST) != host or not tags.get(OWNER_PID, "").isdigit():
        return None
    if tags.get(KIND_TAG) == "pipeline" and _dvc_alive(tags.get(PIPELINE_RUN_TAG, ""), host):
        return False  # a later stage of the same `dvc repro` may hold it
    started = tags.get(OWNER_STARTED, "0")
    return not process_alive(int(tags[OWNER_PID]), int(started) if started.isdigit() else None)


def close_stale_runs(client, experiment_id: str) -> list[str]:
    """End as KILLED the RUNNING runs whose owner process on this host is gone, and the
    untagged RUNNING runs below them; returns their ids."""
    host = socket.gethostname()
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
    by_id = {r.info.run_id: r for r in running}
    stale = {rid for rid, r in by_id.items() if _owner_gone(r.data.tags, host)}
    changed = True
    while changed:  # untagged descendants (fold and trial runs) follow their parent
        more = {
            rid
            for rid, r in by_id.items()
            if rid not in stale and OWNER_PID not in r.data.tags and r.data.tags.get(PARENT_TAG) in stale
        }
        stale |= more
        changed = bool(more)
    for rid in sorted(stale):
        client.set_terminated(rid, "KILLED")
    if stale:
        logger.warning(
            "ended %d MLflow run(s) left RUNNING by a process that is gone as KILLED: %s",
            len(stale),
            ", ".join(sorted(stale)),
        )
    return sorted(stale)


def prepare_store(uri: str, root, experiment: str) -> None:
    """Called by ``Tracker.open`` once the experiment exists: refuse when tracking was
    switched off after a failure, repair a moved repo's artifact root, close stale runs."""
    if os.environ.get(TRACKING_OFF_ENV):
        raise TrackingError(os.environ[TRACKING_OFF_ENV])
    from mlflow.tracking import MlflowClient

    relocate_artifact_root(uri, root)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        close_stale_runs(client, exp.experiment_id)


# ------------------------------------------------------------------ signals
def end_active_runs(status: str = "KILLED") -> None:
    """End every run on this process's MLflow stack; a failing store is left to the next
    stage's :func:`close_stale_runs`."""
    import mlflow

    for _ in range(16):
        if mlflow.active_run() is None:
            return
        try:
            mlflow.end_run(status)
        except Exception:  # noqa: BLE001 - the store is gone: nothing more to do here
            return


@contextlib.contextmanager
def killed_on_signal(command: str) -> Iterator[None]:
    """SIGINT / SIGTERM: open runs end as KILLED, one line, exit 128 + signal number."""

    def handler(signum, frame):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        if "mlflow" in sys.modules:
            end_active_runs("KILLED")
        print(
            f"houseprices {command}: interrupted by {signal.Signals(signum).name}; "
            "open MLflow runs ended as KILLED, no output half-written",
            file=sys.stderr,
        )
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
