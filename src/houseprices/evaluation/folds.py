"""The competition metric and the folds every model and the ensemble share (seeded, repeated K-fold)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import RepeatedKFold

from houseprices.errors import ConfigError


def log_rmse(log_true, log_pred) -> float:
    """The competition metric, on values already in log space."""
    diff = np.asarray(log_true, dtype=np.float64) - np.asarray(log_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray
    valid: np.ndarray

    @property
    def label(self) -> str:
        return f"r{self.repeat + 1}f{self.fold + 1}"


def make_folds(n_rows: int, folds: int, repeats: int, seed: int) -> list[Fold]:
    """Shuffled, seeded (repeated) K-fold: every model in a run sees the same folds."""
    if folds > n_rows:
        raise ConfigError(
            f"cv.folds: {folds} folds need at least {folds} training rows; the prepared data has {n_rows}"
        )
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return [Fold(i // folds, i % folds, tr, va) for i, (tr, va) in enumerate(splitter.split(np.arange(n_rows)))]


def fold_scores(pred: np.ndarray, y: np.ndarray, folds: list[Fold], rows: np.ndarray | None = None) -> np.ndarray:
    """Per-fold log-RMSE of (repeats, rows) predictions, optionally on a subset of rows."""
    valid = [f.valid if rows is None else f.valid[rows[f.valid]] for f in folds]
    return np.asarray([log_rmse(y[v], pred[f.repeat, v]) for f, v in zip(folds, valid, strict=True)])


class FoldScores:
    """Mean and spread of ``fold_scores`` (one log-RMSE per fold, all repeats)."""

    fold_scores: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))
