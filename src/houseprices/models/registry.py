"""The registry of model kinds: each ``kind`` a ``models.<name>`` entry of params.yaml may
take names its config class, the preprocessing it needs and the regressor it fits.

Adding a kind: its config class in :mod:`houseprices.config.models` (and in ``ModelConfig``),
one entry in :data:`KINDS`, and its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.pipeline import Pipeline
from sklearn.svm import SVR

from houseprices.config.base import Strict
from houseprices.config.models import (
    CatBoostConfig,
    ElasticNetConfig,
    GBRConfig,
    HGBConfig,
    KernelRidgeConfig,
    LassoConfig,
    LightGBMConfig,
    MLPConfig,
    ModelConfig,
    RidgeConfig,
    SVRConfig,
    XGBoostConfig,
)
from houseprices.config.params import FeaturesConfig
from houseprices.features.pipelines import for_linear, for_mlp, for_trees
from houseprices.models.mlp.seed_average import seed_average
from houseprices.models.regressors import CatBoostMember, fields_as_params


@dataclass(frozen=True)
class ModelKind:
    """What one ``kind`` is: its validated params, its preprocessing, its regressor."""

    config: type[Strict]
    preprocessing: Callable[[ModelConfig, FeaturesConfig, int], Pipeline]
    regressor: Callable[[ModelConfig, int], object]


def mlp(cfg: MLPConfig, seed: int):
    """The skorch net (averaged over ``n_seeds`` seeds when asked)."""
    from houseprices.models.mlp.factory import build_mlp  # torch only where a net is built

    return seed_average(build_mlp(cfg, seed), cfg.n_seeds, seed)


KINDS: dict[str, ModelKind] = {
    "mlp": ModelKind(MLPConfig, for_mlp, mlp),
    "ridge": ModelKind(RidgeConfig, for_linear, fields_as_params(Ridge)),
    "lasso": ModelKind(LassoConfig, for_linear, fields_as_params(Lasso)),
    "elastic_net": ModelKind(ElasticNetConfig, for_linear, fields_as_params(ElasticNet)),
    "kernel_ridge": ModelKind(KernelRidgeConfig, for_linear, fields_as_params(KernelRidge)),
    "hist_gradient_boosting": ModelKind(HGBConfig, for_linear, fields_as_params(HistGradientBoostingRegressor)),
    "svr": ModelKind(SVRConfig, for_linear, fields_as_params(SVR)),
    "lightgbm": ModelKind(
        LightGBMConfig,
        for_trees,
        fields_as_params(
            "lightgbm:LGBMRegressor",
            threads="n_jobs",
            renamed={"huber_delta": "alpha"},
            subsample_freq=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        ),
    ),
    "xgboost": ModelKind(
        XGBoostConfig, for_trees, fields_as_params("xgboost:XGBRegressor", threads="n_jobs", tree_method="hist")
    ),
    "catboost": ModelKind(
        CatBoostConfig,
        for_trees,
        fields_as_params(CatBoostMember, threads="thread_count", exclude={"native_categorical"}),
    ),
    "gradient_boosting": ModelKind(
        GBRConfig, partial(for_trees, impute=True), fields_as_params(GradientBoostingRegressor)
    ),
}


def build_preprocessing(cfg: ModelConfig, features: FeaturesConfig, seed: int) -> Pipeline:
    """The preprocessing the entry's kind needs, unfitted."""
    return KINDS[cfg.kind].preprocessing(cfg, features, seed)


def build_regressor(cfg: ModelConfig, seed: int):
    """The regressor a ``models.<name>`` entry describes, unfitted."""
    return KINDS[cfg.kind].regressor(cfg, seed)


def build_estimator(cfg: ModelConfig, features: FeaturesConfig, seed: int) -> Pipeline:
    """Raw house rows in, log price out: preprocessing and regressor as one estimator."""
    return Pipeline(
        [
            ("preprocess", build_preprocessing(cfg, features, seed)),
            ("model", build_regressor(cfg, seed)),
        ]
    )
