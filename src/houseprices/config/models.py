"""One schema per model kind: a ``models.<name>`` entry of params.yaml, tagged by its ``kind``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, model_validator

from houseprices.config.base import Count, Fraction, OffByDefault, Strict

Unit = Annotated[float, Field(gt=0.0, le=1.0)]

# 0: every core this process may use (threads.available_cores()); n: at most n threads.
Threads = NonNegativeInt


class EarlyStoppingConfig(OffByDefault):
    patience: Count = 10


class MLPConfig(Strict):
    kind: Literal["mlp"] = "mlp"
    # The distributions a fitted one imports beyond scikit-learn's: a logged ensemble's requirements.
    packages: ClassVar[tuple[str, ...]] = ("torch", "skorch")
    hidden: list[Count] = [128]
    activation: Literal["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"] = "tanh"
    batch_norm: bool = False
    # One rate for every hidden layer, or one per hidden layer.
    dropout: Fraction | list[Fraction] = 0.0
    input_dropout: Fraction = 0.0
    input_noise: NonNegativeFloat = 0.0
    init: Literal["xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "normal", "zeros"] = "he_normal"
    init_std: PositiveFloat = 0.01
    bias_init: float = 0.0
    optimizer: Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"] = "adamw"
    lr: PositiveFloat = 0.007
    momentum: Fraction = 0.9
    beta1: Fraction = 0.9
    beta2: Fraction = 0.999
    weight_decay: NonNegativeFloat = 2.0
    l1: NonNegativeFloat = 0.0
    max_norm: PositiveFloat | None = None
    grad_clip: PositiveFloat | None = None
    lr_schedule: Literal["none", "step", "exponential", "cosine", "plateau", "onecycle"] = "none"
    lr_step_size: Count = 30
    lr_gamma: Unit = 0.5
    warmup_epochs: NonNegativeInt = 0
    epochs: Count = 100
    batch_size: Count = 64
    valid_fraction: Fraction = 0.0
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    loss: Literal["mse", "l1", "huber"] = "huber"
    huber_delta: PositiveFloat = 1.0
    head: Literal["regression", "binned"] = "regression"
    n_bins: int = Field(32, ge=2)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    # Numeric inputs scaled as features.scaling says, or Gaussian-rank (quantile) transformed.
    input_transform: Literal["features", "gaussian_rank"] = "features"
    # Nets from this many seeds, predictions averaged (learning curves only with 1).
    n_seeds: Count = 1
    # Entity embeddings: each categorical column as a learned vector of this many numbers
    # per category (0: one-hot, as features.encoding says).
    embedding_dim: NonNegativeInt = 0
    # The optimizer's weight decay on the embedding tables (weight_decay on the rest).
    embedding_weight_decay: NonNegativeFloat = 0.0
    # Stochastic weight averaging: the net ends with the mean of its weights at the end of
    # each of the last epochs, this share of them (0: off, the last epoch's weights).
    swa_fraction: Fraction = 0.8
    # null: the lr_schedule runs on through the averaged epochs; a rate: the schedule
    # anneals to it by the first averaged epoch and holds it there (SWA's constant phase).
    swa_lr: PositiveFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> MLPConfig:
        if self.init == "zeros":
            raise ValueError(
                "init 'zeros' gives every hidden unit the same gradient, so symmetry is never "
                "broken and the layer learns one feature; use he_normal, xavier_normal or normal"
            )
        if isinstance(self.dropout, list) and len(self.dropout) != len(self.hidden):
            raise ValueError(f"dropout has {len(self.dropout)} rates but hidden has {len(self.hidden)} layers")
        if self.early_stopping.enabled and self.valid_fraction <= 0:
            raise ValueError("early_stopping needs valid_fraction > 0 (an internal validation split)")
        if self.lr_schedule == "plateau" and self.valid_fraction <= 0:
            raise ValueError("lr_schedule 'plateau' monitors valid_loss: set valid_fraction > 0")
        if self.warmup_epochs:
            self._needs_an_epoch_schedule("warmup_epochs", "set it to 0 (onecycle warms up by itself)")
        if self.swa_lr is not None and not self.swa_fraction:
            raise ValueError("swa_lr is the rate held while weights are averaged: set swa_fraction > 0 or swa_lr null")
        if self.swa_fraction and self.early_stopping.enabled:
            raise ValueError(
                "swa_fraction averages the last epochs' weights but early_stopping.enabled restores "
                "the best epoch's: set swa_fraction 0 or early_stopping.enabled false"
            )
        if self.swa_lr is not None:
            self._needs_an_epoch_schedule("swa_lr", "set swa_lr null")
        return self

    def _needs_an_epoch_schedule(self, key: str, fix: str) -> None:
        """``key`` sets the rate epoch by epoch, which plateau and onecycle do themselves."""
        if self.lr_schedule in ("plateau", "onecycle"):
            raise ValueError(
                f"{key} works with lr_schedule none, step, exponential or cosine, not {self.lr_schedule!r}; {fix}"
            )

    def averaged_epochs(self) -> int:
        """How many last epochs' weights ``swa_fraction`` averages (0: none)."""
        return max(1, round(self.swa_fraction * self.epochs)) if self.swa_fraction > 0 else 0


