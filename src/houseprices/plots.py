"""Plot data for DVC (CSV files that ``dvc.yaml`` declares, drawn by the templates in
``.dvc/plots/``) and PNG figures for MLflow, which has no such templates.

Each figure exists once for DVC: the CSVs. The PNGs are MLflow artifacts only.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path, write_csv  # noqa: E402

CURVE_COLUMNS = ["epoch", "fold", "split", "loss"]
FOLD_COLUMNS = ["fold", "log_rmse"]


def long_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (epoch, fold, split): the learning-curve template draws a line per fold."""
    if not len(curves):
        return pd.DataFrame(columns=CURVE_COLUMNS)
    long = curves.melt(id_vars=["epoch", "fold"], value_vars=["train_loss", "valid_loss", "holdout_loss"],
                       var_name="split", value_name="loss").dropna(subset=["loss"])
    long["split"] = long["split"].str.removesuffix("_loss")
    long["loss"] = long["loss"].round(6)  # float32 noise in the last digits is not a change
    return long[CURVE_COLUMNS].sort_values(["fold", "split", "epoch"], kind="stable")


def write_member_plots(plots_dir: Path, name: str, result) -> None:
    """``folds/<name>.csv`` (one log-RMSE per fold) for every model; ``curves/<name>.csv``
    only for a model trained in epochs. A model without epochs removes a stale curve file
    instead of writing a header-only one, which DVC would draw as an empty chart."""
    write_csv(plots_dir / "folds" / f"{name}.csv", pd.DataFrame(
        {"fold": [f.label for f in result.folds], "log_rmse": np.round(result.fold_scores, 6)},
        columns=FOLD_COLUMNS))
    curve_file = plots_dir / "curves" / f"{name}.csv"
    if len(result.curves):
        write_csv(curve_file, long_curves(result.curves))
    else:
        curve_file.unlink(missing_ok=True)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def ensemble_figures(out_dir: Path, log_actual: np.ndarray, log_predicted: np.ndarray,
                     weights: dict[str, float], scores: dict[str, float]) -> list[Path]:
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(log_actual, log_predicted, s=6, alpha=0.5)
    lo, hi = float(np.min(log_actual)), float(np.max(log_actual))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax.set(xlabel="log actual price", ylabel="log predicted price (out-of-fold)", title="Predicted vs actual")
    paths.append(_save(fig, out_dir / "predicted_vs_actual.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(log_predicted, log_actual - log_predicted, s=6, alpha=0.5)
    ax.axhline(0, color="grey", lw=1)
    ax.set(xlabel="log predicted price", ylabel="residual (log)", title="Residuals vs predicted")
    paths.append(_save(fig, out_dir / "residuals.png"))

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(weights)))
    ax.barh(list(weights), list(weights.values()))
    ax.set(xlabel="weight", title="Ensemble weights")
    paths.append(_save(fig, out_dir / "weights.png"))

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(scores)))
    names = sorted(scores, key=scores.get, reverse=True)
    ax.barh(names, [scores[n] for n in names])
    ax.set(xlabel="CV log-RMSE", title="CV score per model", xlim=(0.9 * min(scores.values()), None))
    paths.append(_save(fig, out_dir / "scores.png"))
    return paths
