"""Inputs for the MLP only: a Gaussian-rank transform of the numbers, category codes for entity embeddings."""

from __future__ import annotations

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, QuantileTransformer


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
