"""Tracking-store and disk failures as one line naming the path or URI and the fix.

MLflow's HTTP client retries for minutes by default (7 retries, 120 s timeouts); the
bounds here make a dead server fail a stage in seconds. SQLite and filesystem errors
(read-only, corrupt or deleted ``mlflow.db``, a full disk) arrive as SQLAlchemy,
MLflow or OS exceptions; :func:`translate` turns them into :class:`StoreError` /
:class:`DiskError`, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from houseprices.errors import DependencyTimeoutError, HousePricesError, TrackingError
from houseprices.util.database import hung_server

logger = logging.getLogger(__name__)

# Per request: 8 s without an answer, 3 tries about 1 s apart: a dead server fails a call at
# once, a hung one after the three timeouts; the runs then end with one short try each
# (fail_fast_from_now), so a stage fails well within a minute. The user's environment wins.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


class StoreError(TrackingError):
    """The MLflow store failed (unreachable, read-only, corrupt, gone); names its URI or path."""


class DiskError(HousePricesError, OSError):
    """An output could not be written (disk full, read-only); names the path."""


def bound_http() -> None:
    """Bounded MLflow HTTP timeouts and retries, unless the user set their own."""
    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # retries are not errors
    # MLflow logs each SQLAlchemy error with its traceback before raising it; the CLI's one line says it.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def fail_fast_from_now() -> None:
    """After a store failure: the cleanup calls (ending runs) try once, briefly."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "2"


@contextlib.contextmanager
def fail_fast_on_store_error(uri: str) -> Iterator[None]:
    """Inside a run's ``with``: a store failure makes the calls that end the enclosing runs
    try once, briefly, instead of each waiting out the full retries on a hung server."""
    try:
        yield
    except Exception as err:
        if isinstance(translate(err, uri), StoreError):
            fail_fast_from_now()
        raise


# ---------------------------------------------------------------- translation
def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while err is not None and err not in seen and len(seen) < 10:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


def _current_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:"):
        return None
    return Path(uri.removeprefix("sqlite:///").removeprefix("sqlite://")) if "///" in uri else None


def _output_name(filename: str) -> str:
    """``dir/.name.abc123.tmp`` (an atomic write's temp file) -> ``dir/name``."""
    path = Path(filename)
    match = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", path.name)
    return str(path.with_name(match.group(1))) if match else str(path)


SQLITE_FAULTS = (
    (
        "readonly database",
        "is read-only: make it and its folder writable (chmod u+w), "
        "or set tracking.uri / MLFLOW_TRACKING_URI to another store",
    ),
    ("database or disk is full", "cannot grow: the disk is full; free space and rerun"),
    (
        "file is not a database",
        "is not an SQLite database (corrupt): move it away (e.g. to mlflow.db.broken) "
        "to start a new store, or restore a backup",
    ),
    (
        "malformed",
        "is corrupt (malformed database image): move it away (e.g. to mlflow.db.broken) "
        "to start a new store, or restore a backup",
    ),
    (
        "no such table",
        "lost its tables (deleted or replaced while in use): rerun to start a new store, or restore it from a backup",
    ),
    (
        "unable to open database",
        "cannot be opened (deleted, or its folder is gone or not writable): restore it, or rerun to start a new store",
    ),
    ("disk i/o error", "failed to write (disk I/O error; deleted or moved while in use?): rerun"),
)


def _disk_error(chain: list[BaseException]) -> DiskError | None:
    for exc in chain:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            where = _output_name(exc.filename) if exc.filename else f"an output under {Path.cwd()}"
            what = {
                errno.ENOSPC: "no space left on device",
                errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system",
            }[exc.errno]
            return DiskError(
                f"{where}: {what}; free space (or make it writable) and rerun "
                "(outputs are replaced only when complete: the previous ones are intact)"
            )
    text = " ".join(str(e) for e in chain)
    if "No space left on device" in text:
        return DiskError(
            f"an output under {Path.cwd()}: no space left on device; free space and rerun "
            "(outputs are replaced only when complete: the previous ones are intact)"
        )
    return None


