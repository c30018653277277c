"""How much the skorch MLP costs over a minimal hand-written PyTorch loop.

Trains the same MLP (same module class, same optimizer and settings, same epochs and
batch size, reshuffled every epoch) on the real preprocessed training matrix, through the
project's ``build_mlp`` net, through skorch's own ``NeuralNetRegressor`` with the same batch
iterator (what skorch's loop costs without this project's subclass and callbacks), and
through a bare loop over tensors already in memory. It prints the median time of each and
the median ratios to the bare loop, one ratio per interleaved set: on a shared machine a
fit's time swings up to 2x between repeats, while the fits of one set see about the same
load, so their ratio is the steadier figure. The sets come from several fresh processes,
pooled: one process's median alone swung 1.08-1.32 between runs.

    .venv/bin/python bench/train_speed.py                 # batch sizes 64 and 256
    .venv/bin/python bench/train_speed.py --processes 1   # one process, the data's shape printed
    .venv/bin/python bench/train_speed.py --profile 64    # cProfile the skorch fit
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNetRegressor

from houseprices.config.models import MLPConfig
from houseprices.config.params import FeaturesConfig
from houseprices.data.validation import read_csv, split_target
from houseprices.features.pipelines import build_preprocessor
from houseprices.models.mlp.factory import build_mlp, torch_optimizer
from houseprices.models.mlp.modules import MLP
from houseprices.models.mlp.regressor import TensorBatches

ROOT = Path(__file__).resolve().parents[1]


def load_matrix(seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    X, y = split_target(read_csv(ROOT / "data" / "raw" / "train.csv", is_train=True))
    Xp = build_preprocessor(FeaturesConfig(), seed).fit_transform(X, y)
    return np.ascontiguousarray(Xp, dtype=np.float32), y.to_numpy(dtype=np.float64)


def config(batch_size: int, epochs: int) -> MLPConfig:
    # fit_plain's loop: ReLU, MSE, a constant rate, no weight averaging (spelled out: the
    # defaults are params.yaml's; its swa_fraction 0.8 adds a weight average each epoch).
    return MLPConfig(
        hidden=[128],
        activation="relu",
        optimizer="adamw",
        lr=1e-3,
        weight_decay=10.0,
        lr_schedule="none",
        loss="mse",
        swa_fraction=0.0,
        epochs=epochs,
        batch_size=batch_size,
    )


def standardised(y: np.ndarray) -> np.ndarray:
    """The unit-scale target the project's regressor learns on, for the arms that get it given."""
    return ((y - y.mean()) / y.std()).astype(np.float32).reshape(-1, 1)


