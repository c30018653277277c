"""A stage signalled at any moment (while its fold workers start, mid-CV, while it writes, just
after): its outputs, exit code and MLflow runs agree, no temporary file stays behind, and the
terminal shows one line, no traceback."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import copy_repo, new_store, stage_env
from houseprices.config.params import parse_params
from houseprices.runner import killed_on_signal
from houseprices.tracking.tracker import Tracker

OUTPUTS = ("models/members/ridge", "metrics/ridge.json", "plots/folds/ridge.csv")


def digests(repo: Path) -> dict[str, str]:
    files = [p for name in OUTPUTS for p in ([repo / name] if (repo / name).is_file() else (repo / name).rglob("*"))]
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def changed(repo: Path, before: dict[str, str]) -> bool:
    try:
        return digests(repo) != before
    except FileNotFoundError:  # a file replaced while it was read: the commit is under way
        return True


def train_ridge(repo: Path, alpha: float, sig: signal.Signals | None, after: float | None) -> tuple[int, str, float]:
    """`houseprices train --model ridge` with a new alpha (a finished run changes the outputs), its
    folds in two worker processes, sent ``sig`` ``after`` seconds (None: as soon as its outputs
    changed, just after its commit): (exit code, stderr, seconds)."""
    before = digests(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["ridge"]["alpha"] = alpha
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.monotonic()
    stage = subprocess.Popen(
        ["houseprices", "train", "--model", "ridge"],
        cwd=repo,
        env=stage_env(HOUSEPRICES_CV_WORKERS="2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if sig is not None:
        if after is None:
            while stage.poll() is None and not changed(repo, before):
                time.sleep(0.02)
        else:
            time.sleep(after)
        stage.send_signal(sig)  # nothing when the stage has ended
    _, err = stage.communicate(timeout=300)
    return stage.returncode, err, time.monotonic() - start


@pytest.mark.slow(seconds=100)
def test_a_signal_at_any_moment_leaves_outputs_exit_code_and_runs_agreeing(built_repo, tmp_path):
    repo = copy_repo(built_repo, tmp_path / "repo")
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("houseprices").experiment_id
    code, err, whole = train_ridge(repo, 1.0, None, 0)
    assert code == 0, err
    outcomes = []
    for i, share in enumerate((0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0, None)):
        before = digests(repo)
        seen = {r.info.run_id for r in client.search_runs([experiment], max_results=5000)}
        sig = signal.SIGINT if i % 3 == 1 else signal.SIGTERM
        code, err, _ = train_ridge(repo, 2.0 + i, sig, None if share is None else share * whole)
        outcomes.append(code)
        runs = [r for r in client.search_runs([experiment], max_results=5000) if r.info.run_id not in seen]
        assert "Traceback" not in err, err
        assert len([line for line in err.splitlines() if line.startswith("houseprices train:")]) <= 1, err
        assert not [p for p in repo.rglob("*.tmp") if ".git" not in p.parts], "a temporary file was left"
        assert not any((repo / ".staging").glob("*/*")), "staged outputs were left"
        assert not [r for r in client.search_runs([experiment], max_results=5000) if r.info.status == "RUNNING"]
        stage_runs = [r for r in runs if r.info.run_name == "train ridge"]
        if code == 0:
            assert digests(repo) != before and [r.info.status for r in stage_runs] == ["FINISHED"]
        else:  # killed by the signal itself (-sig) only while starting, before any run or output
            assert code == 128 + sig or (code == -sig and not runs), (code, err)
            assert digests(repo) == before, f"a stage interrupted by {sig.name} changed its outputs"
            assert all(r.info.status == "KILLED" for r in stage_runs), [r.info.status for r in stage_runs]
    assert 0 in outcomes and any(outcomes), outcomes  # signals landed on both sides of the commit


@pytest.mark.parametrize("step", ["create_run", "set_terminated"])
def test_a_signal_while_a_run_starts_or_ends_in_the_store_leaves_no_run_running(tmp_path, monkeypatch, step):
    """The store has the run and this process has not recorded it yet, or this process has let
    go of it and the store has not ended it: the signal waits for the step to finish."""
    params = parse_params({"tracking": {"uri": new_store(tmp_path / "mlflow.db")}})
    monkeypatch.setenv("HOUSEPRICES_PIPELINE_RUN_ID", "signalled")
    tracker = Tracker.open(params, root=tmp_path)
    real = getattr(tracker.client, step)

    def interrupted(*args, **kwargs):
        if step == "set_terminated":
            os.kill(os.getpid(), signal.SIGTERM)
        done = real(*args, **kwargs)
        if step == "create_run":
            os.kill(os.getpid(), signal.SIGTERM)
        return done

    monkeypatch.setattr(tracker.client, step, interrupted)
    with pytest.raises(SystemExit) as stopped, killed_on_signal("train"), tracker.run("train ridge", "model"):
        pass
    statuses = [r.info.status for r in tracker.client.search_runs([tracker.experiment_id])]
    assert stopped.value.code == 143 and len(statuses) == 2 and "RUNNING" not in statuses, statuses
