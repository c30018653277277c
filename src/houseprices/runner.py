"""Runs one ``houseprices`` command: bounded threads and HTTP, MLflow runs KILLED on signals,
store failures as one line (or, with ``tracking.required: false``, the stage again untracked)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from pathlib import Path

from houseprices.config.params import load_params
from houseprices.errors import HousePricesError, TrackingError
from houseprices.tracking.failures import bound_http, fail_fast_from_now, translate
from houseprices.tracking.lifecycle import TRACKING_OFF_ENV, end_active_runs, killed_on_signal
from houseprices.util.files import confined_outputs
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


def run_command(args) -> None:
    """The CLI's body: bounded threads and HTTP, KILLED on signals, store errors as one line."""
    params = args.loaded_params = _params(args)
    _bound_threads(args.command, params)
    bound_http()
    threading.excepthook = _store_errors_in_threads_briefly()
    with killed_on_signal(args.command), _confined(args.command, params):
        try:
            args.func(args)
        except HousePricesError:
            raise
        except Exception as err:
            error = translate(err)
            if error is None:
                raise
            fail_fast_from_now()
            end_active_runs("FAILED")
            if not (isinstance(error, TrackingError) and params is not None and not params.tracking.required):
                raise error from None
            os.environ[TRACKING_OFF_ENV] = str(error)
            warnings.warn(
                f"{error}; running the stage again without tracking (tracking.required is false)", stacklevel=1
            )
            args.func(args)
