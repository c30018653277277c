"""Combining members from their out-of-fold predictions, scored honestly.

Weights are always fit on rows other than the ones they are scored on (nested across
the CV folds), so the ensemble's CV estimate is not flattered by its own fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from houseprices.evaluation.folds import Fold, FoldScores, fold_scores, log_rmse

METHODS = ("mean", "nnls", "stacking", "greedy")
# Greedy (Caruana) selection: additions with replacement; the weights are counts / steps.
GREEDY_STEPS = 40
# Stacking's ridge penalty is chosen among these by leave-one-out on the rows it is fit on.
STACKING_ALPHAS = tuple(float(a) for a in np.logspace(-4, 2, 13))


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


def fit_combiner(method: str, P: np.ndarray, y: np.ndarray) -> Combiner:
    """``P``: (rows, members) log predictions; ``y``: log prices. (scipy and scikit-learn
    are imported here: every train stage imports this module for :class:`PriceModel`.)"""
    from scipy.optimize import nnls
    from sklearn.linear_model import RidgeCV

    m = P.shape[1]
    if method == "nnls":
        w, _ = nnls(P, y)
        if w.sum() > 0:
            return Combiner(w / w.sum())
    if method in ("mean", "nnls"):  # nnls with every weight 0: the mean
        return Combiner(np.full(m, 1.0 / m))
    if method == "stacking":
        ridge = RidgeCV(alphas=STACKING_ALPHAS).fit(P, y)
        return Combiner(ridge.coef_.astype(np.float64), float(ridge.intercept_))
    if method == "greedy":
        return Combiner(greedy_weights(P, y))
    raise ValueError(f"unknown ensemble method {method!r}; choose from {METHODS}")


def greedy_weights(P: np.ndarray, y: np.ndarray, steps: int = GREEDY_STEPS) -> np.ndarray:
    """Caruana et al. (2004) forward selection with replacement: start from the best
    member, then repeatedly add the member (again, if it helps most) whose inclusion
    lowers the averaged prediction's RMSE the most. Ties go to the earlier member, so
    the result is deterministic; members never picked get weight 0."""
    m = P.shape[1]
    counts = np.zeros(m)
    total = np.zeros(len(y))
    for step in range(steps):
        trial = (total[:, None] + P) / (step + 1)
        errors = np.sqrt(np.mean((trial - y[:, None]) ** 2, axis=0))
        pick = int(np.argmin(errors))
        counts[pick] += 1
        total += P[:, pick]
    return counts / counts.sum()


@dataclass
class NestedScore(FoldScores):
    method: str
    fold_scores: list[float]
    oof: np.ndarray  # (repeats, rows): each row predicted by weights fit without its fold


def nested_score(
    method: str, oof: np.ndarray, y: np.ndarray, folds: list[Fold], keep: np.ndarray | None = None
) -> NestedScore:
    """``oof``: (members, repeats, rows). Each fold is scored by weights fit on the
    other folds of the same repeat; ``keep`` (rows allowed to fit weights) drops the
    documented outliers from the fitting rows as the members' training does. Every
    validation row is still scored."""
    repeats = oof.shape[1]
    pred = np.full((repeats, len(y)), np.nan)
    for fold in folds:
        P = oof[:, fold.repeat, :].T
        fit_rows = fold.train if keep is None else fold.train[keep[fold.train]]
        combiner = fit_combiner(method, P[fit_rows], y[fit_rows])
        pred[fold.repeat, fold.valid] = combiner.predict(P[fold.valid])
    return NestedScore(method, fold_scores(pred, y, folds).tolist(), pred)


def choose_method(
    requested: str, oof: np.ndarray, y: np.ndarray, folds: list[Fold], keep: np.ndarray | None = None
) -> tuple[str, dict[str, NestedScore]]:
    candidates = METHODS if requested == "auto" else (requested,)
    scores = {m: nested_score(m, oof, y, folds, keep) for m in candidates}
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


# The refit trains on every row (5/4 of a fold model's rows); averaging fold models must
# beat one model by more than this (log-RMSE) on the out-of-fold evidence to be chosen.
BAGGING_MIN_GAIN = 0.001


def choose_test_predictions(requested: str, oof: np.ndarray, y: np.ndarray, combiner: Combiner) -> tuple[str, dict]:
    """``refit`` or ``fold_average`` for the test rows, and the evidence.

    With repeated CV each training row is predicted by one model per repeat, each fit
    without it: the ensemble's score on the repeat-averaged OOF predictions, against its
    mean score on a single repeat's, measures what averaging models fit on folds gains
    (``bagging_gain``; the fold average of the test predictions averages even more models).
    ``auto`` takes the fold average when that gain exceeds ``BAGGING_MIN_GAIN``, else the
    refit models, which see every training row.
    """
    repeats = oof.shape[1]
    single = float(np.mean([log_rmse(y, combiner.predict(oof[:, r, :].T)) for r in range(repeats)]))
    averaged = log_rmse(y, combiner.predict(oof.mean(axis=1).T))
    evidence = {
        "single_repeat_log_rmse": round(single, 6),
        "repeat_average_log_rmse": round(averaged, 6),
        "bagging_gain": round(single - averaged, 6),
    }
    if requested == "auto":
        requested = "fold_average" if repeats > 1 and single - averaged > BAGGING_MIN_GAIN else "refit"
    return requested, evidence
