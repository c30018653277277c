"""Nets trained from several seeds on the same rows, averaged (``n_seeds``)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted


class SeedAverage(RegressorMixin, BaseEstimator):
    """``n_seeds`` clones of ``estimator``, each with its own ``random_state`` (init,
    dropout, batch order), fit on the same rows; ``predict`` averages them. Averaging
    removes the part of each net's error that depends on its seed."""

    def __init__(self, estimator=None, *, n_seeds=3, random_state=0):
        self.estimator = estimator
        self.n_seeds = n_seeds
        self.random_state = random_state

    def fit(self, X, y):
        seeds = np.random.default_rng(self.random_state).integers(0, 2**31 - 1, self.n_seeds)
        self.estimators_ = [clone(self.estimator).set_params(random_state=int(s)).fit(X, y) for s in seeds]
        return self

    def predict(self, X):
        check_is_fitted(self, "estimators_")
        return np.mean([np.asarray(e.predict(X), dtype=np.float64).reshape(-1) for e in self.estimators_], axis=0)


def seed_average(net, n_seeds: int, seed: int):
    """The net itself for one seed (its learning curves kept), else a :class:`SeedAverage`."""
    return net if n_seeds <= 1 else SeedAverage(net, n_seeds=n_seeds, random_state=seed)
