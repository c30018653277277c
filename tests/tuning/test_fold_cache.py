"""A search worker's cache of fitted preprocessing per fold: a cached trial scores exactly
like an uncached one, and anything the preprocessing depends on is part of the key."""

from __future__ import annotations

import pytest

from conftest import tiny_params
from houseprices.config.params import parse_params, with_model_overrides
from houseprices.tuning.fold_cache import PreprocessCache
from houseprices.tuning.search import fold_scores


def mlp_params(**features) -> object:
    raw = tiny_params()
    raw["cv"] = {"folds": 3, "repeats": 1}
    raw["features"].update(features)
    return parse_params(raw)


def test_a_cached_trial_scores_exactly_like_an_uncached_one(small_xy):
    X, y = small_xy
    params = mlp_params()
    cache = PreprocessCache()
    first = list(fold_scores(params, "mlp", X, y, cache))
    assert (cache.misses, cache.hits) == (3, 0)
    assert first == list(fold_scores(params, "mlp", X, y))  # bit for bit, not approx

    # Another trial: model params the preprocessing ignores, so every fold is a hit.
    trial = with_model_overrides(params, "mlp", {"lr": 0.003, "hidden": [8], "dropout": 0.1}, "test")
    cached = list(fold_scores(trial, "mlp", X, y, cache))
    assert (cache.misses, cache.hits) == (3, 3)
    assert cached == list(fold_scores(trial, "mlp", X, y))
    assert cached != first


@pytest.mark.parametrize("change", ["features", "model", "seed"])
def test_a_change_the_preprocessing_depends_on_is_not_served_from_the_cache(small_xy, change):
    X, y = small_xy
    params = mlp_params()
    cache = PreprocessCache()
    before = list(fold_scores(params, "mlp", X, y, cache))
    other = {
        "features": lambda: mlp_params(scaling="minmax"),
        "model": lambda: with_model_overrides(params, "mlp", {"input_transform": "gaussian_rank"}, "test"),
        "seed": lambda: parse_params({**params.model_dump(mode="json"), "seed": 7}),
    }[change]()
    after = list(fold_scores(other, "mlp", X, y, cache))
    assert (cache.misses, cache.hits) == (6, 0)
    assert after == list(fold_scores(other, "mlp", X, y)) and after != before


def test_changed_rows_are_not_served_from_the_cache(small_xy):
    X, y = small_xy
    params = parse_params({**tiny_params(), "cv": {"folds": 3, "repeats": 1}})
    cache = PreprocessCache()
    list(fold_scores(params, "ridge", X, y, cache))
    edited = X.copy()
    edited.loc[edited.index[0], "GrLivArea"] += 100  # one value of a training row of every other fold
    scores = list(fold_scores(params, "ridge", edited, y, cache))
    assert cache.misses == 6 and cache.hits == 0
    assert scores == list(fold_scores(params, "ridge", edited, y))


def test_the_oldest_entries_are_dropped_past_the_limit(small_xy):
    X, y = small_xy
    params = parse_params({**tiny_params(), "cv": {"folds": 3, "repeats": 1}})
    cache = PreprocessCache(max_entries=2)
    list(fold_scores(params, "ridge", X, y, cache))
    list(fold_scores(params, "ridge", X, y, cache))
    assert cache.hits == 0 and cache.misses == 6  # folds 1 and 2 were gone when asked again
