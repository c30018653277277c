"""PNG figures of the ensemble for MLflow (artifacts only: DVC draws the CSVs of
:mod:`.dvc_plots`). matplotlib is imported only where a figure is drawn: in a process of a
fork server that imported it while the stage did its own work (:func:`drawn_aside`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from houseprices.evaluation.fold_workers import start_fork_server
from houseprices.util.files import atomic_path

DRAWING_CODE = [__name__, "matplotlib.pyplot"]


def ensemble_figures(
    out_dir: Path,
    log_actual: np.ndarray,
    log_predicted: np.ndarray,
    weights: dict[str, float],
    scores: dict[str, float],
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # file-only backend
    import matplotlib.pyplot as plt

    paths = []

    def save(fig, name: str) -> None:
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
        plt.close(fig)
        paths.append(out_dir / name)

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(log_actual, log_predicted, s=6, alpha=0.5)
    lo, hi = float(np.min(log_actual)), float(np.max(log_actual))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax.set(xlabel="log actual price", ylabel="log predicted price (out-of-fold)", title="Predicted vs actual")
    save(fig, "predicted_vs_actual.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(log_predicted, log_actual - log_predicted, s=6, alpha=0.5)
    ax.axhline(0, color="grey", lw=1)
    ax.set(xlabel="log predicted price", ylabel="residual (log)", title="Residuals vs predicted")
    save(fig, "residuals.png")

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(weights)))
    ax.barh(list(weights), list(weights.values()))
    ax.set(xlabel="weight", title="Ensemble weights")
    save(fig, "weights.png")

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(scores)))
    names = sorted(scores, key=scores.get, reverse=True)
    ax.barh(names, [scores[n] for n in names])
    ax.set(xlabel="CV log-RMSE", title="CV score per model", xlim=(0.9 * min(scores.values()), None))
    save(fig, "scores.png")
    return paths


@contextlib.contextmanager
def drawn_aside(out_dir: Path, **data) -> Iterator[Future]:
    """:func:`ensemble_figures` in a process of the fork server while the caller goes on
    (where there is no fork server, in this one); the future's ``result()`` is their paths
    (or the drawing's error)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        done = Future()
        done.set_result(ensemble_figures(out_dir, **data))
        yield done
        return
    start_fork_server(DRAWING_CODE)  # a no-op when started earlier
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        yield pool.submit(ensemble_figures, out_dir, **data)
