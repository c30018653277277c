"""The validated frames ``prepare`` writes and every later stage reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from houseprices.data.schema import ID
from houseprices.errors import DataError
from houseprices.paths import PREPARED
from houseprices.util.files import read_parquet


def load_prepared(prepared: Path = PREPARED) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Training features, log-price target and test features written by ``prepare``."""
    names = ("X_train.parquet", "y_train.parquet", "X_test.parquet")
    missing = [p for p in names if not (prepared / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{prepared}: missing {missing}; run `houseprices prepare` (or `dvc repro`) first")
    X, y, X_test = (read_parquet(prepared / name) for name in names)
    if len(X) != len(y) or not (y[ID].to_numpy() == X[ID].to_numpy()).all():
        raise DataError(
            f"{prepared}: X_train and y_train rows are not aligned by {ID}; "
            "run `houseprices prepare` (or `dvc repro`) again"
        )
    return X, y["log_price"], X_test
