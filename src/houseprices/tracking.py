"""MLflow tracking: where runs go, the run tree of one pipeline execution, lineage.

Every stage of one ``dvc repro`` / ``dvc exp run`` logs under one parent run, found
again through a shared pipeline-run id, so the MLflow UI shows one tree per execution.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from .errors import TrackingError
from .run_lifecycle import owner_tags, prepare_store
from .store_errors import as_tracking_error

logger = logging.getLogger(__name__)

PIPELINE_RUN_TAG = "houseprices.pipeline_run_id"
KIND_TAG = "houseprices.kind"
RUN_ID_ENV = "HOUSEPRICES_PIPELINE_RUN_ID"
TRACKED_PACKAGES = ("torch", "skorch", "scikit-learn", "pandas", "mlflow", "dvc", "numpy")


# ------------------------------------------------------------------------ where
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
    parts = root.parts
    for i in range(len(parts) - 2):
        if parts[i] == ".dvc" and parts[i + 1] == "tmp" and parts[i + 2] == "exps":
            return Path(*parts[:i])
    return root


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
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
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


# ---------------------------------------------------------------------- lineage
def _git(args: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def lineage_tags(workdir: Path, params_file: Path, inputs: list[Path]) -> dict[str, str]:
    """What a user needs to check out the exact code, params and data of a run."""
    commit = _git(["rev-parse", "HEAD"], workdir)
    # The pipeline's own outputs (dvc.lock, metrics, plots) change during a run: not "dirty code".
    dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":!dvc.lock", ":!metrics", ":!plots"], workdir)
    tags = {
        "git.commit": commit or "unknown",
        "git.dirty": str(bool(dirty)).lower(),
        "mlflow.source.git.commit": commit or "unknown",
        "dvc.experiment": os.environ.get("DVC_EXP_NAME", ""),
        "params.sha256": file_sha256(params_file),
        "python.version": platform.python_version(),
        "host": socket.gethostname(),
    }
    for path in inputs:
        tags[f"data.{path.name}.sha256"] = file_sha256(path)
    for package in TRACKED_PACKAGES:
        tags[f"version.{package}"] = _version(package)
    return tags


def pipeline_run_id() -> str:
    """Shared by every stage of one pipeline execution.

    ``HOUSEPRICES_PIPELINE_RUN_ID`` wins; otherwise the id of the ``dvc`` process that
    runs the stages (pid and start time), so plain ``dvc repro`` groups its stages too.
    """
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            cmd = " ".join(proc.cmdline()[:3])
            if "dvc" in Path(proc.name()).name or "/dvc" in cmd or " -m dvc" in cmd or cmd.endswith(" dvc"):
                return f"dvc-{socket.gethostname()}-{proc.pid}-{int(proc.create_time() * 1000)}"
            proc = proc.parent()
    except Exception:  # psutil missing or a process vanished: one tree per stage then
        pass
    return f"standalone-{uuid.uuid4().hex[:12]}"


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, object]:
    """{'mlp': {'lr': 1}} -> {'mlp.lr': 1}: MLflow params are flat."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# ------------------------------------------------------------------------ runs
