"""K-fold cross-validation on the competition metric, with out-of-fold predictions.

The whole estimator (preprocessing included) is cloned and fit inside every fold, so
no statistic of a validation fold reaches its model.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd

from houseprices.config.models import ModelConfig
from houseprices.config.params import Params
from houseprices.errors import TrainingError
from houseprices.evaluation.feature_cache import FeatureCache, FoldFeatures, preprocessed
from houseprices.evaluation.fold_workers import fold_fits
from houseprices.evaluation.folds import Fold, FoldScores, log_rmse, make_folds
from houseprices.evaluation.outliers import outlier_mask
from houseprices.models.registry import build_estimator
from houseprices.util.timing import timed

logger = logging.getLogger(__name__)


@dataclass
class CVResult(FoldScores):
    folds: list[Fold]
    fold_scores: list[float]
    oof: np.ndarray  # (repeats, n_rows) log-price predictions
    test_fold_predictions: np.ndarray  # (n_folds_total, n_test)
    curves: pd.DataFrame  # epoch, fold, train_loss, valid_loss
    fold_seconds: list[float] = field(default_factory=list)

    def metrics(self) -> dict:
        """The headline numbers DVC declares as metrics; per-fold scores are a plot
        (``plots/folds/<model>.csv``) so ``dvc exp show`` stays one column per number."""
        return {"cv_log_rmse_mean": round(self.mean, 6), "cv_log_rmse_std": round(self.std, 6)}


CURVE_COLUMNS = ["epoch", "fold", "train_loss", "valid_loss", "holdout_loss"]


def is_net(estimator) -> bool:
    """A skorch MLP, asked without importing torch: no net was built while its module is unloaded."""
    mlp = sys.modules.get("houseprices.models.mlp.regressor")
    return mlp is not None and isinstance(estimator, mlp.MLPRegressor)


def learning_curve(net, fold_label: str) -> pd.DataFrame:
    """Per-epoch losses of a fitted MLP (empty for other models): training loss, the internal
    validation split's loss (when ``valid_fraction`` > 0) and the loss on the fold's own
    validation rows (``holdout_loss``)."""
    if not is_net(net):
        return pd.DataFrame(columns=CURVE_COLUMNS)
    rows = [
        {
            "epoch": h["epoch"],
            "fold": fold_label,
            "train_loss": h["train_loss"],
            "valid_loss": h.get("valid_loss", np.nan),
            "holdout_loss": h.get("holdout_loss", np.nan),
        }
        for h in net.history
    ]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


@contextlib.contextmanager
def divergence_named(name: str, where: str):
    """A net that diverged (FloatingPointError) as one line naming model, fold and the key to fix."""
    try:
        yield
    except FloatingPointError as err:
        raise TrainingError(f"model {name!r}, {where}: {err} (models.{name}.lr)") from None


@timed("fit")
def fit_estimator(name: str, cfg: ModelConfig, params: Params, X: pd.DataFrame, y: pd.Series, where: str):
    """Build and fit one estimator, preprocessing and model, on the given training rows
    (outliers removed there)."""
    keep = outlier_mask(X, y, params.features.outliers)
    estimator = build_estimator(cfg, params.features, params.seed)
    with divergence_named(name, where):
        estimator.fit(X[keep], y[keep])
    return estimator


@timed("fit")
def fit_model(name: str, model, features, y: pd.Series, where: str, holdout: tuple | None = None):
    """Fit the model on preprocessed rows, as the whole pipeline's ``fit`` would. With
    ``holdout`` (preprocessed rows, their targets), an MLP also records its loss on them per epoch."""
    with divergence_named(name, where):
        if holdout is not None and is_net(model):
            model.set_params(callbacks__holdout__X=holdout[0], callbacks__holdout__y=np.asarray(holdout[1]))
            model.fit(features, y)
            model.set_params(callbacks__holdout__X=None, callbacks__holdout__y=None)  # not pickled
        else:
            model.fit(features, y)
    return model


@timed("fit")
def predict_finite(estimator, X: pd.DataFrame, name: str, where: str) -> np.ndarray:
    pred = np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(pred)
    if bad.any():
        raise TrainingError(
            f"model {name!r}, {where}: {int(bad.sum())} non-finite predictions; "
            f"the fit diverged: try a lower learning rate (models.{name}.lr)"
        )
    return pred


@dataclass(frozen=True)
class FoldOutcome:
    """One finished fold, as the caller's ``on_fold`` sees it."""

    fold: Fold
    position: int  # 1-based, over all repeats
    total: int
    score: float
    seconds: float
    curves: pd.DataFrame
    started: float = 0.0  # epoch seconds of the fit's start and end, in whichever process fit it
    ended: float = 0.0


