"""Typed view of ``params.yaml``.

Every section forbids unknown keys, so a typo in ``params.yaml`` or in
``dvc exp run -S models.mlp.lrr=0.1`` stops the stage instead of being ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from houseprices.errors import ConfigError

PARAMS_FILE = "params.yaml"
# Model names become folder names and `--model` values: no "/", "..", or leading "-".
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class Strict(BaseModel):
    # Infinities and NaN break every fit they reach (`alpha: .inf`): refused at load.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    # Sale prices (dollars) any Ames sale could have; training rows outside are refused.
    # The data spans $34,900 to $755,000, so a row outside [10k, 2M] is a typo or a unit slip.
    price_range: tuple[Positive, Positive] = (10000.0, 2000000.0)

    @field_validator("price_range")
    @classmethod
    def _low_below_high(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not bounds[0] < bounds[1]:
            raise ValueError(f"low ({bounds[0]:g}) must be below high ({bounds[1]:g})")
        return bounds


class CVConfig(Strict):
    folds: int = Field(5, ge=2, le=20)
    repeats: int = Field(3, ge=1, le=20)


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
    min_frequency: int = Field(10, ge=1)
    as_categorical: list[str] = ["MSSubClass"]

    @field_validator("as_categorical")
    @classmethod
    def _known_columns(cls, columns: list[str]) -> list[str]:
        from houseprices.data.validation import FEATURES

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


class NeighborhoodRelativeConfig(Strict):
    """Areas as ratios to, and quality as a difference from, the neighbourhood's median
    (medians of a fold's training rows; see extra_features.py)."""

    enabled: bool = False


class QualityScoreConfig(Strict):
    """The sum of the parts' quality ratings and its product with the living area."""

    enabled: bool = False


class FeaturesConfig(Strict):
    impute: ImputeConfig = ImputeConfig()
    scaling: Literal["standard", "minmax", "robust", "none"] = "standard"
    # Numeric inputs of linear, kernel and neural members held inside the training rows'
    # range, so a house larger than any seen is priced like the largest, not extrapolated.
    clip_to_training_range: bool = True
    skew: SkewConfig = SkewConfig()
    encoding: EncodingConfig = EncodingConfig()
    domain: DomainConfig = DomainConfig()
    pca: PCAConfig = PCAConfig()
    outliers: OutlierConfig = OutlierConfig()
    interactions: InteractionsConfig = InteractionsConfig()
    target_encoding: TargetEncodingConfig = TargetEncodingConfig()
    neighborhood_relative: NeighborhoodRelativeConfig = NeighborhoodRelativeConfig()
    quality_score: QualityScoreConfig = QualityScoreConfig()


# ------------------------------------------------------------------------- models
class EarlyStoppingConfig(Strict):
    enabled: bool = False
    patience: int = Field(10, ge=1)


class MLPConfig(Strict):
    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1)]] = [128]
    activation: Literal["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"] = "tanh"
    batch_norm: bool = False
    # One rate for every hidden layer, or one per hidden layer.
    dropout: Fraction | list[Fraction] = 0.0
    input_dropout: Fraction = 0.0
    input_noise: float = Field(0.0, ge=0.0)
    init: Literal["xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "normal", "zeros"] = "he_normal"
    init_std: Positive = 0.01
    bias_init: float = 0.0
    optimizer: Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"] = "adamw"
    lr: Positive = 0.007
    momentum: Fraction = 0.9
    beta1: Fraction = 0.9
    beta2: Fraction = 0.999
    weight_decay: float = Field(2.0, ge=0.0)
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
    loss: Literal["mse", "l1", "huber"] = "huber"
    huber_delta: Positive = 1.0
    head: Literal["regression", "binned"] = "regression"
    n_bins: int = Field(32, ge=2)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    # Numeric inputs scaled as features.scaling says, or Gaussian-rank (quantile) transformed.
    input_transform: Literal["features", "gaussian_rank"] = "features"
    # Nets from this many seeds, predictions averaged (learning curves only with 1).
    n_seeds: int = Field(1, ge=1)
    # Entity embeddings: each categorical column as a learned vector of this many numbers
    # per category (0: one-hot, as features.encoding says).
    embedding_dim: int = Field(0, ge=0)
    # The optimizer's weight decay on the embedding tables (weight_decay on the rest).
    embedding_weight_decay: float = Field(0.0, ge=0.0)
    # Stochastic weight averaging: the net ends with the mean of its weights at the end of
    # each of the last epochs, this share of them (0: off, the last epoch's weights).
    swa_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.8
    # null: the lr_schedule runs on through the averaged epochs; a rate: the schedule
    # anneals to it by the first averaged epoch and holds it there (SWA's constant phase).
    swa_lr: Positive | None = None

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
        self._check_weight_averaging()
        return self

    def averaged_epochs(self) -> int:
        """How many last epochs' weights ``swa_fraction`` averages (0: none)."""
        return max(1, round(self.swa_fraction * self.epochs)) if self.swa_fraction > 0 else 0

    def _check_weight_averaging(self) -> None:
        if self.swa_lr is not None and not self.swa_fraction:
            raise ValueError("swa_lr is the rate held while weights are averaged: set swa_fraction > 0 or swa_lr null")
        if self.swa_fraction and self.early_stopping.enabled:
            raise ValueError(
                "swa_fraction averages the last epochs' weights but early_stopping.enabled restores "
                "the best epoch's: set swa_fraction 0 or early_stopping.enabled false"
            )
        if self.swa_lr is not None:
            self._needs_an_epoch_schedule("swa_lr", "set swa_lr null")

    def _needs_an_epoch_schedule(self, key: str, fix: str) -> None:
        """``key`` sets the rate epoch by epoch, which plateau and onecycle do themselves."""
        if self.lr_schedule in ("plateau", "onecycle"):
            raise ValueError(
                f"{key} works with lr_schedule none, step, exponential or cosine, not {self.lr_schedule!r}; {fix}"
            )


class RidgeConfig(Strict):
    kind: Literal["ridge"]
    alpha: Positive = 10.0


class LassoConfig(Strict):
    kind: Literal["lasso"]
    alpha: Positive = 0.0005
    max_iter: int = Field(50000, ge=1)


class ElasticNetConfig(Strict):
    kind: Literal["elastic_net"]
    alpha: Positive = 0.0008
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
    learning_rate: Positive = 0.1
    max_iter: int = Field(300, ge=1)
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
    """The ensemble's robust tree member (Huber loss): 5x1 CV 0.1222 in ~2 s per fit."""

    kind: Literal["lightgbm"]
    n_estimators: int = Field(1000, ge=1)
    learning_rate: Positive = 0.05
    num_leaves: int = Field(16, ge=2)
    min_child_samples: int = Field(15, ge=1)
    colsample_bytree: Unit = 0.1
    # huber: squared loss within huber_delta (log price) of the target, linear beyond it,
    # so a mispriced training house pulls its leaves less.
    objective: Literal["regression", "huber"] = "huber"
    huber_delta: Positive = 0.1


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


# ------------------------------------------------------------------- the rest
class EnsembleConfig(Strict):
    # The models trained by `dvc repro` (one train@<name> stage each) and combined.
    members: list[str] = Field(default_factory=lambda: ["mlp"], min_length=1)
    method: Literal["auto", "mean", "nnls", "stacking", "greedy"] = "auto"
    # auto: the fold average when the out-of-fold evidence says averaging beats one refit.
    test_predictions: Literal["refit", "fold_average", "auto"] = "auto"

    @field_validator("members")
    @classmethod
    def _once_each(cls, members: list[str]) -> list[str]:
        twice = sorted({m for m in members if members.count(m) > 1})
        if twice:
            raise ValueError(f"{twice} listed more than once; each member is trained and weighted once")
        return members


class SubmissionConfig(Strict):
    path: Path = Path("submission.csv")
    message: str = "houseprices"

    @field_validator("path")
    @classmethod
    def _plain_csv_path(cls, path: Path) -> Path:
        """A relative ``.csv`` path inside the repo, outside the pipeline's own folders."""
        text = str(path)
        if text in ("", "."):
            raise ValueError("empty; give a file name such as submission.csv")
        if path.is_absolute() or ".." in path.parts or text.startswith("~"):
            raise ValueError(f"{text!r} is not a plain relative path inside the repository")
        if path.suffix.lower() != ".csv":
            raise ValueError(f"{text!r} must end in .csv")
        if path.parts[0] in _reserved_folders():
            raise ValueError(
                f"{text!r} is inside {path.parts[0]}/, which the pipeline owns; "
                "write it at the top level or in a folder of its own"
            )
        return path


def _reserved_folders() -> set[str]:
    """Top-level folders whose files the pipeline reads or writes itself."""
    from houseprices.stages import METRICS, MODELS, PLOTS, PREPARED

    owned = (PREPARED, MODELS, METRICS, PLOTS, Path("search"))
    return {p.parts[0] for p in owned} | {".git", ".dvc", "src", "tests", "mlruns"}


class TrackingConfig(Strict):
    # Empty: MLFLOW_TRACKING_URI, else sqlite:///<repo root>/mlflow.db.
    uri: str = ""
    experiment: str = "houseprices"
    required: bool = True
    log_models: bool = True
    # Each ensemble run registers a new version under this name ("" to skip).
    registered_model: str = "houseprices-ensemble"


class ResourcesConfig(Strict):
    # torch/BLAS/OpenMP threads per process; 0: every available core. A stage param:
    # BLAS results differ in the last bits between thread counts.
    threads: int = Field(1, ge=0, le=1024)


class Params(Strict):
    seed: int = Field(42, ge=0, lt=2**32)  # numpy's seed range
    data: DataConfig = DataConfig()
    cv: CVConfig = CVConfig()
    features: FeaturesConfig = FeaturesConfig()
    models: dict[str, ModelConfig] = Field(default_factory=lambda: {"mlp": MLPConfig()})
    ensemble: EnsembleConfig = EnsembleConfig()
    submission: SubmissionConfig = SubmissionConfig()
    tracking: TrackingConfig = TrackingConfig()
    resources: ResourcesConfig = ResourcesConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_members(cls, raw: object) -> object:
        """No ``ensemble.members`` given: every configured model is a member."""
        if isinstance(raw, dict) and isinstance(raw.get("models"), dict):
            ensemble = raw.get("ensemble") or {}
            if isinstance(ensemble, dict) and "members" not in ensemble:
                raw = {**raw, "ensemble": {**ensemble, "members": list(raw["models"])}}
        return raw

    @field_validator("models")
    @classmethod
    def _plain_names(cls, models: dict) -> dict:
        """Names become folder and file names (models/members/<name>/, metrics/<name>.json)."""
        bad = [n for n in models if not MODEL_NAME.fullmatch(n)]
        if bad:
            raise ValueError(
                f"model name(s) {bad} must be letters, digits, '_' or '-' (not first): "
                "they become folder and file names"
            )
        return models

    @model_validator(mode="after")
    def _submission_is_no_input(self) -> Params:
        from houseprices.submission import INTERVALS_FILE

        path = Path(os.path.normpath(self.submission.path))
        inputs = [self.data.train, self.data.test, self.data.sample_submission, self.data.checksums]
        if any(path == Path(os.path.normpath(p)) for p in inputs) or path == INTERVALS_FILE:
            raise ValueError(
                f"submission.path {str(self.submission.path)!r} would overwrite an input or "
                "another output of the pipeline; choose another file name"
            )
        raw_dirs = {Path(os.path.normpath(p)).parent for p in inputs}
        if path.parent in raw_dirs and path.parent != Path("."):
            raise ValueError(
                f"submission.path {str(self.submission.path)!r} is inside the input folder "
                f"{path.parent}/; choose another folder"
            )
        return self

    @model_validator(mode="after")
    def _members_exist(self) -> Params:
        if not self.models:
            raise ValueError("models: at least one model is needed")
        unknown = [m for m in self.ensemble.members if m not in self.models]
        if unknown:
            raise ValueError(f"ensemble.members names unknown models {unknown}; known: {sorted(self.models)}")
        return self

    def model(self, name: str) -> ModelConfig:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"no model named {name!r} in models; known: {sorted(self.models)}") from None

    @property
    def ensemble_members(self) -> list[str]:
        return list(self.ensemble.members)


