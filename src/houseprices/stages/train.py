"""Stage ``train@<model>``: K-fold CV of one named model, refit on all rows, predictions.

Writes ``models/<name>/`` (refit pipeline, out-of-fold and test predictions),
``metrics/<name>.json`` and ``plots/curves/<name>.csv``; logs one MLflow run for the
model with a child run per fold.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import mlflow
import pandas as pd

from ..config import PARAMS_FILE, Params
from ..data import ID
from ..ensemble import PriceModel
from ..io import dump_model, write_csv, write_json, write_parquet
from ..leaderboard import write_timing
from ..tracking import Tracker, flatten, log_curves, log_params, log_price_model
from ..training import cross_validate, fit_estimator, predict_finite
from . import MEMBERS, METRICS, PLOTS, load_prepared

logger = logging.getLogger(__name__)


def long_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (epoch, fold, split): the learning-curve template draws a line per fold."""
    columns = ["epoch", "fold", "split", "loss"]
    if not len(curves):
        return pd.DataFrame(columns=columns)
    long = curves.melt(id_vars=["epoch", "fold"], value_vars=["train_loss", "valid_loss", "holdout_loss"],
                       var_name="split", value_name="loss").dropna(subset=["loss"])
    long["split"] = long["split"].str.removesuffix("_loss")
    return long[columns].sort_values(["fold", "split", "epoch"], kind="stable")


def run(params: Params, name: str, params_file: Path = Path(PARAMS_FILE)) -> dict:
    cfg = params.model(name)
    tracker = Tracker.open(params, params_file)
    X, y, X_test = load_prepared()

    run_params = flatten({"seed": params.seed, "cv": params.cv.model_dump(),
                          "features": params.features.model_dump(mode="json"),
                          "models": {name: cfg.model_dump(mode="json")}})
    with tracker.stage_run(f"train {name}", "model", run_params):
        start = time.perf_counter()
        result = cross_validate(name, params, X, y, X_test)
        cv_seconds = time.perf_counter() - start
        for fold, score, seconds in zip(result.folds, result.fold_scores, result.fold_seconds):
            with tracker.child_run(f"{name} {fold.label}", "fold"):
                if tracker.enabled:
                    mlflow.log_metrics({"log_rmse": score, "seconds": seconds})
                    log_params({"repeat": fold.repeat + 1, "fold": fold.fold + 1,
                                "train_rows": len(fold.train), "valid_rows": len(fold.valid)})
                    fold_curves = result.curves[result.curves["fold"] == fold.label] if len(result.curves) else result.curves
                    if len(fold_curves):
                        log_curves(fold_curves)

        start = time.perf_counter()
        final = fit_estimator(name, cfg, params, X, y, "refit on all training rows")
        fit_seconds = time.perf_counter() - start
        refit_pred = predict_finite(final, X_test, name, "refit, test rows")
        refit_seconds = time.perf_counter() - start

        # Timings go to MLflow only: DVC metrics stay byte-identical for the same params.
        metrics = result.metrics()
        out = MEMBERS / name
        dump_model(out / "model.joblib", final)
        oof = pd.DataFrame({ID: X[ID].to_numpy(), "log_price": y.to_numpy()})
        for r in range(result.oof.shape[0]):
            oof[f"oof_r{r + 1}"] = result.oof[r]
        write_parquet(out / "oof.parquet", oof)
        write_parquet(out / "test.parquet", pd.DataFrame({
            ID: X_test[ID].to_numpy(), "refit": refit_pred,
            "fold_average": result.test_fold_predictions.mean(axis=0),
        }))
        write_json(METRICS / f"{name}.json", metrics)
        write_csv(PLOTS / "curves" / f"{name}.csv", long_curves(result.curves))
        write_timing(out, cv_seconds, len(result.folds), fit_seconds, refit_seconds - fit_seconds, len(X_test))

        if tracker.enabled:
            mlflow.log_metrics({"cv_log_rmse_mean": result.mean, "cv_log_rmse_std": result.std,
                                "cv_seconds": cv_seconds, "refit_seconds": refit_seconds})
            mlflow.log_artifact(str(out / "oof.parquet"), "predictions")
            mlflow.log_artifact(str(out / "test.parquet"), "predictions")
            if params.tracking.log_models:
                log_price_model(PriceModel({name: final}, {name: 1.0}), X_test)
    logger.info("%s: CV log-RMSE %.5f ± %.5f over %d folds (%.1fs CV, %.1fs refit)", name,
                result.mean, result.std, len(result.folds), cv_seconds, refit_seconds)
    return metrics
