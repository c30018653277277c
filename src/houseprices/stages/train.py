"""Stage ``train@<model>``: K-fold CV of one named model, refit on all rows, predictions.

Writes ``models/members/<name>/`` (refit pipeline, out-of-fold and test predictions),
``metrics/<name>.json``, ``plots/folds/<name>.csv`` and, for models trained in epochs,
``plots/curves/<name>.csv``; logs one MLflow run for the model with a child run per fold,
live while the fold trains.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import pandas as pd

from houseprices.config.params import Params
from houseprices.data.prepared import load_prepared
from houseprices.data.schema import ID
from houseprices.evaluation.cross_validation import FoldOutcome, cross_validate, fit_estimator, predict_finite
from houseprices.evaluation.folds import Fold
from houseprices.paths import MEMBERS, METRICS, PARAMS_FILE, PLOTS
from houseprices.reporting.dvc_plots import write_member_plots
from houseprices.reporting.leaderboard import write_timing
from houseprices.reporting.progress import FoldProgress, duration
from houseprices.tracking.runlog import flatten
from houseprices.tracking.tracker import Tracker
from houseprices.util.files import dump_model, write_json, write_parquet

logger = logging.getLogger(__name__)


def fold_scope(tracker, name: str, progress: FoldProgress):
    """Each fold as an MLflow child run, started before its fit and ended after, with
    its score, time and per-epoch losses (the same keys in every fold run)."""

    @contextlib.contextmanager
    def scope(fold: Fold, position: int, total: int):
        with tracker.child_run(
            f"{name} {fold.label}",
            "fold",
            {
                "repeat": fold.repeat + 1,
                "fold": fold.fold + 1,
                "train_rows": len(fold.train),
                "valid_rows": len(fold.valid),
            },
        ) as run:

            def report(outcome: FoldOutcome) -> None:
                run.log_metrics({"log_rmse": outcome.score, "fit_seconds": outcome.seconds})
                run.log_curves(outcome.curves)
                progress.update(outcome)

            yield report

    return scope


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
    # Timings go to MLflow only: DVC metrics stay byte-identical for the same params.
    write_json(METRICS / f"{name}.json", result.metrics())
    write_member_plots(PLOTS, name, result)


def run(params: Params, name: str, params_file: Path = Path(PARAMS_FILE)) -> dict:
    cfg = params.model(name)
    tracker = Tracker.open(params, params_file)
    X, y, X_test = load_prepared()

    run_params = flatten(
        {
            "seed": params.seed,
            "cv": params.cv.model_dump(),
            "features": params.features.model_dump(mode="json"),
            "models": {name: cfg.model_dump(mode="json")},
        }
    )
    with tracker.stage_run(f"train {name}", "model", run_params) as run_log:
        start = time.perf_counter()
        with FoldProgress(f"train {name}", params.cv.folds * params.cv.repeats) as progress:
            result = cross_validate(name, params, X, y, X_test, fold_scope=fold_scope(tracker, name, progress))
        cv_seconds = time.perf_counter() - start

        start = time.perf_counter()
        final = fit_estimator(name, cfg, params, X, y, "refit on all training rows")
        fit_seconds = time.perf_counter() - start
        refit_pred = predict_finite(final, X_test, name, "refit, test rows")
        refit_seconds = time.perf_counter() - start
        write_outputs(name, result, final, refit_pred, X, y, X_test)

        write_timing(
            MEMBERS / name, cv_seconds, len(result.folds), fit_seconds, refit_seconds - fit_seconds, len(X_test)
        )
        run_log.log_metrics(
            {
                "cv_log_rmse": result.mean,
                "cv_log_rmse_std": result.std,
                "cv_seconds": cv_seconds,
                "refit_seconds": refit_seconds,
            }
        )
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
