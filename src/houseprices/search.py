"""Random hyperparameter search, coarse to fine (the training lecture's recipe).

Scale parameters are sampled log-uniformly; later rounds narrow every range around the
best trials so far. All trials are sampled up front from the seed and each trial runs
single-threaded, so the result does not depend on ``n_jobs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .config import Choice, FloatRange, Params, SearchConfig, with_model_overrides
from .errors import TrainingError
from .training import cross_validate


@dataclass(frozen=True)
class Trial:
    round: int
    index: int
    params: dict
    cv_mean: float = math.nan
    cv_std: float = math.nan
    seconds: float = math.nan


def _to_python(value):
    return value.item() if isinstance(value, np.generic) else value


def sample(space: dict[str, FloatRange | Choice], rng: np.random.Generator) -> dict:
    point = {}
    for name, dist in sorted(space.items()):
        if isinstance(dist, Choice):
            point[name] = dist.choices[int(rng.integers(len(dist.choices)))]
            continue
        if dist.log:
            value = float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
        else:
            value = float(rng.uniform(dist.low, dist.high))
        if dist.integer:
            value = int(round(value))
        else:
            value = float(f"{value:.4g}")  # readable params, same bytes every run
        point[name] = _to_python(value)
    return point


def narrow(space: dict[str, FloatRange | Choice], best: list[dict]) -> dict[str, FloatRange | Choice]:
    """Shrink each range to the span of the best trials, widened by half a span (in
    log space for log ranges), never beyond the original range; keep the chosen choices."""
    narrowed: dict[str, FloatRange | Choice] = {}
    for name, dist in space.items():
        values = [t[name] for t in best]
        if isinstance(dist, Choice):
            kept = [c for c in dist.choices if c in values]
            narrowed[name] = Choice(choices=kept or dist.choices)
            continue
        fwd = math.log if dist.log else (lambda v: v)
        inv = math.exp if dist.log else (lambda v: v)
        lo, hi = fwd(min(values)), fwd(max(values))
        pad = max((hi - lo) / 2, (fwd(dist.high) - fwd(dist.low)) / 10)
        new_lo, new_hi = max(fwd(dist.low), lo - pad), min(fwd(dist.high), hi + pad)
        narrowed[name] = FloatRange(low=inv(new_lo), high=inv(new_hi), log=dist.log, integer=dist.integer)
    return narrowed


def _run_trial(params: Params, name: str, trial: Trial, X, y) -> Trial:
    import time

    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        with threadpool_limits(1):
            result = cross_validate(name, with_model_overrides(params, name, trial.params, "search"), X, y)
    except TrainingError:  # a diverging corner of the space scores as the worst trial
        return Trial(trial.round, trial.index, trial.params, math.inf, math.inf, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return Trial(trial.round, trial.index, trial.params, result.mean, result.std, time.perf_counter() - start)


def random_search(params: Params, name: str, X: pd.DataFrame, y: pd.Series,
                  n_jobs: int | None = None, on_trial=None) -> list[Trial]:
    """Every trial, in order; the best is ``min(trials, key=cv_mean)``."""
    cfg: SearchConfig = params.search[name]
    rng = np.random.default_rng(params.seed)
    space = cfg.space
    trials: list[Trial] = []
    for round_ in range(1, cfg.rounds + 1):
        if trials:
            best = sorted(trials, key=lambda t: (t.cv_mean, t.index))[:cfg.top_k]
            space = narrow(space, [t.params for t in best])
        pending = [Trial(round_, len(trials) + i, sample(space, rng)) for i in range(cfg.trials)]
        done = Parallel(n_jobs=n_jobs or cfg.n_jobs)(
            delayed(_run_trial)(params, name, t, X, y) for t in pending)
        for trial in done:
            if on_trial:
                on_trial(trial)
        trials.extend(done)
    return trials


def best_trial(trials: list[Trial]) -> Trial:
    return min(trials, key=lambda t: (t.cv_mean, t.index))
