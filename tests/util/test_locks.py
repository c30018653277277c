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
