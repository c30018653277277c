"""Progress of a training stage, fold by fold: k/N, elapsed time and ETA.

A tqdm bar when stderr is a terminal; one log line per fold otherwise (``dvc repro``
captures output, CI logs have no cursor), so nothing floods a log file.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from houseprices.evaluation.cross_validation import FoldOutcome

logger = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """4.2s, 37s, 2m05s, 1h02m: rounded to what a reader can use."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class FoldProgress:
    """Reports each finished fold of one model's cross-validation."""

    def __init__(self, label: str, total: int, *, stream=None, bar: bool | None = None):
        stream = stream if stream is not None else sys.stderr
        self.label = label
        self.total = total
        self.started = time.perf_counter()
        use_bar = bar if bar is not None else bool(getattr(stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, desc=label, unit="fold", file=stream, dynamic_ncols=True) if use_bar else None

    def line(self, outcome: FoldOutcome, elapsed: float) -> str:
        left = outcome.total - outcome.position
        eta = elapsed / outcome.position * left
        return (
            f"{self.label}: fold {outcome.position}/{outcome.total} ({outcome.fold.label}) "
            f"log-RMSE {outcome.score:.4f} in {duration(outcome.seconds)}; "
            f"elapsed {duration(elapsed)}, ETA {duration(eta)}"
        )

    def update(self, outcome: FoldOutcome) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{outcome.fold.label} log-RMSE {outcome.score:.4f}", refresh=False)
            self.bar.update(1)
        else:
            logger.info(self.line(outcome, time.perf_counter() - self.started))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> FoldProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
