"""The team's PostgreSQL restarted while a stage logs to the MLflow server in front of it: the
stage goes on or fails with one line, never hangs, and leaves no run RUNNING."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from team_services import team, team_up

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


@pytest.mark.slow(seconds=45)
def test_postgres_restarted_mid_stage(built_repo, tmp_path):
    repo = copy_repo(built_repo, tmp_path / "repo")
    with team_up() as env:
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        stage = subprocess.Popen(
            ["houseprices", "train", "--model", "ridge"],
            cwd=repo,
            env=stage_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for_running_model_run(client)
            restart_postgres(Path(env["PGPASSFILE"]).parent)
            out, _ = stage.communicate(timeout=300)  # never hangs
        finally:
            stage.kill()
        assert "Traceback" not in out, out
        if stage.returncode:
            errors = [line for line in out.splitlines() if line.startswith("houseprices train: error:")]
            assert stage.returncode == 2 and len(errors) == 1, out
        exp = client.get_experiment_by_name("houseprices")
        assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
        print(f"\nstage exit code {stage.returncode} after PostgreSQL restarted mid-stage")
