"""The experiment loop's figures, before and after, side by side: checkouts timed in turns.

Usage: python bench/loop_time.py [--repeats N] [--repro] DIR [DIR...]

Each DIR is a checkout of this repository whose pipeline has run once (``dvc repro``);
its own ``src`` goes first on PYTHONPATH, and its own ``.venv`` (``make repro`` made one) first
on PATH, else this interpreter's: a change to the dependencies is compared too. Per repeat
and checkout, in turns (so the checkouts see about the same load on a shared machine), it times

- ``houseprices ensemble`` and ``houseprices submission`` alone;
- ``dvc exp run -S models.lasso.alpha=<a new value>`` (a value never run, so DVC's run cache
  has no answer; the folds' features do come from the fold cache, as in a user's loop), named
  ``loop-time-<n>`` and removed again afterwards;
- with ``--repro``, a forced ``dvc repro -f`` (every stage runs; the folds' preprocessing output
  comes from ``.cache/fold_features/`` where a checkout has that cache and earlier runs filled it).

and prints each figure's median per checkout (wall seconds; the CPU seconds of the
processes, steadier on a loaded machine, in brackets). params.yaml and dvc.lock are put
back with the uncached outputs (metrics, plots, the submission CSVs), and the cached ones
checked out again, at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FIGURES = ("ensemble", "submission", "exp run lasso", "repro -f")


def checkout_env(root: Path, **extra: str) -> dict:
    """The environment a command in checkout ``root`` runs with: its ``src`` first on
    PYTHONPATH, its own ``.venv`` (else this interpreter's) first on PATH."""
    own = root / ".venv" / "bin"
    path = f"{own if own.is_dir() else Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return dict(os.environ, PATH=path, PYTHONPATH=str(root / "src"), **extra)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], root: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of ``cmd`` run in ``root``; fails loudly if it fails."""
    start, cpu = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, cwd=root, env=checkout_env(root), capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{root}: {' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, _cpu() - cpu


def outputs(root: Path) -> dict[str, bytes]:
    """params.yaml, dvc.lock and the outputs DVC does not cache (metrics, plots, the CSVs), to put back."""
    names = ["params.yaml", "dvc.lock", "submission.csv", "predictions_with_intervals.csv"]
    for folder in ("metrics", "plots"):
        names += [str(p.relative_to(root)) for p in (root / folder).rglob("*") if p.is_file()]
    return {name: (root / name).read_bytes() for name in names if (root / name).is_file()}


def one_round(root: Path, n: int, repro: bool) -> dict[str, tuple[float, float]]:
    alpha = f"models.lasso.alpha={0.0005 + n % 100000 * 1e-10:.10f}"  # new each time, near the default
    out = {
        "ensemble": timed(["houseprices", "ensemble"], root),
        "submission": timed(["houseprices", "submission"], root),
        "exp run lasso": timed(["dvc", "exp", "run", "-n", f"loop-time-{n}", "-S", alpha], root),
    }
    if repro:
        out["repro -f"] = timed(["dvc", "repro", "-f"], root)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repro", action="store_true", help="also a forced `dvc repro -f` per round")
    args = parser.parse_args()
    roots = [d.resolve() for d in args.dirs]
    saved = {root: outputs(root) for root in roots}
    results: dict[Path, list[dict]] = {root: [] for root in roots}
    names = []
    try:
        for rep in range(args.repeats):
            for i, root in enumerate(roots):
                n = int(time.time()) % 100000 * 10 + i
                names.append((root, f"loop-time-{n}"))
                results[root].append(one_round(root, n, args.repro))
                print(f"round {rep + 1} {root.name}: {results[root][-1]}", flush=True)
    finally:
        for root in roots:
            for name, data in saved[root].items():
                (root / name).write_bytes(data)
            subprocess.run(["dvc", "checkout", "-f", "-q"], cwd=root, env=checkout_env(root))
        for root, name in names:
            subprocess.run(["dvc", "exp", "remove", name], cwd=root, env=checkout_env(root), capture_output=True)
    print(f"{'median of ' + str(args.repeats):16s}" + "".join(f"{r.name:>26s}" for r in roots))
    for figure in FIGURES:
        if figure not in results[roots[0]][0]:
            continue
        cells = []
        for root in roots:
            wall = statistics.median(r[figure][0] for r in results[root])
            cpu = statistics.median(r[figure][1] for r in results[root])
            cells.append(f"{wall:8.1f} s ({cpu:5.1f} s cpu)")
        print(f"{figure:16s}" + "".join(f"{c:>26s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
