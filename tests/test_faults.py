"""Fault injection through the real CLI: a tracking server killed mid-stage (then away when the
next stage starts), SIGTERM and SIGKILL mid-stage then a rerun, a read-only or corrupt store,
a full disk.

Each case asserts exit code 2 (130/143 for signals), one error line naming the path or
URI, and that no earlier output changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import copy_repo, kill_server, run, stage_env, tiny_params

KILL_AFTER_S = 240  # generous: the machine running CI may be loaded
# What `houseprices submission` (the stage of fewest imports that opens the store) may change.
SUBMISSION_OUTPUTS = ("submission.csv", "predictions_with_intervals.csv", "mlflow.db")


def slow_params(epochs: int = 40) -> dict:
    """The tiny pipeline with an MLP slow enough to be interrupted mid-stage (no model
    packaging: no test here reads a logged model, and it is seconds per stage)."""
    params = tiny_params()
    params["models"]["mlp"]["epochs"] = epochs
    params["tracking"]["log_models"] = False
    return params


def digests(repo: Path, *dirs: str) -> dict[str, str]:
    out = {}
    for name in dirs:
        for path in sorted((repo / name).rglob("*")) if (repo / name).is_dir() else [repo / name]:
            if path.is_file():
                out[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def runs(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("houseprices")
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def wait_for_running(uri: str, name: str, *procs: subprocess.Popen, timeout: float = KILL_AFTER_S) -> None:
    """Until each process's stage has its own MLflow run RUNNING (i.e. all are mid-stage)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"stage ended before it could be interrupted:\n{proc.communicate()}"
        try:
            if sum(r.info.run_name == name and r.info.status == "RUNNING" for r in runs(uri)) >= len(procs):
                time.sleep(1.0)  # into the folds
                return
        except Exception:  # noqa: BLE001, S110 - the store may be busy or not yet created
            pass
        time.sleep(0.5)
    pytest.fail(f"no {len(procs)} RUNNING runs {name!r} within {timeout}s")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


