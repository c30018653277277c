"""Progress of folds and trials: k/N, elapsed and ETA; a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

from houseprices.reporting.progress import Progress, duration


def test_durations_are_rounded_for_reading():
    assert [duration(s) for s in (0.04, 4.25, 37.4, 125, 3725)] == ["0.0s", "4.2s", "37s", "2m05s", "1h02m"]


def test_log_line_has_k_of_n_elapsed_and_eta(caplog):
    progress = Progress("train mlp", 4, "fold", stream=io.StringIO())
    assert progress.bar is None  # not a terminal
    with caplog.at_level(logging.INFO, logger="houseprices.reporting.progress"):
        progress.update("fold 1/4 (r1f1) log-RMSE 0.1235 in 4.2s", "r1f1 log-RMSE 0.1235")
    assert progress.line("fold 1/4 (r1f1) log-RMSE 0.1235 in 4.2s", elapsed=10.0) == (
        "train mlp: fold 1/4 (r1f1) log-RMSE 0.1235 in 4.2s; elapsed 10s, ETA 30s"
    )
    assert "train mlp: fold 1/4 (r1f1)" in caplog.text and "ETA" in caplog.text


def test_terminal_gets_a_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with Progress("train mlp", 2, "fold", stream=stream) as progress:
        assert progress.bar is not None
        progress.update("fold 1/2", "r1f1 log-RMSE 0.1235")
        progress.update("fold 2/2", "r1f2 log-RMSE 0.1235")
    text = stream.getvalue()
    assert "train mlp" in text and "2/2" in text and "r1f2 log-RMSE 0.1235" in text
