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


class SkewTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Unskew the numeric columns whose *training* skewness exceeds ``threshold``.

    The choice of columns is itself a statistic of the training rows, so it is learned
    in ``fit`` like a mean (``skewed_mask_``), as are the power transform's lambdas.

    - ``log1p`` compresses a long right tail, so it takes columns with skewness above
      ``threshold`` and no negative training value (a left-skewed column would get worse).
    - ``yeo-johnson`` fits one lambda per column and takes ``|skewness| > threshold``.
    - ``box-cox`` is fit on ``x + 1`` (zeros allowed), columns as for yeo-johnson but
      without negative training values.

    Columns with at most two distinct training values are never chosen: a monotone map of
    a two-valued column is the same column once scaled. Values below the training domain
    (negative values in a log1p/box-cox column) are clipped to 0 at transform time.
    Missing values are ignored in ``fit`` and kept as NaN by ``transform``.
    """

    def __init__(self, *, method="log1p", threshold=0.75):
        self.method = method
        self.threshold = threshold

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        if self.method not in SKEW_METHODS:
            raise ValueError(f"SkewTransformer: unknown method {self.method!r}; one of {SKEW_METHODS}")
        if not np.isscalar(self.threshold) or not self.threshold >= 0:
            raise ValueError(f"SkewTransformer: threshold must be a number >= 0, got {self.threshold!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.skewness_ = _nan_skew(X)
        lowest = np.min(np.where(np.isnan(X), np.inf, X), axis=0, initial=np.inf)
        n_distinct = np.array([np.unique(col[~np.isnan(col)]).size for col in X.T], dtype=int)
        if self.method == "log1p":
            chosen = (self.skewness_ > self.threshold) & (lowest >= 0)
        else:
            chosen = np.abs(self.skewness_) > self.threshold
            if self.method == "box-cox":
                chosen &= lowest >= 0
        chosen &= n_distinct > 2
        if self.method == "none":
            chosen[:] = False
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


class TrainingRangeClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to its training minimum and maximum (``data_min_``, ``data_max_``).

    A linear or kernel model extrapolates its slope past the largest training house:
    the lasso priced Ames' partial sales of 4,676 and 5,642 sq ft at up to $1.25M, far
    above any training price. Clipped, such a row is priced like the training rows at
    the edge. Missing values stay missing.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

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
