"""Typed view of ``search.yaml``: per-model trials, sampler, pruner and space, checked against params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Discriminator, Field, NonNegativeInt, PositiveFloat, Tag, ValidationError, model_validator

from houseprices.config.base import Count, Strict
from houseprices.config.loader import load_yaml
from houseprices.config.messages import validate
from houseprices.config.params import Params
from houseprices.errors import ConfigError
from houseprices.paths import PARAMS_FILE


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
    startup_trials: NonNegativeInt = 5  # median/percentile: trials that always run to the end first
    warmup_folds: NonNegativeInt = 0  # median/percentile: folds a trial always runs
    percentile: float = Field(50.0, gt=0.0, lt=100.0)
    reduction_factor: int = Field(3, ge=2)  # hyperband/successive_halving: 1 in this many goes on at each rung


class SearchConfig(Strict):
    trials: NonNegativeInt = 20  # per worker and command (Optuna's n_trials)
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: PrunerConfig = PrunerConfig()
    timeout: PositiveFloat | None = None  # seconds per worker; None: no limit
    space: dict[str, Distribution] = Field(min_length=1)


class SearchFile(Strict):
    # Empty: $HOUSEPRICES_OPTUNA_STORAGE, else sqlite:///<folder of search.yaml>/search/optuna.db.
    storage: str = ""
    heartbeat_interval: Count = 60  # seconds between a running trial's heartbeats
    grace_period: Count = 120  # a trial silent this long is marked FAIL
    models: dict[str, SearchConfig] = {}


def load_search(path: Path | str, params: Params, name: str) -> tuple[SearchFile, SearchConfig]:
    """``search.yaml`` validated, and the settings of model ``name`` checked against ``params``:
    every space key is a param of ``models.<name>`` and every bound or choice fits it."""
    path = Path(path)
    source = str(path)
    search = validate(SearchFile, load_yaml(path, "search file"), source, kind_tagged=False)
    if name not in search.models:
        raise ConfigError(
            f"{source}: no search space for {name!r}; add models.{name}.space "
            f"(searchable: {sorted(search.models) or 'none'})"
        )
    model = params.model(name)
    cfg = search.models[name]
    bad = [k for k in cfg.space if k not in type(model).model_fields or k == "kind"]
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
    return search, cfg
