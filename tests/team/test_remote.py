"""The DVC remote a team shares: a plain directory needs nothing more; an unreachable S3 store
fails push and pull naming its endpoint and loses nothing; two pushes at once leave it whole."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from team_services import object_store, team

from conftest import copy_repo, free_port, run, stage_env

S3_REMOTE = "s3://houseprices/dvc"
S3_CLIENT = {**team.FAKE_S3_KEYS, **team.S3_RETRIES}  # what `make team-up` exports, less the endpoint


def shared(built_repo: Path, dest: Path, remote: str) -> Path:
    """A copy of the built pipeline with ``remote`` as its default DVC remote, all committed."""
    repo = copy_repo(built_repo, dest)
    run(["dvc", "remote", "add", "-d", "team", remote], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "the pipeline's outputs (dvc.lock) and the team remote"], repo)
    return repo


def assert_reproduces_nothing(clone: Path, original: Path, **env: str) -> None:
    out = run(["dvc", "repro"], clone, **env).stdout
    assert "Running stage" not in out and "Data and pipelines are up to date" in out
    assert (clone / "submission.csv").read_bytes() == (original / "submission.csv").read_bytes()


@pytest.mark.slow(seconds=20)
def test_a_shared_directory_is_a_remote_out_of_the_box(built_repo, tmp_path):
    a = shared(built_repo, tmp_path / "a", str(tmp_path / "shared-cache"))
    run(["dvc", "push", "--run-cache"], a)
    assert (tmp_path / "shared-cache" / "runs").is_dir()  # the run cache went too
    run(["git", "clone", "-q", str(a), str(tmp_path / "b")], tmp_path)
    run(["dvc", "pull"], tmp_path / "b")
    assert_reproduces_nothing(tmp_path / "b", a)


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


@pytest.mark.slow(seconds=35)
def test_two_teammates_pushing_at_once_leave_the_remote_consistent(built_repo, tmp_path):
    """Both push the pipeline's outputs, B also a file of its own, at the same moment: each
    clone is then in sync with the remote, and a fresh clone of B pulls all of B's outputs."""
    with object_store() as env:
        a = shared(built_repo, tmp_path / "a", S3_REMOTE)
        b = shared(built_repo, tmp_path / "b", S3_REMOTE)
        (b / "data" / "notes.csv").write_text("id,note\n1,only B has this\n")
        run(["dvc", "add", "data/notes.csv"], b)
        run(["git", "add", "-A"], b)
        run(["git", "commit", "-qm", "B's own data"], b)
        push = ["dvc", "push", "--run-cache"]
        pushes = [
            subprocess.Popen(
                push, cwd=repo, env=stage_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for repo in (a, b)
        ]
        for proc in pushes:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out
        for repo in (a, b):
            status = run(["dvc", "status", "--cloud"], repo, **env).stdout
            assert "in sync" in status, status
        run(["git", "clone", "-q", str(b), str(tmp_path / "c")], tmp_path)
        run(["dvc", "pull"], tmp_path / "c", **env)
        assert (tmp_path / "c" / "data" / "notes.csv").read_text() == (b / "data" / "notes.csv").read_text()
        assert_reproduces_nothing(tmp_path / "c", b, **env)
