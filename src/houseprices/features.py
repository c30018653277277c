"""Preprocessing as scikit-learn transformers, fit on training rows only.

Every statistic (medians, scales, categories, skewed columns, PCA axes) is learned in
``fit`` and then applied unchanged to validation and test rows, so the same Pipeline
serves cross-validation folds, the final refit and the MLflow model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from .config import FeaturesConfig, OutlierConfig
from .data import CATEGORICAL_FEATURES, ID, NUMERIC_FEATURES

# data_description.txt: for these, NA means the house has no such thing.
NA_MEANS_NONE_CATEGORICAL = (
    "Alley", "BsmtQual", "BsmtCond", "BsmtExposure", "BsmtFinType1", "BsmtFinType2",
    "FireplaceQu", "GarageType", "GarageFinish", "GarageQual", "GarageCond", "PoolQC",
    "Fence", "MiscFeature", "MasVnrType",
)
NA_MEANS_ZERO_NUMERIC = (
    "MasVnrArea", "BsmtFinSF1", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF", "BsmtFullBath",
    "BsmtHalfBath", "GarageCars", "GarageArea",
)

_QUALITY = ["None", "Po", "Fa", "TA", "Gd", "Ex"]
# Worst to best, so a larger code is a better house.
ORDINAL_SCALES: dict[str, list[str]] = {
    **{c: _QUALITY for c in ("ExterQual", "ExterCond", "BsmtQual", "BsmtCond", "HeatingQC",
                             "KitchenQual", "FireplaceQu", "GarageQual", "GarageCond", "PoolQC")},
    "BsmtExposure": ["None", "No", "Mn", "Av", "Gd"],
    "BsmtFinType1": ["None", "Unf", "LwQ", "Rec", "BLQ", "ALQ", "GLQ"],
    "BsmtFinType2": ["None", "Unf", "LwQ", "Rec", "BLQ", "ALQ", "GLQ"],
    "Functional": ["Sal", "Sev", "Maj2", "Maj1", "Mod", "Min2", "Min1", "Typ"],
    "GarageFinish": ["None", "Unf", "RFn", "Fin"],
}


def _format_code(value: float) -> str | float:
    return value if pd.isna(value) else f"{value:g}"


class HouseFrame(BaseEstimator, TransformerMixin):
    """Give any competition-shaped frame the column types the pipeline expects.

    Raw ``pd.read_csv`` rows (ints, NaN) and prepared rows (floats) come out alike, the
    ``Id`` column is dropped, and numeric codes listed in ``as_categorical`` become
    category labels (MSSubClass 60 -> "60").
    """

    def __init__(self, as_categorical=("MSSubClass",)):
        self.as_categorical = as_categorical

    def fit(self, X, y=None):
        frame = self._check_frame(X)
        unknown = [c for c in self.as_categorical if c not in NUMERIC_FEATURES + CATEGORICAL_FEATURES]
        if unknown:
            raise ValueError(f"features.encoding.as_categorical: unknown column(s) {unknown}")
        self.feature_names_in_ = np.asarray(list(frame.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.columns_ = [c for c in NUMERIC_FEATURES + CATEGORICAL_FEATURES if c in frame.columns]
        return self

    def _check_frame(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} expects a pandas DataFrame of house rows, "
                            f"got {type(X).__name__}")
        return X

    def transform(self, X):
        check_is_fitted(self, "columns_")
        frame = self._check_frame(X)
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise ValueError(f"input rows lack column(s) the model was fit on: {missing}")
        out = {}
        for col in self.columns_:
            values = frame[col]
            if col in NUMERIC_FEATURES:
                values = pd.to_numeric(values, errors="coerce").astype("float64")
                if col in self.as_categorical:
                    values = values.map(_format_code).astype("str")
            else:
                values = values.astype("str").where(values.notna(), np.nan).astype("str")
            out[col] = values.to_numpy() if values.dtype == "float64" else values
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)

    def set_output(self, *, transform=None):
        # Always a DataFrame: the later steps select columns by name.
        return self


class NoneFiller(BaseEstimator, TransformerMixin):
    """Fill the NA that data_description.txt defines as 'none': "None" or 0.

    Stateless on purpose: the meaning comes from the data description, not the rows.
    """

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

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

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_

    def set_output(self, *, transform=None):
        return self


class GroupMedianImputer(BaseEstimator, TransformerMixin):
    """Fill a numeric column with the training median of its group (LotFrontage by
    Neighborhood: lots on one street look alike); unseen groups get the overall median."""

    def __init__(self, column="LotFrontage", by="Neighborhood"):
        self.column = column
        self.by = by

    def fit(self, X, y=None):
        for col in (self.column, self.by):
            if col not in X.columns:
                raise ValueError(f"{type(self).__name__}: column {col!r} not in input")
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        values = pd.to_numeric(X[self.column], errors="coerce")
        self.overall_median_ = float(values.median()) if values.notna().any() else 0.0
        self.group_medians_ = values.groupby(X[self.by]).median().dropna().to_dict()
        return self

    def transform(self, X):
        check_is_fitted(self, "group_medians_")
        X = X.copy()
        fill = X[self.by].map(self.group_medians_).astype("float64").fillna(self.overall_median_)
        X[self.column] = X[self.column].fillna(fill)
        return X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_

    def set_output(self, *, transform=None):
        return self


class DomainFeatures(BaseEstimator, TransformerMixin):
    """Add the hand-made features that Ames notebooks find useful, each switchable."""

    def __init__(self, total_sf=True, total_bathrooms=True, ages=True, porch_area=True, has_flags=True):
        self.total_sf = total_sf
        self.total_bathrooms = total_bathrooms
        self.ages = ages
        self.porch_area = porch_area
        self.has_flags = has_flags

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        self.added_ = list(self._new_columns(X.head(1)).columns)
        return self

    def _new_columns(self, X) -> pd.DataFrame:
        def col(name):
            return pd.to_numeric(X[name], errors="coerce").fillna(0.0) if name in X else 0.0

        new = {}
        if self.total_sf:
            new["TotalSF"] = col("TotalBsmtSF") + col("1stFlrSF") + col("2ndFlrSF")
        if self.total_bathrooms:
            new["TotalBathrooms"] = (col("FullBath") + 0.5 * col("HalfBath")
                                     + col("BsmtFullBath") + 0.5 * col("BsmtHalfBath"))
        if self.ages:
            new["HouseAge"] = col("YrSold") - col("YearBuilt")
            new["YearsSinceRemodel"] = col("YrSold") - col("YearRemodAdd")
        if self.porch_area:
            new["TotalPorchSF"] = (col("OpenPorchSF") + col("EnclosedPorch") + col("3SsnPorch")
                                   + col("ScreenPorch") + col("WoodDeckSF"))
        if self.has_flags:
            for name, source in (("HasPool", "PoolArea"), ("HasGarage", "GarageArea"),
                                 ("HasBasement", "TotalBsmtSF"), ("HasFireplace", "Fireplaces"),
                                 ("Has2ndFloor", "2ndFlrSF")):
                new[name] = (col(source) > 0).astype("float64")
        return pd.DataFrame({k: np.broadcast_to(np.asarray(v, dtype="float64"), len(X))
                             for k, v in new.items()}, index=X.index)

    def transform(self, X):
        check_is_fitted(self, "added_")
        return pd.concat([X, self._new_columns(X)], axis=1)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "added_")
        return np.asarray([*self.feature_names_in_, *self.added_], dtype=object)

    def set_output(self, *, transform=None):
        return self


class SkewTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Unskew the numeric columns whose *training* skewness exceeds ``threshold``.

    The choice of columns is itself a statistic of the training rows, so it is learned
    in ``fit`` like a mean. ``log1p`` and ``box-cox`` only take columns without negative
    values (box-cox works on x + 1 so zeros are allowed).
    """

    def __init__(self, method="log1p", threshold=0.75):
        self.method = method
        self.threshold = threshold

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        if self.method not in ("none", "log1p", "yeo-johnson", "box-cox"):
            raise ValueError(f"unknown skew method {self.method!r}")
        with np.errstate(all="ignore"):
            skew = np.nan_to_num(stats.skew(X, axis=0, nan_policy="omit"), nan=0.0)
        self.skewness_ = np.asarray(skew, dtype=np.float64)
        chosen = np.abs(self.skewness_) > self.threshold
        if self.method in ("log1p", "box-cox"):
            chosen &= np.nanmin(np.where(np.isnan(X), 0.0, X), axis=0) >= 0 if X.shape[0] else chosen
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
        else:
            cols = X[:, mask] + (1.0 if self.method == "box-cox" else 0.0)
            if self.method == "box-cox":
                cols = np.clip(cols, 1e-9, None)
            X[:, mask] = self.power_.transform(cols)
        return X

    def skewed_columns(self, names) -> list[str]:
        return [str(n) for n, chosen in zip(names, self.skewed_mask_) if chosen]


