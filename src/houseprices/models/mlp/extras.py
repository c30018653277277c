"""MLP options beyond the net itself: averaging nets trained from several seeds, a
Gaussian-rank input transform, and category codes for entity embeddings. Each is a param
of ``models.<name>`` (kind mlp)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, QuantileTransformer
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


def gaussian_rank(preprocessor: Pipeline, seed: int) -> Pipeline:
    """Replace the numeric columns' scaler with a quantile transform to a standard normal,
    fit on the training rows (ranks, so skew and outlying values stop mattering)."""
    steps = dict(preprocessor.steps)
    columns = steps["columns"]
    transformers = []
    for name, trans, cols in columns.transformers:
        if name == "num":
            trans = Pipeline(
                [
                    *(s for s in trans.steps if s[0] != "scale"),
                    (
                        "scale",
                        QuantileTransformer(
                            n_quantiles=500, output_distribution="normal", subsample=None, random_state=seed
                        ),
                    ),
                ]
            )
        transformers.append((name, trans, cols))
    columns.set_params(transformers=transformers)
    return preprocessor


# Column-name prefix of the category-code columns that ``category_codes`` makes.
CODE_PREFIX = "cat__"


def _shift(codes):
    return codes + 1.0


def category_codes(preprocessor: Pipeline) -> Pipeline:
    """Replace the categorical columns' one-hot encoding with one integer code per column
    (0: unknown or missing at fit; rarer than ``min_frequency``: one shared code), fit on
    the training rows, and output a frame so the net finds them by name (``CODE_PREFIX``)."""
    columns = dict(preprocessor.steps)["columns"]
    transformers = []
    for name, trans, cols in columns.transformers:
        if name == "cat":
            onehot = trans.named_steps["onehot"]
            encode = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                encoded_missing_value=-1,
                min_frequency=onehot.min_frequency,
            )
            trans = Pipeline(
                [
                    *(s for s in trans.steps if s[0] != "onehot"),
                    ("encode", encode),
                    ("shift", FunctionTransformer(_shift, feature_names_out="one-to-one")),
                ]
            )
        transformers.append((name, trans, cols))
    columns.set_params(transformers=transformers)
    columns.set_output(transform="pandas")
    return preprocessor
