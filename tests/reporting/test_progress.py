"""Fold progress: k/N, elapsed and ETA; a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd

from houseprices.evaluation.cross_validation import FoldOutcome
from houseprices.evaluation.folds import Fold
from houseprices.reporting.progress import FoldProgress, duration


def outcome(position: int, total: int, seconds: float = 4.25) -> FoldOutcome:
    fold = Fold(0, position - 1, np.arange(3), np.arange(3))
    return FoldOutcome(fold, position, total, 0.123456, seconds, pd.DataFrame())


def test_durations_are_rounded_for_reading():
    assert [duration(s) for s in (0.04, 4.25, 37.4, 125, 3725)] == ["0.0s", "4.2s", "37s", "2m05s", "1h02m"]


def test_log_line_has_k_of_n_elapsed_and_eta(caplog):
    progress = FoldProgress("train mlp", 4, stream=io.StringIO())
    assert progress.bar is None  # not a terminal
    line = progress.line(outcome(1, 4), elapsed=10.0)
    assert line == "train mlp: fold 1/4 (r1f1) log-RMSE 0.1235 in 4.2s; elapsed 10s, ETA 30s"
    with caplog.at_level(logging.INFO, logger="houseprices.reporting.progress"):
        progress.update(outcome(2, 4))
    assert "fold 2/4 (r1f2)" in caplog.text


def test_terminal_gets_a_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with FoldProgress("train mlp", 2, stream=stream) as progress:
        assert progress.bar is not None
        progress.update(outcome(1, 2))
        progress.update(outcome(2, 2))
    text = stream.getvalue()
    assert "train mlp" in text and "2/2" in text and "r1f2 log-RMSE 0.1235" in text
