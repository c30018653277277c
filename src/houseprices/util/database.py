"""Deadlines on every wait on a PostgreSQL server, for every SQLAlchemy engine in the process
(Optuna's storage, MLflow's store): a connection must be made within ``CONNECT_TIMEOUT_S``, the
server ends a statement running past ``STATEMENT_TIMEOUT_MS``, and a statement or commit that
gets no answer at all (a paused VM, a stopped server, packets dropped) is cut off by this process
after ``ANSWER_DEADLINE_S``. A server found hung is not waited on again by the same command.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import filelock
import tenacity

from houseprices.errors import DependencyTimeoutError

T = TypeVar("T")
CREATE_DEADLINE_S = 50.0
# What a process that lost the race to create a database schema sees (PostgreSQL, MySQL).
CREATION_RACE = ("already exists", "duplicate", "migration", "unique")

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 15_000
ANSWER_DEADLINE_S = 20.0
# TCP keepalives and an unacknowledged-data limit: a peer that vanished is noticed by the kernel.
TCP_SETTINGS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
TCP_USER_TIMEOUT_MS = 20_000
_WHERE = "houseprices.server"

_watched: dict[int, tuple[float, object, str]] = {}  # id(DBAPI connection) -> (deadline, connection, server)
_hung: dict[str, str] = {}  # server -> the one-line message
_lock = threading.Lock()
_installed = False


def bound_database_waits() -> None:
    """Install the deadlines (once per process; later engines get them too)."""
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    event.listen(Engine, "do_connect", _connect)
    for name in ("before_cursor_execute", "commit", "rollback"):
        event.listen(Engine, name, _arm)
    event.listen(Engine, "after_cursor_execute", _disarm)
    event.listen(Engine, "handle_error", _disarm_on_error)
    event.listen(Pool, "checkout", lambda dbapi_connection, record, _proxy: _watch(dbapi_connection, record.info))
    event.listen(Pool, "reset", lambda dbapi_connection, record, _state: _watch(dbapi_connection, record.info))
    event.listen(Pool, "checkin", lambda dbapi_connection, _record: _forget(dbapi_connection))
    threading.Thread(target=_watchdog, name="database-deadlines", daemon=True).start()
    _installed = True


def created_by_one(store: Path | str | None, open_store: Callable[[], T], deadline_s: float = CREATE_DEADLINE_S) -> T:
    """``open_store()``, which may create a database's schema, when processes start together on
    a new store: on a SQLite file (``store``) one creates it while the others wait on a lock
    beside it; a process that lost the race to create the tables (on a server, or outside the
    lock: a dashboard opening the file) tries again."""
    lost_race = tenacity.retry_if_exception(lambda err: any(n in str(err).lower() for n in CREATION_RACE))
    retrying = tenacity.Retrying(
        retry=lost_race, stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_incrementing(1, 1), reraise=True
    )
    if store is None:
        return retrying(open_store)
    Path(store).parent.mkdir(parents=True, exist_ok=True)
    try:
        with filelock.FileLock(f"{store}-lock", timeout=deadline_s):
            return retrying(open_store)
    except filelock.Timeout:
        raise DependencyTimeoutError(
            f"{store}-lock: another process has held it for {deadline_s:.0f} s while creating {store}; "
            "check that no other houseprices command hangs, then rerun"
        ) from None


def hung_server() -> str | None:
    """The message for the first server found hung in this process, if any."""
    return next(iter(_hung.values()), None)


def _server(cparams: dict) -> str:
    return f"{cparams.get('host', 'localhost')}:{cparams.get('port', 5432)}/{cparams.get('dbname', '')}"


def _connect(dialect, record, cargs, cparams):
    """PostgreSQL through psycopg: connect with the timeouts (other databases: untouched)."""
    if dialect.name != "postgresql" or dialect.driver not in ("psycopg", "psycopg2"):
        return None
    where = _server(cparams)
    if where in _hung:
        raise DependencyTimeoutError(_hung[where])
    cparams.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    for key, value in {**TCP_SETTINGS, "tcp_user_timeout": TCP_USER_TIMEOUT_MS}.items():
        cparams.setdefault(key, value)
    options = cparams.get("options", "")
    if "statement_timeout" not in options:
        cparams["options"] = f"{options} -c statement_timeout={STATEMENT_TIMEOUT_MS}".strip()
    record.info[_WHERE] = where
    _watch_pings(dialect)
    try:
        return dialect.loaded_dbapi.connect(*cargs, **cparams)
    except dialect.loaded_dbapi.OperationalError as err:
        if "timeout expired" in str(err):
            _hung[where] = (
                f"PostgreSQL server {where} did not answer a connection within {CONNECT_TIMEOUT_S} s: "
                "check that it runs and is reachable, then rerun"
            )
            raise DependencyTimeoutError(_hung[where]) from None
        raise


def _watch_pings(dialect) -> None:
    """The pool's pre-ping talks to the server before any event fires: watched too."""
    if getattr(dialect, "_houseprices_watched", False):
        return
    ping = dialect.do_ping

    def do_ping(dbapi_connection) -> bool:
        _watch(dbapi_connection, {_WHERE: getattr(dbapi_connection, "_houseprices_where", None)})
        try:
            return ping(dbapi_connection)
        finally:
            _forget(dbapi_connection)

    dialect.do_ping = do_ping
    dialect._houseprices_watched = True


def _arm(conn, *_args) -> None:
    _watch(conn.connection.dbapi_connection, conn.info)


def _watch(raw, info) -> None:
    """From now, ``raw`` has ``ANSWER_DEADLINE_S`` to get its answer."""
    where = info.get(_WHERE)
    if where is None:
        return
    with contextlib.suppress(AttributeError):
        raw._houseprices_where = where  # for the pre-ping, which sees only the connection
    with _lock:
        _watched[id(raw)] = (time.monotonic() + ANSWER_DEADLINE_S, raw, where)


def _disarm(conn, *_args) -> None:
    _forget(conn.connection.dbapi_connection)


def _disarm_on_error(context) -> None:
    if context.connection is not None:
        _disarm(context.connection)


def _forget(dbapi_connection) -> None:
    with _lock:
        _watched.pop(id(dbapi_connection), None)


def _watchdog() -> None:
    """Cuts the socket of a connection past its deadline: the blocked read returns at once
    and the driver raises, where it would otherwise wait for ever."""
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        with _lock:
            due = [(key, entry) for key, entry in _watched.items() if entry[0] < now]
            for key, _ in due:
                del _watched[key]
        for _, (_, raw, where) in due:
            _hung.setdefault(
                where,
                f"PostgreSQL server {where} did not answer within {ANSWER_DEADLINE_S:.0f} s: "
                "check that it runs and is reachable, then rerun",
            )
            _cut(raw)


def _cut(raw) -> None:
    try:
        with socket.socket(fileno=os.dup(raw.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError):
        pass  # already closed
