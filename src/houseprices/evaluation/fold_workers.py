"""Cross-validation folds fit in worker processes at once, their results read back in order.

Workers come from a fork server (``concurrent.futures`` with ``multiprocessing``'s "forkserver"
context): a fresh interpreter that imports the fitting code once, then forks one worker per
slot. A plain fork of the stage's process would copy the locks of its thread pools (torch's
OpenMP, after any fit) and hang there. Each worker fits a fold exactly as the stage would alone:
the same seeds, the same thread cap. The stage's process keeps the tracking store and the signal
handlers; workers ignore Ctrl-C (the stage ends the runs) and end when the stage's process does,
however it ends.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.forkserver
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from houseprices.errors import TrainingError
from houseprices.util.threads import current_thread_cap, limit_threads, resolve_threads, resolve_workers

# The fitting code the fork server imports (named, not imported: it imports this module).
FITTING_CODE = "houseprices.evaluation.cross_validation"
_work: tuple[Callable[[Any, int], Any], Any] | None = None  # (fit, task), set in each worker


def _start_worker(fit: Callable[[Any, int], Any], task: Any, stage_pid: int, threads: int) -> None:
    global _work
    _work = (fit, task)
    limit_threads(threads)
    gc.freeze()  # what the fork server imported lives as long as the worker: no collection walks it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Hand-written because neither the executor nor loky ends a busy worker whose parent was
    # SIGKILLed (tests/evaluation/test_fold_workers.py): a thread waits on a pidfd of the stage.
    try:
        pidfd = os.pidfd_open(stage_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # not Linux 5.3+: workers finish their fold
        return

    def exit_with_stage() -> None:
        select.select([pidfd], [], [])  # readable once the stage's process has ended
        os._exit(1)

    threading.Thread(target=exit_with_stage, daemon=True).start()


def _fit_in_worker(index: int) -> Any:
    fit, task = _work
    return fit(task, index)


def start_fork_server(modules: list[str]) -> None:
    """Start the fork server now, ``modules`` imported, so its start-up overlaps the caller's
    own (reading data, opening the tracking store); :func:`fold_fits` would start it later."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.get_context("forkserver").set_forkserver_preload(modules)
        multiprocessing.forkserver.ensure_running()


def planned_workers(resources) -> int:
    """Processes that will fit the folds (``resources.cv_workers``; 0: the cores ``resources.threads``
    leaves). With more than one, the fork server starts now and imports the fitting code while
    the caller imports its own (the ``houseprices train`` process asks before its imports)."""
    workers = resolve_workers(resources.cv_workers, resolve_threads(resources.threads)[0])
    if workers > 1:
        start_fork_server([FITTING_CODE])
    return workers


@contextlib.contextmanager
def fold_fits(fit: Callable[[Any, int], Any], task: Any, count: int, workers: int, label: str) -> Iterator[Iterator]:
    """``fit(task, i)`` for i in 0..count-1, in order, from ``workers`` processes.

    One worker fits each fold in this process, when the iterator asks for it. With more,
    ``fit`` and ``task`` travel pickled to each worker; ``fit``'s module is imported once, in
    the fork server. An error or signal in the caller ends the workers at once (not after
    their folds).
    """
    workers = min(workers, count)
    if workers <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        yield (fit(task, index) for index in range(count))
        return
    start_fork_server([fit.__module__])  # a no-op when the caller started it earlier
    context = multiprocessing.get_context("forkserver")
    initargs = (fit, task, os.getpid(), current_thread_cap())
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=initargs)
    others = set(multiprocessing.active_children())
    # Submitting every fold starts the workers, each sent its task through a pipe: a signal held
    # until they have it cannot cut a message short (a worker's traceback on the terminal).
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        results = executor.map(_fit_in_worker, range(count))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    ours = [process for process in multiprocessing.active_children() if process not in others]

    def in_order() -> Iterator[Any]:
        try:
            yield from results
        except BrokenProcessPool:
            raise TrainingError(
                f"{label}: a cross-validation worker process died (out of memory?); "
                "resources.cv_workers: 1 fits the folds one at a time"
            ) from None

    try:
        yield in_order()
    except BaseException:
        for process in ours:
            process.terminate()
        raise
    finally:  # waits for the pool's thread: CPython 3.11's exit races it closing a pipe (a traceback)
        executor.shutdown(wait=True, cancel_futures=True)
