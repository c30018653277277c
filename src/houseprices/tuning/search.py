"""Hyperparameter search on Optuna: one study per model and objective, in an RDB storage.

Every worker (any number, on any machine) runs the same command against the same storage
and shares the study; Optuna's heartbeat marks the trial of a killed worker FAIL. Each
trial runs the model's cross-validation fold by fold on the pipeline's folds and reports
the running mean log-RMSE, so a pruner can stop a hopeless trial after any fold.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from statistics import fmean

import optuna
import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from houseprices.config.params import Params, parse_params, with_model_overrides
from houseprices.config.search import Choice, PrunerConfig, SearchConfig, SearchFile
from houseprices.errors import ConfigError, DependencyTimeoutError, HousePricesError
from houseprices.evaluation.cross_validation import fit_fold, fold_task
from houseprices.evaluation.feature_cache import fold_cache
from houseprices.tracking.tracker import Tracker
from houseprices.util.database import bound_database_waits, created_by_one, hung_server
from houseprices.util.files import write_text

STORAGE_ENV = "HOUSEPRICES_OPTUNA_STORAGE"
DEFAULT_STORAGE = Path("search/optuna.db")
WORKER_ATTR = "worker"  # trial user attribute: host:pid of the worker that ran it
STATE_TAG = "optuna.state"  # a trial run's end: complete, pruned or failed


class StorageError(HousePricesError, RuntimeError):
    """The Optuna storage cannot be opened; the message names its URL (password hidden)."""


def storage_url(option: str | None, search: SearchFile, root: Path) -> str:
    """``--storage``, else ``$HOUSEPRICES_OPTUNA_STORAGE``, else ``storage:`` in search.yaml,
    else the SQLite file ``search/optuna.db`` beside search.yaml."""
    url = option or os.environ.get(STORAGE_ENV) or search.storage
    if url:
        return url
    path = (root / DEFAULT_STORAGE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs and MLflow."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without credentials anyway
        return url.split("@")[-1]


def _sqlite_file(url: str) -> str | None:
    """The database file of an ``sqlite:///`` URL; None for other URLs and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: no SQLite file
        return None
    in_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    return parsed.database if in_file else None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: no fsync per commit, still crash-safe
    cursor.close()


def _use_wal(path: str) -> None:
    """Write-ahead logging on the SQLite file (persistent, the mode SQLite advises for several
    processes on one machine): readers do not block the writer, and a commit costs no fsync
    (a trial makes dozens). Only an OS crash or power cut can lose the last commits, never the
    file; this is a search history, not the source of truth."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _new_storage(url: str, search: SearchFile, kwargs: dict, sqlite_file: str | None) -> optuna.storages.RDBStorage:
    if sqlite_file:
        _use_wal(sqlite_file)
    storage = optuna.storages.RDBStorage(
        url,
        engine_kwargs=kwargs,
        grace_period=search.grace_period,
        heartbeat_interval=search.heartbeat_interval,
    )
    if sqlite_file:
        from sqlalchemy import event

        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened so far lack the pragma
    return storage


def open_storage(url: str, search: SearchFile) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats: a trial whose worker stops beating for
    ``grace_period`` seconds is marked FAIL by the next worker that looks. A SQLite file
    is used in WAL mode (see :func:`_use_wal`)."""
    sqlite_file = _sqlite_file(url)
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    bound_database_waits()
    try:
        return created_by_one(sqlite_file, lambda: _new_storage(url, search, kwargs, sqlite_file))
    except DependencyTimeoutError:
        raise
    except Exception as err:  # noqa: BLE001 - bad URL, missing driver, server down: one line, not a traceback
        if hung_server():
            raise DependencyTimeoutError(hung_server()) from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(f"Optuna storage {safe_url(url)}: {first}") from None


def objective_hash(params: Params, name: str, cfg: SearchConfig) -> str:
    """Short hash of what a trial's score depends on besides the sampled values: the space,
    the model's other params, features, folds and seed. A change starts a new study;
    applying a result (which only changes searched keys) keeps the study."""
    fixed = {k: v for k, v in params.model(name).model_dump(mode="json").items() if k not in cfg.space}
    spec = {
        "space": {k: v.model_dump(mode="json") for k, v in sorted(cfg.space.items())},
        "model": fixed,
        "features": params.features.model_dump(mode="json"),
        "cv": params.cv.model_dump(mode="json"),
        "seed": params.seed,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]


def study_name(params: Params, name: str, cfg: SearchConfig) -> str:
    return f"{name}-{objective_hash(params, name, cfg)}"


def make_sampler(cfg: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    """Random search (log ranges sampled log-uniformly) or TPE, seeded."""
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg: PrunerConfig) -> optuna.pruners.BasePruner:
    if cfg.kind == "none":
        return optuna.pruners.NopPruner()
    if cfg.kind == "hyperband":  # max_resource: the folds of the first complete trial
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource="auto", reduction_factor=cfg.reduction_factor
        )
    if cfg.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=cfg.reduction_factor)
    if cfg.kind == "percentile":
        return optuna.pruners.PercentilePruner(
            cfg.percentile, n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_folds
        )
    return optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_folds)


def worker_seed(seed: int, worker: int, trials_so_far: int) -> int:
    """One worker on a fresh study is reproducible from ``seed``; a resumed study does not
    replay its first trials (offset by the trials it holds); workers with distinct
    ``--worker`` ids draw different sequences."""
    return seed + trials_so_far + 100_003 * worker