@dataclass(frozen=True)
class FoldTask:
    """What every fold of one model's CV needs; sent once to each worker process."""

    name: str
    params: Params
    X: pd.DataFrame
    y: pd.Series
    X_test: pd.DataFrame | None
    folds: list[Fold]
    cache: FeatureCache | None = None
    data_key: str = ""  # a hash of X, y and X_test, with a cache


@dataclass(frozen=True)
class FoldFit:
    """One fold's fit, as it travels back from a worker process."""

    pred: np.ndarray
    test_pred: np.ndarray | None
    score: float
    curves: pd.DataFrame
    seconds: float
    started: float
    ended: float


def fold_features(
    cache, preprocess, X: pd.DataFrame, y: pd.Series, fold: Fold, keep: np.ndarray, data_key: str = "", X_test=None
) -> FoldFeatures:
    """The fold's model inputs: ``preprocess`` (unfitted) fit on its training rows, outliers
    removed (``keep``), and applied to its validation (and test) rows. With ``cache`` (on disk, or
    a search worker's memory) they come from it when made before; ``data_key`` names X, y, X_test."""
    X_train, y_train, X_valid = X.iloc[fold.train][keep], y.iloc[fold.train][keep], X.iloc[fold.valid]
    if cache is None:
        return preprocessed(preprocess, X_train, y_train, X_valid, X_test)
    rows_key = joblib.hash((data_key, fold.train[keep], fold.valid))
    return cache.features(preprocess, X_train, y_train, X_valid, X_test, rows_key)


def fit_fold(task: FoldTask, index: int) -> FoldFit:
    """Fit fold ``index`` and predict its validation (and test) rows; the same in any process."""
    fold = task.folds[index]
    started, start = time.time(), time.perf_counter()
    where = f"fold {fold.label}"
    keep = outlier_mask(task.X.iloc[fold.train], task.y.iloc[fold.train], task.params.features.outliers)
    estimator = build_estimator(task.params.model(task.name), task.params.features, task.params.seed)
    features = fold_features(task.cache, estimator[:-1], task.X, task.y, fold, keep, task.data_key, task.X_test)
    y_valid = task.y.iloc[fold.valid]
    model = fit_model(
        task.name, estimator[-1], features.train, task.y.iloc[fold.train][keep], where, (features.valid, y_valid)
    )
    pred = predict_finite(model, features.valid, task.name, where)
    test_pred = None
    if features.test is not None:
        test_pred = predict_finite(model, features.test, task.name, f"{where} test rows")
    score = log_rmse(y_valid, pred)
    curves = learning_curve(model, fold.label)
    return FoldFit(pred, test_pred, score, curves, time.perf_counter() - start, started, time.time())


@timed("fit")
def cross_validate(
    name: str,
    params: Params,
    X: pd.DataFrame,
    y: pd.Series,
    X_test: pd.DataFrame | None = None,
    *,
    on_fold: Callable[[FoldOutcome], None] | None = None,
    workers: int = 1,
    meanwhile: Callable[[], object] | None = None,
    cache: FeatureCache | None = None,
) -> CVResult:
    """Every fold of one model, in ``workers`` processes at once (each fold fit exactly as
    alone, so the results do not depend on it); ``on_fold`` sees each finished fold, in order.

    ``meanwhile`` (e.g. the refit on all rows) runs in this process while the workers fit
    the folds (before the folds when they are fit here, ``workers`` 1). With ``cache``, each
    fold's preprocessing output is read from it when an earlier run made the same.
    """
    params.model(name)  # an unknown model fails before any worker starts
    folds = make_folds(len(X), params.cv.folds, params.cv.repeats, params.seed)
    X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    data_key = joblib.hash((X, y, X_test)) if cache is not None else ""
    task = FoldTask(name, params, X, y, X_test, folds, cache, data_key)
    oof = np.full((params.cv.repeats, len(X)), np.nan)
    test_preds, scores, curves, seconds = [], [], [], []
    with fold_fits(fit_fold, task, len(folds), workers, f"model {name!r}") as fits:
        if meanwhile is not None:
            meanwhile()
        for position, (fold, fit) in enumerate(zip(folds, fits, strict=True), 1):
            oof[fold.repeat, fold.valid] = fit.pred
            scores.append(fit.score)
            if fit.test_pred is not None:
                test_preds.append(fit.test_pred)
            curves.append(fit.curves)
            seconds.append(fit.seconds)
            logger.debug("%s %s: log-RMSE %.5f (%.1fs)", name, fold.label, fit.score, fit.seconds)
            if on_fold is not None:
                outcome = FoldOutcome(
                    fold, position, len(folds), fit.score, fit.seconds, fit.curves, fit.started, fit.ended
                )
                on_fold(outcome)
    return CVResult(
        folds=folds,
        fold_scores=scores,
        oof=oof,
        test_fold_predictions=np.vstack(test_preds) if test_preds else np.empty((0, 0)),
        curves=pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        fold_seconds=seconds,
    )