class Tracker:
    """One stage's view of MLflow; inert when tracking is off (``enabled`` False)."""

    def __init__(self, uri: str | None, experiment: str, root: Path, lineage: dict[str, str] | None = None):
        self.uri = uri
        self.experiment = experiment
        self.root = root
        self.enabled = uri is not None
        self.lineage = lineage or {}
        # Walking the process tree and searching the store happen once per stage.
        self.pipeline_id = pipeline_run_id() if self.enabled else ""
        self._parent_id: str | None = None

    @classmethod
    def open(cls, params, params_file: Path | str = "params.yaml", root: Path | None = None) -> Tracker:
        """Tracker for ``params.tracking``; fails fast (naming the URI) when the store is
        unreachable, or warns and returns an inert tracker if ``tracking.required`` is false."""
        cfg = params.tracking
        root = root or repo_root()
        uri = tracking_uri(cfg.uri, root)
        try:
            check_reachable(uri)
            mlflow.set_tracking_uri(uri)
            client = MlflowClient(uri)
            if client.get_experiment_by_name(cfg.experiment) is None:
                location = None
                if uri.startswith("sqlite:"):
                    # Artifacts beside the store, not inside a DVC temp copy.
                    location = (root / "mlruns").resolve().as_uri()
                client.create_experiment(cfg.experiment, artifact_location=location)
            mlflow.set_experiment(cfg.experiment)
            prepare_store(uri, root, cfg.experiment)  # moved repo, stale RUNNING runs
        except Exception as err:
            error = as_tracking_error(err, uri)
            if cfg.required:
                raise error from None
            warnings.warn(f"{error}; training without tracking (tracking.required is false)", stacklevel=2)
            return cls(None, cfg.experiment, root)
        lineage = lineage_tags(Path.cwd(), Path(params_file), [params.data.train, params.data.test])
        lineage.update(owner_tags())  # host and pid: a run left RUNNING by a killed process is closed later
        return cls(uri, cfg.experiment, root, lineage)

    def _pipeline_parent(self) -> str:
        """The pipeline run's id, looked up (or created with the lineage tags) once."""
        if self._parent_id is None:
            client = MlflowClient(self.uri)
            exp = client.get_experiment_by_name(self.experiment)
            found = client.search_runs(
                [exp.experiment_id],
                f"tags.`{PIPELINE_RUN_TAG}` = '{self.pipeline_id}' and tags.`{KIND_TAG}` = 'pipeline'",
                max_results=1)
            if found:
                self._parent_id = found[0].info.run_id
            else:
                name = os.environ.get("DVC_EXP_NAME") or f"pipeline {self.pipeline_id[-12:]}"
                self._parent_id = client.create_run(exp.experiment_id, run_name=name, tags={
                    **self.lineage, PIPELINE_RUN_TAG: self.pipeline_id, KIND_TAG: "pipeline"}).info.run_id
        return self._parent_id

    @contextlib.contextmanager
    def stage_run(self, name: str, kind: str,
                  params: Mapping[str, object] | None = None) -> Iterator[mlflow.ActiveRun | None]:
        """A child of the pipeline run (created on first use) for one stage or model."""
        if not self.enabled:
            yield None
            return
        parent_id = self._pipeline_parent()
        tags = {KIND_TAG: kind, PIPELINE_RUN_TAG: self.pipeline_id, **self.lineage}
        with mlflow.start_run(run_id=parent_id):
            with mlflow.start_run(run_name=name, nested=True, tags=tags) as run:
                if params:
                    log_params(params)
                yield run

    @contextlib.contextmanager
    def child_run(self, name: str, kind: str) -> Iterator[mlflow.ActiveRun | None]:
        if not self.enabled:
            yield None
            return
        with mlflow.start_run(run_name=name, nested=True, tags={KIND_TAG: kind}) as run:
            yield run

    def set_parent_metrics(self, metrics: Mapping[str, float]) -> None:
        """Copy headline metrics onto the pipeline run, for side-by-side comparison."""
        if not self.enabled:
            return
        now = int(time.time() * 1000)
        MlflowClient(self.uri).log_batch(self._pipeline_parent(), metrics=[
            Metric(key, float(value), now, 0) for key, value in metrics.items()])


def log_params(params: Mapping[str, object]) -> None:
    flat = {k: ("" if v is None else str(v))[:6000] for k, v in params.items()}
    items = list(flat.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start:start + 100]))


def log_curves(curves: pd.DataFrame) -> None:
    """Per-epoch train/valid loss as step metrics: one call per epoch."""
    for epoch, rows in curves.groupby("epoch", sort=True):
        values = {}
        for row in rows.itertuples():
            values[f"train_loss.{row.fold}"] = float(row.train_loss)
            for key in ("valid_loss", "holdout_loss"):
                value = getattr(row, key, np.nan)
                if np.isfinite(value):
                    values[f"{key}.{row.fold}"] = float(value)
        mlflow.log_metrics(values, step=int(epoch))


def pip_requirements() -> list[str]:
    """Pinned from the running interpreter: MLflow's own inference reloads the model in a
    subprocess, which costs more than the whole training stage."""
    packages = ("torch", "skorch", "scikit-learn", "pandas", "numpy", "scipy", "mlflow", "cloudpickle")
    return [f"{p}=={_version(p)}" for p in packages]


class PricePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow face of a :class:`~houseprices.ensemble.PriceModel`: rows as in test.csv
    in, prices in dollars out."""

    def __init__(self, model):
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict(frame)


def price_signature(rows: pd.DataFrame):
    """Every column optional and nullable: numeric columns take ints or floats with NaN
    (``AnyType``: pandas reads a column with a gap as float, without one as int), text
    columns take strings or missing values."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    numeric = set(rows.select_dtypes("number").columns)
    inputs = Schema([ColSpec(AnyType() if c in numeric else "string", c, required=False) for c in rows.columns])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double")]))


def input_example(rows: pd.DataFrame) -> pd.DataFrame:
    """Two real rows and one with every feature missing: the model must price all three."""
    example = rows.head(3).copy().reset_index(drop=True)
    features = [c for c in example.columns if c != "Id"]
    example.loc[2, features] = np.nan
    return example


def log_price_model(model, rows: pd.DataFrame, registered_name: str | None = None, name: str = "model"):
    """Log (and optionally register) the model with the package code beside it, so it
    loads anywhere ``mlflow.pyfunc.load_model`` runs."""
    import houseprices

    return mlflow.pyfunc.log_model(
        name=name,
        python_model=PricePyfunc(model),
        code_paths=[str(Path(houseprices.__file__).parent)],
        pip_requirements=pip_requirements(),
        signature=price_signature(rows),
        input_example=input_example(rows),
        registered_model_name=registered_name,
    )
