"""Regressors for the boosted, kernel and robust members (``kind`` lightgbm, xgboost,
catboost, svr, gradient_boosting), each bounded to the cores it is given.

:mod:`houseprices.models.registry` names them, with the preprocessing each kind needs.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted

from houseprices.config.models import CatBoostConfig, GBRConfig, LightGBMConfig, SVRConfig, XGBoostConfig
from houseprices.util.threads import available_cores


def cores(n: int) -> int:
    """``n`` threads; for 0, the process's thread cap (``resources.threads``, which
    ``limit_threads`` sets as ``OMP_NUM_THREADS``), else every core it may use. Without
    the cap a member spun two OpenMP threads in a one-thread stage, against the other
    processes on the machine."""
    if n > 0:
        return n
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(cap) if cap.isdigit() and int(cap) > 0 else available_cores()


class CatBoostMember(RegressorMixin, BaseEstimator):
    """CatBoost on a frame whose text columns are categorical: they are found in ``fit``
    (the preprocessing decides which columns stay text) and handed to CatBoost as
    ``cat_features``, which it encodes with ordered target statistics."""

    def __init__(
        self, *, iterations=1000, learning_rate=0.05, depth=5, l2_leaf_reg=3.0, rsm=1.0, thread_count=1, random_state=0
    ):
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.rsm = rsm
        self.thread_count = thread_count
        self.random_state = random_state

    def _frame(self, X) -> tuple[pd.DataFrame, list]:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
        text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        return frame.astype({c: "object" for c in text}), text

    def fit(self, X, y):
        from catboost import CatBoostRegressor

        frame, text = self._frame(X)
        self.cat_features_ = text
        self.n_features_in_ = frame.shape[1]
        self.model_ = CatBoostRegressor(
            iterations=self.iterations,
            learning_rate=self.learning_rate,
            depth=self.depth,
            l2_leaf_reg=self.l2_leaf_reg,
            rsm=self.rsm,
            thread_count=self.thread_count,
            random_seed=self.random_state,
            loss_function="RMSE",
            verbose=False,
            allow_writing_files=False,
        )
        self.model_.fit(frame, np.asarray(y, dtype=np.float64), cat_features=text)
        return self

    def predict(self, X):
        check_is_fitted(self, "model_")
        frame, _ = self._frame(X)
        return np.asarray(self.model_.predict(frame), dtype=np.float64)


def lightgbm(cfg: LightGBMConfig, seed: int):
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=cfg.n_estimators,
        learning_rate=cfg.learning_rate,
        num_leaves=cfg.num_leaves,
        min_child_samples=cfg.min_child_samples,
        subsample=cfg.subsample,
        subsample_freq=1,
        colsample_bytree=cfg.colsample_bytree,
        reg_alpha=cfg.reg_alpha,
        reg_lambda=cfg.reg_lambda,
        objective=cfg.objective,
        alpha=cfg.huber_delta,
        n_jobs=cores(cfg.n_jobs),
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def xgboost(cfg: XGBoostConfig, seed: int):
    from xgboost import XGBRegressor

    return XGBRegressor(
        n_estimators=cfg.n_estimators,
        learning_rate=cfg.learning_rate,
        max_depth=cfg.max_depth,
        min_child_weight=cfg.min_child_weight,
        subsample=cfg.subsample,
        colsample_bytree=cfg.colsample_bytree,
        reg_alpha=cfg.reg_alpha,
        reg_lambda=cfg.reg_lambda,
        tree_method="hist",
        n_jobs=cores(cfg.n_jobs),
        random_state=seed,
    )


def catboost(cfg: CatBoostConfig, seed: int):
    return CatBoostMember(
        iterations=cfg.iterations,
        learning_rate=cfg.learning_rate,
        depth=cfg.depth,
        l2_leaf_reg=cfg.l2_leaf_reg,
        rsm=cfg.rsm,
        thread_count=cores(cfg.thread_count),
        random_state=seed,
    )


def svr(cfg: SVRConfig, seed: int):
    return SVR(C=cfg.C, epsilon=cfg.epsilon, gamma=cfg.gamma, kernel=cfg.kernel)


def gradient_boosting(cfg: GBRConfig, seed: int):
    return GradientBoostingRegressor(
        loss=cfg.loss,
        alpha=cfg.alpha,
        n_estimators=cfg.n_estimators,
        learning_rate=cfg.learning_rate,
        max_depth=cfg.max_depth,
        max_features=cfg.max_features,
        min_samples_leaf=cfg.min_samples_leaf,
        min_samples_split=cfg.min_samples_split,
        subsample=cfg.subsample,
        random_state=seed,
    )
