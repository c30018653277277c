"""Stage ``submission``: the ensemble's prices as ``submission.csv`` (validated against
``sample_submission.csv``) and ``predictions_with_intervals.csv`` beside it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from houseprices.config.params import Params
from houseprices.data.schema import ID, TARGET
from houseprices.paths import INTERVALS_FILE, MODELS
from houseprices.submission import build_submission, check_destination, checked_submission
from houseprices.tracking.tracker import Tracker
from houseprices.util.files import read_parquet, write_csv

logger = logging.getLogger(__name__)


def run(params: Params, predictions: Path = MODELS / "ensemble" / "predictions.parquet") -> Path:
    pred = read_parquet(predictions)
    submission = build_submission(pred[ID], np.exp(pred["log_price"]))
    intervals = submission.copy()
    for col in [c for c in pred.columns if c.startswith(("lower_", "upper_"))]:
        intervals[col] = np.exp(pred[col].to_numpy())
    # Every check that can fail (the submission, both destinations, the tracking store)
    # runs before either file is replaced.
    path = params.submission.path
    submission = checked_submission(path, submission, params.data.sample_submission)
    check_destination(path)
    check_destination(INTERVALS_FILE, "the intervals file")
    tracker = Tracker.open(params)
    write_csv(path, submission, float_format="%.2f")
    write_csv(INTERVALS_FILE, intervals, float_format="%.2f")
    with tracker.run("submission", "stage", {"submission.path": str(params.submission.path)}) as run:
        run.log_artifacts([params.submission.path, INTERVALS_FILE], "submission")
        tracker.crown(predictions, params.submission.path)
    logger.info(
        "wrote %s (%d rows; median price %.0f) and %s",
        params.submission.path,
        len(submission),
        float(np.median(submission[TARGET])),
        INTERVALS_FILE,
    )
    return params.submission.path