def popen(cmd: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, env=stage_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# -------------------------------------------------------------- fixtures
@pytest.fixture
def repo_copy(built_repo, tmp_path) -> Path:
    return copy_repo(built_repo, tmp_path / "copy")


# ---------------------------------------------------- tracking server dies
@pytest.mark.slow(seconds=90)
def test_server_killed_mid_stage_then_away_at_the_next_start(built_repo, tmp_path, mlflow_server):
    """Killed mid-stage: with tracking.required the stage exits 2 within 60 s naming the URI and
    changes nothing; without, it finishes untracked. The server gone, the next stage exits 2
    before it writes, not after minutes of HTTP retries (762 s when this was found)."""
    uri, proc = mlflow_server
    repos = {required: copy_repo(built_repo, tmp_path / f"required-{required}") for required in (True, False)}
    for required, repo in repos.items():
        params = slow_params(epochs=60)
        params["tracking"]["required"] = required
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    mlp_outputs = ("models/members/mlp", "metrics/mlp.json")
    before = digests(built_repo, *mlp_outputs)
    stages = {
        required: popen(["houseprices", "train", "--model", "mlp"], repo, MLFLOW_TRACKING_URI=uri)
        for required, repo in repos.items()
    }
    wait_for_running(uri, "train mlp", *stages.values())
    kill_server(proc)
    killed_at = time.perf_counter()
    _, err = stages[True].communicate(timeout=300)
    seconds = time.perf_counter() - killed_at
    assert stages[True].returncode == 2 and "Traceback" not in err, err
    assert seconds < 60, f"took {seconds:.0f}s to fail"
    lines = error_lines(err)
    assert len(lines) == 1 and uri in lines[0] and "tracking.required" in lines[0], err
    assert digests(repos[True], *mlp_outputs) == before

    _, err = stages[False].communicate(timeout=300)
    assert stages[False].returncode == 0, err
    assert "without tracking" in err and "Traceback" not in err
    assert digests(repos[False], *mlp_outputs) != before  # new params, new outputs

    before = digests(repos[True], *SUBMISSION_OUTPUTS)
    start = time.perf_counter()
    away = run(["houseprices", "submission"], repos[True], check=False, MLFLOW_TRACKING_URI=uri)
    assert away.returncode == 2 and uri in away.stderr and "Traceback" not in away.stderr, away.stderr
    assert time.perf_counter() - start < 120
    assert digests(repos[True], *SUBMISSION_OUTPUTS) == before


@pytest.mark.slow(seconds=65)
def test_a_server_that_hangs_mid_stage_fails_it_within_a_minute(repo_copy, mlflow_server):
    """A tracking server that stops answering (a paused VM; SIGSTOP here) but keeps its port
    open: the stage exits 2 within 60 s naming the URI (131 s when this was found)."""
    uri, proc = mlflow_server
    params = slow_params(epochs=60)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = digests(repo_copy, "models/members/mlp", "metrics/mlp.json")
    stage = popen(["houseprices", "train", "--model", "mlp"], repo_copy, MLFLOW_TRACKING_URI=uri)
    wait_for_running(uri, "train mlp", stage)
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        hung_at = time.perf_counter()
        _, err = stage.communicate(timeout=300)
        seconds = time.perf_counter() - hung_at
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    print(f"\nhung tracking server: exit {stage.returncode} after {seconds:.1f} s")
    assert stage.returncode == 2 and "Traceback" not in err, err
    assert seconds < 60, f"took {seconds:.0f}s to fail"
    (line,) = error_lines(err)
    assert uri in line and "stopped answering" in line, err
    assert digests(repo_copy, "models/members/mlp", "metrics/mlp.json") == before


# -------------------------------------------------------- signals, rerun
def interrupt_mid_stage(repo: Path, uri: str, sig: signal.Signals):
    """`dvc repro` with the MLP stage sent ``sig`` mid-stage: DVC fails, nothing half-written,
    exactly one new unfinished "train mlp" run (returned with DVC's stderr)."""
    # DVC deletes a stage's outputs before running it: the others must not change.
    kept = ("models/ensemble", "models/members/ridge", "metrics/ensemble.json", "submission.csv")
    before = digests(repo, *kept)
    seen = {r.info.run_id for r in runs(uri)}
    dvc = popen(["dvc", "repro"], repo)
    wait_for_running(uri, "train mlp", dvc)
    stage = next(
        p
        for p in psutil.Process(dvc.pid).children(recursive=True)
        if "train" in p.cmdline() and any(a.endswith("houseprices") for a in p.cmdline())
    )
    stage.send_signal(sig)
    _, err = dvc.communicate(timeout=120)
    assert dvc.returncode != 0
    assert "Traceback" not in err, err
    assert digests(repo, *kept) == before  # nothing half-written
    assert not list((repo / "models").rglob("*.tmp"))
    (interrupted,) = [r for r in runs(uri) if r.info.run_name == "train mlp" and r.info.run_id not in seen]
    return interrupted, err


@pytest.mark.slow(seconds=160)
def test_signals_mid_stage_then_rerun(repo_copy):
    """SIGTERM ends the stage's runs KILLED; after a SIGKILL nobody could, so the rerun of the
    stage closes the orphan: no run left RUNNING, the stage up to date for DVC."""
    uri = f"sqlite:///{repo_copy / 'mlflow.db'}"
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(slow_params(), sort_keys=False))
    run(["git", "commit", "-qam", "slower mlp"], repo_copy)

    terminated, err = interrupt_mid_stage(repo_copy, uri, signal.SIGTERM)
    assert "interrupted by SIGTERM" in err and "KILLED" in err
    assert terminated.info.status == "KILLED"
    assert not [r for r in runs(uri) if r.info.status == "RUNNING"]

    killed, _ = interrupt_mid_stage(repo_copy, uri, signal.SIGKILL)
    assert killed.info.status == "RUNNING"  # nobody could end it

    rerun = run(["dvc", "repro", "train@mlp"], repo_copy)  # what follows it is no signal's business
    statuses = {r.info.run_id: r.info.status for r in runs(uri)}
    assert "RUNNING" not in statuses.values(), statuses
    assert statuses[terminated.info.run_id] == statuses[killed.info.run_id] == "KILLED"
    assert "Running stage 'train@mlp'" in rerun.stdout
    status = run(["dvc", "status", "--json", "train@mlp"], repo_copy).stdout.strip()
    assert status == "{}", status


# ------------------------------------------------------- damaged inputs
ENSEMBLE_OUTPUTS = ("models/ensemble", "metrics/ensemble.json", "plots/ensemble")


