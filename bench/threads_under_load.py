"""The MLP member's cross-validation (one repeat) idle and beside two busy processes.

Three measurements in one run, each in a fresh process with a user's default
environment (no *_NUM_THREADS set):
  bounded idle    threads from `resources.threads` (default 1)
  bounded loaded  the same beside two busy processes this script starts and stops
  old idle        the old default: torch/BLAS/OpenMP unbounded, nothing else running

Target: loaded / idle <= 3 (11.8x before, issue 13); bounded idle no slower than old idle.

    python bench/threads_under_load.py                 # the committed params, cv.repeats=1
    python bench/threads_under_load.py --epochs 20     # quicker, same comparison
    python bench/threads_under_load.py --busy blas     # busy processes doing matrix products
    python bench/threads_under_load.py --old-loaded    # also the old default under load (slow)
    python bench/threads_under_load.py --rounds 3      # medians of 3 interleaved rounds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
mode, epochs = sys.argv[1], int(sys.argv[2])
from houseprices.config.params import load_params
from houseprices.util.threads import limit_threads, resolve_threads
params = load_params("params.yaml")
threads = "unbounded"
if mode == "bounded":
    threads, _ = resolve_threads(params.resources.threads)
    limit_threads(threads)
import torch
threads = f"{threads} (torch {torch.get_num_threads()})"
from houseprices.data.prepared import load_prepared
from houseprices.evaluation.cross_validation import cross_validate
update = {"epochs": epochs} if epochs else {}
params = params.model_copy(update={"cv": params.cv.model_copy(update={"repeats": 1}),
                                   "models": {"mlp": params.models["mlp"].model_copy(update=update)}})
X, y, _ = load_prepared()
start = time.perf_counter()
result = cross_validate("mlp", params, X, y)
print(json.dumps({"seconds": time.perf_counter() - start, "threads": threads, "cv": result.mean}))
"""

SPIN = "while True: pass"
BLAS = "import numpy as np\na = np.random.rand(800, 800)\nwhile True: a @ a"


def user_env() -> dict:
    """A user's shell: no thread caps (this repo's dev shells set them to 1)."""
    drop = (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "HOUSEPRICES_THREADS",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def train(mode: str, epochs: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(epochs)],
        cwd=ROOT,
        env=user_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def loaded(mode: str, epochs: int, busy: str) -> dict:
    code = BLAS if busy == "blas" else SPIN
    hogs = [subprocess.Popen([sys.executable, "-c", code], env=user_env()) for _ in range(2)]
    try:
        time.sleep(1.0)
        return train(mode, epochs)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def median(results: list[dict]) -> dict:
    return sorted(results, key=lambda r: r["seconds"])[len(results) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=0, help="MLP epochs (0: as in params.yaml)")
    parser.add_argument("--busy", choices=["spin", "blas"], default="spin")
    parser.add_argument("--old-loaded", action="store_true", help="also time the old default under load")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions; medians are shown")
    args = parser.parse_args()
    if not (ROOT / "data/prepared/X_train.parquet").is_file():
        sys.exit("run `houseprices prepare` first")
    runs = {"idle": [], "busy": [], "old": []}
    for _ in range(args.rounds):  # interleaved: a shared machine's background load drifts
        runs["idle"].append(train("bounded", args.epochs))
        runs["busy"].append(loaded("bounded", args.epochs, args.busy))
        runs["old"].append(train("old", args.epochs))
    rows = [
        ("bounded", "idle", median(runs["idle"])),
        ("bounded", f"2 busy ({args.busy})", median(runs["busy"])),
        ("old default", "idle", median(runs["old"])),
    ]
    if args.old_loaded:
        rows.append(("old default", f"2 busy ({args.busy})", loaded("old", args.epochs, args.busy)))
    print(f"cores available: {len(os.sched_getaffinity(0))}")
    print(f"{'threads':<12} {'machine':<16} {'seconds':>8}  {'cv log-rmse':>11}  threads used")
    for mode, load, r in rows:
        print(f"{mode:<12} {load:<16} {r['seconds']:8.1f}  {r['cv']:11.6f}  {r['threads']}")
    idle, busy, old = rows[0][2]["seconds"], rows[1][2]["seconds"], rows[2][2]["seconds"]
    print(f"loaded / idle (bounded): {busy / idle:.2f}x  (target <= 3x; 11.8x before)")
    print(f"idle bounded / idle old default: {idle / old:.2f}  (target <= 1, noise aside)")


if __name__ == "__main__":
    main()