def fit_skorch(cfg: MLPConfig, X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    net = build_mlp(cfg, seed)
    start = time.perf_counter()
    net.fit(X, y)
    return time.perf_counter() - start


def fit_skorch_itself(cfg: MLPConfig, X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """skorch's regressor as it comes, on the standardised target, with only the batch iterator
    (``iterator_train``) and what fit_plain has: no validation split, no callbacks of ours."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    z = standardised(y)
    optimizer_cls, kwargs = torch_optimizer(cfg)
    net = NeuralNetRegressor(
        MLP,
        module__n_inputs=X.shape[1],
        module__n_outputs=1,
        module__hidden=tuple(cfg.hidden),
        module__activation=cfg.activation,
        module__init=cfg.init,
        criterion=torch.nn.MSELoss,
        optimizer=optimizer_cls,
        lr=cfg.lr,
        **{f"optimizer__{k}": v for k, v in kwargs.items()},
        max_epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        iterator_train=TensorBatches,
        iterator_train__shuffle=True,
        iterator_valid=TensorBatches,
        train_split=None,
        verbose=0,
    )
    net.fit(X, z)
    return time.perf_counter() - start


def fit_plain(cfg: MLPConfig, X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """The floor: what the same training costs with no framework at all."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    z = standardised(y)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(z)
    module = MLP(n_inputs=X.shape[1], n_outputs=1, hidden=tuple(cfg.hidden), activation=cfg.activation, init=cfg.init)
    optimizer_cls, kwargs = torch_optimizer(cfg)
    optimizer = optimizer_cls(module.parameters(), lr=cfg.lr, **kwargs)
    criterion = torch.nn.MSELoss()
    module.train()
    n, bs = len(Xt), cfg.batch_size
    for _ in range(cfg.epochs):
        order = torch.randperm(n)
        Xs, ys = Xt[order], yt[order]
        for i in range(0, n, bs):
            optimizer.zero_grad()
            loss = criterion(module(Xs[i : i + bs]), ys[i : i + bs])
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


ARMS = {"skorch": fit_skorch, "skorch itself": fit_skorch_itself, "plain torch": fit_plain}


def measure(X: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per fit of every arm, ``repeats`` interleaved sets after one warm-up set."""
    cfg = config(batch_size, epochs)
    times: dict[str, list[float]] = {name: [] for name in ARMS}
    names = list(ARMS)
    for repeat in range(repeats + 1):  # interleaved, so load changes hit all alike
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:  # each arm first in turn
            gc.collect()  # each fit pays for its own garbage, not an earlier arm's
            seconds = ARMS[name](cfg, X, y)
            if repeat:  # the first set warms up
                times[name].append(seconds)
    return times


def in_processes(args) -> dict[int, list[dict[str, list[float]]]]:
    """Each batch size's times from ``--processes`` fresh interpreters, one after another.

    One process's median of 9 sets swung 1.08-1.32 between runs on this machine; the
    median of more sets, from interpreters that each start afresh, swings less."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--epochs",
        str(args.epochs),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        "--batch-sizes",
        *map(str, args.batch_sizes),
    ]
    runs = [
        json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        for _ in range(args.processes)
    ]
    return {bs: [run[str(bs)] for run in runs] for bs in args.batch_sizes}


def ratios(times: dict[str, list[float]], arm: str) -> list[float]:
    return [a / b for a, b in zip(times[arm], times["plain torch"], strict=True)]


def report(batch_size: int, processes: list[dict[str, list[float]]]) -> None:
    pooled = {name: [t for run in processes for t in run[name]] for name in ARMS}
    medians = "  ".join(f"{name} {statistics.median(t):.3f}s" for name, t in pooled.items())
    low, _, high = statistics.quantiles(ratios(pooled, "skorch"), n=4)
    per_process = " ".join(f"{statistics.median(ratios(run, 'skorch')):.2f}" for run in processes)
    print(
        f"batch {batch_size:4d}: {medians}  ratio {statistics.median(ratios(pooled, 'skorch')):.2f} "
        f"(middle half of the sets {low:.2f}-{high:.2f}; per process {per_process}; "
        f"skorch itself {statistics.median(ratios(pooled, 'skorch itself')):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=6, help="interleaved sets per process")
    parser.add_argument("--processes", type=int, default=3, help="fresh interpreters whose sets are pooled")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--profile", type=int, metavar="BATCH_SIZE", help="cProfile one skorch fit at this batch size instead"
    )
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--top", type=int, default=25, help="rows printed by --profile")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one process's times as JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.worker and not args.profile and args.processes > 1:
        print(
            f"{args.epochs} epochs, torch threads {args.threads}, "
            f"{args.processes} processes x {args.repeats} sets, pooled"
        )
        for bs, processes in in_processes(args).items():
            report(bs, processes)
        return

    X, y = load_matrix()
    if args.worker:
        print(json.dumps({bs: measure(X, y, bs, args.epochs, args.repeats) for bs in args.batch_sizes}))
        return
    print(f"data {X.shape[0]}x{X.shape[1]} {X.dtype}, {args.epochs} epochs, torch threads {torch.get_num_threads()}")
    if args.profile:
        cfg = config(args.profile, args.epochs)
        fit_skorch(cfg, X, y)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        fit_skorch(cfg, X, y)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        return
    for bs in args.batch_sizes:
        report(bs, [measure(X, y, bs, args.epochs, args.repeats)])


if __name__ == "__main__":
    main()
