"""Shared fixtures and helpers: slices of the committed competition data, tiny repos after
`dvc repro`, real MLflow servers, and the order the suite runs in."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import filelock
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"
# An MLP that diverges in its first epoch (plain SGD at a huge rate): for the divergence errors.
DIVERGING_MLP = {
    "kind": "mlp",
    "hidden": [16],
    "activation": "relu",
    "loss": "mse",
    "optimizer": "sgd",
    "lr": 1e6,
    "epochs": 3,
}

# A two-trial random search of a ridge's alpha (search.yaml), for tests of the search's plumbing.
RIDGE_SEARCH = {
    "models": {
        "ridge": {
            "trials": 2,
            "sampler": "random",
            "pruner": {"kind": "none"},
            "space": {"alpha": {"low": 0.1, "high": 100.0, "log": True}},
        }
    }
}

# Tests never log to the developer's store unless a test asks for one.
os.environ.setdefault("GIT_AUTHOR_NAME", "houseprices tests")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@houseprices.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "houseprices tests")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@houseprices.invalid")


# pytest-xdist hands tests out in this order (--no-loadscope-reorder), a unit to each worker in turn:
# a long one started last would run alone.
def pytest_collection_modifyitems(config, items):
    """Slow tests first, the longest first (``slow(seconds=N)``); an ``xdist_group`` as one unit, by
    its total. While the first worker builds the shared repo, the others start on units without it."""

    def unit(item: pytest.Item) -> str:
        group = item.get_closest_marker("xdist_group")
        return group.kwargs["name"] if group else item.nodeid

    seconds = defaultdict(float)
    for item in items:
        if slow := item.get_closest_marker("slow"):
            seconds[unit(item)] += slow.kwargs.get("seconds", 0)
    order = sorted(dict.fromkeys(map(unit, items)), key=lambda u: (u not in seconds, -seconds.get(u, 0)))
    waits = {unit(item) for item in items if "built_repo" in item.fixturenames}
    if order and order[0] in waits:
        workers = getattr(config, "workerinput", {}).get("workercount", 1)
        others = [u for u in order if u not in waits][: workers - 1]
        order = [order[0], *others, *(u for u in order[1:] if u not in others)]
    rank = {u: i for i, u in enumerate(order)}
    items.sort(key=lambda item: rank[unit(item)])


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, worker_id) -> Path:
    """A folder every pytest-xdist worker of this run shares (the parent of their temp folders)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def built_once(run_dir: Path, name: str, build: Callable[[Path], object], timeout: float = 1800) -> Path:
    """``run_dir / name`` made by ``build`` once per test run: the first worker to ask builds
    it while the others wait on a lock, up to ``timeout`` seconds, then all of them use it (tests
    copy it to change it). A build that fails leaves the next worker to try again."""
    dest = run_dir / name
    with filelock.FileLock(run_dir / f"{name}.lock", timeout=timeout):
        if not (run_dir / f"{name}.done").exists():
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            build(dest)
            (run_dir / f"{name}.done").touch()
    return dest


@pytest.fixture(scope="session")
def train_frame():
    from houseprices.data.validation import read_csv

    return read_csv(RAW / "train.csv", is_train=True)


@pytest.fixture(scope="session")
def test_frame():
    from houseprices.data.validation import read_csv

    return read_csv(RAW / "test.csv", is_train=False)


@pytest.fixture(scope="session")
def small_xy(train_frame):
    """300 training rows: enough for every encoder to see most categories."""
    from houseprices.data.validation import split_target

    X, y = split_target(train_frame.sample(300, random_state=0).reset_index(drop=True))
    return X, y


def tiny_params() -> dict:
    """The committed params.yaml shrunk to seconds: 2 folds, a 3-epoch MLP and a ridge."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["cv"] = {"folds": 2, "repeats": 1}
    mlp = {**params["models"]["mlp"], "hidden": [16], "epochs": 3}
    params["models"] = {"mlp": mlp, "ridge": {"kind": "ridge", "alpha": 10.0}}
    params["ensemble"]["members"] = ["mlp", "ridge"]
    params.pop("search", None)
    return params


def stage_env(**extra: str) -> dict:
    """The environment a user's shell would give DVC: the venv first on PATH, no
    tracking or DVC variables leaking in from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "HOUSEPRICES_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float = 900, **env: str):
    result = subprocess.run(cmd, cwd=cwd, env=stage_env(**env), capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


# ------------------------------------------------------------- the CLI in process
def edit_cell(path: Path, line: int, column: str, value: str) -> None:
    """Set one cell of a CSV, addressed by line number (header = line 1) and column name."""
    lines = path.read_text().split("\n")
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines))