def _scaler(kind: str):
    return {
        "standard": StandardScaler(),
        "minmax": MinMaxScaler(),
        "robust": RobustScaler(),
        "none": "passthrough",
    }[kind]


class ColumnsOfKind:
    """Picklable column selector: numeric or categorical columns, minus some."""

    def __init__(self, numeric: bool, exclude=()):
        self.numeric = numeric
        self.exclude = tuple(exclude)

    def __call__(self, X: pd.DataFrame) -> list[str]:
        return [c for c in X.columns
                if c not in self.exclude and pd.api.types.is_numeric_dtype(X[c]) == self.numeric]


def build_preprocessor(cfg: FeaturesConfig, seed: int = 0) -> Pipeline:
    """The whole preprocessing Pipeline that ``params.yaml``'s ``features`` describes."""
    ordinal = tuple(ORDINAL_SCALES) if cfg.encoding.ordinal_quality else ()
    steps: list[tuple[str, object]] = [("frame", HouseFrame(as_categorical=tuple(cfg.encoding.as_categorical)))]
    if cfg.impute.na_means_none:
        steps.append(("none_filler", NoneFiller()))
    if cfg.impute.lot_frontage_by_neighborhood:
        steps.append(("lot_frontage", GroupMedianImputer("LotFrontage", "Neighborhood")))
    domain = cfg.domain
    if any(domain.model_dump().values()):
        steps.append(("domain", DomainFeatures(**domain.model_dump())))

    numeric = Pipeline([
        ("impute", SimpleImputer(strategy=cfg.impute.numeric, fill_value=0.0,
                                 add_indicator=cfg.impute.missing_indicators, keep_empty_features=True)),
        ("skew", SkewTransformer(cfg.skew.method, cfg.skew.threshold)),
        ("scale", _scaler(cfg.scaling)),
    ])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy=cfg.impute.categorical, fill_value="missing",
                                 missing_values=np.nan, keep_empty_features=True)),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                 min_frequency=cfg.encoding.min_frequency if cfg.encoding.min_frequency > 1 else None,
                                 dtype=np.float64)),
    ])
    transformers = [
        ("num", numeric, ColumnsOfKind(numeric=True)),
        ("cat", categorical, ColumnsOfKind(numeric=False, exclude=ordinal)),
    ]
    if ordinal:
        transformers.append(("ord", Pipeline([
            ("encode", OrdinalEncoder(categories=[ORDINAL_SCALES[c] for c in ordinal],
                                      handle_unknown="use_encoded_value", unknown_value=np.nan,
                                      encoded_missing_value=np.nan)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", _scaler(cfg.scaling)),
        ]), list(ordinal)))
    steps.append(("columns", ColumnTransformer(transformers, remainder="drop",
                                               verbose_feature_names_out=True)))
    if cfg.pca.enabled:
        n = cfg.pca.n_components
        steps.append(("pca", PCA(n_components=n if n < 1 else int(n), whiten=cfg.pca.whiten,
                                 svd_solver="full", random_state=seed)))
    return Pipeline(steps)


def outlier_mask(X: pd.DataFrame, log_price: pd.Series | np.ndarray, cfg: OutlierConfig) -> np.ndarray:
    """True for the training rows to keep: the documented Ames partial sales (huge,
    cheap houses) teach every model a wrong slope. Applied to training folds only."""
    keep = np.ones(len(X), dtype=bool)
    if cfg.enabled:
        area = pd.to_numeric(X["GrLivArea"], errors="coerce").to_numpy()
        price = np.exp(np.asarray(log_price, dtype=np.float64))
        keep &= ~((area > cfg.min_living_area) & (price < cfg.max_price))
    return keep


def feature_names(preprocessor: Pipeline) -> list[str]:
    return [str(n) for n in preprocessor.get_feature_names_out()]


__all__ = [
    "ID", "HouseFrame", "NoneFiller", "GroupMedianImputer", "DomainFeatures", "SkewTransformer",
    "build_preprocessor", "outlier_mask", "feature_names",
]
