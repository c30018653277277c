"""Greedy (Caruana) selection, cross-validated stacking, the evidence-based choice of
test predictions, and the leaderboard."""

from __future__ import annotations

import json

import numpy as np
import pytest

from houseprices.evaluation.ensemble import (
    BAGGING_MIN_GAIN,
    Combiner,
    choose_method,
    choose_test_predictions,
    fit_combiner,
    greedy_weights,
)
from houseprices.evaluation.folds import make_folds
from houseprices.reporting.leaderboard import leaderboard, to_markdown


@pytest.fixture()
def members():
    rng = np.random.default_rng(0)
    y = rng.normal(12, 0.4, 400)
    good = y + rng.normal(0, 0.05, 400)
    bad = y + rng.normal(0, 1.0, 400)  # optimal weight ~0.002: below one greedy step (1/40)
    other = y + rng.normal(0, 0.08, 400)
    return np.stack([good, bad, other]), y


def test_greedy_starts_from_the_best_member_and_ignores_a_useless_one(members):
    P, y = members
    w = greedy_weights(P.T, y, steps=1)
    assert w.tolist() == [1.0, 0.0, 0.0]
    w = greedy_weights(P.T, y)
    assert w[1] == 0.0 and w[0] > w[2] > 0.0  # independent errors: the second-best is added
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert fit_combiner("greedy", P.T, y).weights.tolist() == w.tolist()


def test_greedy_adds_a_member_again_when_that_helps_most(members):
    P, y = members
    dup = np.vstack([P[0], P[0] + 0.0, P[1]])  # two copies of the best: ties go to the first
    w = greedy_weights(dup.T, y)
    assert w[1] == 0.0 and w[0] == 1.0


def test_stacking_penalty_is_cross_validated(members):
    P, y = members
    stack = fit_combiner("stacking", P.T, y)
    assert stack.weights[0] > stack.weights[2] > abs(stack.weights[1])
    # An enormous penalty would shrink every weight to ~0; the chosen one keeps the signal.
    assert stack.weights.sum() > 0.8


def test_auto_considers_greedy(members):
    P, y = members
    best, scores = choose_method("auto", P[:, None, :], y, make_folds(len(y), 4, 1, seed=0))
    assert set(scores) == {"mean", "nnls", "stacking", "greedy"}
    assert scores[best].mean == min(s.mean for s in scores.values())


def test_fold_average_is_chosen_when_averaging_repeats_pays(members):
    _, y = members
    rng = np.random.default_rng(1)
    noisy = np.stack([y + rng.normal(0, 0.2, len(y)) for _ in range(3)])[None]  # seed noise: averaging helps
    stable = np.stack([y + 0.05 * np.sin(y)] * 3)[None]  # identical repeats: nothing to gain
    one = Combiner(np.array([1.0]))
    source, evidence = choose_test_predictions("auto", noisy, y, one)
    assert source == "fold_average" and evidence["bagging_gain"] > BAGGING_MIN_GAIN
    assert choose_test_predictions("auto", stable, y, one)[0] == "refit"
    assert choose_test_predictions("auto", noisy[:, :1], y, one)[0] == "refit"  # one repeat: no evidence
    assert choose_test_predictions("refit", noisy, y, one)[0] == "refit"


def test_leaderboard_sorts_members_and_ensemble_with_times(tmp_path):
    times = {
        "a": {"cv_seconds": 30.0, "fit_seconds": 2.0, "predict_seconds": 0.1},
        "b": {"cv_seconds": 10.0, "fit_seconds": 0.5, "predict_seconds": 0.05},
    }
    report = {
        "members": {
            "a": {"cv_log_rmse_mean": 0.125, "cv_log_rmse_std": 0.01, "cv_log_rmse_excl_outliers": 0.11},
            "b": {"cv_log_rmse_mean": 0.120, "cv_log_rmse_std": 0.02, "cv_log_rmse_excl_outliers": 0.10},
        },
        "weights": {"a": 0.4, "b": 0.6},
    }
    headline = {
        "method": "greedy",
        "cv_log_rmse_mean": 0.115,
        "cv_log_rmse_std": 0.015,
        "cv_log_rmse_excl_outliers": 0.099,
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "ensemble.json").write_text(json.dumps(headline))
    board = leaderboard(tmp_path / "report.json", tmp_path / "ensemble.json", times)
    assert board["model"].tolist() == ["ensemble (greedy)", "b", "a"]
    assert board.loc[0, "fit_s"] == pytest.approx(2.5) and board.loc[2, "predict_s"] == pytest.approx(0.1)
    text = to_markdown(board)
    assert "| ensemble (greedy) | 0.1150 | 0.0150 | 0.0990 |" in text
