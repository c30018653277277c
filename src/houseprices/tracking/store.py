"""Where runs go: the store's URI, whether it answers, and the experiment, created once with
the tags MLflow's UI reads."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from houseprices.errors import TrackingError
from houseprices.paths import repo_root
from houseprices.tracking.failures import sqlite_path
from houseprices.tracking.tags import EXPERIMENT_TAGS


def tracking_uri(configured: str = "", root: Path | None = None) -> str:
    """params ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else the repo's SQLite store."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (seconds, not a hang) when the store at ``uri`` cannot be used."""
    parsed, db = urllib.parse.urlparse(uri), sqlite_path(uri)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:  # noqa: S310 - http(s) only
                if resp.status >= 400:
                    raise TrackingError(f"MLflow tracking server {uri} answered HTTP {resp.status}")
        except (OSError, ValueError) as err:
            raise TrackingError(f"MLflow tracking server {uri} is unreachable: {err}") from None
    elif db is not None and not (db.parent.is_dir() and os.access(db.parent, os.W_OK)):
        raise TrackingError(f"MLflow store {uri}: directory {db.parent} is missing or not writable")
    elif parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise TrackingError(f"MLflow store {uri} is not writable")


def ensure_experiment(client: MlflowClient, uri: str, name: str, root: Path) -> str:
    """The experiment's id, created on first use with the tags MLflow's UI reads (an older one
    gets the tags it lacks); a SQLite store keeps artifacts beside it, in ``<repo>/mlruns``."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = (root / "mlruns").resolve().as_uri() if uri.startswith("sqlite:") else None
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
        except MlflowException:  # workers started together: another one created it since we looked
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    for key, value in EXPERIMENT_TAGS.items():
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id
