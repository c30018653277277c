"""Combining members from their out-of-fold predictions, scored honestly.

Weights are always fit on rows other than the ones they are scored on (nested across
the CV folds), so the ensemble's CV estimate is not flattered by its own fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.linear_model import Ridge

from .training import Fold, FoldScores, log_rmse

METHODS = ("mean", "nnls", "stacking")


class PriceModel:
    """Fitted member pipelines and their weights: raw house rows in, dollars out.

    One class serves a single model (weight 1) and any ensemble, so the MLflow model and
    the submission are computed by the same code.
    """

    def __init__(self, members: dict, weights: dict[str, float], intercept: float = 0.0):
        self.members = members
        self.weights = weights
        self.intercept = intercept

    def predict_log(self, X: pd.DataFrame) -> np.ndarray:
        total = np.full(len(X), self.intercept, dtype=np.float64)
        for name, weight in self.weights.items():
            if weight != 0.0:
                total += weight * np.asarray(self.members[name].predict(X), dtype=np.float64)
        return total

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.exp(self.predict_log(X))


@dataclass(frozen=True)
class Combiner:
    weights: np.ndarray
    intercept: float = 0.0

    def predict(self, P: np.ndarray) -> np.ndarray:
        return P @ self.weights + self.intercept


def fit_combiner(method: str, P: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> Combiner:
    """``P``: (rows, members) log predictions; ``y``: log prices."""
    m = P.shape[1]
    if method == "mean":
        return Combiner(np.full(m, 1.0 / m))
    if method == "nnls":
        w, _ = nnls(P, y)
        if w.sum() <= 0:
            return Combiner(np.full(m, 1.0 / m))
        return Combiner(w / w.sum())
    if method == "stacking":
        ridge = Ridge(alpha=alpha).fit(P, y)
        return Combiner(ridge.coef_.astype(np.float64), float(ridge.intercept_))
    raise ValueError(f"unknown ensemble method {method!r}; choose from {METHODS}")


@dataclass
class NestedScore(FoldScores):
    method: str
    fold_scores: list[float]
    oof: np.ndarray  # (repeats, rows): each row predicted by weights fit without its fold


def nested_score(method: str, oof: np.ndarray, y: np.ndarray, folds: list[Fold]) -> NestedScore:
    """``oof``: (members, repeats, rows). Each fold is scored by weights fit on the
    other folds of the same repeat."""
    repeats = oof.shape[1]
    pred = np.full((repeats, len(y)), np.nan)
    scores = []
    for fold in folds:
        P = oof[:, fold.repeat, :].T
        combiner = fit_combiner(method, P[fold.train], y[fold.train])
        pred[fold.repeat, fold.valid] = combiner.predict(P[fold.valid])
        scores.append(log_rmse(y[fold.valid], pred[fold.repeat, fold.valid]))
    return NestedScore(method, scores, pred)


def choose_method(requested: str, oof: np.ndarray, y: np.ndarray, folds: list[Fold]) -> tuple[str, dict[str, NestedScore]]:
    candidates = METHODS if requested == "auto" else (requested,)
    scores = {m: nested_score(m, oof, y, folds) for m in candidates}
    best = min(scores, key=lambda m: scores[m].mean)
    return best, scores


def conformal_halfwidth(residuals: np.ndarray, coverage: float) -> float:
    """Split-conformal quantile of |residual| with the finite-sample correction."""
    r = np.sort(np.abs(residuals[np.isfinite(residuals)]))
    n = len(r)
    k = min(n, int(np.ceil((n + 1) * coverage)))
    return float(r[k - 1])


def nested_coverage(pred: np.ndarray, y: np.ndarray, folds: list[Fold], coverage: float) -> float:
    """Share of rows inside an interval whose width was computed without their fold."""
    hits = []
    for fold in folds:
        width = conformal_halfwidth(y[fold.train] - pred[fold.repeat, fold.train], coverage)
        hits.append(np.abs(y[fold.valid] - pred[fold.repeat, fold.valid]) <= width)
    return float(np.mean(np.concatenate(hits)))
