"""Wall time of every stage of a forced `dvc repro`, split by where it goes, and the total.

Usage: python bench/pipeline_time.py [--repo DIR] [extra dvc repro args...]
       python bench/pipeline_time.py --per-stage

Runs `dvc repro -f` in the repository root (or ``--repo DIR``, with ``DIR/src`` first on
PYTHONPATH and ``DIR/.venv`` first on PATH if it has one, as in ``loop_time.py``: another
checkout, for a before/after comparison) with ``$HOUSEPRICES_TIMING`` set: a checkout that has
``houseprices/util/timing.py`` (before the Lighter change; now a profiler such as py-spy shows where
a stage's time goes) has each stage's process report its sections; others give walls only. One
line per stage: its wall time as DVC runs it, then

- ``dvc``: DVC's own work around the command (hashing deps and outs, the lock file), and the
  process's exit after it reported (the interpreter's teardown, which it cannot time itself);
- ``startup``: interpreter start and imports until the stage's code runs;
- ``fit``: the models' cross-validation, refits and predictions (the ensemble's combiner choice);
- ``tracking``: MLflow (store, runs, params, metrics, artifacts, model logging);
- ``figures``: PNGs drawn for MLflow;
- ``io``: reading and writing the stage's files (models unpickled included);
- ``other``: the rest of the stage's own computing (featurize's report, the ensemble's scoring).

``--per-stage`` runs each stage of `dvc stage list` on its own (`dvc repro -f -s`) and
also prints the CPU seconds it used (user + system, its processes together) and the load
average: on a shared machine the wall time swings with the other jobs, the CPU seconds of
these one-thread stages much less, and on an idle machine they are about the wall time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loop_time import checkout_env  # bench/ is this script's folder

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ("dvc", "startup", "fit", "tracking", "figures", "io", "other")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_stage() -> int:
    names = subprocess.run(
        ["dvc", "stage", "list", "--name-only"],
        cwd=ROOT,
        env=checkout_env(ROOT),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    wall_total = cpu_total = 0.0
    for name in names:
        start, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run(
            ["dvc", "repro", "-f", "-s", name], cwd=ROOT, env=checkout_env(ROOT), capture_output=True, text=True
        )
        wall, used = time.perf_counter() - start, _children_cpu() - cpu
        wall_total, cpu_total = wall_total + wall, cpu_total + used
        print(f"{name:24s} {wall:7.1f} s wall {used:7.1f} s cpu   load {os.getloadavg()[0]:.1f}", flush=True)
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return proc.returncode
    print(f"{'total':24s} {wall_total:7.1f} s wall {cpu_total:7.1f} s cpu")
    return 0


def stage_walls(cmd: list[str], root: Path, env: dict) -> tuple[list[tuple[str, float]], float, int, str]:
    """(stage, seconds) in the order DVC ran them, the total, the exit code and the log's tail."""
    start = last = time.perf_counter()
    stage, timings, tail = None, [], []
    with subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            tail = [*tail[-40:], line]
            if line.startswith("Running stage '"):
                now = time.perf_counter()
                if stage:
                    timings.append((stage, now - last))
                stage, last = line.split("'")[1], now
    end = time.perf_counter()
    if stage:
        timings.append((stage, end - last))
    return timings, end - start, proc.returncode, "".join(tail)


def split_row(wall: float, report: dict | None) -> dict[str, float]:
    """A stage's wall time split into SPLIT; without a report, all of it is "dvc"."""
    if report is None:
        return {"dvc": wall}
    return {"dvc": wall - report["wall"], **{k: report.get(k, 0.0) for k in SPLIT[1:]}}


def timed_repro(root: Path, extra: list[str]) -> tuple[list[tuple[str, float, dict]], float, int]:
    """``dvc repro -f`` in ``root``: per stage its wall time and split, the total, the exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "timing.jsonl"
        walls, total, code, tail = stage_walls(
            ["dvc", "repro", "-f", *extra], root, checkout_env(root, HOUSEPRICES_TIMING=str(log))
        )
        reports = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    if code:
        print(tail)
    if len(reports) != len(walls):  # a checkout without the timing sections: walls only
        reports = [None] * len(walls)
    return [(name, wall, split_row(wall, rep)) for (name, wall), rep in zip(walls, reports, strict=True)], total, code


def print_table(rows: list[tuple[str, float, dict]], total: float) -> None:
    print(f"{'stage':18s} {'wall':>6s} " + " ".join(f"{k:>8s}" for k in SPLIT))
    sums = dict.fromkeys(SPLIT, 0.0)
    for name, wall, split in rows:
        print(f"{name:18s} {wall:6.1f} " + " ".join(f"{split.get(k, 0.0):8.1f}" for k in SPLIT))
        for k in SPLIT:
            sums[k] += split.get(k, 0.0)
    print(f"{'total':18s} {total:6.1f} " + " ".join(f"{sums[k]:8.1f}" for k in SPLIT))


def main(argv: list[str]) -> int:
    if argv == ["--per-stage"]:
        return per_stage()
    root = ROOT
    if argv[:1] == ["--repo"]:
        root, argv = Path(argv[1]).resolve(), argv[2:]
    rows, total, code = timed_repro(root, argv)
    print_table(rows, total)
    print(f"exit {code}   cpu {_children_cpu():.1f} s   load {os.getloadavg()[0]:.1f}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