class RidgeConfig(Strict):
    kind: Literal["ridge"]
    alpha: PositiveFloat = 10.0


class LassoConfig(Strict):
    kind: Literal["lasso"]
    alpha: PositiveFloat = 0.0005
    max_iter: Count = 50000


class ElasticNetConfig(Strict):
    kind: Literal["elastic_net"]
    alpha: PositiveFloat = 0.0008
    l1_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    max_iter: Count = 50000


class KernelRidgeConfig(Strict):
    kind: Literal["kernel_ridge"]
    alpha: PositiveFloat = 0.5
    kernel: Literal["linear", "polynomial", "rbf", "laplacian"] = "polynomial"
    degree: Count = 2
    gamma: PositiveFloat | None = None
    coef0: float = 2.5


class HGBConfig(Strict):
    kind: Literal["hist_gradient_boosting"]
    learning_rate: PositiveFloat = 0.1
    max_iter: Count = 300
    max_leaf_nodes: int = Field(15, ge=2)
    min_samples_leaf: Count = 10
    l2_regularization: NonNegativeFloat = 0.0


class BoostedTreesConfig(Strict):  # what LightGBM and XGBoost share
    n_estimators: Count = 1500
    learning_rate: PositiveFloat = 0.02
    subsample: Unit = 0.7
    colsample_bytree: Unit = 0.3
    reg_alpha: NonNegativeFloat = 0.0
    reg_lambda: NonNegativeFloat = 1.0
    n_jobs: Threads = 0


class LightGBMConfig(BoostedTreesConfig):
    kind: Literal["lightgbm"]
    packages: ClassVar[tuple[str, ...]] = ("lightgbm",)
    n_estimators: Count = 1000
    learning_rate: PositiveFloat = 0.05
    num_leaves: int = Field(16, ge=2)
    min_child_samples: Count = 15
    colsample_bytree: Unit = 0.1
    # huber: squared loss within huber_delta (log price) of the target, linear beyond it,
    # so a mispriced training house pulls its leaves less.
    objective: Literal["regression", "huber"] = "huber"
    huber_delta: PositiveFloat = 0.1


class XGBoostConfig(BoostedTreesConfig):
    kind: Literal["xgboost"]
    packages: ClassVar[tuple[str, ...]] = ("xgboost-cpu",)
    max_depth: Count = 3
    min_child_weight: NonNegativeFloat = 1.0


class CatBoostConfig(Strict):
    kind: Literal["catboost"]
    packages: ClassVar[tuple[str, ...]] = ("catboost",)
    iterations: Count = 1000
    learning_rate: PositiveFloat = 0.05
    depth: int = Field(5, ge=1, le=16)
    l2_leaf_reg: NonNegativeFloat = 3.0
    rsm: Unit = 1.0
    # Categorical columns as CatBoost's ordered target statistics instead of codes.
    native_categorical: bool = True
    thread_count: Threads = 0


class SVRConfig(Strict):
    kind: Literal["svr"]
    C: PositiveFloat = 3.0
    epsilon: NonNegativeFloat = 0.01
    gamma: PositiveFloat | Literal["scale", "auto"] = 0.0003
    kernel: Literal["rbf", "linear", "poly", "sigmoid"] = "rbf"


class GBRConfig(Strict):
    """scikit-learn's GradientBoostingRegressor; the Huber loss keeps the outliers'
    residuals from dominating the fit."""

    kind: Literal["gradient_boosting"]
    loss: Literal["huber", "squared_error", "absolute_error"] = "huber"
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
    n_estimators: Count = 1000
    learning_rate: PositiveFloat = 0.05
    max_depth: Count = 4
    max_features: Literal["sqrt", "log2"] | Unit = "sqrt"
    min_samples_leaf: Count = 15
    min_samples_split: int = Field(10, ge=2)
    subsample: Unit = 1.0


ModelConfig = Annotated[
    MLPConfig
    | RidgeConfig
    | LassoConfig
    | ElasticNetConfig
    | KernelRidgeConfig
    | HGBConfig
    | LightGBMConfig
    | XGBoostConfig
    | CatBoostConfig
    | SVRConfig
    | GBRConfig,
    Field(discriminator="kind"),
]


def packages(cfgs) -> list[str]:
    """What fitted models of these configs import beyond scikit-learn's (their ``packages``), each once."""
    return list(dict.fromkeys(p for cfg in cfgs for p in getattr(cfg, "packages", ())))
