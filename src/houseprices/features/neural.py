"""Inputs for the MLP only: a Gaussian-rank transform of the numbers, category codes for entity embeddings."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, QuantileTransformer


def _replace_step(preprocessor: Pipeline, part: str, step: str, *new_steps) -> ColumnTransformer:
    """The ``columns`` step, its ``part`` pipeline's ``step`` dropped and ``new_steps`` appended."""
    columns = preprocessor.named_steps["columns"]
    transformers = [
        (name, Pipeline([*(s for s in trans.steps if s[0] != step), *new_steps]) if name == part else trans, cols)
        for name, trans, cols in columns.transformers
    ]
    return columns.set_params(transformers=transformers)


def gaussian_rank(preprocessor: Pipeline, seed: int) -> Pipeline:
    """Replace the numeric columns' scaler with a quantile transform to a standard normal,
    fit on the training rows (ranks, so skew and outlying values stop mattering)."""
    ranks = QuantileTransformer(n_quantiles=500, output_distribution="normal", subsample=None, random_state=seed)
    _replace_step(preprocessor, "num", "scale", ("scale", ranks))
    return preprocessor


# Column-name prefix of the category-code columns that ``category_codes`` makes.
CODE_PREFIX = "cat__"


def _shift(codes):
    return codes + 1.0


def category_codes(preprocessor: Pipeline) -> Pipeline:
    """Replace the categorical columns' one-hot encoding with one integer code per column
    (0: unknown or missing at fit; rarer than ``min_frequency``: one shared code), fit on
    the training rows, and output a frame so the net finds them by name (``CODE_PREFIX``)."""
    encode = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=-1,
        encoded_missing_value=-1,
        min_frequency=preprocessor.get_params()["columns__cat__onehot__min_frequency"],
    )
    shift = FunctionTransformer(_shift, feature_names_out="one-to-one")
    _replace_step(preprocessor, "cat", "onehot", ("encode", encode), ("shift", shift)).set_output(transform="pandas")
    return preprocessor
