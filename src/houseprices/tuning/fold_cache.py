"""Each CV fold's fitted preprocessing, kept in a search worker and reused by later trials.

A search trial changes model params (learning rate, weight decay, dropout, hidden sizes)
that leave the preprocessing as it was, yet refitting it (target statistics, skew,
scaling, one-hot) and transforming the validation rows is a large share of an MLP
fold. :class:`PreprocessCache` keeps, per fold, what the fitted preprocessing made of the
fold's training rows (``fit_transform``: cross-fitted target statistics included) and of
its validation rows, keyed by a hash of the unfitted preprocessing (every param, nested
steps included) and of the rows themselves. A changed preprocessing param, seed, outlier
rule or row is a different key; a hit returns the arrays a refit would produce (the fit
is deterministic), so a trial scores exactly as without the cache.

In memory, per process (each worker has its own), least recently used entries dropped.
"""

from __future__ import annotations

from collections import OrderedDict

import joblib
import numpy as np
import pandas as pd

from houseprices.config.params import Params
from houseprices.evaluation.cross_validation import fit_model, fold_features, predict_finite
from houseprices.evaluation.feature_cache import FoldFeatures, preprocessed
from houseprices.evaluation.folds import Fold
from houseprices.evaluation.outliers import outlier_mask
from houseprices.models.registry import build_estimator


def _read_only(features: object) -> object:
    """Shared between trials: a model that wrote into its input would corrupt the next trial."""
    if isinstance(features, np.ndarray):
        features.flags.writeable = False
    return features


class PreprocessCache:
    """Fitted preprocessing output per (preprocessing params, fold rows); see the module doc."""

    def __init__(self, *, max_entries: int = 32):
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, FoldFeatures] = OrderedDict()

    def features(
        self, preprocess, X_train: pd.DataFrame, y_train: pd.Series, X_valid: pd.DataFrame, X_test, rows_key: str
    ) -> FoldFeatures:
        """The fold's model inputs: from the cache, or ``preprocess`` (unfitted) fit on the
        training rows now (as :class:`~houseprices.evaluation.feature_cache.FeatureCache` does).
        ``rows_key`` identifies the row sets (a hash of them); a search has no test rows."""
        key = joblib.hash((preprocess, rows_key))  # unfitted: its params, nested steps included
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found
        self.misses += 1
        fitted = preprocessed(preprocess, X_train, y_train, X_valid, X_test)
        found = FoldFeatures(_read_only(fitted.train), _read_only(fitted.valid), _read_only(fitted.test))
        self._entries[key] = found
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return found


def fold_predictions(
    name: str,
    params: Params,
    X: pd.DataFrame,
    y: pd.Series,
    fold: Fold,
    cache: PreprocessCache,
    data_key: str,
    where: str,
) -> np.ndarray:
    """What ``cross_validate`` predicts for the fold's validation rows (same
    outlier rule, estimator and seed), with the preprocessing served by ``cache``.
    ``data_key`` identifies ``X`` and ``y`` (a hash of both)."""
    X_train, y_train = X.iloc[fold.train], y.iloc[fold.train]
    keep = outlier_mask(X_train, y_train, params.features.outliers)
    estimator = build_estimator(params.model(name), params.features, params.seed)
    features = fold_features(cache, estimator[:-1], X, y, fold, keep, data_key)
    model = fit_model(name, estimator[-1], features.train, y_train[keep], where)
    return predict_finite(model, features.valid, name, where)