def snapshot(ws: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(ws)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(ws.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def refused(ws: Path, capsys, command: list[str], *fragments: str) -> str:
    """Run the CLI in this process (in ``ws``, the current directory); assert exit 2, the
    fragments in one error line and what follows it, and nothing changed under ``ws``."""
    from houseprices.cli import main

    capsys.readouterr()
    before = snapshot(ws)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    message = next((line for line in err.splitlines() if line.startswith(f"houseprices {command[0]}: error:")), "")
    assert message, err
    tail = err[err.index(message) :]
    for fragment in fragments:
        assert fragment in tail, f"{fragment!r} not in:\n{tail}"
    assert snapshot(ws) == before, "a refused command changed files on disk"
    return tail


def make_repo(dest: Path, params: dict | None = None) -> Path:
    """A git repo holding what a clean clone would (tracked files plus new, non-ignored
    ones), with the tiny params committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params or tiny_params(), sort_keys=False))
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        run(cmd, dest)
    return dest


@functools.cache
def _empty_store() -> bytes:
    """A new MLflow SQLite store, made once per process: MLflow builds a new one's tables by
    running its migrations, seconds each time, and no test here is about that."""
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        MlflowClient(f"sqlite:///{tmp}/mlflow.db").search_experiments()
        return Path(tmp, "mlflow.db").read_bytes()


def new_store(db: Path) -> str:
    """``sqlite:///<db>``, a new MLflow store there, empty as MLflow makes it."""
    db.write_bytes(_empty_store())
    return f"sqlite:///{db}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(work: Path) -> tuple[str, subprocess.Popen]:
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend in ``work``, once it answers
    /health: (its URI, its process, in a session of its own so `kill_server` ends its workers too).
    Without MLflow's job runner (8 more processes, 13 s of CPU at start): no test runs server jobs."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{work}/backend.db",
            "--artifacts-destination",
            str(work / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=work,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("w"),
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while not _healthy(uri):
        if proc.poll() is not None or time.time() > deadline:
            kill_server(proc)
            pytest.fail(f"mlflow server did not start:\n{(work / 'server.log').read_text()[-3000:]}")
        time.sleep(1)
    return uri, proc


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:  # noqa: S310 - a local http server
            return resp.status == 200
    except OSError:
        return False


def kill_server(proc: subprocess.Popen) -> None:
    """The server and its gunicorn/uvicorn workers, all at once (a crash, not a shutdown)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` for one test: (its URI, its process, for tests that kill it)."""
    uri, proc = start_mlflow_server(tmp_path / "server")
    yield uri, proc
    kill_server(proc)


# MLflow writes `registered_model_meta` into a model's own folder whenever it is loaded through
# models:/ from a local store (ModelsArtifactRepository.download_artifacts). A copy of the shared
# build still names the build's mlruns/, so a load in a copy would change the build under a test
# that compares it before and after; loading every version once at build time leaves nothing to add.
LOAD_EVERY_REGISTERED_VERSION = """
from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository
from mlflow.tracking import MlflowClient
for v in MlflowClient().search_model_versions():
    ModelsArtifactRepository(f"models:/{v.name}/{v.version}").download_artifacts("")
"""


def build_tiny_repo(dest: Path) -> None:
    make_repo(dest)
    run(["dvc", "repro"], dest)
    uri = f"sqlite:///{dest / 'mlflow.db'}"
    run([sys.executable, "-c", LOAD_EVERY_REGISTERED_VERSION], dest, MLFLOW_TRACKING_URI=uri)


@pytest.fixture(scope="session")
def built_repo(run_dir) -> Path:
    """The tiny repo after one full `dvc repro` (tracking and model logging on), built once
    per test run for every worker: tests that change it work on a copy (`copy_repo`)."""
    return built_once(run_dir, "tiny-built", build_tiny_repo)


def copy_repo(built: Path, dest: Path) -> Path:
    """A copy of a built repo: a moved repo whose store still names the original's mlruns/."""
    shutil.copytree(built, dest, symlinks=True)
    return dest


def cross_validate_recording_fits(monkeypatch, name: str, params, X, y):
    """``cross_validate`` with every fold's preprocessing fit recorded: (result, [(the rows it
    was fit on, as X's index; the fitted preprocessing)]). The model is fit on the same rows."""
    from houseprices.evaluation import cross_validation as training

    fitted = []
    real = training.preprocessed

    def spy(preprocess, X_train, y_train, X_valid, X_test=None):
        features = real(preprocess, X_train, y_train, X_valid, X_test)
        fitted.append((X_train.index.to_numpy(), preprocess.named_steps["preprocess"]))
        return features

    monkeypatch.setattr(training, "preprocessed", spy)
    return training.cross_validate(name, params, X, y), fitted
