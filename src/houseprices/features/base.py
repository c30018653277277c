"""The base of this package's frame-in, frame-out transformers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


def require_frame(step, X) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{type(step).__name__} expects a pandas DataFrame of house rows, got {type(X).__name__}")
    return X


def numbers(X: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as float64, with what is no number as 0."""
    return pd.to_numeric(X[name], errors="coerce").fillna(0.0).astype(np.float64)


class FrameTransformer(TransformerMixin, BaseEstimator):
    """Base of the DataFrame-in, DataFrame-out steps before the ColumnTransformer.

    ``fit`` records the input columns (``feature_names_in_``, ``n_features_in_``) and hands
    the frame to ``fit_frame``; ``transform`` appends the subclass's ``new_columns(X)``, named
    by ``added_columns()``. The output is always a DataFrame (the later steps select columns by
    name), so ``set_output`` changes nothing.
    """

    def fit(self, X, y=None):
        require_frame(self, X)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.fit_frame(X)
        return self

    def fit_frame(self, X: pd.DataFrame) -> None:
        """Learn from the training frame; nothing by default (a stateless step)."""

    def added_columns(self) -> list[str]:
        return []

    def transform(self, X):
        check_is_fitted(self)
        return pd.concat([X, self.new_columns(X)], axis=1)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_in_")
        return np.asarray([*self.feature_names_in_, *self.added_columns()], dtype=object)

    def set_output(self, *, transform=None):
        return self
