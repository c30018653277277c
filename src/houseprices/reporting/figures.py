"""PNG figures of the ensemble for MLflow (artifacts only: DVC draws the CSVs of
:mod:`.dvc_plots`). matplotlib lives here alone and is imported when a figure is drawn, so
importing the module costs nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from houseprices.util.files import atomic_path
from houseprices.util.timing import timed


def _pyplot():
    """matplotlib on its file-only backend, imported when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


@timed("figures")
def ensemble_figures(
    out_dir: Path,
    log_actual: np.ndarray,
    log_predicted: np.ndarray,
    weights: dict[str, float],
    scores: dict[str, float],
) -> list[Path]:
    plt = _pyplot()
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
