"""Stage ``train@<model>``: K-fold CV of one named model, refit on all rows, predictions.

Writes ``models/members/<name>/`` (refit pipeline, out-of-fold and test predictions),
``metrics/<name>.json``, ``plots/folds/<name>.csv`` and, for models trained in epochs,
``plots/curves/<name>.csv``; logs one MLflow run for the model with a child run per fold,
made as the fold finishes and spanning its fit. The folds are fit in ``resources.cv_workers``
processes while this one refits on all rows.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.config.params import Params
from houseprices.data.prepared import load_prepared
from houseprices.data.schema import ID
from houseprices.evaluation.cross_validation import FoldFit, cross_validate, fit_estimator, predict_finite
from houseprices.evaluation.feature_cache import fold_cache
from houseprices.evaluation.fold_workers import planned_workers
from houseprices.paths import MEMBERS, METRICS, PARAMS_FILE, PLOTS
from houseprices.reporting.dvc_plots import write_member_plots
from houseprices.reporting.progress import Progress, duration
from houseprices.tracking.tracker import Tracker
from houseprices.util.files import dump_model, write_json, write_parquet

logger = logging.getLogger(__name__)


CURVE_KEYS = ("train_loss", "valid_loss", "holdout_loss")


def curve_metrics(curves: pd.DataFrame) -> list[tuple[str, float, int]]:
    """(key, value, epoch) for each finite loss of one fold's curve: the same keys in every
    fold run (the fold is the run, not part of the key)."""
    return [
        (key, float(value), int(row["epoch"]))
        for row in curves.to_dict("records")
        for key in CURVE_KEYS
        if np.isfinite(value := row.get(key, np.nan))
    ]


def fold_report(tracker: Tracker, stage_run, name: str, progress: Progress):
    """Each finished fold as an MLflow child run spanning its fit (whichever process fit it),
    with its score, time and per-epoch losses; a progress line."""

    def report(position: int, outcome: FoldFit) -> None:
        fold = outcome.fold
        fold_params = {"repeat": fold.repeat + 1, "fold": fold.fold + 1}
        fold_params.update(train_rows=len(fold.train), valid_rows=len(fold.valid))
        span = (outcome.started, outcome.ended)
        with tracker.run(f"{name} {fold.label}", "fold", fold_params, parent=stage_run, span=span) as run:
            scores = [("log_rmse", outcome.score, 0), ("fit_seconds", outcome.seconds, 0)]
            run.log_steps([*scores, *curve_metrics(outcome.curves)])
        score = f"log-RMSE {outcome.score:.4f}"
        what = f"fold {position}/{progress.total} ({fold.label}) {score} in {duration(outcome.seconds)}"
        progress.update(what, f"{fold.label} {score}")

    return report


class Refit:
    """The model fit on all training rows and its test predictions, made while the CV
    workers fit the folds (before the folds when they run in this process)."""

    def __init__(self, name: str, params: Params, X, y, X_test):
        self.name, self.params, self.X, self.y, self.X_test = name, params, X, y, X_test

    def __call__(self) -> None:
        start = time.perf_counter()
        self.model = fit_estimator(
            self.name, self.params.model(self.name), self.params, self.X, self.y, "refit on all training rows"
        )
        self.fit_seconds = time.perf_counter() - start
        self.pred = predict_finite(self.model, self.X_test, self.name, "refit, test rows")
        self.seconds = time.perf_counter() - start


def write_outputs(name: str, result, final, refit_pred, X, y, X_test) -> None:
    out = MEMBERS / name
    dump_model(out / "model.joblib", final)
    oof = pd.DataFrame({ID: X[ID].to_numpy(), "log_price": y.to_numpy()})
    for r in range(result.oof.shape[0]):
        oof[f"oof_r{r + 1}"] = result.oof[r]
    write_parquet(out / "oof.parquet", oof)
    write_parquet(
        out / "test.parquet",
        pd.DataFrame(
            {
                ID: X_test[ID].to_numpy(),
                "refit": refit_pred,
                "fold_average": result.test_fold_predictions.mean(axis=0),
            }
        ),
    )
    write_json(METRICS / f"{name}.json", result.metrics())
    write_member_plots(PLOTS, name, result)


def run(params: Params, name: str, params_file: Path = Path(PARAMS_FILE)) -> dict:
    cfg = params.model(name)
    workers = planned_workers(params.resources)  # the fork server may be running already (cli)
    tracker = Tracker.open(params, params_file)
    X, y, X_test = load_prepared()

    run_params = {
        "seed": params.seed,
        "cv": params.cv.model_dump(),
        "features": params.features.model_dump(mode="json"),
        "models": {name: cfg.model_dump(mode="json")},
    }
    with tracker.run(f"train {name}", "model", run_params) as run_log:
        refit = Refit(name, params, X, y, X_test)
        start = time.perf_counter()
        with Progress(f"train {name}", params.cv.folds * params.cv.repeats, "fold") as progress:
            report = fold_report(tracker, run_log, name, progress)
            cache = fold_cache(params.resources)
            result = cross_validate(
                name, params, X, y, X_test, on_fold=report, workers=workers, meanwhile=refit, cache=cache
            )
        cv_seconds = time.perf_counter() - start
        if workers == 1:
            cv_seconds -= refit.seconds  # in this process, one after the other (in workers, side by side)
        final, refit_pred, fit_seconds, refit_seconds = refit.model, refit.pred, refit.fit_seconds, refit.seconds
        write_outputs(name, result, final, refit_pred, X, y, X_test)
        # Times go to MLflow only (the leaderboard reads them there): outputs hold no wall-clock value.
        times = {"cv_seconds": cv_seconds, "refit_seconds": refit_seconds, "fit_seconds": fit_seconds}
        times["predict_seconds"] = refit_seconds - fit_seconds
        run_log.log_metrics({"cv_log_rmse": result.mean, "cv_log_rmse_std": result.std, **times})
        run_log.log_artifacts([MEMBERS / name / "oof.parquet", MEMBERS / name / "test.parquet"], "predictions")
        # The fitted pipeline as a file (joblib.load: raw rows in, log prices out). Users load the
        # ensemble's registered MLflow model, so a member is not packaged and validated as one each run.
        run_log.log_artifacts([MEMBERS / name / "model.joblib"], "model")
    logger.info(
        "%s: CV log-RMSE %.4f ± %.4f over %d folds (%s CV, %s refit)",
        name,
        result.mean,
        result.std,
        len(result.folds),
        duration(cv_seconds),
        duration(refit_seconds),
    )
    return result.metrics()
