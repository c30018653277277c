"""Numeric transforms fit on a fold's training rows: skew, scaling, clipping to the training range, PCA."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.preprocessing import (
    MinMaxScaler,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from houseprices.errors import ConfigError

SKEW_METHODS = ("none", "log1p", "yeo-johnson", "box-cox")


def _nan_skew(X: np.ndarray) -> np.ndarray:
    """Fisher-Pearson sample skewness per column, NaN ignored (as ``scipy.stats.skew(...,
    nan_policy="omit")``, vectorised); 0 for constant, single-valued or empty columns."""
    known = ~np.isnan(X)
    n = known.sum(axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(known, X, 0.0).sum(axis=0) / n
        dev = np.where(known, X - mean, 0.0)
        m2 = (dev**2).sum(axis=0) / n
        m3 = (dev**3).sum(axis=0) / n
        skew = m3 / m2**1.5
    flat = (n < 2) | (m2 <= (np.finfo(np.float64).resolution * np.abs(mean)) ** 2) | (m2 == 0)
    return np.where(flat | ~np.isfinite(skew), 0.0, skew)


class _NanColumns(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Column-wise float transforms that keep missing values missing."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class SkewTransformer(_NanColumns):
    """Unskew the numeric columns whose *training* skewness exceeds ``threshold``: the
    choice is a statistic of the training rows, learned in ``fit`` (``skewed_mask_``) like
    the power transform's lambdas.

    ``log1p`` takes right tails only (it would make a left-skewed column worse), the power
    transforms ``|skewness| > threshold``; log1p and box-cox (fit on ``x + 1``) take no
    column with a negative training value, and clip values below 0 at transform time. A
    column of at most two distinct training values is never chosen: a monotone map of it is
    the same column once scaled. Missing values are ignored in ``fit`` and kept by ``transform``.
    """

    def __init__(self, *, method="log1p", threshold=0.75):
        self.method = method
        self.threshold = threshold

    def fit(self, X, y=None):
        if self.method not in SKEW_METHODS:
            raise ValueError(f"SkewTransformer: unknown method {self.method!r}; one of {SKEW_METHODS}")
        if not np.isscalar(self.threshold) or not self.threshold >= 0:
            raise ValueError(f"SkewTransformer: threshold must be a number >= 0, got {self.threshold!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.skewness_ = _nan_skew(X)
        lowest = np.min(np.where(np.isnan(X), np.inf, X), axis=0, initial=np.inf)
        n_distinct = np.array([np.unique(col[~np.isnan(col)]).size for col in X.T], dtype=int)
        skew = self.skewness_ if self.method == "log1p" else np.abs(self.skewness_)
        chosen = (skew > self.threshold) & (n_distinct > 2) & (self.method != "none")
        if self.method in ("log1p", "box-cox"):
            chosen &= lowest >= 0
        self.skewed_mask_ = chosen
        self.power_ = None
        if self.method in ("yeo-johnson", "box-cox") and chosen.any():
            cols = X[:, chosen] + (1.0 if self.method == "box-cox" else 0.0)
            self.power_ = PowerTransformer(method=self.method, standardize=False).fit(cols)
        return self

    def transform(self, X):
        check_is_fitted(self, "skewed_mask_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False, copy=True)
        mask = self.skewed_mask_
        if not mask.any():
            return X
        if self.method == "log1p":
            X[:, mask] = np.log1p(np.clip(X[:, mask], 0.0, None))
        elif self.method == "box-cox":
            X[:, mask] = self.power_.transform(np.clip(X[:, mask], 0.0, None) + 1.0)
        else:
            X[:, mask] = self.power_.transform(X[:, mask])
        return X

    def skewed_columns(self, names=None) -> list[str]:
        """Names of the chosen columns (``names`` defaults to ``feature_names_in_``)."""
        check_is_fitted(self, "skewed_mask_")
        if names is None:
            names = getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        return [str(n) for n, chosen in zip(names, self.skewed_mask_, strict=True) if chosen]


class TrainingRangeClip(_NanColumns):
    """Clip each column to its training minimum and maximum (``data_min_``, ``data_max_``).

    A linear or kernel model extrapolates its slope past the largest training house, far
    above any training price; clipped, such a row is priced like the training rows at the
    edge. Missing values stay missing.
    """

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        seen = ~np.isnan(X)
        any_seen = seen.any(axis=0)  # a column with no training value is left as it is
        self.data_min_ = np.where(any_seen, np.min(np.where(seen, X, np.inf), axis=0, initial=np.inf), -np.inf)
        self.data_max_ = np.where(any_seen, np.max(np.where(seen, X, -np.inf), axis=0, initial=-np.inf), np.inf)
        return self

    def transform(self, X):
        check_is_fitted(self, "data_min_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return np.minimum(np.maximum(X, self.data_min_), self.data_max_)


def make_scaler(kind: str):
    return {
        "standard": StandardScaler(),
        "minmax": MinMaxScaler(),
        "robust": RobustScaler(),
        "none": "passthrough",
    }[kind]


class CheckedPCA(PCA):
    """PCA whose component count turns out larger than the preprocessed features (known
    only once they are built) is a params error naming the key, not a traceback."""

    def fit(self, X, y=None):
        self._check_count(X)
        return super().fit(X, y)

    def fit_transform(self, X, y=None):
        self._check_count(X)
        return super().fit_transform(X, y)

    def _check_count(self, X) -> None:
        rows, features = np.shape(X)
        if isinstance(self.n_components, int) and self.n_components > min(rows, features):
            raise ConfigError(
                f"features.pca.n_components: {self.n_components} components, but the preprocessing "
                f"gives {features} features for {rows} rows; use at most {min(rows, features)} "
                "or a variance share below 1"
            )
