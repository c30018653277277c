"""Typed view of ``params.yaml``.

Every section forbids unknown keys, so a typo in ``params.yaml`` or in
``dvc exp run -S models.mlp.lrr=0.1`` stops the stage instead of being ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

PARAMS_FILE = "params.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


# --------------------------------------------------------------------------- data
class DataConfig(Strict):
    train: Path = Path("data/raw/train.csv")
    test: Path = Path("data/raw/test.csv")
    sample_submission: Path = Path("data/raw/sample_submission.csv")
    checksums: Path = Path("data/raw/SHA256SUMS")
    # Off for your own variant of the CSVs; validation still runs.
    verify_checksums: bool = True


class CVConfig(Strict):
    folds: int = Field(5, ge=2, le=20)
    repeats: int = Field(1, ge=1, le=20)


# ----------------------------------------------------------------------- features
class ImputeConfig(Strict):
    numeric: Literal["mean", "median", "most_frequent", "constant"] = "median"
    categorical: Literal["most_frequent", "constant"] = "constant"
    # Columns whose NA means "the house has none" (see data_description.txt).
    na_means_none: bool = True
    missing_indicators: bool = False
    lot_frontage_by_neighborhood: bool = True


class SkewConfig(Strict):
    method: Literal["none", "log1p", "yeo-johnson", "box-cox"] = "log1p"
    threshold: float = Field(0.75, ge=0.0)


class EncodingConfig(Strict):
    ordinal_quality: bool = False
    # Categories seen fewer times than this in the training rows share one column.
    min_frequency: int = Field(1, ge=1)
    as_categorical: list[str] = ["MSSubClass"]

    @field_validator("as_categorical")
    @classmethod
    def _known_columns(cls, columns: list[str]) -> list[str]:
        from .data import FEATURES

        unknown = [c for c in columns if c not in FEATURES]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}: not competition features")
        return columns


class DomainConfig(Strict):
    total_sf: bool = True
    total_bathrooms: bool = True
    ages: bool = True
    porch_area: bool = True
    has_flags: bool = True


class PCAConfig(Strict):
    enabled: bool = False
    # An int keeps that many components; a float in (0, 1) keeps that share of variance.
    n_components: Annotated[float, Field(gt=0.0)] | Annotated[int, Field(ge=1)] = 0.99
    whiten: bool = False

    @field_validator("n_components")
    @classmethod
    def _share_or_count(cls, n: float | int) -> float | int:
        if isinstance(n, float) and n >= 1:
            if not n.is_integer():
                raise ValueError(f"{n} is neither a variance share (< 1) nor a component count (an integer)")
            return int(n)
        return n


class OutlierConfig(Strict):
    enabled: bool = True
    min_living_area: float = Field(4000, gt=0)
    max_price: float = Field(300000, gt=0)


class InteractionsConfig(Strict):
    """Products of overall quality with the areas it prices (see extra_features.py)."""

    enabled: bool = True


class TargetEncodingConfig(Strict):
    """Smoothed mean log price per category, cross-fitted inside each training fold."""

    enabled: bool = True
    columns: list[str] = ["Neighborhood", "MSSubClass", "Exterior1st", "Exterior2nd", "Condition1"]
    # Inner folds: each training row's statistic comes from the other inner folds.
    inner_folds: int = Field(5, ge=2)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: list[str]) -> list[str]:
        return EncodingConfig._known_columns(columns)  # the same check as as_categorical's


class FeaturesConfig(Strict):
    impute: ImputeConfig = ImputeConfig()
    scaling: Literal["standard", "minmax", "robust", "none"] = "standard"
    skew: SkewConfig = SkewConfig()
    encoding: EncodingConfig = EncodingConfig()
    domain: DomainConfig = DomainConfig()
    pca: PCAConfig = PCAConfig()
    outliers: OutlierConfig = OutlierConfig()
    interactions: InteractionsConfig = InteractionsConfig()
    target_encoding: TargetEncodingConfig = TargetEncodingConfig()


# ------------------------------------------------------------------------- models
class EarlyStoppingConfig(Strict):
    enabled: bool = False
    patience: int = Field(10, ge=1)


class MLPConfig(Strict):
    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1)]] = [128]
    activation: Literal["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"] = "relu"
    batch_norm: bool = False
    # One rate for every hidden layer, or one per hidden layer.
    dropout: Fraction | list[Fraction] = 0.0
    input_dropout: Fraction = 0.0
    input_noise: float = Field(0.0, ge=0.0)
    init: Literal[
        "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "normal", "zeros"
    ] = "he_normal"
    init_std: Positive = 0.01
    bias_init: float = 0.0
    optimizer: Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"] = "adamw"
    lr: Positive = 1e-3
    momentum: Fraction = 0.9
    beta1: Fraction = 0.9
    beta2: Fraction = 0.999
    weight_decay: float = Field(0.0, ge=0.0)
    l1: float = Field(0.0, ge=0.0)
    max_norm: Positive | None = None
    grad_clip: Positive | None = None
    lr_schedule: Literal["none", "step", "exponential", "cosine", "plateau", "onecycle"] = "none"
    lr_step_size: int = Field(30, ge=1)
    lr_gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    warmup_epochs: int = Field(0, ge=0)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    valid_fraction: Fraction = 0.0
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    loss: Literal["mse", "l1", "huber"] = "mse"
    huber_delta: Positive = 1.0
    head: Literal["regression", "binned"] = "regression"
    n_bins: int = Field(32, ge=2)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    # Numeric inputs scaled as features.scaling says, or Gaussian-rank (quantile) transformed.
    input_transform: Literal["features", "gaussian_rank"] = "features"
    # Nets from this many seeds, predictions averaged (learning curves only with 1).
    n_seeds: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> MLPConfig:
        if self.init == "zeros":
            raise ValueError(
                "init 'zeros' gives every hidden unit the same gradient, so symmetry is never "
                "broken and the layer learns one feature; use he_normal, xavier_normal or normal"
            )
        if isinstance(self.dropout, list) and len(self.dropout) != len(self.hidden):
            raise ValueError(
                f"dropout has {len(self.dropout)} rates but hidden has {len(self.hidden)} layers"
            )
        if self.early_stopping.enabled and self.valid_fraction <= 0:
            raise ValueError("early_stopping needs valid_fraction > 0 (an internal validation split)")
        if self.lr_schedule == "plateau" and self.valid_fraction <= 0:
            raise ValueError("lr_schedule 'plateau' monitors valid_loss: set valid_fraction > 0")
        if self.warmup_epochs and self.lr_schedule in ("plateau", "onecycle"):
            raise ValueError(f"warmup_epochs works with lr_schedule none, step, exponential or cosine, "
                             f"not {self.lr_schedule!r} (onecycle warms up by itself); set it to 0")
        return self


class RidgeConfig(Strict):
    kind: Literal["ridge"]
    alpha: Positive = 10.0


class LassoConfig(Strict):
    kind: Literal["lasso"]
    alpha: Positive = 0.0005
    max_iter: int = Field(50000, ge=1)


class ElasticNetConfig(Strict):
    kind: Literal["elastic_net"]
    alpha: Positive = 0.0005
    l1_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    max_iter: int = Field(50000, ge=1)


class KernelRidgeConfig(Strict):
    kind: Literal["kernel_ridge"]
    alpha: Positive = 0.5
    kernel: Literal["linear", "polynomial", "rbf", "laplacian"] = "polynomial"
    degree: int = Field(2, ge=1)
    gamma: Positive | None = None
    coef0: float = 2.5


class HGBConfig(Strict):
    kind: Literal["hist_gradient_boosting"]
    learning_rate: Positive = 0.05
    max_iter: int = Field(1000, ge=1)
    max_leaf_nodes: int = Field(15, ge=2)
    min_samples_leaf: int = Field(10, ge=1)
    l2_regularization: float = Field(0.0, ge=0.0)


Unit = Annotated[float, Field(gt=0.0, le=1.0)]
# 0: every core this process may use (threads.available_cores()); n: at most n threads.
Threads = Annotated[int, Field(ge=0)]


class BoostedTreesConfig(Strict):
    """What LightGBM and XGBoost share: rounds, shrinkage, row/column sampling, penalties."""

    n_estimators: int = Field(1500, ge=1)
    learning_rate: Positive = 0.02
    subsample: Unit = 0.7
    colsample_bytree: Unit = 0.3
    reg_alpha: float = Field(0.0, ge=0.0)
    reg_lambda: float = Field(1.0, ge=0.0)
    n_jobs: Threads = 0


class LightGBMConfig(BoostedTreesConfig):
    kind: Literal["lightgbm"]
    num_leaves: int = Field(6, ge=2)
    min_child_samples: int = Field(10, ge=1)
    colsample_bytree: Unit = 0.25


class XGBoostConfig(BoostedTreesConfig):
    kind: Literal["xgboost"]
    max_depth: int = Field(3, ge=1)
    min_child_weight: float = Field(1.0, ge=0.0)


class CatBoostConfig(Strict):
    kind: Literal["catboost"]
    iterations: int = Field(1000, ge=1)
    learning_rate: Positive = 0.05
    depth: int = Field(5, ge=1, le=16)
    l2_leaf_reg: float = Field(3.0, ge=0.0)
    rsm: Unit = 1.0
    # Categorical columns as CatBoost's ordered target statistics instead of codes.
    native_categorical: bool = True
    thread_count: Threads = 0


class SVRConfig(Strict):
    kind: Literal["svr"]
    C: Positive = 3.0
    epsilon: float = Field(0.01, ge=0.0)
    gamma: Positive | Literal["scale", "auto"] = 0.0003
    kernel: Literal["rbf", "linear", "poly", "sigmoid"] = "rbf"


class GBRConfig(Strict):
    """scikit-learn's GradientBoostingRegressor; the Huber loss keeps the outliers'
    residuals from dominating the fit."""

    kind: Literal["gradient_boosting"]
    loss: Literal["huber", "squared_error", "absolute_error"] = "huber"
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
    n_estimators: int = Field(1000, ge=1)
    learning_rate: Positive = 0.05
    max_depth: int = Field(4, ge=1)
    max_features: Literal["sqrt", "log2"] | Unit = "sqrt"
    min_samples_leaf: int = Field(15, ge=1)
    min_samples_split: int = Field(10, ge=2)
    subsample: Unit = 1.0


ModelConfig = Annotated[
    MLPConfig | RidgeConfig | LassoConfig | ElasticNetConfig | KernelRidgeConfig | HGBConfig
    | LightGBMConfig | XGBoostConfig | CatBoostConfig | SVRConfig | GBRConfig,
    Field(discriminator="kind"),
]


# ------------------------------------------------------------------- search
class FloatRange(Strict):
    """Sampled uniformly, or log-uniformly (for learning rates and penalties)."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class Choice(Strict):
    choices: list[object] = Field(min_length=1)