# Sections keyed by a name the user chose (which may hold "-", like "mlp-wide").
NAMED_SECTIONS = ("models", "search")
KINDS = "one of: " + ", ".join(
    get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(ModelConfig)[0])
)


def _model_names(cls: type = Strict) -> set[str]:
    return {sub.__name__ for sub in cls.__subclasses__()}.union(*(_model_names(s) for s in cls.__subclasses__()))


def _is_branch(part: str) -> bool:
    """Union branch labels pydantic puts in a location ("constrained-float", "list[int]",
    "function-after[_check(), FloatRange]", a model class name or a tag such as "Range")
    are not keys (a param may still be called "C")."""
    return any(ch in part for ch in "-[( ") or part in _model_names() or part in ("Range", "Choices")


def _split(loc: tuple, kind_tagged: bool = True) -> tuple[list[str], str | None]:
    """The error's keys, and the union branch it belongs to (None outside unions).
    ``kind_tagged``: ``models.<name>`` entries are tagged by their kind (params.yaml)."""
    parts = [str(p) for p in loc]
    keys, branch = [], None
    if parts[:1] and parts[0] in NAMED_SECTIONS:
        keys, parts = parts[:2], parts[2:]
        if keys[0] == "models" and kind_tagged:
            parts = parts[1:]  # the discriminated union's tag (the model kind)
    for part in parts:
        if _is_branch(part):
            branch = branch or part
        else:
            keys.append(part)
    return keys, branch