def _store_error(chain: list[BaseException], uri: str) -> StoreError | None:
    text = " ".join(str(e) for e in chain).lower()
    db = _sqlite_path(uri)
    if db is not None and not db.exists() and ("readonly" in text or "no such table" in text):
        return StoreError(
            f"MLflow store {db} was deleted while in use: rerun to start a new store, or restore it from a backup"
        )
    if db is not None:
        for needle, advice in SQLITE_FAULTS:
            if needle in text:
                return StoreError(f"MLflow store {db} {advice}")
    names = {type(e).__name__ for e in chain}
    modules = {type(e).__module__.split(".")[0] for e in chain}
    http = uri.startswith(("http://", "https://"))
    if http and (modules & {"requests", "urllib3"} or "api request" in text or "max retries" in text):
        reason = "timed out" if "timeout" in text or "timed out" in text else "connection failed"
        return StoreError(
            f"MLflow tracking server {uri} stopped answering ({reason}): restart it and rerun, "
            "or set tracking.required: false to go on without tracking"
        )
    if modules & {"mlflow", "sqlalchemy"} or "MlflowException" in names:
        first = next((line for line in str(chain[0]).splitlines() if line.strip()), type(chain[0]).__name__)
        return StoreError(f"MLflow store {uri}: {first[:300]}")
    return None


def translate(err: BaseException, uri: str | None = None) -> HousePricesError | None:
    """A one-line error for a store or disk failure; None for anything else (a bug)."""
    if isinstance(err, HousePricesError):
        return err
    chain = _chain(err)
    return _hung_error(chain) or _disk_error(chain) or _store_error(chain, uri or _current_uri())


def _hung_error(chain: list[BaseException]) -> HousePricesError | None:
    """A database server found hung (the deadlines of util/database.py): its own one line,
    whatever library error it surfaced as."""
    known = next((e for e in chain if isinstance(e, HousePricesError)), None)
    if known is not None:
        return known
    hung = hung_server()
    modules = {type(e).__module__.split(".")[0] for e in chain}
    return DependencyTimeoutError(hung) if hung and modules & {"sqlalchemy", "psycopg", "psycopg2"} else None


def as_tracking_error(err: BaseException, uri: str) -> TrackingError:
    """For ``Tracker.open``: any failure to open the store, as one line naming it."""
    if isinstance(err, TrackingError):
        return err
    found = translate(err, uri)
    if isinstance(found, TrackingError):
        return found
    first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return StoreError(f"MLflow store {uri}: {first[:300]}" if found is None else str(found))


# ------------------------------------------------------------- moved repos
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def relocate_artifact_root(uri: str, root: Path) -> list[tuple[str, str]]:
    """A copied or moved repo logs into its own ``mlruns/``.

    Only for the repo's default store (``sqlite:///<root>/mlflow.db``): every artifact
    location under another folder's ``mlruns/`` (the repo this store was copied from)
    is rewritten to this repo's ``mlruns/``, so new runs land here and earlier runs'
    artifacts are read from the copied ``mlruns/``. Returns the (old, new) prefixes.
    """
    db = _sqlite_path(uri)
    if db is None or db.resolve() != (root / "mlflow.db").resolve() or not db.is_file():
        return []
    new = (root / "mlruns").resolve().as_uri()
    con = sqlite3.connect(db, timeout=30)
    try:
        locations = [row[0] for row in con.execute("SELECT artifact_location FROM experiments")]
        moves = sorted({_foreign_root(loc, new) for loc in locations} - {None})
        if not moves:
            return []
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # Locations are file URIs or plain paths (MLflow's Default experiment): both are moved.
        pairs = [pair for old in moves for pair in ((old, new), (_path(old), _path(new)))]
        with con:
            for old, to in pairs:
                for table, column in ARTIFACT_COLUMNS:
                    if table in tables:
                        con.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                            f"WHERE substr({column}, 1, ?) = ?",
                            (to, len(old) + 1, len(old), old),
                        )
    finally:
        con.close()
    for old in moves:
        logger.warning("%s: artifact root moved from %s to %s (this repo was copied or moved)", db, old, new)
    return [(old, new) for old in moves]


def _path(file_uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(file_uri).path)


def _foreign_root(location: str, new: str) -> str | None:
    """``file:///other/repo/mlruns`` of a location under another repo's ``mlruns/``."""
    if not location or not location.startswith(("file:", "/")):
        return None
    uri = location if location.startswith("file:") else Path(location).as_uri()
    head, sep, _ = uri.partition("/mlruns")
    old = head + sep
    if not sep or old == new or uri[len(old) : len(old) + 1] not in ("", "/"):
        return None
    return old
