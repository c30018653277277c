"""Wall time of every stage of a forced `dvc repro`, and the total.

Usage: python bench/pipeline_time.py [extra dvc repro args...]
       python bench/pipeline_time.py --per-stage

Runs `dvc repro -f` in the repository root (the venv's bin first on PATH) and prints one
line per stage; the timings include each stage's process start-up and MLflow logging.

``--per-stage`` runs each stage of `dvc stage list` on its own (`dvc repro -f -s`) and
also prints the CPU seconds it used (user + system, its processes together) and the load
average: on a shared machine the wall time swings with the other jobs, the CPU seconds of
these one-thread stages much less, and on an idle machine they are about the wall time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_stage() -> int:
    names = subprocess.run(
        ["dvc", "stage", "list", "--name-only"], cwd=ROOT, env=_env(), check=True, capture_output=True, text=True
    ).stdout.split()
    wall_total = cpu_total = 0.0
    for name in names:
        start, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run(["dvc", "repro", "-f", "-s", name], cwd=ROOT, env=_env(), capture_output=True, text=True)
        wall, used = time.perf_counter() - start, _children_cpu() - cpu
        wall_total, cpu_total = wall_total + wall, cpu_total + used
        print(f"{name:24s} {wall:7.1f} s wall {used:7.1f} s cpu   load {os.getloadavg()[0]:.1f}", flush=True)
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return proc.returncode
    print(f"{'total':24s} {wall_total:7.1f} s wall {cpu_total:7.1f} s cpu")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--per-stage"]:
        return per_stage()
    cmd = ["dvc", "repro", "-f", *sys.argv[1:]]
    start = last = time.perf_counter()
    stage, timings = None, []
    with subprocess.Popen(
        cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
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
    print(f"{'total':24s} {end - start:7.1f} s   (exit {proc.returncode})   cpu {_children_cpu():.1f} s")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
