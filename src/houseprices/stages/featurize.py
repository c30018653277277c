"""Stage ``featurize``: fit the configured preprocessing on the training rows and report
what it learned (feature counts, missing rates, skewed columns, PCA variance)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from houseprices.config.params import Params
from houseprices.data.prepared import load_prepared
from houseprices.data.schema import ID
from houseprices.evaluation.outliers import outlier_mask
from houseprices.features.pipelines import build_preprocessor, feature_names
from houseprices.paths import METRICS, PLOTS
from houseprices.tracking.tracker import Tracker
from houseprices.util.files import write_csv, write_json

logger = logging.getLogger(__name__)
# What `dvc exp show` and `dvc metrics diff` show: numbers a params change moves. The full
# report (branch widths, PCA spectrum counts, the skewed columns' names) is the MLflow
# artifact features/report.json.
METRIC_KEYS = (
    "output_features",
    "skewed_columns",
    "columns_imputed",
    "outlier_rows_removed",
    "pca_components_kept",
    "pca_explained_variance_kept",
)


def feature_report(params: Params, X: pd.DataFrame, y: pd.Series) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Fit the preprocessing exactly as the final model does (outliers dropped, training
    rows only) and describe it: counts, missing rates, skewed columns, PCA variance."""
    keep = outlier_mask(X, y, params.features.outliers)
    rows = X[keep]
    pre = build_preprocessor(params.features, params.seed)
    Z = np.asarray(pre.fit_transform(rows), dtype=np.float64)
    names = feature_names(pre)  # through every step: the contract the model relies on
    if len(names) != Z.shape[1]:
        raise RuntimeError(f"preprocessor names {len(names)} features but outputs {Z.shape[1]}")

    inputs = [c for c in X.columns if c != ID]
    missing = X[inputs].isna().mean()
    # What the imputers still fill after "NA means none" (the rest of `missing` is documented).
    filled = pre.named_steps["none_filler"].transform(X[inputs]) if "none_filler" in pre.named_steps else X[inputs]
    imputed = filled.isna().mean().reindex(missing.index)
    missing_frame = pd.DataFrame(
        {
            "column": missing.index,
            "missing_rate": missing.to_numpy().round(6),
            "imputed_rate": imputed.to_numpy().round(6),
        }
    ).sort_values(["missing_rate", "column"], ascending=[False, True], kind="stable")

    columns = pre.named_steps["columns"]
    num = columns.named_transformers_["num"]
    skewed = num.named_steps["skew"].skewed_columns(num.named_steps["impute"].get_feature_names_out())
    branch_width = {name: len(cols) for name, _, cols in columns.transformers_ if name != "remainder"}

    # The spectrum of the features the model would see without PCA; with PCA on, also
    # what the fitted PCA kept.
    before_pca = Z if "pca" not in pre.named_steps else np.asarray(pre[:-1].transform(rows), dtype=np.float64)
    spectrum = PCA(svd_solver="full").fit(before_pca)
    cumulative = np.cumsum(spectrum.explained_variance_ratio_)
    branches = {"num": "numeric", "flag": "flag", "cat": "categorical", "ord": "ordinal"}
    report = {
        "input_features": len(inputs),
        "output_features": len(names),
        **{f"{label}_inputs": branch_width.get(branch, 0) for branch, label in branches.items()},
        "training_rows": int(keep.sum()),
        "outlier_rows_removed": int((~keep).sum()),
        "skewed_columns": len(skewed),
        "columns_with_missing": int((missing > 0).sum()),
        "columns_imputed": int((imputed > 0).sum()),
        "pca_components_for_90pct": int(min(np.searchsorted(cumulative, 0.90) + 1, len(cumulative))),
        "pca_components_for_99pct": int(min(np.searchsorted(cumulative, 0.99) + 1, len(cumulative))),
    }
    if "pca" in pre.named_steps:
        pca = pre.named_steps["pca"]
        report["pca_components_kept"] = int(pca.n_components_)
        report["pca_explained_variance_kept"] = round(float(pca.explained_variance_ratio_.sum()), 6)
    variance = pd.DataFrame(
        {"component": np.arange(1, len(cumulative) + 1), "cumulative_explained_variance": cumulative.round(6)}
    )
    return {**report, "skewed_column_names": skewed}, missing_frame, variance


def run(params: Params) -> dict:
    tracker = Tracker.open(params)
    X, y, _ = load_prepared()
    report, missing, variance = feature_report(params, X, y)
    write_json(METRICS / "features.json", {k: report[k] for k in METRIC_KEYS if k in report})
    plots = [PLOTS / "features" / "missing_rate.csv", PLOTS / "features" / "pca_variance.csv"]
    write_csv(plots[0], missing[missing["missing_rate"] > 0])
    write_csv(plots[1], variance)
    with tracker.run("featurize", "stage", {"features": params.features.model_dump(mode="json")}) as run:
        run.log_metrics({k: v for k, v in report.items() if isinstance(v, (int, float))})
        run.log_dict(report, "features/report.json")
        run.log_artifacts(plots, "features")
    logger.info(
        "features: %d inputs -> %d model features, %d skewed columns",
        report["input_features"],
        report["output_features"],
        report["skewed_columns"],
    )
    return report
