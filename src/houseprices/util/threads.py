"""Bounded threads per process.

torch, BLAS and OpenMP each start one thread per core by default; two such processes on
two cores spin against each other. Every entry point calls
:func:`limit_threads` once, before any heavy work.
"""

from __future__ import annotations

import os
import sys

from houseprices.errors import ConfigError

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def limit_threads(n: int) -> int:
    """Cap torch, BLAS and OpenMP at ``n`` threads (0: every available core); returns the cap.

    The environment variables reach child processes (joblib workers, DVC stage commands) and
    libraries this process loads later (torch sizes its pool from ``OMP_NUM_THREADS`` at
    import, so a stage without a net never pays for importing it); threadpoolctl and torch
    cap the pools this process already loaded.
    """
    n = n if n > 0 else available_cores()
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return n


def current_thread_cap() -> int:
    """The threads this process computes with (torch's count, else the BLAS/OpenMP pools'),
    for worker processes to match: a fold's last bits depend on it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info()]
    return max(counts) if counts else available_cores()


THREADS_ENV = "HOUSEPRICES_THREADS"


def resolve_threads(configured: int) -> tuple[int, str]:
    """The thread count for this process and why: ``$HOUSEPRICES_THREADS`` wins over
    ``resources.threads``; 0 means every available core. A param, not a guess from the
    load: BLAS results (ridge) differ in the last bits between thread counts."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        if not raw.isdigit():
            raise ConfigError(f"${THREADS_ENV}={raw!r}: expected a whole number of threads (0: all cores)")
        configured, source = int(raw), f"${THREADS_ENV}"
    else:
        source = "resources.threads"
    if configured > 0:
        return configured, f"{source}={configured}"
    return available_cores(), f"{source}=0: all {available_cores()} cores"


CV_WORKERS_ENV = "HOUSEPRICES_CV_WORKERS"


def resolve_workers(configured: int, threads: int) -> int:
    """Processes that fit CV folds at once: ``$HOUSEPRICES_CV_WORKERS`` wins over
    ``resources.cv_workers``; 0 means as many as the available cores hold at ``threads`` each.
    The folds' numbers do not depend on it."""
    raw = os.environ.get(CV_WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit():
            raise ConfigError(f"${CV_WORKERS_ENV}={raw!r}: expected a whole number of processes (0: one per core)")
        configured = int(raw)
    if configured > 0:
        return configured
    return max(1, available_cores() // max(1, threads))