def _closest_branches(errors: list[dict], kind_tagged: bool = True) -> list[dict]:
    """Where a value matches no member of a union, keep the errors of the member it comes
    closest to (the fewest errors, then the deepest): a bad search range is reported as a
    range, not also as a malformed list of choices."""
    depths: dict[tuple, dict[str, list[int]]] = {}
    for e in errors:
        branch = _split(e["loc"], kind_tagged)[1]
        if branch is not None:
            where = tuple(e["loc"][: e["loc"].index(branch)])
            depths.setdefault(where, {}).setdefault(branch, []).append(len(e["loc"]))
    best = {where: min(d, key=lambda b: (len(d[b]), -max(d[b]))) for where, d in depths.items()}
    return [
        e
        for e in errors
        if (b := _split(e["loc"], kind_tagged)[1]) is None or best[tuple(e["loc"][: e["loc"].index(b)])] == b
    ]


def _message(e: dict) -> str:
    if e["type"] == "extra_forbidden":
        return "unknown key (misspelled?)"
    if e["type"] == "union_tag_not_found":
        return f"missing 'kind' ({KINDS})"
    if e["type"] == "union_tag_invalid":
        return f"unknown kind {e['input'].get('kind')!r} ({KINDS})"
    return e["msg"].removeprefix("Value error, ")


