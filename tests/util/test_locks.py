"""The lock beside a new store: one process creates it, the others wait, none for ever."""

from __future__ import annotations

import fcntl
import os
import time

import pytest

from houseprices.errors import DependencyTimeoutError
from houseprices.util.database import created_by_one


def test_a_lock_held_elsewhere_is_waited_on_until_the_deadline(tmp_path):
    store = tmp_path / "mlflow.db"
    fd = os.open(f"{store}-lock", os.O_RDWR | os.O_CREAT)  # another open file: another holder
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        start = time.monotonic()
        with pytest.raises(DependencyTimeoutError, match=r"mlflow.db-lock: another process has held it for 0 s"):
            created_by_one(store, lambda: None, deadline_s=0.3)
        assert 0.3 <= time.monotonic() - start < 5
    finally:
        os.close(fd)
    assert created_by_one(store, lambda: "opened", deadline_s=0.3) == "opened"  # released: taken at once


@pytest.mark.parametrize("store", ["mlflow.db", None], ids=["sqlite-file", "server"])
def test_a_store_whose_tables_another_process_created_meanwhile_is_opened_again(tmp_path, store):
    """Inside the lock too: a process that never takes it (optuna-dashboard, a reader) may create
    the tables between our look and our CREATE TABLE."""
    attempts = []

    def open_store() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("(sqlite3.OperationalError) table studies already exists")
        return "opened"

    def broken() -> str:
        attempts.append(1)
        raise RuntimeError("no such column: runs.foo")

    assert created_by_one(store and tmp_path / store, open_store, deadline_s=5) == "opened"
    assert len(attempts) == 2
    with pytest.raises(RuntimeError, match="no such column"):
        created_by_one(store and tmp_path / store, broken, deadline_s=5)
    assert len(attempts) == 3  # any other error is raised at once, not retried
