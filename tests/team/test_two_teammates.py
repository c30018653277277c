"""Two teammates share one pipeline, as `make team-up` sets it up: a DVC remote on an
S3-compatible store (moto's server), one MLflow server on PostgreSQL, one Optuna study."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from team_services import team_up

from conftest import RIDGE_SEARCH, copy_repo, run, stage_env


def start(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, env=stage_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def ensemble_cv(repo: Path) -> float:
    return json.loads((repo / "metrics/ensemble.json").read_text())["cv_log_rmse_mean"]


class Clock:
    """Seconds per step, printed at the end (pytest -s shows them)."""

    def __init__(self):
        self.steps, self.last = [], time.monotonic()

    def lap(self, step: str) -> float:
        now = time.monotonic()
        self.steps.append((step, now - self.last))
        self.last = now
        return self.steps[-1][1]

    def __str__(self) -> str:
        return "\n".join(f"{seconds:6.1f} s  {step}" for step, seconds in self.steps)


def share_a(built_repo: Path, tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Teammate A: the built pipeline committed (dvc.lock too), the remote set, everything pushed."""
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    a = copy_repo(built_repo, tmp_path / "a")
    (a / "search.yaml").write_text(yaml.safe_dump(RIDGE_SEARCH, sort_keys=False))
    run(["dvc", "remote", "add", "-d", "team", "s3://houseprices/dvc"], a)  # the endpoint comes from env
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "A's pipeline run, dvc.lock and the team remote"], a)
    run(["git", "remote", "add", "origin", str(origin)], a)
    run(["git", "push", "-q", "origin", "main"], a)
    run(["dvc", "push", "--run-cache"], a, **env)
    return a, origin


@pytest.mark.slow(seconds=150)
def test_two_teammates_share_outputs_runs_a_study_and_the_champion(built_repo, tmp_path, monkeypatch):
    clock = Clock()
    with team_up() as env:
        clock.lap("team services up (PostgreSQL, MLflow server, S3)")
        a, origin = share_a(built_repo, tmp_path, env)
        clock.lap("A: commit dvc.lock, git push, dvc push --run-cache")

        # B clones, pulls and reproduces nothing: the same submission, byte for byte.
        run(["git", "clone", "-q", str(origin), str(tmp_path / "b")], tmp_path)
        b = tmp_path / "b"
        run(["dvc", "pull"], b, **env)
        pulled = clock.lap("B: git clone, dvc pull")
        repro = run(["dvc", "repro"], b, **env).stdout
        reproduced = clock.lap("B: dvc repro (no stage runs)")
        assert "Running stage" not in repro and "Data and pipelines are up to date" in repro
        assert (b / "submission.csv").read_bytes() == (a / "submission.csv").read_bytes()
        assert run(["git", "status", "--porcelain"], b).stdout == ""
        assert pulled + reproduced <= 30

        # Both run an experiment at once: both pipeline runs land in the one server, and the
        # better CV holds @champion whichever finished last.
        exps = {"a-ridge30": (a, "30"), "b-ridge3": (b, "3")}
        procs = {
            name: start(["dvc", "exp", "run", "-n", name, "-S", f"models.ridge.alpha={alpha}"], repo, env)
            for name, (repo, alpha) in exps.items()
        }
        logs = {name: finish(proc) for name, proc in procs.items()}
        clock.lap("A and B: one dvc exp run each, at once")
        assert_runs_and_champion(env, exps, logs)

        # One Optuna study on PostgreSQL, a worker in each clone.
        search = ["houseprices", "search", "--model", "ridge", "--trials", "2"]
        workers = [start([*search, "--worker", str(i)], repo, env) for i, repo in enumerate((a, b))]
        for proc in workers:
            finish(proc)
        clock.lap("A and B: a search worker each on the one study")
        monkeypatch.setenv("PGPASSFILE", env["PGPASSFILE"])
        assert_one_study_with_both_workers(env["HOUSEPRICES_OPTUNA_STORAGE"], {p.pid for p in workers})
    clock.lap("team services down")
    print(f"\ntwo teammates, step by step:\n{clock}")


def assert_runs_and_champion(env: dict[str, str], exps: dict, logs: dict[str, str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("houseprices")
    pipelines = client.search_runs([exp.experiment_id], "tags.`houseprices.kind` = 'pipeline'")
    by_name = {r.data.tags.get("dvc.experiment"): r for r in pipelines}
    assert set(exps) <= set(by_name), sorted(by_name)
    for name, (repo, alpha) in exps.items():
        logged = by_name[name]
        assert float(logged.data.params["ridge.alpha"]) == float(alpha)
        assert logged.data.metrics["cv_log_rmse"] == pytest.approx(ensemble_cv(repo))
    best = min(exps, key=lambda name: ensemble_cv(exps[name][0]))
    champion = client.get_model_version_by_alias("houseprices-ensemble", "champion")
    assert champion.tags["dvc.experiment"] == best
    loser = next(name for name in exps if name != best)
    assert "does not beat @champion" in logs[loser] or "is @champion" in logs[loser]  # it may have claimed first


def assert_one_study_with_both_workers(storage: str, pids: set[int]) -> None:
    import socket

    import optuna

    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    assert {t.user_attrs["worker"] for t in complete} == {f"{socket.gethostname()}:{pid}" for pid in pids}
