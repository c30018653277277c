"""``houseprices search --model NAME``: random search, coarse to fine, for one model.

Not a ``dvc repro`` stage (it is slow and meant to be run on purpose): it writes the
best params to ``search/best_params.yaml``, which the train stages depend on, so the
next ``dvc repro`` retrains with them. Every trial is an MLflow child run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd
import yaml

from ..config import BEST_PARAMS_FILE, PARAMS_FILE, ConfigError, Params, load_best_params
from ..io import write_csv, write_text
from ..search import Trial, best_trial, random_search
from ..tracking import Tracker, flatten, log_params
from . import load_prepared

logger = logging.getLogger(__name__)


def write_best_params(name: str, best: dict, path: Path = BEST_PARAMS_FILE) -> None:
    overrides = load_best_params(path)
    overrides[name] = best
    header = ("# Written by `houseprices search --model NAME`: {model name: {param: value}}.\n"
              "# The train stage applies these on top of params.yaml's models.<name>; delete an entry to undo.\n")
    write_text(path, header + yaml.safe_dump(overrides, sort_keys=True, default_flow_style=None))


def run(params: Params, name: str, params_file: Path = Path(PARAMS_FILE), n_jobs: int | None = None,
        best_file: Path = BEST_PARAMS_FILE) -> Trial:
    if name not in params.search:
        raise ConfigError(f"{params_file}: no search space for {name!r}; add search.{name}.space "
                          f"(searchable: {sorted(params.search) or 'none'})")
    params.model(name)
    tracker = Tracker.open(params, params_file)
    X, y, _ = load_prepared()
    cfg = params.search[name]
    run_params = flatten({"search": {name: cfg.model_dump(mode="json")},
                          "models": {name: params.model(name).model_dump(mode="json")}})

    with tracker.stage_run(f"search {name}", "search", run_params):
        def log_trial(trial: Trial) -> None:
            logger.info("trial %d (round %d): CV %.5f ± %.5f %s", trial.index, trial.round,
                        trial.cv_mean, trial.cv_std, trial.params)
            with tracker.child_run(f"{name} trial {trial.index}", "trial"):
                if tracker.enabled:
                    log_params({**trial.params, "round": trial.round})
                    if trial.cv_mean != float("inf"):
                        mlflow.log_metrics({"cv_log_rmse_mean": trial.cv_mean, "cv_log_rmse_std": trial.cv_std})

        trials = random_search(params, name, X, y, n_jobs=n_jobs, on_trial=log_trial)
        best = best_trial(trials)
        if tracker.enabled:
            mlflow.log_metrics({"best_cv_log_rmse_mean": best.cv_mean, "best_cv_log_rmse_std": best.cv_std})
            mlflow.log_dict({name: best.params}, "best_params.yaml")

    table = pd.DataFrame([{"round": t.round, "trial": t.index, "cv_log_rmse_mean": round(t.cv_mean, 6),
                           "cv_log_rmse_std": round(t.cv_std, 6), **t.params} for t in trials])
    write_csv(best_file.parent / f"{name}_trials.csv", table.astype({c: "str" for c in _list_columns(table, trials)}))
    write_best_params(name, best.params, best_file)
    logger.info("best %s: CV %.5f ± %.5f with %s -> %s", name, best.cv_mean, best.cv_std, best.params, best_file)
    return best


def _list_columns(table: pd.DataFrame, trials: list[Trial]) -> list[str]:
    """Columns holding lists (hidden sizes) are written as text."""
    return [k for k in trials[0].params if any(isinstance(t.params[k], (list, dict)) for t in trials)]
