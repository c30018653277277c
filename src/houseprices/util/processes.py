"""Whether a recorded process is still the one that was recorded (a pid alone is not enough,
since the kernel hands a gone process's pid to the next one), and steps of this process that a
signal must not split."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator

import psutil


def started_ms(pid: int) -> int | None:
    """The process's start time in epoch milliseconds, or None when there is no such process."""
    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except (psutil.Error, OSError):
        return None


def process_alive(pid: int, started: int | None) -> bool:
    """Alive and the same process: a recycled pid has a later start time (``started`` in epoch
    milliseconds as :func:`started_ms` gave it; None or 0: not recorded, the pid decides)."""
    now = started_ms(pid)
    return now is not None and (not started or abs(now - started) < 2000)


def dvc_run_id() -> str | None:
    """``dvc-<host>-<pid>-<start ms>`` of the ``dvc`` process this one runs under (a stage of
    ``dvc repro`` or ``dvc exp run``), or None."""
    try:
        for proc in psutil.Process().parents():
            cmd = " ".join(proc.cmdline()[:3])
            if "dvc" in os.path.basename(proc.name()) or "/dvc" in cmd or " -m dvc" in cmd or cmd.endswith(" dvc"):
                return f"dvc-{socket.gethostname()}-{proc.pid}-{int(proc.create_time() * 1000)}"
    except psutil.Error:  # a process vanished on the way
        pass
    return None


def dvc_run_alive(run_id: str) -> bool:
    """The ``dvc`` process a :func:`dvc_run_id` of this host names still runs."""
    head, _, rest = run_id.partition(f"dvc-{socket.gethostname()}-")
    pid, _, started = rest.partition("-")
    return not head and pid.isdigit() and started.isdigit() and process_alive(int(pid), int(started))


_HELD = {"depth": 0}  # nesting depth of held_signals, and the signal that came meanwhile


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """A step a signal handler must not split (a run created in the store and recorded as this
    process's): the handler asks :func:`deferred`, and the signal is raised again after the step."""
    _HELD["depth"] += 1
    try:
        yield
    finally:
        _HELD["depth"] -= 1
        if not _HELD["depth"] and (signum := _HELD.pop("signal", 0)):
            signal.raise_signal(signum)


def deferred(signum: int) -> bool:
    """Inside :func:`held_signals`: ``signum`` kept for its end (True); else False."""
    if _HELD["depth"]:
        _HELD["signal"] = signum
    return bool(_HELD["depth"])
