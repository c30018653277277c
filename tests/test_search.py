import math

import numpy as np
import pytest

from houseprices.config import Choice, FloatRange, parse_params
from houseprices.errors import ConfigError
from houseprices.search import best_trial, narrow, random_search, sample


def test_log_ranges_are_sampled_log_uniformly():
    rng = np.random.default_rng(0)
    space = {"lr": FloatRange(low=1e-5, high=1e-1, log=True)}
    values = np.array([sample(space, rng)["lr"] for _ in range(2000)])
    assert values.min() >= 1e-5 and values.max() <= 1e-1
    # Each decade gets about a quarter of the draws (uniform sampling would put ~90% in the top one).
    share_low = np.mean(values < 1e-4)
    assert 0.18 < share_low < 0.32


def test_narrowing_stays_inside_the_original_range_and_around_the_best():
    space = {"lr": FloatRange(low=1e-5, high=1e-1, log=True), "h": Choice(choices=[1, 2, 3])}
    fine = narrow(space, [{"lr": 1e-3, "h": 2}, {"lr": 2e-3, "h": 2}])
    assert 1e-5 <= fine["lr"].low < 1e-3 and 2e-3 < fine["lr"].high <= 1e-1
    assert fine["lr"].high / fine["lr"].low < 1e4 / 10  # narrower than the 4 decades
    assert fine["h"].choices == [2]


def test_search_space_keys_must_be_model_params():
    with pytest.raises(ConfigError, match=r"search.ridge.space: \['alhpa'\]"):
        parse_params({"models": {"ridge": {"kind": "ridge"}},
                      "search": {"ridge": {"space": {"alhpa": {"low": 1, "high": 2}}}}})


def search_params(n_jobs: int):
    return parse_params({
        "models": {"ridge": {"kind": "ridge"}}, "cv": {"folds": 2, "repeats": 1},
        "search": {"ridge": {"trials": 3, "rounds": 2, "top_k": 2, "n_jobs": n_jobs,
                             "space": {"alpha": {"low": 0.1, "high": 100.0, "log": True}}}},
    })


def test_result_does_not_depend_on_n_jobs(small_xy):
    X, y = small_xy
    serial = random_search(search_params(1), "ridge", X, y)
    parallel = random_search(search_params(2), "ridge", X, y)
    assert [(t.params, t.cv_mean) for t in serial] == [(t.params, t.cv_mean) for t in parallel]
    assert len(serial) == 6 and {t.round for t in serial} == {1, 2}
    best = best_trial(serial)
    assert best.cv_mean == min(t.cv_mean for t in serial) and math.isfinite(best.cv_mean)
