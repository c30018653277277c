"""What a fitted estimator learned, to compare two fits (shared by the feature and member tests)."""

from __future__ import annotations

import copy

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline


def learned_state(est, prefix: str = "") -> dict:
    """Every fitted attribute (name ending in "_") of every step, nested estimators included."""
    state: dict = {}
    if isinstance(est, Pipeline):
        for name, step in est.steps:
            state |= learned_state(step, f"{prefix}{name}/")
        return state
    if isinstance(est, ColumnTransformer):
        for name, trans, cols in est.transformers_:
            state[f"{prefix}{name}/columns"] = list(cols) if not isinstance(cols, str) else cols
            if not isinstance(trans, str):
                state |= learned_state(trans, f"{prefix}{name}/")
        return state
    for key, value in vars(est).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, BaseEstimator):
                state |= learned_state(value, f"{prefix}{key}/")
            else:
                state[prefix + key] = copy.deepcopy(value)
    return state