class SearchConfig(Strict):
    trials: int = Field(20, ge=1)
    # Round 1 samples the given ranges; each later round narrows them around the best.
    rounds: int = Field(2, ge=1, le=5)
    top_k: int = Field(3, ge=1)
    n_jobs: int = Field(1, ge=1)
    space: dict[str, FloatRange | Choice] = Field(min_length=1)


# ------------------------------------------------------------------- the rest
class EnsembleConfig(Strict):
    # The models trained by `dvc repro` (one train@<name> stage each) and combined.
    members: list[str] = Field(default_factory=lambda: ["mlp"], min_length=1)
    method: Literal["auto", "mean", "nnls", "stacking", "greedy"] = "auto"
    # auto: the fold average when the out-of-fold evidence says averaging beats one refit.
    test_predictions: Literal["refit", "fold_average", "auto"] = "auto"


class SubmissionConfig(Strict):
    path: Path = Path("submission.csv")
    message: str = "houseprices"


class TrackingConfig(Strict):
    # Empty: MLFLOW_TRACKING_URI, else sqlite:///<repo root>/mlflow.db.
    uri: str = ""
    experiment: str = "houseprices"
    required: bool = True
    log_models: bool = True
    # Each ensemble run registers a new version under this name ("" to skip).
    registered_model: str = "houseprices-ensemble"