@pytest.mark.slow(seconds=10)
def test_a_truncated_member_model_stops_the_ensemble_before_it_writes(repo_copy):
    """Every member's model is read before an output is replaced: the cut-short file is one
    line naming it and the stage that rewrites it, and the previous ensemble stays whole."""
    model = repo_copy / "models/members/ridge/model.joblib"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    before = digests(repo_copy, *ENSEMBLE_OUTPUTS)
    done = run(["houseprices", "ensemble"], repo_copy, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = error_lines(done.stderr)
    assert "models/members/ridge/model.joblib: cannot be read" in line
    assert "run `dvc repro train@ridge`" in line
    assert digests(repo_copy, *ENSEMBLE_OUTPUTS) == before
    assert not [r for r in runs(f"sqlite:///{repo_copy / 'mlflow.db'}") if r.info.status == "RUNNING"]


# -------------------------------------------------------------- the store
@pytest.mark.slow
def test_artifacts_of_a_copied_repo_stay_in_the_copy(repo_copy, built_repo):
    """The store copied along names the original's mlruns/: new artifacts go to the copy's."""
    store = sqlite3.connect(repo_copy / "mlflow.db")
    (location,) = store.execute("SELECT artifact_location FROM experiments WHERE name='houseprices'").fetchone()
    store.close()
    assert location.startswith(built_repo.as_uri())
    before = sorted(p for p in (built_repo / "mlruns").rglob("*") if p.is_file())
    done = run(["houseprices", "submission"], repo_copy)  # the stage of fewest imports that logs artifacts
    assert "artifact root moved" in done.stderr
    exp = MlflowClient(f"sqlite:///{repo_copy / 'mlflow.db'}").get_experiment_by_name("houseprices")
    assert exp.artifact_location == (repo_copy / "mlruns").as_uri()
    assert sorted(p for p in (built_repo / "mlruns").rglob("*") if p.is_file()) == before
    latest = max(runs(f"sqlite:///{repo_copy / 'mlflow.db'}"), key=lambda r: r.info.start_time)
    assert latest.info.artifact_uri.startswith((repo_copy / "mlruns").as_uri())


def _read_only(store: Path, cmd: list[str]) -> list[str]:
    """``cmd`` seeing ``store`` read-only. Root writes through any file mode, so as root
    the file is bind-mounted read-only in a private mount namespace."""
    store.chmod(0o444)
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("unshare"):
        pytest.skip("running as root without unshare: cannot make a file read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, str(store), *cmd]


@pytest.mark.slow
def test_read_only_store(repo_copy):
    store = repo_copy / "mlflow.db"
    before = digests(repo_copy, *SUBMISSION_OUTPUTS)
    failed = run(_read_only(store, ["houseprices", "submission"]), repo_copy, check=False)
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    (line,) = error_lines(failed.stderr)
    assert str(store) in line and "read-only" in line
    assert digests(repo_copy, *SUBMISSION_OUTPUTS) == before


@pytest.mark.slow
def test_corrupt_store(repo_copy):
    store = repo_copy / "mlflow.db"
    store.write_bytes(b"not a database, just bytes\n" * 100)
    before = digests(repo_copy, *SUBMISSION_OUTPUTS)
    failed = run(["houseprices", "submission"], repo_copy, check=False)
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    (line,) = error_lines(failed.stderr)
    assert str(store) in line and "corrupt" in line
    assert digests(repo_copy, *SUBMISSION_OUTPUTS) == before


# --------------------------------------------------------------- the disk
ENOSPC_HOOK = """
import errno, os
import pandas as pd

_to_parquet = pd.DataFrame.to_parquet

def to_parquet(self, path, *args, **kwargs):
    if os.environ["FAULT_ENOSPC"] in str(path):
        with open(path, "wb") as f:
            f.write(b"PAR1 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return _to_parquet(self, path, *args, **kwargs)

pd.DataFrame.to_parquet = to_parquet
"""


@pytest.mark.slow
def test_full_disk_at_a_write(repo_copy, tmp_path):
    """ENOSPC while writing an output (injected at the write): exit 2, the output named,
    the previous file intact, no temporary file left behind."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(ENOSPC_HOOK))
    target = repo_copy / "models/members/ridge/test.parquet"
    before = digests(repo_copy, "models", "metrics")
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    failed = run(
        ["houseprices", "train", "--model", "ridge"],
        repo_copy,
        check=False,
        FAULT_ENOSPC="test.parquet",
        PYTHONPATH=path,
    )
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    (line,) = error_lines(failed.stderr)
    assert str(target.relative_to(repo_copy)) in line and "no space left on device" in line
    assert digests(repo_copy, "models", "metrics") == before
    assert not list((repo_copy / "models").rglob("*.tmp"))


# ------------------------------------------------------- stale-run rules
def test_only_runs_of_gone_processes_on_this_host_are_closed(tmp_path):
    from houseprices.tracking.lifecycle import close_stale_runs, owner_tags
    from houseprices.tracking.tags import OWNER_HOST, OWNER_PID, OWNER_STARTED

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("houseprices", artifact_location=(tmp_path / "mlruns").as_uri())
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = {OWNER_HOST: socket.gethostname(), OWNER_PID: str(gone.pid), OWNER_STARTED: "1"}
    killed = client.create_run(exp, tags=dead).info.run_id
    fold = client.create_run(exp, tags={"mlflow.parentRunId": killed}).info.run_id
    alive = client.create_run(exp, tags=owner_tags()).info.run_id
    remote = client.create_run(exp, tags={**dead, OWNER_HOST: "another-host"}).info.run_id
    untagged = client.create_run(exp).info.run_id
    done = client.create_run(exp, tags=dead).info.run_id
    client.set_terminated(done, "FINISHED")

    assert close_stale_runs(client, exp) == sorted([killed, fold])
    status = {rid: client.get_run(rid).info.status for rid in (killed, fold, alive, remote, untagged, done)}
    assert status == {
        killed: "KILLED",
        fold: "KILLED",
        alive: "RUNNING",
        remote: "RUNNING",
        untagged: "RUNNING",
        done: "FINISHED",
    }
