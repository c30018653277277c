"""Progress of a long loop (a model's CV folds, a search's trials): k/N, elapsed time and ETA.

A tqdm bar when stderr is a terminal; one log line per step otherwise (``dvc repro`` captures
output, CI logs have no cursor), so nothing floods a log file.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

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


class Progress:
    """Reports each finished step of ``total`` (``unit``: fold, trial)."""

    def __init__(self, label: str, total: int, unit: str, *, stream=None):
        stream = stream if stream is not None else sys.stderr
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()
        terminal = getattr(stream, "isatty", lambda: False)()
        self.bar = tqdm(total=total, desc=label, unit=unit, file=stream, dynamic_ncols=True) if terminal else None

    def line(self, what: str, elapsed: float) -> str:
        eta = elapsed / max(self.done, 1) * (self.total - self.done)
        return f"{self.label}: {what}; elapsed {duration(elapsed)}, ETA {duration(eta)}"

    def update(self, what: str, postfix: str) -> None:
        """One more step done: ``what`` for a log line, ``postfix`` beside the bar."""
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(1)
        else:
            logger.info(self.line(what, time.perf_counter() - self.started))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
