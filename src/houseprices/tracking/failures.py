"""Tracking-store failures as one line naming the path or URI and the fix.

MLflow's HTTP client retries for minutes by default (7 retries, 120 s timeouts); the bounds
here make a dead server fail a stage in seconds. SQLite failures (read-only, corrupt or
deleted ``mlflow.db``) arrive as SQLAlchemy or MLflow exceptions; :func:`translate` turns
them into :class:`StoreError`, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from houseprices.errors import DependencyTimeoutError, HousePricesError, TrackingError
from houseprices.util.database import hung_server
from houseprices.util.files import error_chain

# A dead server fails a call at once, a hung one after three timeouts; after a failure the calls
# that end the runs try once, briefly (Tracker.failed). The user's environment wins.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
MOVE_AWAY = "move it away (e.g. to mlflow.db.broken) to start a new store, or restore a backup"
NEW_STORE = "rerun to start a new store, or restore it from a backup"
SQLITE_FAULTS = (
    (
        "readonly database",
        "is read-only: make it and its folder writable (chmod u+w), "
        "or set tracking.uri / MLFLOW_TRACKING_URI to another store",
    ),
    ("database or disk is full", "cannot grow: the disk is full; free space and rerun"),
    ("file is not a database", f"is not an SQLite database (corrupt): {MOVE_AWAY}"),
    ("malformed", f"is corrupt (malformed database image): {MOVE_AWAY}"),
    ("no such table", f"lost its tables (deleted or replaced while in use): {NEW_STORE}"),
    (
        "unable to open database",
        "cannot be opened (deleted, or its folder is gone or not writable): restore it, or rerun to start a new store",
    ),
    ("disk i/o error", "failed to write (disk I/O error; deleted or moved while in use?): rerun"),
)


class StoreError(TrackingError):
    """The MLflow store failed (unreachable, read-only, corrupt, gone); names its URI or path."""


def bound_http() -> None:
    """Bounded MLflow HTTP timeouts and retries, unless the user set their own; no progress bar
    per artifact (MLflow reloads what it logs to check a model, flooding ``dvc repro`` logs)."""
    for key, value in {**HTTP_BOUNDS, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
        os.environ.setdefault(key, value)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # retries are not errors
    # MLflow logs each SQLAlchemy error with its traceback before raising it; the CLI's one line says it.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` URI; None for other stores."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def first_line(err: BaseException, uri: str) -> str:
    """``MLflow store <uri>: <the error's first line>``, for a failure nothing else explains."""
    line = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return f"MLflow store {uri}: {line[:300]}"


def _store_error(chain: list[BaseException], uri: str) -> StoreError | None:
    text = " ".join(str(e) for e in chain).lower()
    db = sqlite_path(uri)
    if db is not None and not db.exists() and ("readonly" in text or "no such table" in text):
        return StoreError(f"MLflow store {db} was deleted while in use: {NEW_STORE}")
    if db is not None:
        advice = next((advice for needle, advice in SQLITE_FAULTS if needle in text), None)
        if advice:
            return StoreError(f"MLflow store {db} {advice}")
    modules = {type(e).__module__.split(".")[0] for e in chain}
    if uri.startswith(("http://", "https://")) and (
        modules & {"requests", "urllib3"} or "api request" in text or "max retries" in text
    ):
        reason = "timed out" if "timeout" in text or "timed out" in text else "connection failed"
        return StoreError(
            f"MLflow tracking server {uri} stopped answering ({reason}): restart it and rerun, "
            "or set tracking.required: false to go on without tracking"
        )
    if modules & {"mlflow", "sqlalchemy"}:
        return StoreError(first_line(chain[0], uri))
    return None


def translate(err: BaseException, uri: str | None = None) -> HousePricesError | None:
    """A one-line error for a tracking-store failure or a hung database server (the deadlines of
    util/database.py, whatever library error they surfaced as); None for anything else."""
    chain = error_chain(err)
    known = next((e for e in chain if isinstance(e, HousePricesError)), None)
    if known is not None:
        return known
    modules = {type(e).__module__.split(".")[0] for e in chain}
    if hung_server() and modules & {"sqlalchemy", "psycopg", "psycopg2"}:
        return DependencyTimeoutError(hung_server())
    if uri is None:
        import mlflow

        uri = mlflow.get_tracking_uri()
    return _store_error(chain, uri)
