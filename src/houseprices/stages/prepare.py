"""Stage ``prepare``: verify and validate the raw CSVs, split off the log-price target."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from houseprices.config.params import Params
from houseprices.data.checksums import verify_checksums
from houseprices.data.schema import ID
from houseprices.data.validation import read_inputs, split_target, warn_unseen_categories
from houseprices.paths import PREPARED
from houseprices.util.files import write_parquet

logger = logging.getLogger(__name__)


def run(params: Params, out_dir: Path = PREPARED) -> None:
    data = params.data
    if data.verify_checksums:
        verify_checksums(data.checksums, [data.train, data.test, data.sample_submission])
    # Both files are validated before anything is written, so a bad test.csv never
    # leaves a fresh X_train beside a stale X_test.
    train, test = read_inputs(data.train, data.test, data.sample_submission, data.price_range)
    warn_unseen_categories(train, test, str(data.test))
    X, y = split_target(train)
    write_parquet(out_dir / "X_train.parquet", X)
    write_parquet(out_dir / "y_train.parquet", pd.DataFrame({ID: X[ID], "log_price": y}))
    write_parquet(out_dir / "X_test.parquet", test)
    logger.info("prepared %d training and %d test rows in %s", len(X), len(test), out_dir)
