import numpy as np
import pytest

from houseprices.evaluation.ensemble import (
    PriceModel,
    choose_method,
    conformal_halfwidth,
    fit_combiner,
    nested_coverage,
    nested_score,
)
from houseprices.evaluation.folds import log_rmse, make_folds


@pytest.fixture()
def members():
    rng = np.random.default_rng(0)
    y = rng.normal(12, 0.4, 400)
    good = y + rng.normal(0, 0.05, 400)
    bad = y + rng.normal(0, 0.3, 400)
    other = y + rng.normal(0, 0.08, 400)
    return np.stack([good, bad, other])[:, None, :], y  # (members, repeats, rows)


def test_nnls_weights_are_non_negative_and_sum_to_one(members):
    oof, y = members
    combiner = fit_combiner("nnls", oof[:, 0, :].T, y)
    assert (combiner.weights >= 0).all()
    assert combiner.weights.sum() == pytest.approx(1.0)
    assert combiner.weights[0] > combiner.weights[1]


def test_stacking_has_an_intercept_and_mean_weights_are_equal(members):
    oof, y = members
    assert fit_combiner("mean", oof[:, 0, :].T, y).weights.tolist() == [1 / 3] * 3
    P = oof[:, 0, :].T + 5.0  # every member 5 log units too high: only an intercept undoes it
    stack = fit_combiner("stacking", P, y)
    assert stack.intercept < -4.0
    assert log_rmse(y, stack.predict(P)) < 0.06  # through the origin it would be ~0.12


def test_nested_score_never_fits_weights_on_the_scored_fold(members, monkeypatch):
    oof, y = members
    folds = make_folds(len(y), 4, 1, seed=0)
    import houseprices.evaluation.ensemble as ens

    seen = []
    real = ens.fit_combiner

    def spy(method, P, target, **kw):
        seen.append(len(target))
        return real(method, P, target, **kw)

    monkeypatch.setattr(ens, "fit_combiner", spy)
    score = nested_score("nnls", oof, y, folds)
    assert seen == [len(f.train) for f in folds]
    assert np.isfinite(score.oof).all() and len(score.fold_scores) == 4


def test_auto_picks_the_best_nested_method(members):
    oof, y = members
    best, scores = choose_method("auto", oof, y, make_folds(len(y), 4, 1, seed=0))
    assert set(scores) == {"mean", "nnls", "stacking", "greedy"}
    assert scores[best].mean == min(s.mean for s in scores.values())
    assert best != "mean"  # one member is much worse: plain averaging should lose


def test_conformal_intervals_reach_nominal_coverage(members):
    oof, y = members
    folds = make_folds(len(y), 5, 1, seed=0)
    pred = oof[0]
    for level in (0.8, 0.95):
        assert abs(nested_coverage(pred, y, folds, level) - level) < 0.04
    assert conformal_halfwidth(np.array([0.1, -0.2, 0.3, -0.4]), 0.5) == pytest.approx(0.3)


def test_price_model_returns_dollars_from_weighted_logs():
    class Const:
        def __init__(self, v):
            self.v = v

        def predict(self, X):
            return np.full(len(X), self.v)

    model = PriceModel({"a": Const(np.log(100.0)), "b": Const(np.log(400.0))}, {"a": 0.5, "b": 0.5})
    np.testing.assert_allclose(model.predict(np.zeros((2, 1))), [200.0, 200.0])
