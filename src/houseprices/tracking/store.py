"""Where runs go: the repository a stage belongs to, the store's URI, and whether it answers."""

from __future__ import annotations

import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from houseprices.errors import TrackingError
from houseprices.tracking.tags import EXPERIMENT_TAGS
from houseprices.util.locks import created_once

T = TypeVar("T")
# What a process that lost the race to create a database schema sees (PostgreSQL, MySQL).
CREATION_RACE = ("already exists", "duplicate", "migration", "unique")

EXPERIMENT_COPY = (".dvc", "tmp", "exps")


def _copy_index(parts: tuple[str, ...]) -> int | None:
    """Index of ``.dvc/tmp/exps`` in a path, or None."""
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == EXPERIMENT_COPY:
            return i
    return None


def repo_root(start: Path | None = None) -> Path:
    """The main repository root, also when DVC runs us in a temporary experiment copy
    (it sets DVC_ROOT to the copy; the copy's git common dir points at the original)."""
    if os.environ.get("DVC_ROOT"):
        root = Path(os.environ["DVC_ROOT"]).resolve()
    else:
        here = (start or Path.cwd()).resolve()
        root = next((p for p in (here, *here.parents) if (p / "dvc.yaml").is_file()), here)
    return _main_worktree(root)


def _main_worktree(root: Path) -> Path:
    """Queued DVC experiments run in a temporary copy under ``<repo>/.dvc/tmp/exps``;
    their runs belong in the main repo's store, not in the copy."""
    marker = os.environ.get("HOUSEPRICES_REPO_ROOT")
    if marker:
        return Path(marker).resolve()
    index = _copy_index(root.parts)
    return Path(*root.parts[:index]) if index is not None else root


def in_workspace(cwd: Path | None = None) -> bool:
    """True when the stage writes the repository's own outputs (``dvc repro`` or a
    ``dvc exp run`` in the workspace), False inside a queued or ``--temp`` experiment's
    copy under ``.dvc/tmp/exps``, whose outputs reach the workspace only if applied."""
    paths = [(cwd or Path.cwd()).resolve()]
    if os.environ.get("DVC_ROOT"):
        paths.append(Path(os.environ["DVC_ROOT"]).resolve())
    return all(_copy_index(p.parts) is None for p in paths)


def tracking_uri(configured: str = "", root: Path | None = None) -> str:
    """params ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else the repo's SQLite store."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (seconds, not a hang) when the store at ``uri`` cannot be used."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:  # noqa: S310 - http(s) only
                if resp.status >= 400:
                    raise TrackingError(f"MLflow tracking server {uri} answered HTTP {resp.status}")
        except (OSError, ValueError) as err:
            raise TrackingError(f"MLflow tracking server {uri} is unreachable: {err}") from None
    elif parsed.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///").removeprefix("sqlite://"))
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
            raise TrackingError(f"MLflow store {uri}: directory {path.parent} is missing or not writable")
    elif parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise TrackingError(f"MLflow store {uri} is not writable")


def ensure_experiment(client: MlflowClient, uri: str, name: str, root: Path) -> str:
    """The experiment's id, created on first use with the tags MLflow's UI reads; a SQLite
    store keeps artifacts beside it (``<repo>/mlruns``), not inside a DVC temp copy."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        label_experiment(client, exp)
        return exp.experiment_id
    location = (root / "mlruns").resolve().as_uri() if uri.startswith("sqlite:") else None
    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except MlflowException:
        # Workers started together on a fresh store: another one created it since we looked.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def opened_once(uri: str, open_store: Callable[[], T]) -> T:
    """``open_store()``, which may create the store's schema, when processes start together on
    a new store: a SQLite file is created by one while the others wait on a lock beside it; on
    a server the losers of the race to create tables retry and find them."""
    if uri.startswith("sqlite:///"):
        with created_once(uri.removeprefix("sqlite:///")):
            return open_store()
    for attempt in range(4):
        try:
            return open_store()
        except Exception as err:
            if attempt == 3 or not any(needle in str(err).lower() for needle in CREATION_RACE):
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def label_experiment(client: MlflowClient, exp) -> None:
    """Give an experiment created before its UI tags were set (or by hand) the tags it lacks,
    so MLflow's UI opens it on its training runs."""
    for key, value in EXPERIMENT_TAGS.items():
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
