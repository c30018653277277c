"""CV folds fit in worker processes: the same numbers as one at a time, errors as one line,
folds reported in order, and no worker left behind by a stage that dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures.process import _ExecutorManagerThread

import numpy as np
import pandas as pd
import pytest

from conftest import DIVERGING_MLP
from houseprices.config.params import parse_params
from houseprices.errors import ConfigError, TrainingError
from houseprices.evaluation.cross_validation import cross_validate
from houseprices.evaluation.fold_workers import FITTING_CODE, fold_fits, planned_workers
from houseprices.util.threads import resolve_workers

TINY_MLP = {"kind": "mlp", "hidden": [16], "epochs": 3, "batch_size": 64}


def params_with(model: dict):
    return parse_params({"models": {"m": model}, "cv": {"folds": 3, "repeats": 2}})


@pytest.mark.parametrize("model", [TINY_MLP, {"kind": "lasso", "alpha": 0.001}])
def test_folds_in_workers_give_the_same_numbers_as_one_at_a_time(small_xy, model):
    X, y = small_xy
    params = params_with(model)
    alone = cross_validate("m", params, X, y, X.head(9), workers=1)
    side_by_side = cross_validate("m", params, X, y, X.head(9), workers=2)
    np.testing.assert_array_equal(alone.oof, side_by_side.oof)
    np.testing.assert_array_equal(alone.test_fold_predictions, side_by_side.test_fold_predictions)
    assert alone.fold_scores == side_by_side.fold_scores
    pd.testing.assert_frame_equal(alone.curves, side_by_side.curves)


def test_every_fold_is_reported_in_order_and_meanwhile_runs_here_once(small_xy):
    X, y = small_xy
    seen, meanwhile = [], []
    result = cross_validate(
        "m",
        params_with({"kind": "ridge"}),
        X,
        y,
        on_fold=lambda position, fit: seen.append((position, fit)),
        workers=2,
        meanwhile=lambda: meanwhile.append(os.getpid()),
    )
    assert [position for position, _ in seen] == list(range(1, 7))
    assert [o.fold.label for _, o in seen] == [f.label for f in result.folds]
    assert [o.score for _, o in seen] == result.fold_scores
    assert all(0 < o.ended - o.started < o.seconds + 1 for _, o in seen)  # the fit's own span
    assert meanwhile == [os.getpid()]  # in this process, not a worker


def test_a_fold_that_diverges_in_a_worker_is_one_line_naming_model_and_fold(small_xy):
    X, y = small_xy
    with pytest.raises(TrainingError, match=r"model 'm', fold r1f\d: train_loss became (nan|inf)") as err:
        cross_validate("m", params_with(DIVERGING_MLP), X, y, workers=2)
    assert "\n" not in str(err.value)


def _exit_hard(task, index):
    os._exit(3)  # what the kernel's OOM killer leaves behind: no exception, no result


def test_a_worker_that_dies_is_one_line_with_the_way_out():
    with pytest.raises(TrainingError, match=r"model 'm': a cross-validation worker process died.*cv_workers: 1"):
        with fold_fits(_exit_hard, None, 4, 2, "model 'm'") as fits:
            list(fits)


def _stage_with_slow_folds(tmp_path) -> tuple[subprocess.Popen, list[int]]:
    """A process fitting 4 folds in 2 workers, each fold a 120 s sleep; once both have started."""
    pids = tmp_path / "pids"
    stage_script = tmp_path / "stage.py"
    stage_script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, time
            from houseprices.evaluation.fold_workers import fold_fits

            # A stage's runner handles SIGINT itself: a shell's background job starts with it ignored.
            signal.signal(signal.SIGINT, signal.default_int_handler)

            def slow(task, index):
                with open({str(pids)!r}, "a") as f:
                    f.write(f"{{os.getpid()}}\\n")
                time.sleep(120)

            if __name__ == "__main__":
                with fold_fits(slow, None, 4, 2, "model 'm'") as fits:
                    list(fits)
            """
        )
    )
    stage = subprocess.Popen([sys.executable, str(stage_script)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.1)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2 and stage.pid not in workers
    return stage, workers


def test_workers_die_with_a_killed_stage(tmp_path):
    """SIGKILL of the stage's process (no handler runs) still ends its workers."""
    stage, workers = _stage_with_slow_folds(tmp_path)
    stage.send_signal(signal.SIGKILL)
    stage.wait(timeout=10)
    _gone_within(10, workers)


def test_an_interrupted_stage_ends_its_workers_without_waiting_for_their_folds(tmp_path):
    stage, workers = _stage_with_slow_folds(tmp_path)
    stage.send_signal(signal.SIGINT)
    assert stage.wait(timeout=15) != 0  # KeyboardInterrupt, not 120 s later
    _gone_within(10, workers)


def _gone_within(seconds: float, workers: list[int]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_zero_workers_means_the_cores_that_the_threads_leave(monkeypatch):
    monkeypatch.delenv("HOUSEPRICES_CV_WORKERS", raising=False)
    monkeypatch.setattr("houseprices.util.threads.available_cores", lambda: 8)
    assert resolve_workers(0, 1) == 8
    assert resolve_workers(0, 3) == 2
    assert resolve_workers(0, 16) == 1
    assert resolve_workers(5, 1) == 5
    monkeypatch.setenv("HOUSEPRICES_CV_WORKERS", "1")
    assert resolve_workers(0, 1) == 1
    monkeypatch.setenv("HOUSEPRICES_CV_WORKERS", "two")
    with pytest.raises(ConfigError, match=r"\$HOUSEPRICES_CV_WORKERS='two'"):
        resolve_workers(0, 1)


def test_the_fork_server_started_before_the_stage_imports_the_fitting_code():
    assert FITTING_CODE == cross_validate.__module__


def test_one_planned_worker_starts_no_fork_server(monkeypatch):
    started = []
    monkeypatch.delenv("HOUSEPRICES_CV_WORKERS", raising=False)
    monkeypatch.setattr("houseprices.evaluation.fold_workers.start_fork_server", started.append)
    assert planned_workers(params_with({"kind": "lasso"}).resources.model_copy(update={"cv_workers": 1})) == 1
    assert not started
    assert planned_workers(params_with({"kind": "lasso"}).resources.model_copy(update={"cv_workers": 2})) == 2
    assert started == [[FITTING_CODE]]


def _square(task, index):
    return index * index


@pytest.mark.parametrize("error", [None, RuntimeError])
def test_no_pool_thread_outlives_the_folds(error):
    """At exit, CPython 3.11 wakes a pool's thread through a pipe that the thread may be closing
    (a traceback on stderr after a signal): the thread is joined before ``fold_fits`` returns."""
    before = set(threading.enumerate())
    with pytest.raises(error) if error else contextlib.nullcontext():
        with fold_fits(_square, None, 4, 2, "model 'm'") as fits:
            assert next(fits) == 0
            if error:
                raise error
            assert list(fits) == [1, 4, 9]
    left = set(threading.enumerate()) - before
    assert not [thread for thread in left if isinstance(thread, _ExecutorManagerThread)]
