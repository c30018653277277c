"""Stage ``ensemble``: weight the members from their out-of-fold predictions.

The method (mean, non-negative weights, ridge stacking) is chosen by a nested CV
estimate; prediction intervals come from the nested out-of-fold residuals (split
conformal). Writes ``models/ensemble/``, ``metrics/ensemble.json`` and ``plots/ensemble/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import PARAMS_FILE, Params
from ..data import ID
from ..ensemble import PriceModel, choose_method, conformal_halfwidth, fit_combiner, nested_coverage
from ..io import load_model, write_csv, write_json, write_parquet
from ..tracking import Tracker, file_sha256, flatten
from ..training import log_rmse, make_folds
from ..features import outlier_mask
from ..plots import ensemble_figures
from . import MEMBERS, METRICS, MODELS, PLOTS, load_prepared

logger = logging.getLogger(__name__)
COVERAGES = (0.80, 0.95)


def load_member_predictions(members: list[str], models_dir: Path = MEMBERS):
    """(members, repeats, rows) OOF array, log-price truth, ids, and test predictions."""
    oofs, tests, y, ids, test_ids = [], {}, None, None, None
    for name in members:
        path = models_dir / name / "oof.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: member {name!r} has no predictions; run `dvc repro train@{name}`")
        oof = pd.read_parquet(path)
        test = pd.read_parquet(models_dir / name / "test.parquet")
        if ids is None:
            ids, y, test_ids = oof[ID].to_numpy(), oof["log_price"].to_numpy(), test[ID].to_numpy()
        elif not (np.array_equal(ids, oof[ID].to_numpy()) and np.array_equal(test_ids, test[ID].to_numpy())):
            raise ValueError(f"{path}: rows differ from the other members'; retrain with one params.yaml")
        oofs.append(oof[[c for c in oof.columns if c.startswith("oof_r")]].to_numpy().T)
        tests[name] = test
    shapes = {o.shape for o in oofs}
    if len(shapes) != 1:
        raise ValueError(f"members were cross-validated with different repeats {shapes}; rerun them with one cv setting")
    return np.stack(oofs), y, ids, test_ids, tests


def fold_scores(pred: np.ndarray, y: np.ndarray, folds, rows: np.ndarray | None = None) -> np.ndarray:
    """Per-fold log-RMSE of (repeats, rows) predictions, optionally on a subset of rows."""
    out = []
    for f in folds:
        valid = f.valid if rows is None else f.valid[rows[f.valid]]
        out.append(log_rmse(y[valid], pred[f.repeat, valid]))
    return np.asarray(out)


def summary(scores: np.ndarray) -> dict:
    return {"cv_log_rmse_mean": round(float(scores.mean()), 6), "cv_log_rmse_std": round(float(scores.std()), 6)}


def run(params: Params, params_file: Path = Path(PARAMS_FILE)) -> dict:
    members = params.ensemble_members
    tracker = Tracker.open(params, params_file)
    oof, y, ids, test_ids, tests = load_member_predictions(members)
    folds = make_folds(len(y), params.cv.folds, params.cv.repeats, params.seed)
    X, _, X_test = load_prepared()
    # Scored on every row (the honest figure); also without the documented Ames outliers,
    # the figure public notebooks report, for comparison only.
    typical = outlier_mask(X, y, params.features.outliers.model_copy(update={"enabled": True}))

    member_folds = {name: fold_scores(oof[i], y, folds) for i, name in enumerate(members)}
    member_scores = {name: summary(s) for name, s in member_folds.items()}
    method, nested = choose_method(params.ensemble.method, oof, y, folds)
    best = nested[method]
    ensemble_folds = np.asarray(best.fold_scores)
    best_member = min(members, key=lambda m: member_folds[m].mean())
    gain = member_folds[best_member] - ensemble_folds  # paired: same folds
    gain_sem = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("nan")

    repeats = oof.shape[1]
    P_all = np.concatenate([oof[:, r, :].T for r in range(repeats)])
    combiner = fit_combiner(method, P_all, np.tile(y, repeats))
    weights = {name: float(w) for name, w in zip(members, combiner.weights)}

    column = params.ensemble.test_predictions
    P_test = np.column_stack([tests[name][column].to_numpy() for name in members])
    test_log = combiner.predict(P_test)
    residuals = (y[None, :] - best.oof).ravel()
    predictions = pd.DataFrame({ID: test_ids, "log_price": test_log})
    coverage = {}
    for level in COVERAGES:
        width = conformal_halfwidth(residuals, level)
        pct = int(round(level * 100))
        predictions[f"lower_{pct}"] = test_log - width
        predictions[f"upper_{pct}"] = test_log + width
        coverage[f"coverage_{pct}"] = round(nested_coverage(best.oof, y, folds, level), 4)
        coverage[f"halfwidth_{pct}"] = round(width, 6)

    metrics = {
        "method": method,
        **summary(ensemble_folds),
        "cv_log_rmse_sem": round(float(ensemble_folds.std(ddof=1) / np.sqrt(len(folds))), 6),
        "cv_log_rmse_excl_outliers": round(float(fold_scores(best.oof, y, folds, typical).mean()), 6),
        "best_member": best_member,
        "gain_over_best_member": round(float(gain.mean()), 6),
        "gain_over_best_member_sem": round(gain_sem, 6),
        "methods": {m: summary(np.asarray(s.fold_scores)) for m, s in nested.items()},
        "members": {m: {**member_scores[m], "cv_log_rmse_excl_outliers":
                        round(float(fold_scores(oof[i], y, folds, typical).mean()), 6)}
                    for i, m in enumerate(members)},
        "weights": {k: round(v, 6) for k, v in weights.items()},
        "intercept": round(combiner.intercept, 6),
        "intervals": coverage,
        "folds": len(folds),
    }
    write_parquet(MODELS / "ensemble" / "predictions.parquet", predictions)
    write_json(METRICS / "ensemble.json", metrics)
    oof_mean = np.nanmean(best.oof, axis=0)
    write_csv(PLOTS / "ensemble" / "oof.csv", pd.DataFrame({
        ID: ids, "actual": np.exp(y).round(2), "predicted": np.exp(oof_mean).round(2),
        "log_actual": y.round(6), "log_predicted": oof_mean.round(6), "residual": (y - oof_mean).round(6)}))
    write_csv(PLOTS / "ensemble" / "residuals.csv", pd.DataFrame({
        "log_predicted": oof_mean.round(6), "residual": (y - oof_mean).round(6)}))
    write_csv(PLOTS / "ensemble" / "weights.csv", pd.DataFrame({"member": members, "weight": combiner.weights.round(6)}))
    all_scores = {**{m: member_scores[m]["cv_log_rmse_mean"] for m in members}, "ensemble": metrics["cv_log_rmse_mean"]}
    write_csv(PLOTS / "ensemble" / "scores.csv", pd.DataFrame({"model": list(all_scores),
                                                               "cv_log_rmse": list(all_scores.values())}))
    figures = ensemble_figures(PLOTS / "ensemble", y, oof_mean, weights, all_scores)

    fitted = {name: load_model(MEMBERS / name / "model.joblib") for name in members}
    log_ensemble(tracker, params, metrics, coverage, weights, figures,
                 PriceModel(fitted, weights, combiner.intercept), X_test)
    logger.info("ensemble (%s): CV log-RMSE %.4f ± %.4f (best member %s %.4f); weights %s", method,
                metrics["cv_log_rmse_mean"], metrics["cv_log_rmse_std"], best_member,
                member_scores[best_member]["cv_log_rmse_mean"], metrics["weights"])
    return metrics


def log_ensemble(tracker, params: Params, metrics: dict, coverage: dict, weights: dict[str, float],
                 figures: list[Path], model: PriceModel, rows: pd.DataFrame) -> None:
    """The ensemble run (plots, predictions, the registered model) and the headline
    metrics on the pipeline run: ``cv_log_rmse`` is the ensemble's own score,
    ``<member>.cv_log_rmse`` each member's, on the same folds."""
    predictions = MODELS / "ensemble" / "predictions.parquet"
    headline = {"cv_log_rmse": metrics["cv_log_rmse_mean"], "cv_log_rmse_std": metrics["cv_log_rmse_std"],
                "cv_log_rmse_excl_outliers": metrics["cv_log_rmse_excl_outliers"],
                **{f"{m}.cv_log_rmse": s["cv_log_rmse_mean"] for m, s in metrics["members"].items()},
                **{k: v for k, v in coverage.items() if k.startswith("coverage_")}}
    stage_params = flatten({"ensemble": params.ensemble.model_dump(mode="json")})
    with tracker.stage_run("ensemble", "ensemble", stage_params) as run:
        run.log_metrics({**headline, **coverage, **{f"weight.{k}": v for k, v in weights.items()}})
        run.set_tags({"ensemble.method": metrics["method"]})
        run.log_artifacts([*sorted((PLOTS / "ensemble").glob("*.csv")), *figures], "plots")
        run.log_artifacts([predictions], "predictions")
        run.log_model(model, rows, register=True, version_tags={"predictions.sha256": file_sha256(predictions)},
                      description=f"{metrics['method']} ensemble of {', '.join(weights)}; "
                                  f"CV log-RMSE {metrics['cv_log_rmse_mean']:.4f}")
        tracker.set_parent_metrics(headline)
