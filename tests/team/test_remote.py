"""The DVC remote a team shares: with the retry settings `make team-up` exports (docs/team.md), an
unreachable S3 store fails push and pull within seconds, naming its endpoint, and loses nothing;
a clone that pulled after a member switch is up to date. (How DVC pushes and pulls otherwise is
DVC's behaviour, not tested here.)"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from team_services import team

from conftest import copy_repo, free_port, run

S3_REMOTE = "s3://houseprices/dvc"
S3_CLIENT = {**team.FAKE_S3_KEYS, **team.S3_RETRIES}  # what `make team-up` exports, less the endpoint


def shared(built_repo: Path, dest: Path, remote: str) -> Path:
    """A copy of the built pipeline with ``remote`` as its default DVC remote, all committed."""
    repo = copy_repo(built_repo, dest)
    run(["dvc", "remote", "add", "-d", "team", remote], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "the pipeline's outputs (dvc.lock) and the team remote"], repo)
    return repo


def timed(cmd: list[str], cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = run(cmd, cwd, check=False, timeout=120, **env)
    return result, time.monotonic() - start


@pytest.mark.slow(seconds=25)
def test_an_unreachable_remote_fails_push_and_pull_naming_it_and_loses_nothing(built_repo, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"AWS_ENDPOINT_URL_S3": down, **S3_CLIENT}
    a = shared(built_repo, tmp_path / "a", S3_REMOTE)
    before = {p: p.read_bytes() for p in (a / "submission.csv", a / "dvc.lock")}
    pushed, seconds = timed(["dvc", "push", "--run-cache"], a, **env)
    assert pushed.returncode != 0 and seconds < 30
    assert any(down in line for line in pushed.stderr.splitlines() if line.startswith("ERROR")), pushed.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert "Data and pipelines are up to date" in run(["dvc", "status"], a).stdout  # the cache is whole

    run(["git", "clone", "-q", str(a), str(tmp_path / "b")], tmp_path)
    pulled, seconds = timed(["dvc", "pull"], tmp_path / "b", **env)
    assert pulled.returncode != 0 and seconds < 30
    assert any(down in line for line in pulled.stderr.splitlines() if line.startswith("ERROR")), pulled.stderr
    assert run(["git", "status", "--porcelain"], tmp_path / "b").stdout == ""  # no tracked file touched


@pytest.mark.slow(seconds=60)
def test_a_clone_that_pulled_after_a_member_switch_is_up_to_date(built_repo, tmp_path):
    """A drops a member (the README's way), reproduces, commits and pushes; B clones and pulls:
    `dvc status` is clean and `dvc repro` runs nothing (the ensemble's deps are what it reads)."""
    a = shared(built_repo, tmp_path / "a", str(tmp_path / "remote"))
    params = yaml.safe_load((a / "params.yaml").read_text())
    params["ensemble"]["members"] = ["ridge"]
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], a)
    assert not (a / "models/members/mlp").exists()  # no longer read: not hashed into dvc.lock either
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "ridge alone"], a)
    run(["dvc", "push"], a)
    run(["git", "clone", "-q", str(a), str(tmp_path / "b")], tmp_path)
    b = tmp_path / "b"
    run(["dvc", "pull"], b)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], b).stdout
    repro = run(["dvc", "repro"], b).stdout
    assert "Running stage" not in repro, repro
    assert (b / "submission.csv").read_bytes() == (a / "submission.csv").read_bytes()
