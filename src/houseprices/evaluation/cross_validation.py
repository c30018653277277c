"""K-fold cross-validation on the competition metric, with out-of-fold predictions.

The whole estimator (preprocessing included) is cloned and fit inside every fold, so
no statistic of a validation fold reaches its model.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd

from houseprices.config.models import ModelConfig
from houseprices.config.params import Params
from houseprices.errors import TrainingError
from houseprices.evaluation.feature_cache import FeatureCache, preprocessed
from houseprices.evaluation.fold_workers import fold_fits
from houseprices.evaluation.folds import Fold, FoldScores, log_rmse, make_folds
from houseprices.evaluation.outliers import outlier_mask
from houseprices.models.registry import build_estimator


@dataclass
class CVResult(FoldScores):
    folds: list[Fold]
    fold_scores: list[float]
    oof: np.ndarray  # (repeats, n_rows) log-price predictions
    test_fold_predictions: np.ndarray  # (n_folds_total, n_test)
    curves: pd.DataFrame  # epoch, fold, train_loss, valid_loss, holdout_loss

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


def fit_estimator(name: str, cfg: ModelConfig, params: Params, X: pd.DataFrame, y: pd.Series, where: str):
    """Build and fit one estimator, preprocessing and model, on the given training rows
    (outliers removed there)."""
    keep = outlier_mask(X, y, params.features.outliers)
    estimator = build_estimator(cfg, params.features, params.seed)
    with divergence_named(name, where):
        estimator.fit(X[keep], y[keep])
    return estimator


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
    """One fold's fit, as it travels back from a worker process: its predictions, score and
    learning curve, and the fit's span (epoch seconds, in whichever process fit it)."""

    fold: Fold
    pred: np.ndarray
    test_pred: np.ndarray | None
    score: float
    curves: pd.DataFrame
    seconds: float
    started: float
    ended: float


def fold_task(
    name: str, params: Params, X: pd.DataFrame, y: pd.Series, X_test=None, cache=None, data_key: str | None = None
) -> FoldTask:
    """What every fold of one model's CV needs; the unknown model fails here, before any fit.
    ``data_key`` identifies X, y and X_test for ``cache`` (a hash of them, made now if None)."""
    params.model(name)
    folds = make_folds(len(X), params.cv.folds, params.cv.repeats, params.seed)
    X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    if cache is not None and data_key is None:
        data_key = joblib.hash((X, y, X_test))
    return FoldTask(name, params, X, y, X_test, folds, cache, data_key or "")


def fit_fold(task: FoldTask, index: int) -> FoldFit:
    """Fit fold ``index`` and predict its validation (and test) rows; the same in any process.
    The preprocessing is fit on the fold's training rows, outliers removed; with a cache, its
    output comes from there when made before."""
    fold, name = task.folds[index], task.name
    started, start = time.time(), time.perf_counter()
    where = f"fold {fold.label}"
    X_train, y_train = task.X.iloc[fold.train], task.y.iloc[fold.train]
    keep = outlier_mask(X_train, y_train, task.params.features.outliers)
    estimator = build_estimator(task.params.model(name), task.params.features, task.params.seed)
    X_train, y_train, X_valid, y_valid = X_train[keep], y_train[keep], task.X.iloc[fold.valid], task.y.iloc[fold.valid]
    if task.cache is None:
        features = preprocessed(estimator[:-1], X_train, y_train, X_valid, task.X_test)
    else:
        rows_key = joblib.hash((task.data_key, fold.train[keep], fold.valid))
        features = task.cache.features(estimator[:-1], X_train, y_train, X_valid, task.X_test, rows_key)
    model = fit_model(name, estimator[-1], features.train, y_train, where, (features.valid, y_valid))
    pred = predict_finite(model, features.valid, name, where)
    test_pred = None if features.test is None else predict_finite(model, features.test, name, f"{where} test rows")
    curves = learning_curve(model, fold.label)
    return FoldFit(
        fold, pred, test_pred, log_rmse(y_valid, pred), curves, time.perf_counter() - start, started, time.time()
    )


def cross_validate(
    name: str,
    params: Params,
    X: pd.DataFrame,
    y: pd.Series,
    X_test: pd.DataFrame | None = None,
    *,
    on_fold: Callable[[int, FoldFit], None] | None = None,
    workers: int = 1,
    meanwhile: Callable[[], object] | None = None,
    cache: FeatureCache | None = None,
) -> CVResult:
    """Every fold of one model, in ``workers`` processes at once (each fold fit exactly as
    alone, so the results do not depend on it); ``on_fold`` sees each finished fold, in order,
    with its position (from 1, over all repeats).

    ``meanwhile`` (e.g. the refit on all rows) runs in this process while the workers fit
    the folds (before the folds when they are fit here, ``workers`` 1). With ``cache``, each
    fold's preprocessing output is read from it when an earlier run made the same.
    """
    task = fold_task(name, params, X, y, X_test, cache)
    oof = np.full((params.cv.repeats, len(X)), np.nan)
    fits = []
    with fold_fits(fit_fold, task, len(task.folds), workers, f"model {name!r}") as results:
        if meanwhile is not None:
            meanwhile()
        for position, fit in enumerate(results, 1):
            oof[fit.fold.repeat, fit.fold.valid] = fit.pred
            fits.append(fit)
            if on_fold is not None:
                on_fold(position, fit)
    tests = [fit.test_pred for fit in fits if fit.test_pred is not None]
    return CVResult(
        folds=task.folds,
        fold_scores=[fit.score for fit in fits],
        oof=oof,
        test_fold_predictions=np.vstack(tests) if tests else np.empty((0, 0)),
        curves=pd.concat([fit.curves for fit in fits], ignore_index=True) if fits else pd.DataFrame(),
    )
