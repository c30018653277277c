"""Preprocessing per model kind, always fit on a fold's training rows only.

Linear, kernel and neural members get ``features.build_preprocessor`` (one-hot, skew,
scaling). Tree members get :func:`build_tree_preprocessor`: the same row-level steps
(types, documented NA, LotFrontage, domain features), then numbers left as they are
(missing values stay NaN: the trees learn where they go), quality scales as ordered
codes and the other categoricals as integer codes, or, for CatBoost, as text that it
encodes itself.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from houseprices.config.models import CatBoostConfig, GBRConfig, LightGBMConfig, MLPConfig, XGBoostConfig
from houseprices.config.params import FeaturesConfig
from houseprices.errors import ConfigError
from houseprices.features.extra import extra_steps
from houseprices.features.transformers import ORDINAL_SCALES, ColumnsOfKind, build_preprocessor, row_steps
from houseprices.models.mlp.extras import category_codes, gaussian_rank

TREE_CONFIGS = (LightGBMConfig, XGBoostConfig, CatBoostConfig, GBRConfig)


def _codes(categories=None) -> OrdinalEncoder:
    """Unknown and missing categories become NaN, which every tree member routes itself."""
    return OrdinalEncoder(
        categories=categories or "auto",
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )


def build_tree_preprocessor(
    cfg: FeaturesConfig, seed: int = 0, native_categorical: bool = False, impute: bool = False
) -> Pipeline:
    """Raw rows to a frame of numbers (and, with ``native_categorical``, text columns).

    ``impute`` fills missing numbers with the training median, for learners that take
    no NaN (scikit-learn's GradientBoostingRegressor)."""
    quality = tuple(ORDINAL_SCALES)
    categorical = (
        Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(
                        strategy="constant", fill_value="missing", missing_values=np.nan, keep_empty_features=True
                    ),
                )
            ]
        )
        if native_categorical
        else _codes()
    )
    numeric = SimpleImputer(strategy="median", keep_empty_features=True) if impute else "passthrough"
    ordered = (
        Pipeline(
            [
                ("encode", _codes([ORDINAL_SCALES[c] for c in quality])),
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ]
        )
        if impute
        else _codes([ORDINAL_SCALES[c] for c in quality])
    )
    if impute and not native_categorical:
        categorical = Pipeline(
            [
                ("encode", categorical),
                ("impute", SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True)),
            ]
        )
    columns = ColumnTransformer(
        [
            ("num", numeric, ColumnsOfKind(numeric=True)),
            ("ord", ordered, list(quality)),
            ("cat", categorical, ColumnsOfKind(numeric=False, exclude=quality)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    columns.set_output(transform="pandas")
    return Pipeline([*row_steps(cfg, indicators=False), *extra_steps(cfg, seed), ("columns", columns)])


def with_extra_steps(preprocessor: Pipeline, cfg: FeaturesConfig, seed: int) -> Pipeline:
    """``build_preprocessor``'s pipeline with the switched-on extra features inserted
    before the encoding step (so they are skewed, scaled and one-hot encoded alike)."""
    extras = extra_steps(cfg, seed)
    if not extras:
        return preprocessor
    names = [name for name, _ in preprocessor.steps]
    at = names.index("columns")
    return Pipeline([*preprocessor.steps[:at], *extras, *preprocessor.steps[at:]])


def build_member_preprocessor(model_cfg, features: FeaturesConfig, seed: int) -> Pipeline:
    """The preprocessing the member's kind needs."""
    if isinstance(model_cfg, TREE_CONFIGS):
        native = isinstance(model_cfg, CatBoostConfig) and model_cfg.native_categorical
        return build_tree_preprocessor(
            features, seed, native_categorical=native, impute=isinstance(model_cfg, GBRConfig)
        )
    preprocessor = with_extra_steps(build_preprocessor(features, seed), features, seed)
    if isinstance(model_cfg, MLPConfig) and model_cfg.input_transform == "gaussian_rank":
        preprocessor = gaussian_rank(preprocessor, seed)
    if isinstance(model_cfg, MLPConfig) and model_cfg.embedding_dim > 0:
        if features.pca.enabled:
            raise ConfigError(
                "models: embedding_dim > 0 needs the category columns, which "
                "features.pca.enabled: true mixes away; switch one of them off"
            )
        preprocessor = category_codes(preprocessor)
    return preprocessor
