"""Wall time of every stage of a forced `dvc repro`, and the total.

Usage: python bench/pipeline_time.py [extra dvc repro args...]
Runs `dvc repro -f` in the repository root (the venv's bin first on PATH) and prints one
line per stage; the timings include each stage's process start-up and MLflow logging.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = ["dvc", "repro", "-f", *sys.argv[1:]]
    start = last = time.perf_counter()
    stage, timings = None, []
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            if line.startswith("Running stage '"):
                now = time.perf_counter()
                if stage:
                    timings.append((stage, now - last))
                stage, last = line.split("'")[1], now
    end = time.perf_counter()
    if stage:
        timings.append((stage, end - last))
    for name, seconds in timings:
        print(f"{name:24s} {seconds:7.1f} s")
    print(f"{'total':24s} {end - start:7.1f} s   (exit {proc.returncode})")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
