"""Typed view of ``params.yaml``: a typo in it or in ``dvc exp run -S models.mlp.lrr=0.1`` stops the stage."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, NonNegativeFloat, PositiveFloat, field_validator, model_validator

from houseprices.config.base import Count, OffByDefault, OnByDefault, Strict
from houseprices.config.loader import load_yaml
from houseprices.config.messages import validate
from houseprices.config.models import MLPConfig, ModelConfig
from houseprices.data.schema import FEATURES
from houseprices.errors import ConfigError
from houseprices.paths import INTERVALS_FILE, METRICS, MODELS, PARAMS_FILE, PLOTS, PREPARED, SEARCH

# Model names become folder names and `--model` values: no "/", "..", or leading "-".
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

# Top-level folders whose files the pipeline reads or writes itself.
RESERVED = {p.parts[0] for p in (PREPARED, MODELS, METRICS, PLOTS, SEARCH)} | {".git", ".dvc", "src", "tests", "mlruns"}


def _known_columns(columns: list[str]) -> list[str]:
    unknown = [c for c in columns if c not in FEATURES]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}: not competition features")
    return columns


Columns = Annotated[list[str], AfterValidator(_known_columns)]


class DataConfig(Strict):
    train: Path = Path("data/raw/train.csv")
    test: Path = Path("data/raw/test.csv")
    sample_submission: Path = Path("data/raw/sample_submission.csv")
    checksums: Path = Path("data/raw/SHA256SUMS")
    # Off for your own variant of the CSVs; validation still runs.
    verify_checksums: bool = True
    # Sale prices (dollars) any Ames sale could have; training rows outside are refused.
    price_range: tuple[PositiveFloat, PositiveFloat] = (10000.0, 2000000.0)

    @field_validator("price_range")
    @classmethod
    def _low_below_high(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not bounds[0] < bounds[1]:
            raise ValueError(f"low ({bounds[0]:g}) must be below high ({bounds[1]:g})")
        return bounds


class CVConfig(Strict):
    folds: int = Field(5, ge=2, le=20)
    repeats: int = Field(3, ge=1, le=20)


class ImputeConfig(Strict):
    numeric: Literal["mean", "median", "most_frequent", "constant"] = "median"
    categorical: Literal["most_frequent", "constant"] = "constant"
    # Columns whose NA means "the house has none" (see data_description.txt).
    na_means_none: bool = True
    missing_indicators: bool = False
    lot_frontage_by_neighborhood: bool = True


class SkewConfig(Strict):
    method: Literal["none", "log1p", "yeo-johnson", "box-cox"] = "log1p"
    threshold: NonNegativeFloat = 0.75


class EncodingConfig(Strict):
    ordinal_quality: bool = False
    # Categories seen fewer times than this in the training rows share one column.
    min_frequency: Count = 10
    as_categorical: Columns = ["MSSubClass"]


class DomainConfig(Strict):
    total_sf: bool = True
    total_bathrooms: bool = True
    ages: bool = True
    porch_area: bool = True
    has_flags: bool = True


class PCAConfig(OffByDefault):
    # An int keeps that many components; a float in (0, 1) keeps that share of variance.
    n_components: PositiveFloat | Count = 0.99
    whiten: bool = False

    @field_validator("n_components")
    @classmethod
    def _share_or_count(cls, n: float | int) -> float | int:
        if isinstance(n, float) and n >= 1:
            if not n.is_integer():
                raise ValueError(f"{n} is neither a variance share (< 1) nor a component count (an integer)")
            return int(n)
        return n


class OutlierConfig(OnByDefault):
    min_living_area: PositiveFloat = 4000
    max_price: PositiveFloat = 300000


class InteractionsConfig(OnByDefault):
    """Products of overall quality with the areas it prices (see features/extra.py)."""


class TargetEncodingConfig(OnByDefault):
    """Smoothed mean log price per category, cross-fitted inside each training fold."""

    columns: Columns = ["Neighborhood", "MSSubClass", "Exterior1st", "Exterior2nd", "Condition1"]
    # Inner folds: each training row's statistic comes from the other inner folds.
    inner_folds: int = Field(5, ge=2)


class NeighborhoodRelativeConfig(OffByDefault):
    """Areas as ratios to, and quality as a difference from, the neighbourhood's median
    (medians of a fold's training rows; see features/extra.py)."""


class QualityScoreConfig(OffByDefault):
    """The sum of the parts' quality ratings and its product with the living area."""


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
        text = str(path)
        if text in ("", "."):
            raise ValueError("empty; give a file name such as submission.csv")
        if path.is_absolute() or ".." in path.parts or text.startswith("~"):
            raise ValueError(f"{text!r} is not a plain relative path inside the repository")
        if path.suffix.lower() != ".csv":
            raise ValueError(f"{text!r} must end in .csv")
        if path.parts[0] in RESERVED:
            raise ValueError(
                f"{text!r} is inside {path.parts[0]}/, which the pipeline owns; "
                "write it at the top level or in a folder of its own"
            )
        return path


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
    # Processes that fit a model's CV folds at once (train@<model>), each with `threads`
    # threads; 0: as many as the available cores hold. Each fold is fit as it would be alone.
    cv_workers: int = Field(0, ge=0, le=1024)
    # Disk kept for the CV folds' preprocessing output under .cache/ (megabytes; 0: none), so a
    # run that changes only a model's params does not preprocess again. Results are the same.
    fold_cache_mb: int = Field(512, ge=0, le=1_000_000)


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
        bad = [n for n in models if not MODEL_NAME.fullmatch(n)]
        if bad:
            raise ValueError(
                f"model name(s) {bad} must be letters, digits, '_' or '-' (not first): "
                "they become folder and file names"
            )
        return models

    @model_validator(mode="after")
    def _submission_is_no_input(self) -> Params:
        path, shown = Path(os.path.normpath(self.submission.path)), str(self.submission.path)
        d = self.data
        inputs = {Path(os.path.normpath(p)) for p in (d.train, d.test, d.sample_submission, d.checksums)}
        if path in inputs or path == INTERVALS_FILE:
            raise ValueError(
                f"submission.path {shown!r} would overwrite an input or another output of the pipeline; "
                "choose another file name"
            )
        if path.parent in {p.parent for p in inputs} and path.parent != Path("."):
            raise ValueError(
                f"submission.path {shown!r} is inside the input folder {path.parent}/; choose another folder"
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


def parse_params(raw: object, source: str = PARAMS_FILE) -> Params:
    return validate(Params, raw, source)


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    path = Path(path)
    return parse_params(load_yaml(path, "params file"), str(path))


def with_model_overrides(params: Params, name: str, overrides: dict, source: str) -> Params:
    """``params`` with ``models.<name>`` updated and re-validated (an override that does
    not fit the model's schema is reported, naming ``source``)."""
    if not overrides:
        return params
    raw = params.model_dump(mode="json")
    raw["models"][name] = {**raw["models"][name], **overrides}
    return parse_params(raw, f"{source} applied to params")
