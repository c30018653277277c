"""The registry of model kinds: each ``kind`` a ``models.<name>`` entry of params.yaml may
take names its config class, the preprocessing it needs and the regressor it fits.

Adding a kind: its config class in :mod:`houseprices.config.models` (and in ``ModelConfig``),
one entry in :data:`KINDS`, and its test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.pipeline import Pipeline

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
from houseprices.features.pipelines import for_catboost, for_imputed_trees, for_linear, for_mlp, for_trees
from houseprices.models.mlp.seed_average import seed_average
from houseprices.models.regressors import catboost, gradient_boosting, lightgbm, svr, xgboost


@dataclass(frozen=True)
class ModelKind:
    """What one ``kind`` is: its validated params, its preprocessing, its regressor."""

    config: type[Strict]
    preprocessing: Callable[[ModelConfig, FeaturesConfig, int], Pipeline]
    regressor: Callable[[ModelConfig, int], object]


def fields_as_params(estimator: type) -> Callable[[ModelConfig, int], object]:
    """A scikit-learn estimator whose params are the config's fields (less ``kind``), with
    ``seed`` as its ``random_state`` where it takes one."""

    def build(cfg: ModelConfig, seed: int):
        params = cfg.model_dump(exclude={"kind"})
        if "random_state" in inspect.signature(estimator).parameters:
            params["random_state"] = seed
        return estimator(**params)

    build.estimator = estimator
    return build


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
    "svr": ModelKind(SVRConfig, for_linear, svr),
    "lightgbm": ModelKind(LightGBMConfig, for_trees, lightgbm),
    "xgboost": ModelKind(XGBoostConfig, for_trees, xgboost),
    "catboost": ModelKind(CatBoostConfig, for_catboost, catboost),
    "gradient_boosting": ModelKind(GBRConfig, for_imputed_trees, gradient_boosting),
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