def load_study(
    storage: optuna.storages.BaseStorage, name: str, cfg: SearchConfig, seed: int, worker: int = 0
) -> optuna.Study:
    """Create the study or join it (other workers may be creating it at the same time)."""
    sampler = make_sampler(cfg, seed)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="minimize",
        load_if_exists=True,
        sampler=sampler,
        pruner=make_pruner(cfg.pruner),
    )
    held = len(study.get_trials(deepcopy=False))
    if held or worker:
        study.sampler = make_sampler(cfg, worker_seed(seed, worker, held))
    return study


def _encode(value: object) -> object:
    """Optuna categorical choices are scalars; lists (hidden sizes) travel as JSON text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def decode_params(space: dict, values: dict) -> dict:
    """A trial's params (as Optuna stores them) back as model params."""
    out = {}
    for key, value in values.items():
        dist = space.get(key)
        if isinstance(dist, Choice) and isinstance(value, str) and value not in dist.choices:
            value = json.loads(value)
        out[key] = value
    return out


def suggest(trial: optuna.Trial, space: dict) -> dict:
    values = {}
    for key, dist in sorted(space.items()):
        if isinstance(dist, Choice):
            values[key] = trial.suggest_categorical(key, [_encode(c) for c in dist.choices])
        elif dist.integer:
            values[key] = trial.suggest_int(key, int(dist.low), int(dist.high), log=dist.log)
        else:
            values[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.log)
    return decode_params(space, values)


def fold_scores(params: Params, name: str, X: pd.DataFrame, y: pd.Series, cache=None) -> Iterator[float]:
    """The log-RMSE of each fold of the pipeline's CV, one at a time, fit as ``train`` fits it;
    with ``cache``, each fold's preprocessing output is reused when its params and rows are those
    of an earlier trial or run (same scores, see :mod:`houseprices.evaluation.feature_cache`)."""
    task = fold_task(name, params, X, y, cache=cache)
    return (fit_fold(task, index).score for index in range(len(task.folds)))


def make_objective(
    params: Params, name: str, space: dict, X: pd.DataFrame, y: pd.Series, tracker=None, search_run=None
) -> Callable[[optuna.Trial], float]:
    """The trial's CV mean log-RMSE; reports the running mean after every fold and raises
    ``optuna.TrialPruned`` when the pruner says so (a pruned trial has no result).

    Each trial is an MLflow child of ``search_run`` (``tracker`` None: nothing logged): its params
    logged when it starts (a killed worker's run still shows them), its fold scores, state and CV
    mean in one batch when it ends (each store write is a commit; a pruned trial is often one
    fold long); a pruned trial's run finishes as an ordinary end."""
    tracker = tracker or Tracker(params)  # without a client: off
    worker = f"{socket.gethostname()}:{os.getpid()}"
    task = fold_task(name, params, X, y, cache=fold_cache(params.resources))  # the trials share the cache

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        trial.set_user_attr(WORKER_ATTR, worker)
        trial_task = dataclasses.replace(task, params=with_model_overrides(params, name, values, "search.yaml"))
        scores, state, pruned = [], "failed", None
        run_params = {**values, "optuna.trial_number": trial.number}
        with tracker.run(f"{name} trial {trial.number}", "trial", run_params, parent=search_run) as run:
            try:
                for step in range(len(trial_task.folds)):
                    scores.append(fit_fold(trial_task, step).score)
                    trial.report(fmean(scores), step)
                    if trial.should_prune():
                        state = "pruned"
                        pruned = optuna.TrialPruned(f"pruned after fold {step + 1}: running CV {fmean(scores):.5f}")
                        break
                else:
                    state = "complete"
            finally:
                folds = [("fold_log_rmse", score, step) for step, score in enumerate(scores)]
                cv = [("cv_log_rmse", fmean(scores), 0)] if state == "complete" else []
                run.log_steps([*folds, *cv], tags={STATE_TAG: state})
        if pruned is not None:
            raise pruned
        return fmean(scores)

    return objective


def best_params(study: optuna.Study, space: dict) -> tuple[optuna.trial.FrozenTrial, dict]:
    """The best complete trial and its params as model params."""
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(f"study {study.study_name!r} has no complete trial yet; run some first") from None
    return best, decode_params(space, best.params)


def finished(study: optuna.Study) -> dict[str, int]:
    """Trial counts by state, for the progress line and the final summary."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def _represent_null(representer, _data):
    """``null`` as written in params.yaml (ruamel's default writes nothing)."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def apply_to_params(params_file: Path, name: str, values: dict) -> list[tuple[str, object, object]]:
    """Write ``values`` into ``models.<name>`` of ``params_file`` the way ``dvc exp run -S``
    would (a round trip: comments, order and the other keys stay as they are), after
    checking that the result is still valid params. Returns (key, old, new) per change."""
    rt = YAML()  # round-trip mode
    rt.preserve_quotes = True
    rt.representer.add_representer(type(None), _represent_null)
    text = params_file.read_text()
    doc = rt.load(text)
    current = parse_params(YAML(typ="safe").load(text), str(params_file)).model(name).model_dump(mode="json")
    model = doc["models"][name]
    changes = []
    for key, value in sorted(values.items()):
        old = current[key]  # the value in effect, a default when the key is absent
        if old == value:
            continue
        if isinstance(value, list):
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()
            value = seq
        model[key] = value
        changes.append((f"models.{name}.{key}", old, values[key]))
    if changes:
        out = StringIO()
        rt.dump(doc, out)
        parse_params(YAML(typ="safe").load(out.getvalue()), f"{params_file} with the search result")
        write_text(params_file, out.getvalue())
    return changes
