"""``houseprices search --model NAME``: an Optuna study for one model, run by this worker.

Not a ``dvc repro`` stage (it is slow and meant to be run on purpose) and it writes no
output DVC tracks: the study lives in its storage. ``--apply`` writes the best trial's
params into ``params.yaml`` (the only source of truth), so ``dvc params diff`` shows it and
the next ``dvc repro`` retrains just that model.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna

from houseprices.config.params import Params
from houseprices.config.search import SearchConfig, load_search
from houseprices.data.prepared import load_prepared
from houseprices.errors import ConfigError, TrainingError
from houseprices.paths import PARAMS_FILE, SEARCH_FILE
from houseprices.reporting.progress import Progress
from houseprices.tracking.failures import translate
from houseprices.tracking.tracker import Tracker
from houseprices.tuning.search import (
    apply_to_params,
    best_params,
    finished,
    load_study,
    make_objective,
    open_storage,
    safe_url,
    storage_url,
    study_name,
)
from houseprices.util.threads import limit_threads

logger = logging.getLogger(__name__)


def progress_reporter(progress: Progress):
    """An Optuna callback: each finished trial, with the study's best so far."""

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        try:
            best = f"best {study.best_value:.5f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        state = trial.state.name.lower()
        value = f"CV {trial.value:.5f}" if trial.value is not None else state
        done = f"{progress.done + 1}/{progress.total}"
        progress.update(f"trial {trial.number} ({done}) {state}: {value} | {best} | {trial.params}", best)

    return report


def _optimize(
    params: Params,
    name: str,
    cfg: SearchConfig,
    study: optuna.Study,
    params_file: Path,
    n_trials: int,
    timeout: float | None,
    url: str,
) -> None:
    X, y, _ = load_prepared()
    tracker = Tracker.open(params, params_file)
    run_params = {
        "search": cfg.model_dump(mode="json"),
        "models": {name: params.model(name).model_dump(mode="json")},
        "study": study.study_name,
        "storage": safe_url(url),
    }
    with (
        tracker.run(f"search {name}", "search", run_params, parent=None) as search_run,
        Progress(f"search {name}", n_trials, "trial") as progress,
    ):
        study.optimize(
            make_objective(params, name, cfg.space, X, y, tracker, search_run),
            n_trials=n_trials,
            timeout=timeout,
            catch=(TrainingError,),
            callbacks=[progress_reporter(progress)],
        )
        counts = finished(study)
        metrics = {f"trials_{state}": n for state, n in counts.items()}
        best = {"best_cv_log_rmse": study.best_value} if counts.get("complete") else {}
        tags = {"optuna.best_trial": study.best_trial.number} if counts.get("complete") else {}
        search_run.log_metrics({**metrics, **best}, tags)


def _store_failures_without_traceback(record: logging.LogRecord) -> bool:
    """Optuna's "trial failed" warning, without the traceback when the cause is a store or
    server failure: the command ends with that failure's one line."""
    if record.exc_info and translate(record.exc_info[1]) is not None:
        record.exc_info, record.exc_text = None, None
    return True


def run(
    params: Params,
    name: str,
    params_file: Path = Path(PARAMS_FILE),
    search_file: Path = Path(SEARCH_FILE),
    *,
    trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    threads: int = 1,
    worker: int = 0,
    apply: bool = False,
) -> optuna.Study:
    """Run ``trials`` more trials (search.yaml's ``trials`` by default) of the model's study
    in this process, print the study's best, and with ``apply`` write it into params.yaml."""
    for option, value in (("--trials", trials), ("--threads", threads), ("--worker", worker)):
        if value is not None and value < 0:
            raise ConfigError(f"{option}: must be >= 0, got {value}")
    search, cfg = load_search(search_file, params, name)
    limit_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").addFilter(_store_failures_without_traceback)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(storage, search, search_file.resolve().parent)
    study = load_study(open_storage(url, search), study_name(params, name, cfg), cfg, params.seed, worker)
    logger.info("study %s in %s: %d trials so far", study.study_name, safe_url(url), len(study.trials))
    n_trials = cfg.trials if trials is None else trials
    if n_trials:
        _optimize(params, name, cfg, study, params_file, n_trials, cfg.timeout if timeout is None else timeout, url)
    optuna.storages.fail_stale_trials(study)  # a killed worker's trial, if its grace period is over
    counts = finished(study)
    summary = (
        f"study {study.study_name}: {counts.get('complete', 0)} complete, {counts.get('pruned', 0)} pruned, "
        f"{counts.get('fail', 0)} failed"
    )
    if not counts.get("complete") and not apply:
        print(f"{summary}; no complete trial yet")
        return study
    best, values = best_params(study, cfg.space)
    print(f"{summary}; best CV log-RMSE {best.value:.5f} (trial {best.number}): {values}")
    if apply:
        changes = apply_to_params(params_file, name, values)
        for key, old, new in changes:
            print(f"{params_file}: {key}: {old} -> {new}")
        if not changes:
            print(f"{params_file}: models.{name} already holds the best params")
    return study
