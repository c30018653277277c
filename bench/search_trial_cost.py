"""Where a search trial's time goes besides training the nets, measured side by side.

(1) Each fold's preprocessing refit per trial vs served by the fold cache
    (``houseprices.evaluation.feature_cache``, on disk in a temporary folder): the same trials
    (sampled from search.yaml's mlp space), alternately without and with the cache; seconds per
    fold, and the scores must be equal.
(2) Optuna's bookkeeping of a trial (ask, 4 params, a fold report and prune check, tell) on a
    SQLite study opened as Optuna does by default vs as ``open_storage`` opens it (WAL).

    .venv/bin/python bench/search_trial_cost.py [--trials 4] [--epochs 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import optuna
import yaml

from houseprices.config.params import parse_params, with_model_overrides
from houseprices.config.search import SearchFile, load_search
from houseprices.data.prepared import load_prepared
from houseprices.evaluation.feature_cache import FeatureCache
from houseprices.tuning.search import fold_scores, open_storage, suggest
from houseprices.util.threads import limit_threads

ROOT = Path(__file__).resolve().parents[1]


def sampled_values(space: dict, n: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [suggest(study.ask(), space) for _ in range(n)]


def preprocessing_cache(args) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["cv"] = {"folds": 5, "repeats": 1}
    raw["models"]["mlp"]["epochs"] = args.epochs
    params = parse_params(raw, "params.yaml")
    _, cfg = load_search(ROOT / "search.yaml", params, "mlp")
    X, y, _ = load_prepared(ROOT / "data/prepared")
    folder = tempfile.TemporaryDirectory(prefix="fold-cache-")
    cache = FeatureCache(Path(folder.name), 2**30)
    list(fold_scores(params, "mlp", X, y, cache))  # a first trial fills it
    plain = cached = 0.0
    for values in sampled_values(cfg.space, args.trials):
        trial = with_model_overrides(params, "mlp", values, "bench")
        start = time.perf_counter()
        expected = list(fold_scores(trial, "mlp", X, y))
        plain += time.perf_counter() - start
        start = time.perf_counter()
        got = list(fold_scores(trial, "mlp", X, y, cache))
        cached += time.perf_counter() - start
        assert got == expected, (values, got, expected)
    folds = args.trials * 5
    print(
        f"(1) mlp, {args.epochs} epochs, {args.trials} trials x 5 folds: {plain / folds:.3f} s per fold refitting "
        f"the preprocessing, {cached / folds:.3f} s cached ({plain / cached:.2f}x; scores equal)"
    )
    folder.cleanup()


def bookkeeping(url: str, storage, n: int) -> float:
    study = optuna.create_study(
        storage=storage,
        study_name="b",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1),
    )
    space = load_search(ROOT / "search.yaml", parse_params(yaml.safe_load((ROOT / "params.yaml").read_text())), "mlp")[
        1
    ].space
    start = time.perf_counter()
    for i in range(n):
        trial = study.ask()
        suggest(trial, space)
        trial.report(float(i % 3), 0)
        trial.should_prune()
        study.tell(trial, float(i % 3))
    return (time.perf_counter() - start) / n


def storage_cost(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="trial-cost-") as tmp:
        default_url = f"sqlite:///{Path(tmp) / 'default.db'}"
        wal_url = f"sqlite:///{Path(tmp) / 'wal.db'}"
        plain = bookkeeping(default_url, optuna.storages.RDBStorage(default_url), n)
        wal = bookkeeping(wal_url, open_storage(wal_url, SearchFile.model_validate({"models": {}})), n)
    print(
        f"(2) Optuna bookkeeping per trial on SQLite ({n} trials): {plain * 1000:.0f} ms Optuna's default, "
        f"{wal * 1000:.0f} ms in WAL mode"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    limit_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")  # experimental heartbeat outside optimize(): expected here
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    storage_cost(20)
    preprocessing_cache(args)


if __name__ == "__main__":
    main()