class Params(Strict):
    seed: int = Field(42, ge=0)
    data: DataConfig = DataConfig()
    cv: CVConfig = CVConfig()
    features: FeaturesConfig = FeaturesConfig()
    models: dict[str, ModelConfig] = Field(default_factory=lambda: {"mlp": MLPConfig()})
    ensemble: EnsembleConfig = EnsembleConfig()
    submission: SubmissionConfig = SubmissionConfig()
    tracking: TrackingConfig = TrackingConfig()
    # Random-search spaces, per model name (see `houseprices search`).
    search: dict[str, SearchConfig] = {}

    @model_validator(mode="before")
    @classmethod
    def _default_members(cls, raw: object) -> object:
        """No ``ensemble.members`` given: every configured model is a member."""
        if isinstance(raw, dict) and isinstance(raw.get("models"), dict):
            ensemble = raw.get("ensemble") or {}
            if isinstance(ensemble, dict) and "members" not in ensemble:
                raw = {**raw, "ensemble": {**ensemble, "members": list(raw["models"])}}
        return raw

    @model_validator(mode="after")
    def _members_exist(self) -> Params:
        if not self.models:
            raise ValueError("models: at least one model is needed")
        unknown = [m for m in self.ensemble.members if m not in self.models]
        if unknown:
            raise ValueError(f"ensemble.members names unknown models {unknown}; known: {sorted(self.models)}")
        for name, search in self.search.items():
            if name not in self.models:
                raise ValueError(f"search.{name}: no model named {name!r} in models")
            fields = type(self.models[name]).model_fields
            bad = [k for k in search.space if k not in fields or k == "kind"]
            if bad:
                raise ValueError(f"search.{name}.space: {bad} are not params of models.{name}")
        return self

    def model(self, name: str) -> ModelConfig:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"no model named {name!r} in models; known: {sorted(self.models)}") from None

    @property
    def ensemble_members(self) -> list[str]:
        return list(self.ensemble.members)


