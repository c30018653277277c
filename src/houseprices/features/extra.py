"""Optional features beyond the domain ones, each switched by ``features.<section>.enabled``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from sklearn.preprocessing import TargetEncoder
from sklearn.utils.validation import check_is_fitted

from houseprices.config.params import FeaturesConfig
from houseprices.features.base import FrameTransformer, numbers

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


class Interactions(FrameTransformer):
    """Append ``INTERACTIONS`` products (missing parts count as 0); stateless. A big house of
    poor quality is not worth a big house of good quality, and linear members cannot learn
    the product themselves."""

    def added_columns(self) -> list[str]:
        return list(INTERACTIONS)

    def new_columns(self, X):
        new = {name: numbers(X, q) * sum(numbers(X, c) for c in parts) for name, (q, parts) in INTERACTIONS.items()}
        return pd.DataFrame(new, index=X.index)


class TargetStatistics(FrameTransformer):
    """Append ``<column>_te``, the smoothed mean log price per category of high-cardinality
    columns: scikit-learn's ``TargetEncoder`` (empirical-Bayes smoothing toward the training
    mean). ``fit_transform`` returns values cross-fitted by an inner K-fold for the training
    rows, so no row's statistic includes its own price; ``transform`` uses statistics of all
    training rows."""

    def __init__(self, columns=("Neighborhood",), inner_folds=5, random_state=0):
        self.columns = columns
        self.inner_folds = inner_folds
        self.random_state = random_state

    def added_columns(self) -> list[str]:
        return [f"{c}{TE_SUFFIX}" for c in self.columns]

    def _codes(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"features.target_encoding.columns: {missing} not in the input rows")
        return np.column_stack(
            [X[c].astype("object").where(X[c].notna(), "missing").astype(str).to_numpy() for c in self.columns]
        ).astype(object)

    def _frame(self, X: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
        return pd.concat([X, pd.DataFrame(values, columns=self.added_columns(), index=X.index)], axis=1)

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        if y is None:
            raise ValueError("TargetStatistics needs the training target (log price)")
        super().fit(X)
        inner = KFold(n_splits=self.inner_folds, shuffle=True, random_state=self.random_state)
        self.encoder_ = TargetEncoder(target_type="continuous", smooth="auto", cv=inner)
        return self._frame(X, self.encoder_.fit_transform(self._codes(X), np.asarray(y, dtype=np.float64)))

    def transform(self, X):
        check_is_fitted(self)
        return self._frame(X, self.encoder_.transform(self._codes(X)))


# New column -> the area summed and divided by its neighbourhood's median (training rows).
RELATIVE_AREAS = {
    "GrLivAreaVsNeighborhood": ("GrLivArea",),
    "TotalSFVsNeighborhood": ("TotalBsmtSF", "1stFlrSF", "2ndFlrSF"),
    "LotAreaVsNeighborhood": ("LotArea",),
}
RELATIVE_QUALITY = "OverallQualVsNeighborhood"


class NeighborhoodRelative(FrameTransformer):
    """Append each house's areas as a ratio to its neighbourhood's median, and its overall
    quality minus the neighbourhood's median: a big house among small ones is priced
    differently from one among big ones. Medians come from the rows ``fit`` sees (a fold's
    training rows); a neighbourhood unseen there gets the median over all of them."""

    def added_columns(self) -> list[str]:
        return [*RELATIVE_AREAS, RELATIVE_QUALITY]

    def _values(self, X: pd.DataFrame) -> pd.DataFrame:
        new = {name: sum(numbers(X, c) for c in parts) for name, parts in RELATIVE_AREAS.items()}
        new[RELATIVE_QUALITY] = numbers(X, "OverallQual")
        return pd.DataFrame(new, index=X.index)

    def fit_frame(self, X):
        values = self._values(X)
        self.medians_ = values.groupby(X["Neighborhood"].astype("object").to_numpy()).median()
        self.overall_ = values.median()

    def new_columns(self, X):
        values = self._values(X)
        medians = self.medians_.reindex(X["Neighborhood"].astype("object").to_numpy()).fillna(self.overall_)
        medians.index = X.index
        new = values[list(RELATIVE_AREAS)] / medians[list(RELATIVE_AREAS)].where(lambda m: m > 0, 1.0)
        new[RELATIVE_QUALITY] = values[RELATIVE_QUALITY] - medians[RELATIVE_QUALITY]
        return new


# Quality ratings summed by QualityScore (worst "None"/"Po" to best "Ex": 0..5).
SCORED_QUALITIES = ("ExterQual", "KitchenQual", "BsmtQual", "HeatingQC", "FireplaceQu", "GarageQual")
QUALITY_CODES = {"None": 0, "Po": 1, "Fa": 2, "TA": 3, "Gd": 4, "Ex": 5}


class QualityScore(FrameTransformer):
    """Append ``QualityScore``, the sum of the quality ratings of the parts of a house
    (a rating missing or unknown counts as typical, TA), and its product with the living
    area: one ordered number where one-hot columns give each rating its own weight. Stateless."""

    def added_columns(self) -> list[str]:
        return ["QualityScore", "QualityScoreGrLivArea"]

    def new_columns(self, X):
        score = sum(
            X[c].astype("object").map(QUALITY_CODES).astype(np.float64).fillna(QUALITY_CODES["TA"])
            for c in SCORED_QUALITIES
        )
        return pd.DataFrame(
            {"QualityScore": score, "QualityScoreGrLivArea": score * numbers(X, "GrLivArea")}, index=X.index
        )


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
