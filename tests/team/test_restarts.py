"""The team's PostgreSQL or MLflow server restarted while a stage logs to it: the stage goes on
or fails with one line, never hangs, and no run stays RUNNING."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from team_services import services, team, team_up

from conftest import copy_repo, stage_env


def wait_for_running_model_run(client: MlflowClient, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name("houseprices")
        if exp and client.search_runs(
            [exp.experiment_id], "attributes.status = 'RUNNING' and tags.`houseprices.kind` = 'model'"
        ):
            return
        time.sleep(0.2)
    pytest.fail("the stage never opened its model run")


def restart_postgres(folder: Path) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = folder / "pg" / "data"
    log = folder / "pg" / "server.log"  # else the new server writes to (and holds open) our pipes
    cmd = [*prefix, team.binary("pg_ctl"), "-D", str(data), "-l", str(log), "-m", "fast", "-w", "-t", "60", "restart"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)


def train_ridge(repo: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["houseprices", "train", "--model", "ridge"],
        cwd=repo,
        env=stage_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ends_cleanly(stage: subprocess.Popen) -> str:
    """Exit 0, or exit 2 with one error line; within the deadline either way."""
    try:
        out, _ = stage.communicate(timeout=300)
    finally:
        stage.kill()
    assert "Traceback" not in out, out
    if stage.returncode:
        errors = [line for line in out.splitlines() if line.startswith("houseprices train: error:")]
        assert stage.returncode == 2 and len(errors) == 1, out
    return out


def running_runs(client: MlflowClient) -> list:
    exp = client.get_experiment_by_name("houseprices")
    return client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")


@pytest.fixture(scope="module")
def stack():
    """One set of services for the module's tests, each of which leaves them running."""
    with team_up() as env:
        yield env


@pytest.mark.slow(seconds=45)
@pytest.mark.xdist_group(name="test_restarts:stack")
def test_postgres_restarted_mid_stage(built_repo, tmp_path, stack):
    repo, env = copy_repo(built_repo, tmp_path / "repo"), stack
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    stage = train_ridge(repo, env)
    wait_for_running_model_run(client)
    restart_postgres(Path(env["PGPASSFILE"]).parent)
    ends_cleanly(stage)
    assert not running_runs(client)
    print(f"\nstage exit code {stage.returncode} after PostgreSQL restarted mid-stage")


@pytest.mark.slow(seconds=45)
@pytest.mark.xdist_group(name="test_restarts:stack")
def test_mlflow_server_restarted_mid_stage(built_repo, tmp_path, stack):
    """The server killed and started again (`make team-up` restarts only what died): a run the
    stage could not close while the server was away is closed by the next command that connects."""
    repo, env = copy_repo(built_repo, tmp_path / "repo"), stack
    folder = Path(env["PGPASSFILE"]).parent
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    stage = train_ridge(repo, env)
    wait_for_running_model_run(client)
    before = json.loads((folder / "state.json").read_text())["pids"]
    os.killpg(before["mlflow"], signal.SIGKILL)
    assert services("up", folder).returncode == 0
    after = json.loads((folder / "state.json").read_text())["pids"]
    assert after["s3"] == before["s3"] and after["mlflow"] != before["mlflow"]
    assert f"MLFLOW_TRACKING_URI={env['MLFLOW_TRACKING_URI']}" in (folder / "env").read_text()  # same port
    ends_cleanly(stage)
    subprocess.run(["houseprices", "champion"], cwd=repo, env=stage_env(**env), capture_output=True, timeout=120)
    assert not running_runs(client)
    print(f"\nstage exit code {stage.returncode} after the MLflow server restarted mid-stage")
