"""A lock file beside a shared store, so that processes started together create it once:
the first takes the lock and creates, the others wait (with a deadline) and then join."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from houseprices.errors import DependencyTimeoutError

CREATE_DEADLINE_S = 50.0


@contextlib.contextmanager
def created_once(store: Path | str, deadline_s: float = CREATE_DEADLINE_S) -> Iterator[None]:
    """Hold ``<store>-lock`` (ignored by git like SQLite's own ``<store>-wal``) while the block
    creates or opens ``store``; released on exit, and by the kernel if the process dies."""
    lock = Path(f"{store}-lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        give_up = time.monotonic() + deadline_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > give_up:
                    raise DependencyTimeoutError(
                        f"{lock}: another process has held it for {deadline_s:.0f} s while creating {store}; "
                        "if none is running, delete the lock file and rerun"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
