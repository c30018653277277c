"""The timing sections bench/pipeline_time.py reads: exclusive when nested, reported only on request."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from houseprices.util import timing


def test_nested_sections_are_exclusive(monkeypatch):
    monkeypatch.setattr(timing, "_totals", dict.fromkeys(timing.SECTIONS, 0.0))
    with timing.section("fit"):
        time.sleep(0.05)
        with timing.section("tracking"):
            time.sleep(0.1)
    assert timing._totals["tracking"] >= 0.1
    assert 0.05 <= timing._totals["fit"] < 0.14  # the tracking inside is not counted twice


def test_around_charges_entry_and_exit_and_lets_errors_through(monkeypatch):
    monkeypatch.setattr(timing, "_totals", dict.fromkeys(timing.SECTIONS, 0.0))
    exits = []

    class Slow:
        def __enter__(self):
            time.sleep(0.05)
            return "value"

        def __exit__(self, *exc):
            exits.append(exc[0])
            return False

    try:
        with timing.around("tracking", Slow()) as value:
            assert value == "value"
            time.sleep(0.3)
            raise KeyError("inside")
    except KeyError:
        pass
    assert exits == [KeyError]
    assert 0.05 <= timing._totals["tracking"] < 0.3  # entry, not the block inside


def test_a_report_line_only_when_asked(tmp_path):
    target = tmp_path / "timing.jsonl"
    code = "from houseprices.util import timing; timing.start_report('demo')"
    subprocess.run([sys.executable, "-c", code], check=True, env={"HOUSEPRICES_TIMING": str(target)} | _env())
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())
    (line,) = target.read_text().splitlines()
    report = json.loads(line)
    assert report["command"] == "demo"
    assert report["wall"] >= report["startup"] > 0
    assert set(timing.SECTIONS) <= set(report)


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != timing.TIMING_ENV}
