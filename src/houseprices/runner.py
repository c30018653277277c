"""Runs one ``houseprices`` command: bounded threads and HTTP, MLflow runs KILLED on signals,
store and disk failures as one line."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from houseprices.config.params import load_params
from houseprices.errors import HousePricesError
from houseprices.tracking.failures import bound_http, translate
from houseprices.tracking.lifecycle import end_open_runs
from houseprices.util.files import confined_outputs, disk_error, staged_outputs
from houseprices.util.processes import deferred
from houseprices.util.threads import THREAD_ENV_VARS, limit_threads, resolve_threads

logger = logging.getLogger(__name__)

# Commands that train or transform: they get a bounded thread pool before any work.
HEAVY_COMMANDS = ("prepare", "featurize", "train", "ensemble", "submission", "search")


def _params(args):
    if not hasattr(args, "params"):
        return None
    return load_params(args.params)


def _bound_threads(command: str, params) -> None:
    n, why = resolve_threads(params.resources.threads if params is not None else 0)
    if command in HEAVY_COMMANDS:
        limit_threads(n)
        logger.info("threads: %d (%s)", n, why)
    else:  # nothing heavy here: cap the children without importing torch
        for var in THREAD_ENV_VARS:
            os.environ[var] = str(n)


def _confined(command: str, params) -> contextlib.AbstractContextManager:
    """A stage writes only inside the repository and never into its raw inputs, whatever
    links lie on the way (``download`` writes where the user points it)."""
    if command not in HEAVY_COMMANDS or params is None:
        return contextlib.nullcontext()
    root = Path.cwd().resolve()
    data = params.data
    inputs = [Path(p) for p in (data.train, data.test, data.sample_submission, data.checksums)]
    folders = [p.parent for p in inputs if p.parent.resolve() != root]
    return confined_outputs(root, [*inputs, *folders, Path(".git"), Path(".dvc")])


def _store_errors_in_threads_briefly(hook=threading.excepthook):
    """A library's background thread (Optuna's heartbeat) that dies on a store failure logs one
    line: the main thread meets the same failure and reports it."""

    def excepthook(info) -> None:
        error = translate(info.exc_value) if isinstance(info.exc_value, Exception) else None
        if error is None:
            hook(info)
        else:
            logger.warning("thread %s stopped: %s", getattr(info.thread, "name", "?"), error)

    return excepthook


@contextlib.contextmanager
def killed_on_signal(command: str, restore: bool = True) -> Iterator[None]:
    """SIGINT / SIGTERM before the commit: open runs end as KILLED, one line, exit 128 + signal
    number. ``restore``: the previous handlers back after (inside another program, the tests)."""

    def handler(signum, frame):
        if deferred(signum):
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        end_open_runs("KILLED")
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
        for sig, old in previous.items() if restore else ():
            signal.signal(sig, old)


def _commit(staging) -> None:
    """The command's one short step that a signal cannot split: its outputs land and its runs
    finish. From here on a signal is ignored: the process exits 0 a moment later, as its outputs say."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    staging.commit()


def run_command(args) -> None:
    """The CLI's body: bounded threads and HTTP, KILLED on signals, store and disk errors as one
    line; a stage's outputs staged and committed at its end."""
    params = args.loaded_params = _params(args)
    _bound_threads(args.command, params)
    bound_http()
    threading.excepthook = _store_errors_in_threads_briefly()
    own_process = getattr(args, "own_process", False)
    staging = staged_outputs(Path.cwd()) if args.command in HEAVY_COMMANDS else contextlib.nullcontext()
    with killed_on_signal(args.command, restore=not own_process), _confined(args.command, params), staging as outputs:
        try:
            args.func(args)
        except HousePricesError:
            raise
        except Exception as err:
            error = disk_error(err) or translate(err)
            if error is None:
                raise
            raise error from None
        if outputs is not None:
            _commit(outputs)
