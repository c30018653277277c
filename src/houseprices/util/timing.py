"""Where a command's wall time goes, for ``bench/pipeline_time.py``.

With ``$HOUSEPRICES_TIMING`` naming a file, each ``houseprices`` process appends one JSON
line to it at exit: its wall time from process start, its CPU time, and the seconds spent in each
section (``startup``, ``fit``, ``tracking``, ``figures``, ``io``). Sections nest and are
exclusive: a tracking call inside a fit counts as tracking only. Time in no section is
the stage's own computing. Without the variable a section costs two clock reads; results
never depend on it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator

TIMING_ENV = "HOUSEPRICES_TIMING"
SECTIONS = ("startup", "fit", "tracking", "figures", "io")

_totals: dict[str, float] = dict.fromkeys(SECTIONS, 0.0)
_stack: list[str] = []
_last = [time.perf_counter()]


def _charge(now: float) -> None:
    if _stack:
        _totals[_stack[-1]] += now - _last[0]
    _last[0] = now


@contextlib.contextmanager
def section(name: str) -> Iterator[None]:
    """Charge the block's time to ``name`` (and not to the section around it)."""
    _charge(time.perf_counter())
    _stack.append(name)
    try:
        yield
    finally:
        _charge(time.perf_counter())
        _stack.pop()


def timed(name: str) -> Callable:
    """Decorator form of :func:`section`."""

    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def inner(*args, **kwargs):
            with section(name):
                return func(*args, **kwargs)

        return inner

    return wrap


@contextlib.contextmanager
def around(name: str, manager: contextlib.AbstractContextManager) -> Iterator:
    """``manager``'s entry and exit charged to ``name``; the block inside is not."""
    with section(name):
        value = manager.__enter__()
    try:
        yield value
    except BaseException:
        with section(name):
            if not manager.__exit__(*sys.exc_info()):
                raise
    else:
        with section(name):
            manager.__exit__(None, None, None)


def _process_age() -> float:
    """Seconds since this process started (the interpreter's own start-up included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def start_report(command: str) -> None:
    """Called once the CLI has parsed its arguments: the time so far is start-up; the
    report is written at exit when ``$HOUSEPRICES_TIMING`` is set."""
    target = os.environ.get(TIMING_ENV)
    if not target:
        return
    _totals["startup"] += _process_age()
    _last[0] = time.perf_counter()
    atexit.register(_write_report, target, command)


def _write_report(target: str, command: str) -> None:
    _charge(time.perf_counter())
    wall = _process_age()
    line = {
        "command": command,
        "wall": round(wall, 3),
        "cpu": round(sum(os.times()[:2]), 3),
        **{k: round(v, 3) for k, v in _totals.items()},
        "other": round(wall - sum(_totals.values()), 3),
        "modules": {m: m in sys.modules for m in ("torch", "sklearn", "matplotlib", "mlflow")},
    }
    with open(target, "a") as fh:  # one short line per process: appends do not interleave
        fh.write(json.dumps(line) + "\n")
