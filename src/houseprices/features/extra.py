"""Optional features beyond the domain ones, each switched by ``features.<section>.enabled``.

- :class:`Interactions`: overall quality times the areas it prices (a big house of poor
  quality is not worth a big house of good quality; linear members cannot learn the
  product themselves).
- :class:`TargetStatistics`: smoothed mean log price per category of high-cardinality
  columns (Neighborhood...). Fit on a fold's training rows only; the training rows' own
  values are cross-fitted (inner K-fold), so no row's statistic includes its own price,
  and rows being scored only ever receive statistics of the training rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.preprocessing import TargetEncoder
from sklearn.utils.validation import check_is_fitted

from houseprices.config.params import FeaturesConfig

# New column -> (quality column, the area or count it multiplies); "TotalSF" is summed here
# so the product does not depend on features.domain.total_sf.
INTERACTIONS = {
    "QualGrLivArea": ("OverallQual", ("GrLivArea",)),
    "QualTotalSF": ("OverallQual", ("TotalBsmtSF", "1stFlrSF", "2ndFlrSF")),
    "QualGarageArea": ("OverallQual", ("GarageArea",)),
    "QualLotArea": ("OverallQual", ("LotArea",)),
    "QualCond": ("OverallQual", ("OverallCond",)),
}
TE_SUFFIX = "_te"


class _AppendColumns(BaseEstimator, TransformerMixin):
    """Shared frame bookkeeping: input names in ``fit``, appended names out."""

    def _remember(self, X: pd.DataFrame) -> None:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "added_")
        return np.asarray([*self.feature_names_in_, *self.added_], dtype=object)

    def set_output(self, *, transform=None):
        return self  # always a DataFrame: later steps select columns by name


class Interactions(_AppendColumns):
    """Append ``INTERACTIONS`` products (missing parts count as 0); stateless."""

    def fit(self, X, y=None):
        self._remember(X)
        self.added_ = list(INTERACTIONS)
        return self

    def transform(self, X):
        check_is_fitted(self, "added_")

        def col(name):
            return pd.to_numeric(X[name], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)

        new = {name: col(quality) * sum(col(c) for c in parts) for name, (quality, parts) in INTERACTIONS.items()}
        return pd.concat([X, pd.DataFrame(new, index=X.index)], axis=1)


class TargetStatistics(_AppendColumns):
    """Append ``<column>_te``: scikit-learn's ``TargetEncoder`` (empirical-Bayes
    smoothing toward the training mean). ``fit_transform`` returns cross-fitted values
    for the training rows; ``transform`` uses statistics of all training rows."""

    def __init__(self, columns=("Neighborhood",), inner_folds=5, random_state=0):
        self.columns = columns
        self.inner_folds = inner_folds
        self.random_state = random_state

    def _codes(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"features.target_encoding.columns: {missing} not in the input rows")
        return np.column_stack(
            [X[c].astype("object").where(X[c].notna(), "missing").astype(str).to_numpy() for c in self.columns]
        ).astype(object)

    def _encoder(self) -> TargetEncoder:
        inner = KFold(n_splits=self.inner_folds, shuffle=True, random_state=self.random_state)
        return TargetEncoder(target_type="continuous", smooth="auto", cv=inner)

    def _append(self, X: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
        return pd.concat([X, pd.DataFrame(values, columns=self.added_, index=X.index)], axis=1)

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        if y is None:
            raise ValueError("TargetStatistics needs the training target (log price)")
        self._remember(X)
        self.added_ = [f"{c}{TE_SUFFIX}" for c in self.columns]
        self.encoder_ = self._encoder()
        crossfit = self.encoder_.fit_transform(self._codes(X), np.asarray(y, dtype=np.float64))
        return self._append(X, crossfit)

    def transform(self, X):
        check_is_fitted(self, "encoder_")
        return self._append(X, self.encoder_.transform(self._codes(X)))


# New column -> the area summed and divided by its neighbourhood's median (training rows).
RELATIVE_AREAS = {
    "GrLivAreaVsNeighborhood": ("GrLivArea",),
    "TotalSFVsNeighborhood": ("TotalBsmtSF", "1stFlrSF", "2ndFlrSF"),
    "LotAreaVsNeighborhood": ("LotArea",),
}
RELATIVE_QUALITY = "OverallQualVsNeighborhood"


def _number(X: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(X[name], errors="coerce").fillna(0.0).astype(np.float64)


class NeighborhoodRelative(_AppendColumns):
    """Append each house's areas as a ratio to its neighbourhood's median, and its overall
    quality minus the neighbourhood's median: a big house among small ones is priced
    differently from one among big ones. Medians come from the rows ``fit`` sees (a fold's
    training rows); a neighbourhood unseen there gets the median over all of them."""

    def _values(self, X: pd.DataFrame) -> pd.DataFrame:
        new = {name: sum(_number(X, c) for c in parts) for name, parts in RELATIVE_AREAS.items()}
        new[RELATIVE_QUALITY] = _number(X, "OverallQual")
        return pd.DataFrame(new, index=X.index)

    def fit(self, X, y=None):
        self._remember(X)
        self.added_ = [*RELATIVE_AREAS, RELATIVE_QUALITY]
        values = self._values(X)
        self.medians_ = values.groupby(X["Neighborhood"].astype("object").to_numpy()).median()
        self.overall_ = values.median()
        return self

    def transform(self, X):
        check_is_fitted(self, "medians_")
        values = self._values(X)
        medians = self.medians_.reindex(X["Neighborhood"].astype("object").to_numpy()).fillna(self.overall_)
        medians.index = X.index
        new = values[list(RELATIVE_AREAS)] / medians[list(RELATIVE_AREAS)].where(lambda m: m > 0, 1.0)
        new[RELATIVE_QUALITY] = values[RELATIVE_QUALITY] - medians[RELATIVE_QUALITY]
        return pd.concat([X, new], axis=1)


# Quality ratings summed by QualityScore (worst "None"/"Po" to best "Ex": 0..5).
SCORED_QUALITIES = ("ExterQual", "KitchenQual", "BsmtQual", "HeatingQC", "FireplaceQu", "GarageQual")
QUALITY_CODES = {"None": 0, "Po": 1, "Fa": 2, "TA": 3, "Gd": 4, "Ex": 5}


class QualityScore(_AppendColumns):
    """Append ``QualityScore``, the sum of the quality ratings of the parts of a house
    (a rating missing or unknown counts as typical, TA), and its product with the living
    area: one ordered number where one-hot columns give each rating its own weight. Stateless."""

    def fit(self, X, y=None):
        self._remember(X)
        self.added_ = ["QualityScore", "QualityScoreGrLivArea"]
        return self

    def transform(self, X):
        check_is_fitted(self, "added_")
        score = sum(
            X[c].astype("object").map(QUALITY_CODES).astype(np.float64).fillna(QUALITY_CODES["TA"])
            for c in SCORED_QUALITIES
        )
        new = pd.DataFrame(
            {"QualityScore": score, "QualityScoreGrLivArea": score * _number(X, "GrLivArea")}, index=X.index
        )
        return pd.concat([X, new], axis=1)


def extra_steps(cfg: FeaturesConfig, seed: int) -> list[tuple[str, object]]:
    """The switched-on steps, to run after the domain features and before encoding."""
    steps: list[tuple[str, object]] = []
    if cfg.interactions.enabled:
        steps.append(("interactions", Interactions()))
    if cfg.neighborhood_relative.enabled:
        steps.append(("neighborhood_relative", NeighborhoodRelative()))
    if cfg.quality_score.enabled:
        steps.append(("quality_score", QualityScore()))
    te = cfg.target_encoding
    if te.enabled and te.columns:
        steps.append(("target_statistics", TargetStatistics(tuple(te.columns), te.inner_folds, seed)))
    return steps