MODEL_KINDS = ("mlp, ridge, lasso, elastic_net, kernel_ridge, hist_gradient_boosting, lightgbm, xgboost, "
               "catboost, svr, gradient_boosting")


def _key(loc: tuple) -> str:
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "models":
        del parts[2]  # the discriminated union's tag (the model kind)
    # Union branch labels ("constrained-float", "list[int]") are not keys.
    parts = [str(p) for p in parts if not any(ch in str(p) for ch in "-[( ")]
    return ".".join(parts) or "<root>"


def _describe(err: ValidationError, source: str) -> str:
    lines, seen = [f"{source}: invalid params"], set()
    for e in err.errors():
        key = _key(e["loc"])
        if key in seen:
            continue
        seen.add(key)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        elif e["type"] == "union_tag_not_found":
            msg = f"missing 'kind' (one of: {MODEL_KINDS})"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown kind {e['input'].get('kind')!r} (one of: {MODEL_KINDS})"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_params(raw: object, source: str = PARAMS_FILE) -> Params:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_params(raw, str(path))


BEST_PARAMS_FILE = Path("search/best_params.yaml")


def load_best_params(path: Path | str = BEST_PARAMS_FILE) -> dict[str, dict]:
    """Overrides written by ``houseprices search``: {model name: {param: value}}."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{path}: expected {{model name: {{param: value}}}}")
    return raw


def with_model_overrides(params: Params, name: str, overrides: dict, source: str = str(BEST_PARAMS_FILE)) -> Params:
    """``params`` with ``models.<name>`` updated and re-validated (a stale override that
    no longer fits the model's schema is reported, not ignored)."""
    if not overrides:
        return params
    raw = params.model_dump(mode="json")
    raw["models"][name] = {**raw["models"][name], **overrides}
    return parse_params(raw, f"{source} applied to params")


def params_for_model(params: Params, name: str, best_file: Path | str = BEST_PARAMS_FILE) -> Params:
    params.model(name)  # unknown names fail here, with the known ones listed
    return with_model_overrides(params, name, load_best_params(best_file).get(name, {}))
