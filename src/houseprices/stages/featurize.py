"""Stage ``featurize``: fit the configured preprocessing on the training rows and report
what it learned (feature counts, missing rates, skewed columns, PCA variance)."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ..config import Params
from ..features import build_preprocessor, feature_names, outlier_mask
from ..io import write_csv, write_json
from ..tracking import Tracker, flatten
from . import METRICS, PLOTS, load_prepared

logger = logging.getLogger(__name__)


def feature_report(params: Params, X: pd.DataFrame, y: pd.Series) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    keep = outlier_mask(X, y, params.features.outliers)
    pre = build_preprocessor(params.features, params.seed)
    Z = np.asarray(pre.fit_transform(X[keep]), dtype=np.float64)
    names = feature_names(pre)
    inputs = [c for c in X.columns if c != "Id"]
    missing = X[inputs].isna().mean().sort_values(ascending=False)
    skew_step = pre.named_steps["columns"].named_transformers_["num"].named_steps["skew"]
    num_names = pre.named_steps["columns"].named_transformers_["num"].named_steps["impute"].get_feature_names_out()
    skewed = skew_step.skewed_columns(num_names)
    pca = PCA(svd_solver="full").fit(Z) if "pca" not in pre.named_steps else pre.named_steps["pca"]
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    report = {
        "input_features": len(inputs),
        "output_features": len(names),
        "training_rows": int(keep.sum()),
        "outlier_rows_removed": int((~keep).sum()),
        "skewed_columns": len(skewed),
        "columns_with_missing": int((missing > 0).sum()),
        "pca_components_for_90pct": int(np.searchsorted(cumulative, 0.90) + 1),
        "pca_components_for_99pct": int(np.searchsorted(cumulative, 0.99) + 1),
    }
    missing_frame = pd.DataFrame({"column": missing.index, "missing_rate": missing.to_numpy().round(6)})
    variance = pd.DataFrame({"component": np.arange(1, len(cumulative) + 1),
                             "cumulative_explained_variance": cumulative.round(6)})
    report_detail = {**report, "skewed_column_names": skewed}
    return report_detail, missing_frame, variance


def run(params: Params) -> dict:
    tracker = Tracker.open(params.tracking.uri, params.tracking.experiment, params.tracking.required)
    X, y, _ = load_prepared()
    report, missing, variance = feature_report(params, X, y)
    write_json(METRICS / "features.json", report)
    write_csv(PLOTS / "features" / "missing_rate.csv", missing[missing["missing_rate"] > 0])
    write_csv(PLOTS / "features" / "pca_variance.csv", variance)
    with tracker.stage_run("featurize", "stage", flatten({"features": params.features.model_dump(mode="json")})):
        if tracker.enabled:
            mlflow.log_metrics({k: v for k, v in report.items() if isinstance(v, (int, float))})
            mlflow.log_dict(report, "features/report.json")
            mlflow.log_artifact(str(PLOTS / "features" / "missing_rate.csv"), "features")
            mlflow.log_artifact(str(PLOTS / "features" / "pca_variance.csv"), "features")
    logger.info("features: %d inputs -> %d model features, %d skewed columns",
                report["input_features"], report["output_features"], report["skewed_columns"])
    return report
