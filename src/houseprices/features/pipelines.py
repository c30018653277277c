"""Preprocessing per model kind, always fit on a fold's training rows only.

Linear, kernel and neural members get :func:`build_preprocessor` (one-hot, skew,
scaling). Tree members get :func:`for_trees`: the same row-level steps (types,
documented NA, LotFrontage, domain features), then numbers left as they are (missing
values stay NaN: the trees learn where they go), quality scales as ordered codes and
the other categoricals as integer codes, or, for CatBoost, as text that it encodes itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from houseprices.config.models import MLPConfig, ModelConfig
from houseprices.config.params import FeaturesConfig
from houseprices.data.schema import ORDINAL_SCALES
from houseprices.errors import ConfigError
from houseprices.features.extra import extra_steps
from houseprices.features.neural import category_codes, gaussian_rank
from houseprices.features.numeric import CheckedPCA, SkewTransformer, TrainingRangeClip, make_scaler
from houseprices.features.rows import (
    HAS_FLAGS,
    MISSING_SUFFIX,
    DomainFeatures,
    GroupMedianImputer,
    HouseFrame,
    MissingIndicators,
    NoneFiller,
)


def _codes(categories=None) -> OrdinalEncoder:
    """Categories as integer codes; unknown and missing ones become NaN (the tree members
    route it themselves; :func:`ordinal_columns` imputes it)."""
    return OrdinalEncoder(
        categories=categories or "auto",
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )


def for_linear(model_cfg: ModelConfig, features: FeaturesConfig, seed: int) -> Pipeline:
    """Linear and kernel kinds: one-hot, skew, scaling, clipping, with the extra features."""
    return build_preprocessor(features, seed, extras=True)


def for_mlp(model_cfg: MLPConfig, features: FeaturesConfig, seed: int) -> Pipeline:
    """The linear kinds' preprocessing, then the MLP's own input options."""
    preprocessor = for_linear(model_cfg, features, seed)
    if model_cfg.input_transform == "gaussian_rank":
        preprocessor = gaussian_rank(preprocessor, seed)
    if model_cfg.embedding_dim > 0:
        if features.pca.enabled:
            raise ConfigError(
                "models: embedding_dim > 0 needs the category columns, which "
                "features.pca.enabled: true mixes away; switch one of them off"
            )
        preprocessor = category_codes(preprocessor)
    return preprocessor


def for_trees(model_cfg: ModelConfig, features: FeaturesConfig, seed: int, impute: bool = False) -> Pipeline:
    """Tree kinds: raw rows to a frame of numbers, or, where CatBoost encodes the categories
    itself (``native_categorical``), of numbers and text. ``impute`` fills missing values
    (codes: -1) for learners that take no NaN (scikit-learn's GradientBoostingRegressor)."""
    quality = tuple(ORDINAL_SCALES)

    def imputed(encode, **imputer):
        if not impute:
            return encode
        return Pipeline([("encode", encode), ("impute", SimpleImputer(**imputer, keep_empty_features=True))])

    if getattr(model_cfg, "native_categorical", False):
        text = SimpleImputer(strategy="constant", fill_value="missing", missing_values=np.nan, keep_empty_features=True)
        categorical = Pipeline([("impute", text)])
    else:
        categorical = imputed(_codes(), strategy="constant", fill_value=-1.0)
    numeric = SimpleImputer(strategy="median", keep_empty_features=True) if impute else "passthrough"
    columns = ColumnTransformer(
        [
            ("num", numeric, ColumnsOfKind(numeric=True)),
            ("ord", imputed(_codes([ORDINAL_SCALES[c] for c in quality]), strategy="median"), list(quality)),
            ("cat", categorical, ColumnsOfKind(numeric=False, exclude=quality)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    columns.set_output(transform="pandas")
    return Pipeline([*row_steps(features, indicators=False), *extra_steps(features, seed), ("columns", columns)])


class ColumnsOfKind:
    """Picklable column selector: numeric or categorical columns, minus some; ``flags``
    True keeps only the pipeline's 0/1 flag columns (domain Has* flags, missing indicators),
    False drops them, None ignores them."""

    def __init__(self, numeric: bool, exclude=(), flags: bool | None = None):
        self.numeric = numeric
        self.exclude = tuple(exclude)
        self.flags = flags

    def __call__(self, X: pd.DataFrame) -> list[str]:
        flags = getattr(self, "flags", None)
        return [
            c
            for c in X.columns
            if c not in self.exclude
            and pd.api.types.is_numeric_dtype(X[c]) == self.numeric
            and (flags is None or (c in HAS_FLAGS or c.endswith(MISSING_SUFFIX)) == flags)
        ]


def row_steps(cfg: FeaturesConfig, *, indicators: bool) -> list[tuple[str, object]]:
    """The row-level steps every model kind shares: typed frame, NA as "none", missing
    flags (``indicators``), LotFrontage by neighbourhood, domain features."""
    steps: list[tuple[str, object]] = [("frame", HouseFrame(as_categorical=tuple(cfg.encoding.as_categorical)))]
    if cfg.impute.na_means_none:
        steps.append(("none_filler", NoneFiller()))
    if indicators:
        # Before any imputer, after NoneFiller: flags the values that get guessed.
        steps.append(("missing_indicators", MissingIndicators()))
    if cfg.impute.lot_frontage_by_neighborhood:
        steps.append(("lot_frontage", GroupMedianImputer(column="LotFrontage", by="Neighborhood")))
    if any(cfg.domain.model_dump().values()):
        steps.append(("domain", DomainFeatures(**cfg.domain.model_dump())))
    return steps


def numeric_columns(cfg: FeaturesConfig) -> Pipeline:
    """Numbers: imputed, skew-transformed, scaled, held in the training range."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy=cfg.impute.numeric, fill_value=0.0, keep_empty_features=True)),
            ("skew", SkewTransformer(method=cfg.skew.method, threshold=cfg.skew.threshold)),
            ("scale", make_scaler(cfg.scaling)),
            ("clip", TrainingRangeClip() if cfg.clip_to_training_range else "passthrough"),
        ]
    )


def categorical_columns(cfg: FeaturesConfig) -> Pipeline:
    """Categories: imputed, one-hot (rare ones share a column)."""
    impute = SimpleImputer(
        strategy=cfg.impute.categorical, fill_value="missing", missing_values=np.nan, keep_empty_features=True
    )
    onehot = OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        sparse_output=False,
        min_frequency=cfg.encoding.min_frequency if cfg.encoding.min_frequency > 1 else None,
        dtype=np.float64,
    )
    return Pipeline([("impute", impute), ("onehot", onehot)])


def ordinal_columns(cfg: FeaturesConfig, ordinal: tuple[str, ...]) -> Pipeline:
    """Quality scales as ordered numbers (``encoding.ordinal_quality``)."""
    encode = _codes([ORDINAL_SCALES[c] for c in ordinal])
    # Codes are numbers now: unknown or missing ones get the numeric strategy.
    impute = SimpleImputer(strategy=cfg.impute.numeric, fill_value=0.0, keep_empty_features=True)
    return Pipeline([("encode", encode), ("impute", impute), ("scale", make_scaler(cfg.scaling))])


def build_preprocessor(cfg: FeaturesConfig, seed: int = 0, extras: bool = False) -> Pipeline:
    """The whole preprocessing Pipeline that ``params.yaml``'s ``features`` describes, with
    the switched-on extra features (``extras``) before the encoding, so they are skewed,
    scaled and one-hot encoded alike."""
    ordinal = tuple(ORDINAL_SCALES) if cfg.encoding.ordinal_quality else ()
    steps = row_steps(cfg, indicators=cfg.impute.missing_indicators)
    if extras:
        steps += extra_steps(cfg, seed)
    transformers = [
        ("num", numeric_columns(cfg), ColumnsOfKind(numeric=True, flags=False)),
        # 0/1 like the one-hot columns: scaling a rare flag would make one row an extreme
        # input (a flag set in 1 of 1000 rows becomes ~30 standard deviations).
        ("flag", "passthrough", ColumnsOfKind(numeric=True, flags=True)),
        ("cat", categorical_columns(cfg), ColumnsOfKind(numeric=False, exclude=ordinal)),
    ]
    if ordinal:
        transformers.append(("ord", ordinal_columns(cfg, ordinal), list(ordinal)))
    steps.append(("columns", ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)))
    if cfg.pca.enabled:
        n = cfg.pca.n_components  # float < 1: share of variance; otherwise a count
        pca = CheckedPCA(
            n_components=float(n) if n < 1 else int(n), whiten=cfg.pca.whiten, svd_solver="full", random_state=seed
        )
        steps.append(("pca", pca))
    return Pipeline(steps)


def feature_names(preprocessor: Pipeline) -> list[str]:
    return [str(n) for n in preprocessor.get_feature_names_out()]
