"""Model factory: one function turns a validated ``models.<name>`` entry of params.yaml
into a scikit-learn Pipeline (preprocessing + regressor) that predicts log prices."""

from __future__ import annotations

import inspect

from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.pipeline import Pipeline

from houseprices.config.models import MLPConfig, ModelConfig
from houseprices.config.params import FeaturesConfig
from houseprices.features.pipelines import build_member_preprocessor
from houseprices.models.mlp.extras import seed_average
from houseprices.models.regressors import build_member_regressor

# ``kind`` -> scikit-learn estimator whose params are the config's fields (less ``kind``).
CLASSICAL = {
    "ridge": Ridge,
    "lasso": Lasso,
    "elastic_net": ElasticNet,
    "kernel_ridge": KernelRidge,
    "hist_gradient_boosting": HistGradientBoostingRegressor,
}


def build_regressor(cfg: ModelConfig, seed: int):
    """The regressor a ``models.<name>`` entry describes; the config's fields are the
    estimator's params, and ``seed`` is its ``random_state`` where it takes one."""
    if isinstance(cfg, MLPConfig):
        from houseprices.models.mlp.factory import build_mlp  # torch only where a net is built

        return seed_average(build_mlp(cfg, seed), cfg.n_seeds, seed)
    member = build_member_regressor(cfg, seed)  # boosted trees, SVR, Huber gradient boosting
    if member is not None:
        return member
    estimator = CLASSICAL[cfg.kind]
    params = cfg.model_dump(exclude={"kind"})
    if "random_state" in inspect.signature(estimator).parameters:
        params["random_state"] = seed
    return estimator(**params)


def build_estimator(cfg: ModelConfig, features: FeaturesConfig, seed: int) -> Pipeline:
    """Raw house rows in, log price out: preprocessing and regressor as one estimator."""
    return Pipeline(
        [
            ("preprocess", build_member_preprocessor(cfg, features, seed)),  # per kind
            ("model", build_regressor(cfg, seed)),
        ]
    )
