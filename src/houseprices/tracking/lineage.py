"""Lineage: which code, params, data and packages a run used, and which pipeline execution it
belongs to."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import uuid
from importlib import metadata
from pathlib import Path

from houseprices.util.files import file_sha256
from houseprices.util.processes import dvc_run_id

# Recorded on every run: what computes the models, and DVC.
LINEAGE_PACKAGES = ("torch", "skorch", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "mlflow", "dvc")


def git(args: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def lineage_tags(workdir: Path, params_file: Path, inputs: list[Path]) -> dict[str, str]:
    """What a user needs to check out the exact code, params and data of a run (a file that
    is not there is recorded as "missing")."""
    commit = git(["rev-parse", "HEAD"], workdir) or "unknown"
    # The pipeline's own outputs (dvc.lock, metrics, plots) change during a run: not "dirty code".
    dirty = git(
        ["status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock", ":!metrics", ":!plots"], workdir
    )
    files = {"params": Path(params_file), **{f"data.{Path(p).name}": Path(p) for p in inputs}}
    return {
        "git.commit": commit,
        "git.dirty": str(bool(dirty)).lower(),
        "mlflow.source.git.commit": commit,
        "dvc.experiment": os.environ.get("DVC_EXP_NAME", ""),  # "" under a plain `dvc repro`
        "python.version": platform.python_version(),
        "host": socket.gethostname(),
        **{f"{key}.sha256": file_sha256(path) if path.is_file() else "missing" for key, path in files.items()},
        **{f"version.{package}": package_version(package) for package in LINEAGE_PACKAGES},
    }


def pipeline_run_name(lineage: dict[str, str], now: dt.datetime | None = None) -> str:
    """The DVC experiment's name, else short commit (``+`` when dirty) and UTC time."""
    if lineage.get("dvc.experiment"):
        return lineage["dvc.experiment"]
    commit = lineage.get("git.commit", "unknown")[:7] + ("+" if lineage.get("git.dirty") == "true" else "")
    return f"{commit} {(now or dt.datetime.now(dt.UTC)).strftime('%Y-%m-%d %H:%M')}"


def pipeline_run_id() -> str:
    """Shared by every stage of one pipeline execution: ``HOUSEPRICES_PIPELINE_RUN_ID``, else the
    id of the ``dvc`` process that runs the stages (pid and start time), so plain ``dvc repro``
    groups its stages too."""
    return os.environ.get("HOUSEPRICES_PIPELINE_RUN_ID") or dvc_run_id() or f"standalone-{uuid.uuid4().hex[:12]}"