def _describe(err: ValidationError, source: str, kind_tagged: bool = True) -> str:
    """One line: the file, then each offending key with what is wrong with it."""
    problems = {}
    for e in _closest_branches(err.errors(), kind_tagged):
        problems.setdefault(".".join(_split(e["loc"], kind_tagged)[0]) or "<root>", _message(e))
    return f"{source}: " + "; ".join(f"{key}: {msg}" for key, msg in problems.items())


def parse_params(raw: object, source: str = PARAMS_FILE) -> Params:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


class DuplicateKeyError(yaml.YAMLError):
    """A mapping key written twice: plain YAML loaders silently keep the last one."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool | None):
                continue  # unhashable keys: SafeLoader reports them
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(
                    f"line {line}: key {key!r} is already set at line {seen[key]} "
                    "(a later copy would silently win); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> object:
    """The YAML document at ``path``; a duplicate key is a ConfigError naming key and line."""
    try:
        return yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}, {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte offset {err.start})") from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    path = Path(path)
    try:
        raw = load_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_params(raw, str(path))


def with_model_overrides(params: Params, name: str, overrides: dict, source: str) -> Params:
    """``params`` with ``models.<name>`` updated and re-validated (an override that does
    not fit the model's schema is reported, naming ``source``)."""
    if not overrides:
        return params
    raw = params.model_dump(mode="json")
    raw["models"][name] = {**raw["models"][name], **overrides}
    return parse_params(raw, f"{source} applied to params")


# ------------------------------------------------------------------- search.yaml
SEARCH_FILE = "search.yaml"


class FloatRange(Strict):
    """Sampled uniformly, or log-uniformly (learning rates, penalties); ``integer`` for counts."""

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
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("an integer range needs whole-number low and high")
        return self


class Choice(Strict):
    choices: list[object] = Field(min_length=1)


def _dist_kind(raw: object) -> str:
    return "Choices" if isinstance(raw, dict) and "choices" in raw else "Range"


Distribution = Annotated[
    Annotated[FloatRange, Tag("Range")] | Annotated[Choice, Tag("Choices")], Discriminator(_dist_kind)
]


class PrunerConfig(Strict):
    """Stops a trial whose running CV mean after a fold is worse than the median (or the
    given percentile) of earlier trials at that fold, or, with ``hyperband``, not among the
    best 1/``reduction_factor`` at its rung (steps 1, r, r^2...: after 2, r+1... folds;
    Optuna's advice for TPE); ``successive_halving`` is Hyperband's most aggressive bracket
    alone (asynchronous successive halving)."""

    kind: Literal["median", "percentile", "hyperband", "successive_halving", "none"] = "median"
    startup_trials: int = Field(5, ge=0)  # median/percentile: trials that always run to the end first
    warmup_folds: int = Field(0, ge=0)  # median/percentile: folds a trial always runs
    percentile: float = Field(50.0, gt=0.0, lt=100.0)
    reduction_factor: int = Field(3, ge=2)  # hyperband/successive_halving: 1 in this many goes on at each rung


class SearchConfig(Strict):
    trials: int = Field(20, ge=0)  # per worker and command (Optuna's n_trials)
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: PrunerConfig = PrunerConfig()
    timeout: Positive | None = None  # seconds per worker; None: no limit
    space: dict[str, Distribution] = Field(min_length=1)


class SearchFile(Strict):
    # Empty: $HOUSEPRICES_OPTUNA_STORAGE, else sqlite:///<folder of search.yaml>/search/optuna.db.
    storage: str = ""
    heartbeat_interval: int = Field(60, ge=1)  # seconds between a running trial's heartbeats
    grace_period: int = Field(120, ge=1)  # a trial silent this long is marked FAIL
    models: dict[str, SearchConfig] = {}


def _check_space(search: SearchFile, params: Params, name: str, source: str) -> SearchConfig:
    """Every space key is a param of ``models.<name>`` and every bound or choice fits it."""
    if name not in search.models:
        raise ConfigError(
            f"{source}: no search space for {name!r}; add models.{name}.space "
            f"(searchable: {sorted(search.models) or 'none'})"
        )
    model = params.model(name)
    cfg = search.models[name]
    fields = type(model).model_fields
    bad = [k for k in cfg.space if k not in fields or k == "kind"]
    if bad:
        raise ConfigError(f"{source}: models.{name}.space: {bad} are not params of models.{name} in {PARAMS_FILE}")
    for key, dist in cfg.space.items():
        values = dist.choices if isinstance(dist, Choice) else [dist.low, dist.high]
        for value in values:
            try:
                type(model).model_validate({**model.model_dump(), key: value})
            except ValidationError as err:
                msg = err.errors()[0]["msg"].removeprefix("Value error, ")
                raise ConfigError(
                    f"{source}: models.{name}.space.{key}: {value!r} does not fit models.{name}.{key}: {msg}"
                ) from None
    return cfg


def load_search(path: Path | str, params: Params, name: str) -> tuple[SearchFile, SearchConfig]:
    """``search.yaml`` validated, and the settings of model ``name`` checked against ``params``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: search file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        search = SearchFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, str(path), kind_tagged=False)) from None
    return search, _check_space(search, params, name, str(path))
