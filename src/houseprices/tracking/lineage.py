"""Lineage: which code, params, data and packages a run used, and which pipeline
execution it belongs to."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import uuid
from importlib import metadata
from pathlib import Path

from houseprices.util import files

RUN_ID_ENV = "HOUSEPRICES_PIPELINE_RUN_ID"
# What a logged model needs to run; lineage also records DVC's version.
MODEL_PACKAGES = ("torch", "skorch", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "mlflow")
LINEAGE_PACKAGES = (*MODEL_PACKAGES, "dvc")


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


def file_sha256(path: Path) -> str:
    """The file's digest, or "missing": lineage records absence instead of failing."""
    return files.file_sha256(path) if Path(path).is_file() else "missing"


def experiment_name() -> str:
    """The DVC experiment this process runs for ("" under a plain ``dvc repro``)."""
    return os.environ.get("DVC_EXP_NAME", "")


def lineage_tags(workdir: Path, params_file: Path, inputs: list[Path]) -> dict[str, str]:
    """What a user needs to check out the exact code, params and data of a run."""
    commit = git(["rev-parse", "HEAD"], workdir)
    # The pipeline's own outputs (dvc.lock, metrics, plots) change during a run: not "dirty code".
    dirty = git(
        ["status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock", ":!metrics", ":!plots"], workdir
    )
    tags = {
        "git.commit": commit or "unknown",
        "git.dirty": str(bool(dirty)).lower(),
        "mlflow.source.git.commit": commit or "unknown",
        "dvc.experiment": experiment_name(),
        "params.sha256": file_sha256(params_file),
        "python.version": platform.python_version(),
        "host": socket.gethostname(),
    }
    for path in inputs:
        tags[f"data.{Path(path).name}.sha256"] = file_sha256(Path(path))
    for package in LINEAGE_PACKAGES:
        tags[f"version.{package}"] = package_version(package)
    return tags


def pipeline_run_name(lineage: dict[str, str], now: dt.datetime | None = None) -> str:
    """The DVC experiment's name, else short commit (``+`` when dirty) and UTC time."""
    if lineage.get("dvc.experiment"):
        return lineage["dvc.experiment"]
    commit = lineage.get("git.commit", "unknown")[:7] + ("+" if lineage.get("git.dirty") == "true" else "")
    return f"{commit} {(now or dt.datetime.now(dt.UTC)).strftime('%Y-%m-%d %H:%M')}"


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
    except Exception:  # noqa: BLE001, S110 - psutil missing or a process vanished: one tree per stage then
        pass
    return f"standalone-{uuid.uuid4().hex[:12]}"
