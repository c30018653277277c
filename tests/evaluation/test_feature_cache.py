"""The folds' preprocessing output kept on disk across runs: a run served from it gives the
same bytes as one that preprocesses, anything the output depends on is part of the key, and a
cache that is damaged, full or unwritable costs time, never a result."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from conftest import tiny_params
from houseprices.config.params import parse_params, with_model_overrides
from houseprices.evaluation import cross_validation, feature_cache
from houseprices.evaluation.cross_validation import cross_validate
from houseprices.evaluation.feature_cache import FeatureCache, code_version


def ridge_params(**features) -> object:
    raw = tiny_params()
    raw["cv"] = {"folds": 3, "repeats": 1}
    raw["features"].update(features)
    return parse_params(raw)


@pytest.fixture
def count_fits(monkeypatch):
    """How many times a fold's preprocessing was fit (not served from a cache)."""
    calls = []
    real = feature_cache.preprocessed

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(feature_cache, "preprocessed", spy)
    monkeypatch.setattr(cross_validation, "preprocessed", spy)
    return calls


def same_result(a, b) -> bool:
    return (
        a.fold_scores == b.fold_scores
        and np.array_equal(a.oof, b.oof, equal_nan=True)
        and np.array_equal(a.test_fold_predictions, b.test_fold_predictions)
    )


def entries(cache: FeatureCache) -> list:
    return sorted(cache.folder.glob("*.pkl"))


def test_a_run_served_from_the_cache_gives_the_bytes_of_one_that_preprocesses(small_xy, tmp_path, count_fits):
    X, y = small_xy
    X_test = X.iloc[:40].reset_index(drop=True)
    params = ridge_params()
    cache = FeatureCache(tmp_path / "cache", 2**30)
    plain = cross_validate("ridge", params, X, y, X_test)
    first = cross_validate("ridge", params, X, y, X_test, cache=cache)
    assert len(count_fits) == 6 and len(entries(cache)) == 3
    # Another alpha leaves the preprocessing as it was: every fold is served from the disk.
    other = with_model_overrides(params, "ridge", {"alpha": 1.0}, "test")
    served = cross_validate("ridge", other, X, y, X_test, cache=cache)
    assert len(count_fits) == 6 and len(entries(cache)) == 3
    assert same_result(first, plain)
    assert same_result(served, cross_validate("ridge", other, X, y, X_test))
    assert not same_result(served, first)


def test_folds_fit_in_worker_processes_share_the_cache(small_xy, tmp_path):
    X, y = small_xy
    params = ridge_params()
    cache = FeatureCache(tmp_path / "cache", 2**30)
    in_workers = cross_validate("ridge", params, X, y, cache=cache, workers=2)
    assert len(entries(cache)) == 3
    assert same_result(in_workers, cross_validate("ridge", params, X, y))


@pytest.mark.parametrize("change", ["features", "seed", "rows", "code"])
def test_a_change_the_features_depend_on_is_not_served_from_the_cache(small_xy, tmp_path, change):
    X, y = small_xy
    params = ridge_params()
    folder = tmp_path / "cache"
    cross_validate("ridge", params, X, y, cache=FeatureCache(folder, 2**30))
    edited = X.copy()
    edited.loc[edited.index[0], "GrLivArea"] += 100  # a training row of every other fold
    other, data, cache = params, X, FeatureCache(folder, 2**30)
    if change == "features":
        other = ridge_params(scaling="minmax")
    elif change == "seed":
        other = parse_params({**params.model_dump(mode="json"), "seed": 7})
    elif change == "rows":
        data = edited
    else:
        cache = FeatureCache(folder, 2**30, version="another version of the code")
    result = cross_validate("ridge", other, data, y, cache=cache)
    assert len(entries(cache)) == 6
    assert same_result(result, cross_validate("ridge", other, data, y))


def test_the_code_version_follows_the_source_and_the_thread_cap(tmp_path, monkeypatch):
    (tmp_path / "module.py").write_text("A = 1\n")
    monkeypatch.setattr(feature_cache, "PACKAGE", tmp_path)
    before = code_version()
    assert code_version() == before
    (tmp_path / "module.py").write_text("A = 2\n")
    assert code_version() != before
    changed = code_version()
    monkeypatch.setattr(feature_cache, "current_thread_cap", lambda: 64)
    assert code_version() != changed


def test_a_hit_makes_an_entry_recent_and_the_least_recent_go_beyond_the_limit(small_xy, tmp_path):
    X, y = small_xy
    params = ridge_params()
    folder = tmp_path / "cache"
    cross_validate("ridge", params, X, y, cache=FeatureCache(folder, 2**30))
    old = [path.name for path in sorted(entries(FeatureCache(folder, 2**30)))]
    for path in entries(FeatureCache(folder, 2**30)):
        os.utime(path, (1_000_000, 1_000_000))
    cross_validate("ridge", params, X, y, cache=FeatureCache(folder, 2**30))  # three hits
    assert all(path.stat().st_mtime > 1_000_000 for path in entries(FeatureCache(folder, 2**30)))

    sizes = [(folder / name).stat().st_size for name in old]
    for age, name in enumerate(old):  # the first name is now the least recently used
        os.utime(folder / name, (1_000_000 + age, 1_000_000 + age))
    limit = int(sum(sizes) + 1.5 * max(sizes))  # the three old entries and one and a half more
    tight = FeatureCache(folder, limit)
    cross_validate("ridge", ridge_params(scaling="minmax"), X, y, cache=tight)  # three new entries
    kept = {path.name for path in entries(tight)}
    assert len(kept) == 4 and sum(path.stat().st_size for path in entries(tight)) <= limit
    assert kept & set(old) == {old[2]}  # the two least recently used went


def test_a_damaged_entry_is_computed_again_and_replaced(small_xy, tmp_path, count_fits):
    X, y = small_xy
    params = ridge_params()
    cache = FeatureCache(tmp_path / "cache", 2**30)
    first = cross_validate("ridge", params, X, y, cache=cache)
    damaged = entries(cache)[0]
    damaged.write_bytes(b"not a pickle")
    again = cross_validate("ridge", params, X, y, cache=cache)
    assert len(count_fits) == 3 + 1
    assert same_result(again, first)
    with open(damaged, "rb") as file:
        assert isinstance(pickle.load(file), feature_cache.FoldFeatures)


def test_a_cache_that_cannot_be_written_costs_time_not_a_result(small_xy, tmp_path, count_fits):
    X, y = small_xy
    params = ridge_params()
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder should be")
    result = cross_validate("ridge", params, X, y, cache=FeatureCache(blocked, 2**30))
    assert same_result(result, cross_validate("ridge", params, X, y))
    assert blocked.read_text() == "a file where the folder should be"


def test_the_train_stage_keeps_the_cache_in_its_workspace_unless_turned_off(tmp_path, monkeypatch):
    from houseprices.evaluation.feature_cache import fold_cache

    monkeypatch.chdir(tmp_path)
    cache = fold_cache(parse_params({}).resources)
    assert cache.folder == tmp_path.resolve() / ".cache" / "fold_features"
    assert cache.max_bytes == 512 * 2**20
    assert fold_cache(parse_params({"resources": {"fold_cache_mb": 0}}).resources) is None
