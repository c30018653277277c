"""Row-level transformers every model kind shares: column types, NA that means "none",
missing-value flags, LotFrontage by neighbourhood, domain features. Each learns what it
needs in ``fit`` on the training rows and applies it unchanged to other rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from houseprices.data.schema import (
    CATEGORICAL_FEATURES,
    NA_MEANS_NONE_CATEGORICAL,
    NA_MEANS_ZERO_NUMERIC,
    NUMERIC_FEATURES,
)
from houseprices.features.base import FrameTransformer, numbers, require_frame

_NUMERIC = frozenset(NUMERIC_FEATURES)


def _format_code(value: float) -> str | float:
    return value if pd.isna(value) else f"{value:g}"


class HouseFrame(FrameTransformer):
    """Give any competition-shaped frame the column types the pipeline expects.

    Raw ``pd.read_csv`` rows (ints, NaN) and prepared rows (floats) come out alike, the
    ``Id`` column is dropped, and numeric codes listed in ``as_categorical`` become
    category labels (MSSubClass 60 -> "60").
    """

    def __init__(self, *, as_categorical=("MSSubClass",)):
        self.as_categorical = as_categorical

    def fit_frame(self, X):
        self.columns_ = [c for c in NUMERIC_FEATURES + CATEGORICAL_FEATURES if c in X.columns]

    def transform(self, X):
        check_is_fitted(self, "columns_")
        frame = require_frame(self, X)
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise ValueError(f"input rows lack column(s) the model was fit on: {missing}")
        out = {}
        for col in self.columns_:
            values = frame[col]
            if col in _NUMERIC:
                if values.dtype != "float64":
                    values = pd.to_numeric(values, errors="coerce").astype("float64")
                if col in self.as_categorical:
                    values = values.map(_format_code).astype("str")
            elif pd.api.types.is_numeric_dtype(values):  # a text column pandas read as numbers
                values = values.map(_format_code).astype("str")
            elif values.dtype != "str":  # already text with NaN holes: leave as is
                values = values.astype("str").where(values.notna(), np.nan).astype("str")
            out[col] = values.to_numpy() if values.dtype == "float64" else values
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)


class NoneFiller(FrameTransformer):
    """Fill the NA that data_description.txt defines as 'none': "None" or 0.

    Stateless on purpose: the meaning comes from the data description, not the rows.
    """

    def transform(self, X):
        check_is_fitted(self, "feature_names_in_")
        X = X.copy()
        for col in NA_MEANS_NONE_CATEGORICAL:
            if col in X.columns:
                X[col] = X[col].fillna("None")
        for col in NA_MEANS_ZERO_NUMERIC:
            if col in X.columns and pd.api.types.is_numeric_dtype(X[col]):
                X[col] = X[col].fillna(0.0)
        return X


MISSING_SUFFIX = "_missing"
# Domain flag -> the area or count it tests for > 0.
HAS_FLAGS = {
    "HasPool": "PoolArea",
    "HasGarage": "GarageArea",
    "HasBasement": "TotalBsmtSF",
    "HasFireplace": "Fireplaces",
    "Has2ndFloor": "2ndFlrSF",
}


class MissingIndicators(FrameTransformer):
    """Append a 0/1 ``<column>_missing`` column for every column that had missing values
    in the *training* rows (which columns get one is learned in ``fit``).

    It runs after NoneFiller, so it flags the values an imputer will guess (LotFrontage,
    GarageYrBlt, Electrical...), not the documented "the house has none". A column that
    is complete in training gets no indicator even if test rows miss it: its value is
    imputed like any other and the model never saw such a column.
    """

    def __init__(self, *, suffix=MISSING_SUFFIX):
        self.suffix = suffix

    def fit_frame(self, X):
        self.columns_ = [c for c in X.columns if X[c].isna().any()]

    def added_columns(self) -> list[str]:
        return [f"{c}{self.suffix}" for c in self.columns_]

    def new_columns(self, X):
        flags = {
            name: X[c].isna().astype("float64") for c, name in zip(self.columns_, self.added_columns(), strict=True)
        }
        return pd.DataFrame(flags, index=X.index)


class GroupMedianImputer(FrameTransformer):
    """Fill a numeric column with the training median of its group (LotFrontage by
    Neighborhood: lots on one street look alike); unseen groups get the overall median."""

    def __init__(self, *, column="LotFrontage", by="Neighborhood"):
        self.column = column
        self.by = by

    def fit_frame(self, X):
        for col in (self.column, self.by):
            if col not in X.columns:
                raise ValueError(f"{type(self).__name__}: column {col!r} not in input")
        values = pd.to_numeric(X[self.column], errors="coerce")
        self.overall_median_ = float(values.median()) if values.notna().any() else 0.0
        self.group_medians_ = values.groupby(X[self.by]).median().dropna().to_dict()

    def transform(self, X):
        check_is_fitted(self, "group_medians_")
        X = X.copy()
        fill = X[self.by].map(self.group_medians_).astype("float64").fillna(self.overall_median_)
        X[self.column] = X[self.column].fillna(fill)
        return X


class DomainFeatures(FrameTransformer):
    """Add the hand-made features that Ames notebooks find useful, each switchable."""

    def __init__(self, *, total_sf=True, total_bathrooms=True, ages=True, porch_area=True, has_flags=True):
        self.total_sf = total_sf
        self.total_bathrooms = total_bathrooms
        self.ages = ages
        self.porch_area = porch_area
        self.has_flags = has_flags

    def fit_frame(self, X):
        self.added_ = list(self.new_columns(X.head(1)).columns)

    def added_columns(self) -> list[str]:
        return self.added_

    def new_columns(self, X) -> pd.DataFrame:
        def col(name):
            return numbers(X, name) if name in X else 0.0

        new = {}
        if self.total_sf:
            new["TotalSF"] = col("TotalBsmtSF") + col("1stFlrSF") + col("2ndFlrSF")
        if self.total_bathrooms:
            new["TotalBathrooms"] = (
                col("FullBath") + 0.5 * col("HalfBath") + col("BsmtFullBath") + 0.5 * col("BsmtHalfBath")
            )
        if self.ages:
            new["HouseAge"] = col("YrSold") - col("YearBuilt")
            new["YearsSinceRemodel"] = col("YrSold") - col("YearRemodAdd")
        if self.porch_area:
            new["TotalPorchSF"] = (
                col("OpenPorchSF") + col("EnclosedPorch") + col("3SsnPorch") + col("ScreenPorch") + col("WoodDeckSF")
            )
        if self.has_flags:
            for name, source in HAS_FLAGS.items():
                new[name] = (col(source) > 0).astype("float64")
        return pd.DataFrame(
            {k: np.broadcast_to(np.asarray(v, dtype="float64"), len(X)) for k, v in new.items()}, index=X.index
        )
