"""Regressors built from a ``models.<name>`` entry's fields, each bounded to the cores it is
given, and the CatBoost member. :mod:`houseprices.models.registry` names them, with the
preprocessing each kind needs."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from houseprices.util.threads import available_cores


def cores(n: int) -> int:
    """``n`` threads; for 0, the process's thread cap (``resources.threads``, which
    ``limit_threads`` sets as ``OMP_NUM_THREADS``), else every core it may use: a member's own
    OpenMP pool would otherwise spin one thread per core against the other processes."""
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

        frame, self.cat_features_ = self._frame(X)
        self.n_features_in_ = frame.shape[1]
        # The params are CatBoost's own (random_state: its synonym of random_seed).
        self.model_ = CatBoostRegressor(
            **self.get_params(), loss_function="RMSE", verbose=False, allow_writing_files=False
        )
        self.model_.fit(frame, np.asarray(y, dtype=np.float64), cat_features=self.cat_features_)
        metadata = self.model_.get_metadata()
        for per_fit in ("train_finish_time", "model_guid"):  # a refit then pickles to the same bytes
            del metadata[per_fit]
        return self

    def predict(self, X):
        check_is_fitted(self, "model_")
        frame, _ = self._frame(X)
        return np.asarray(self.model_.predict(frame), dtype=np.float64)


def fields_as_params(estimator: type | str, *, threads: str = "", renamed=None, exclude=(), **fixed):
    """A regressor whose params are the config's fields, less ``kind`` and ``exclude``
    (``renamed``: field -> param), ``seed`` as its ``random_state`` where it takes one,
    ``threads`` the field of a thread count (0: the process's cap, see :func:`cores`), and
    ``fixed`` params the config does not set. ``estimator``: a class, or ``"module:Class"``
    imported when a model is built (the boosting libraries only where they fit)."""

    def build(cfg, seed: int):
        cls = estimator
        if isinstance(cls, str):
            module, _, name = cls.partition(":")
            cls = getattr(importlib.import_module(module), name)
        params = {(renamed or {}).get(k, k): v for k, v in cfg.model_dump(exclude={"kind", *exclude}).items()}
        if threads:
            params[threads] = cores(params[threads])
        if "random_state" in cls().get_params():  # XGBoost's takes it through **kwargs
            params["random_state"] = seed
        return cls(**params, **fixed)

    if not (threads or renamed or exclude or fixed):
        build.estimator = estimator  # the config's fields are the estimator's params, one for one
    return build
