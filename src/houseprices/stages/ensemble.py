"""Stage ``ensemble``: weight the members from their out-of-fold predictions by the
combination nested CV scores best, with split-conformal intervals. ``metrics/ensemble.json``
holds headline numbers only; per-member scores, weights and per-method details go to
``models/ensemble/report.json``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.config.models import packages
from houseprices.config.params import Params
from houseprices.data.prepared import load_prepared
from houseprices.data.schema import ID
from houseprices.evaluation.ensemble import (
    PriceModel,
    choose_method,
    choose_test_predictions,
    conformal_halfwidth,
    fit_combiner,
    nested_coverage,
)
from houseprices.evaluation.fold_workers import start_fork_server
from houseprices.evaluation.folds import Fold, fold_scores, make_folds
from houseprices.evaluation.outliers import outlier_mask, typical_rows
from houseprices.paths import MEMBERS, METRICS, MODELS, PARAMS_FILE, PLOTS
from houseprices.reporting.figures import DRAWING_CODE, drawn_aside
from houseprices.tracking.tracker import Tracker
from houseprices.util.files import (
    file_sha256,
    read_parquet,
    remove,
    staged,
    verify_model,
    write_csv,
    write_json,
    write_parquet,
)

logger = logging.getLogger(__name__)
COVERAGES = (0.80, 0.95)
REPORT = MODELS / "ensemble" / "report.json"
PREDICTIONS = MODELS / "ensemble" / "predictions.parquet"
PLOT_TABLES = ("oof", "residuals", "weights", "scores")  # plots/ensemble/<name>.csv, also MLflow artifacts


@dataclass
class Inputs:
    members: list[str]
    oof: np.ndarray  # (members, repeats, rows)
    y: np.ndarray
    ids: np.ndarray
    test_ids: np.ndarray
    tests: dict[str, pd.DataFrame]
    folds: list[Fold]
    typical: np.ndarray  # rows other than the documented outliers (scoring only)
    fit_rows: np.ndarray  # rows the combiner may fit on: outliers dropped as in the members' training
    X_test: pd.DataFrame


def load_inputs(params: Params) -> Inputs:
    members = params.ensemble_members
    oofs, tests, ids = [], {}, None
    for name in members:
        path = MEMBERS / name / "oof.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: member {name!r} has no predictions; run `dvc repro train@{name}`")
        oof, tests[name] = read_parquet(path), read_parquet(MEMBERS / name / "test.parquet")
        if ids is None:
            ids, y, test_ids = oof[ID].to_numpy(), oof["log_price"].to_numpy(), tests[name][ID].to_numpy()
        elif not (np.array_equal(ids, oof[ID].to_numpy()) and np.array_equal(test_ids, tests[name][ID].to_numpy())):
            raise ValueError(f"{path}: rows differ from the other members'; retrain with one params.yaml")
        oofs.append(oof[[c for c in oof.columns if c.startswith("oof_r")]].to_numpy().T)
    shapes = {o.shape for o in oofs}
    if len(shapes) != 1:
        raise ValueError(
            f"members were cross-validated with different repeats {shapes}; rerun them with one cv setting"
        )
    folds = make_folds(len(y), params.cv.folds, params.cv.repeats, params.seed)
    X, _, X_test = load_prepared()
    # Scored on every row (the honest figure); also without the documented Ames outliers,
    # the figure public notebooks report, for comparison only.
    typical = typical_rows(X, y)
    fit_rows = outlier_mask(X, y, params.features.outliers)
    # Checked now (against the digest written with it, without unpickling), so a damaged model
    # fails the stage before any output is replaced.
    for name in members:
        verify_model(MEMBERS / name / "model.joblib")
    return Inputs(members, np.stack(oofs), y, ids, test_ids, tests, folds, typical, fit_rows, X_test)


def combine(params: Params, data: Inputs) -> dict:
    """Nested-CV choice of method, then the chosen combiner refit on every OOF row."""
    method, nested = choose_method(params.ensemble.method, data.oof, data.y, data.folds, data.fit_rows)
    repeats = data.oof.shape[1]
    P_all = np.concatenate([data.oof[:, r, data.fit_rows].T for r in range(repeats)])
    combiner = fit_combiner(method, P_all, np.tile(data.y[data.fit_rows], repeats))
    return {
        "method": method,
        "nested": nested,
        "best": nested[method],
        "combiner": combiner,
        "weights": {m: float(w) for m, w in zip(data.members, combiner.weights, strict=True)},
    }


def predict_test(params: Params, data: Inputs, combo: dict) -> tuple[pd.DataFrame, dict]:
    """Test log prices with conformal intervals; the source (refit or fold average) is
    chosen from the OOF evidence when ``ensemble.test_predictions`` is ``auto``."""
    source, evidence = choose_test_predictions(params.ensemble.test_predictions, data.oof, data.y, combo["combiner"])
    test_log = combo["combiner"].predict(np.column_stack([data.tests[m][source].to_numpy() for m in data.members]))
    best = combo["best"]
    residuals = (data.y[None, :] - best.oof).ravel()
    predictions = pd.DataFrame({ID: data.test_ids, "log_price": test_log})
    intervals = {}
    for level in COVERAGES:
        width = conformal_halfwidth(residuals, level)
        pct = int(round(level * 100))
        predictions[f"lower_{pct}"] = test_log - width
        predictions[f"upper_{pct}"] = test_log + width
        intervals[f"coverage_{pct}"] = round(nested_coverage(best.oof, data.y, data.folds, level), 4)
        intervals[f"halfwidth_{pct}"] = round(width, 6)
    return predictions, {**intervals, "test_predictions": source, **evidence}


def reports(data: Inputs, combo: dict, intervals: dict) -> tuple[dict, dict]:
    """The declared DVC metrics (the same params give the same bytes) and the detailed report."""
    member_folds = {m: fold_scores(data.oof[i], data.y, data.folds) for i, m in enumerate(data.members)}
    best_member = min(data.members, key=lambda m: member_folds[m].mean())
    gain = member_folds[best_member] - np.asarray(combo["best"].fold_scores)  # paired: same folds

    def scored(pred: np.ndarray, folds) -> dict:
        excl = fold_scores(pred, data.y, data.folds, data.typical).mean()
        values = {"mean": np.mean(folds), "std": np.std(folds), "excl_outliers": excl}
        return {f"cv_log_rmse_{k}": round(float(v), 6) for k, v in values.items()}

    report = {
        "best_member": best_member,
        "gain_over_best_member_sem": round(float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else 0.0, 6),
        "methods": {m: scored(s.oof, s.fold_scores) for m, s in combo["nested"].items()},
        "members": {m: scored(data.oof[i], member_folds[m]) for i, m in enumerate(data.members)},
        "weights": {k: round(v, 6) for k, v in combo["weights"].items()},
        "intercept": round(combo["combiner"].intercept, 6),
        "intervals": intervals,
        "folds": len(data.folds),
    }
    metrics = {
        "method": combo["method"],
        **report["methods"][combo["method"]],
        "coverage_80": intervals["coverage_80"],
        "coverage_95": intervals["coverage_95"],
        "gain_over_best_member": round(float(gain.mean()), 6),
    }
    return metrics, report


def write_outputs(data: Inputs, combo: dict, predictions: pd.DataFrame, metrics: dict, report: dict) -> dict:
    """The stage's files; returns the figure data (PNGs are MLflow artifacts only: DVC
    draws the same figures from the CSVs)."""
    write_parquet(PREDICTIONS, predictions)
    write_json(REPORT, report)
    write_json(METRICS / "ensemble.json", metrics)
    y, oof_mean = data.y, np.nanmean(combo["best"].oof, axis=0)
    scores = {
        **{m: s["cv_log_rmse_mean"] for m, s in report["members"].items()},
        "ensemble": metrics["cv_log_rmse_mean"],
    }
    oof = pd.DataFrame(
        {
            ID: data.ids,
            "actual": np.exp(y).round(2),
            "predicted": np.exp(oof_mean).round(2),
            "log_actual": y.round(6),
            "log_predicted": oof_mean.round(6),
            "residual": (y - oof_mean).round(6),
        }
    )
    plots = {
        "oof": oof,
        "residuals": oof[["log_predicted", "residual"]],
        "weights": pd.DataFrame({"member": data.members, "weight": combo["combiner"].weights.round(6)}),
        "scores": pd.DataFrame({"model": list(scores), "cv_log_rmse": list(scores.values())}),
    }
    for name in PLOT_TABLES:
        write_csv(PLOTS / "ensemble" / f"{name}.csv", plots[name])
    # The members' folders are this stage's input: a member no longer in ensemble.members goes (it
    # stays in DVC's cache), so what dvc.lock records is what a clone pulls.
    for folder in MEMBERS.iterdir() if MEMBERS.is_dir() else ():
        if folder.is_dir() and folder.name not in data.members:
            remove(folder)
    return {"log_actual": y, "log_predicted": oof_mean, "weights": combo["weights"], "scores": scores}


def log_to_mlflow(
    params: Params, tracker: Tracker, data: Inputs, combo: dict, metrics: dict, report: dict, figures: dict
) -> None:
    """The ensemble run (metrics, plots, predictions, the registered model) and the
    headline metrics on the pipeline run: ``cv_log_rmse`` is a run's own score,
    ``<member>.cv_log_rmse`` a member's, on the same folds."""
    pipeline = {
        "cv_log_rmse": metrics["cv_log_rmse_mean"],
        **{k: metrics[k] for k in ("cv_log_rmse_std", "cv_log_rmse_excl_outliers", "coverage_80", "coverage_95")},
        **{f"{m}.cv_log_rmse": s["cv_log_rmse_mean"] for m, s in report["members"].items()},
    }
    with tracker.run("ensemble", "ensemble", {"ensemble": params.ensemble.model_dump(mode="json")}) as run:
        tags = {
            "ensemble.method": combo["method"],
            "ensemble.test_predictions": report["intervals"]["test_predictions"],
        }
        weights = {f"weight.{k}": v for k, v in combo["weights"].items()}
        run.log_metrics({**pipeline, "gain_over_best_member": metrics["gain_over_best_member"], **weights}, tags)
        with tempfile.TemporaryDirectory() as tmp, drawn_aside(Path(tmp), **figures) as pngs:
            run.log_artifacts([REPORT], None)
            run.log_artifacts([PREDICTIONS], "predictions")
            run.log_model(
                PriceModel({}, combo["weights"], combo["combiner"].intercept),  # members: loaded with the model
                data.X_test,
                member_files={name: MEMBERS / name / "model.joblib" for name in data.members},
                packages=packages(params.model(name) for name in data.members),
                version_tags={"predictions.sha256": file_sha256(staged(PREDICTIONS))},
                description=f"{combo['method']} ensemble of {', '.join(data.members)}; "
                f"CV log-RMSE {metrics['cv_log_rmse_mean']:.4f}",
            )
            csvs = [PLOTS / "ensemble" / f"{name}.csv" for name in PLOT_TABLES]
            run.log_artifacts([*csvs, *pngs.result()], "plots")
        tracker.set_parent_metrics(pipeline)


def run(params: Params, params_file: Path = Path(PARAMS_FILE)) -> dict:
    start_fork_server(DRAWING_CODE)  # matplotlib imported there while this process works
    tracker = Tracker.open(params, params_file)
    data = load_inputs(params)
    combo = combine(params, data)
    predictions, intervals = predict_test(params, data, combo)
    metrics, report = reports(data, combo, intervals)
    figures = write_outputs(data, combo, predictions, metrics, report)
    log_to_mlflow(params, tracker, data, combo, metrics, report, figures)
    best = report["best_member"]
    logger.info(
        "ensemble (%s, test from %s): CV log-RMSE %.4f ± %.4f, %.4f without outliers (best member %s %.4f); weights %s",
        combo["method"],
        intervals["test_predictions"],
        metrics["cv_log_rmse_mean"],
        metrics["cv_log_rmse_std"],
        metrics["cv_log_rmse_excl_outliers"],
        best,
        report["members"][best]["cv_log_rmse_mean"],
        {k: round(v, 3) for k, v in combo["weights"].items()},
    )
    return metrics
