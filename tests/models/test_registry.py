"""The registry of model kinds: one entry per config class, and every entry builds."""

from __future__ import annotations

from typing import get_args

import pytest
from sklearn.pipeline import Pipeline

from houseprices.config.models import ModelConfig
from houseprices.config.params import parse_params
from houseprices.models.registry import KINDS, build_estimator

CONFIG_CLASSES = get_args(get_args(ModelConfig)[0])


def kind_of(config_class) -> str:
    return get_args(config_class.model_fields["kind"].annotation)[0]


def test_every_config_class_has_one_registry_entry_under_its_kind():
    assert sorted(KINDS) == sorted(kind_of(c) for c in CONFIG_CLASSES)
    for kind, entry in KINDS.items():
        assert kind_of(entry.config) == kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_builds_a_pipeline_from_its_defaults(kind):
    params = parse_params({"models": {"m": {"kind": kind}}})
    cfg = params.model("m")
    assert isinstance(cfg, KINDS[kind].config)
    estimator = build_estimator(cfg, params.features, params.seed)
    assert isinstance(estimator, Pipeline)
    assert [name for name, _ in estimator.steps] == ["preprocess", "model"]
