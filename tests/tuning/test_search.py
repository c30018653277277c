"""Optuna search: config checks, sampling, pruning, resume, workers sharing a PostgreSQL
study, a killed worker, and --apply writing params.yaml that DVC and MLflow then agree on."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import optuna
import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import RAW, RIDGE_SEARCH, ROOT, built_once, copy_repo, new_store, run, stage_env
from houseprices.config.params import parse_params
from houseprices.config.search import SearchConfig, load_search
from houseprices.errors import ConfigError
from houseprices.evaluation.cross_validation import cross_validate
from houseprices.tuning.search import apply_to_params, load_study, make_objective, objective_hash, suggest, worker_seed
from postgres import PostgresServer, postgres, unavailable  # noqa: F401 - the fixture

LASSO_SPACE = {"alpha": {"low": 0.0001, "high": 0.01, "log": True}}


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """In-process searches keep the folds' preprocessing in the working folder's .cache/."""
    monkeypatch.chdir(tmp_path)


def write_search(path: Path, **lasso) -> Path:
    search = {
        "heartbeat_interval": 1,
        "grace_period": 2,
        "models": {
            "lasso": {"trials": 3, "sampler": "random", "pruner": {"kind": "none"}, "space": LASSO_SPACE, **lasso}
        },
    }
    path.write_text(yaml.safe_dump(search, sort_keys=False))
    return path


def small_params() -> dict:
    return {
        "cv": {"folds": 2, "repeats": 1},
        "models": {"lasso": {"kind": "lasso"}, "ridge": {"kind": "ridge"}},
        "ensemble": {"members": ["lasso", "ridge"]},
    }


# ------------------------------------------------------------------ search.yaml
@pytest.mark.parametrize(
    "space, message",
    [
        (
            {"alhpa": {"low": 1, "high": 2}},
            r"search.yaml: models.lasso.space: \['alhpa'\] are not params of models.lasso",
        ),
        (
            {"alpha": {"low": 0.0, "high": 2}},
            r"search.yaml: models.lasso.space.alpha: 0.0 does not fit models.lasso.alpha",
        ),
        ({"alpha": {"low": 1, "hgh": 2}}, r"search.yaml: .*models.lasso.space.alpha.hgh: unknown key"),
    ],
)
def test_search_file_errors_name_the_file_and_key(tmp_path, space, message):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"models": {"lasso": {"space": space}}}))
    with pytest.raises(ConfigError, match=message):
        load_search(path, parse_params(small_params()), "lasso")


def test_a_model_without_a_space_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"no search space for 'ridge'.*searchable: \['lasso'\]"):
        load_search(write_search(tmp_path / "search.yaml"), parse_params(small_params()), "ridge")


def test_committed_search_file_fits_the_committed_params():
    from houseprices.config.params import load_params

    params = load_params(ROOT / "params.yaml")
    for name in yaml.safe_load((ROOT / "search.yaml").read_text())["models"]:
        load_search(ROOT / "search.yaml", params, name)


def test_study_changes_with_the_objective_not_with_applied_values(tmp_path):
    params = parse_params(small_params())
    _, cfg = load_search(write_search(tmp_path / "search.yaml"), params, "lasso")
    raw = small_params()
    raw["models"]["lasso"]["alpha"] = 0.003
    applied = parse_params(raw)
    assert objective_hash(applied, "lasso", cfg) == objective_hash(params, "lasso", cfg)
    other_cv = parse_params({**small_params(), "cv": {"folds": 3}})
    assert objective_hash(other_cv, "lasso", cfg) != objective_hash(params, "lasso", cfg)
    _, wider = load_search(
        write_search(tmp_path / "wide.yaml", space={"alpha": {"low": 1e-5, "high": 0.01}}), params, "lasso"
    )
    assert objective_hash(params, "lasso", wider) != objective_hash(params, "lasso", cfg)


# --------------------------------------------------------------------- sampling
def sampled(cfg, seed: int, n: int, worker: int = 0, storage=None) -> list[dict]:
    study = load_study(storage or optuna.storages.InMemoryStorage(), "s", cfg, seed, worker)
    study.optimize(lambda t: float(suggest(t, cfg.space)["alpha"]), n_trials=n)
    return [t.params for t in study.trials[-n:]]


def test_random_sampler_draws_scale_params_log_uniformly(tmp_path):
    _, cfg = load_search(
        write_search(tmp_path / "s.yaml", space={"alpha": {"low": 1e-5, "high": 0.1, "log": True}}),
        parse_params(small_params()),
        "lasso",
    )
    values = np.array([p["alpha"] for p in sampled(cfg, 0, 400)])
    assert values.min() >= 1e-5 and values.max() <= 0.1
    # Each decade gets about a quarter of the draws (uniform sampling would put 90% in the top one).
    assert 0.15 < np.mean(values < 1e-4) < 0.35


def test_seeded_worker_is_reproducible_and_workers_differ(tmp_path):
    _, cfg = load_search(write_search(tmp_path / "s.yaml"), parse_params(small_params()), "lasso")
    assert sampled(cfg, 7, 5) == sampled(cfg, 7, 5)
    assert sampled(cfg, 7, 5, worker=1) != sampled(cfg, 7, 5)
    storage = optuna.storages.InMemoryStorage()
    first = sampled(cfg, 7, 5, storage=storage)
    resumed = sampled(cfg, 7, 5, storage=storage)  # the same command again: new points, not a replay
    assert first != resumed and worker_seed(7, 0, 5) != worker_seed(7, 0, 0)


def test_choices_of_lists_round_trip():
    cfg = SearchConfig.model_validate({"sampler": "random", "space": {"hidden": {"choices": [[64], [256, 128]]}}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {tuple(suggest(study.ask(), cfg.space)["hidden"]) for _ in range(20)}
    assert seen == {(64,), (256, 128)}


# ---------------------------------------------------------------------- objective
def test_objective_scores_the_pipelines_folds(small_xy):
    X, y = small_xy
    params = parse_params({**small_params(), "cv": {"folds": 3, "repeats": 1}})
    cfg = SearchConfig.model_validate({"space": {"alpha": {"low": 1.0, "high": 100.0}}, "pruner": {"kind": "none"}})
    study = load_study(optuna.storages.InMemoryStorage(), "s", cfg, params.seed)
    study.enqueue_trial({"alpha": 10.0})
    study.optimize(make_objective(params, "ridge", cfg.space, X, y), n_trials=1)
    trial = study.trials[0]
    expected = cross_validate("ridge", params, X, y)
    assert trial.value == pytest.approx(expected.mean, rel=1e-12)
    assert trial.intermediate_values[0] == pytest.approx(expected.fold_scores[0], rel=1e-12)
    assert sorted(trial.intermediate_values) == [0, 1, 2]


def ridge_study(small_xy, pruner: dict, alphas: list[float]) -> optuna.Study:
    """An in-memory ridge study on 3 folds that has run the given alphas, in order."""
    X, y = small_xy
    params = parse_params({**small_params(), "cv": {"folds": 3, "repeats": 1}})
    cfg = SearchConfig.model_validate({"space": {"alpha": {"low": 0.1, "high": 1e6, "log": True}}, "pruner": pruner})
    study = load_study(optuna.storages.InMemoryStorage(), "s", cfg, params.seed)
    for alpha in alphas:
        study.enqueue_trial({"alpha": alpha})
    study.optimize(make_objective(params, "ridge", cfg.space, X, y), n_trials=len(alphas))
    return study


def test_a_hopeless_trial_is_pruned_after_its_first_fold_and_is_not_a_result(small_xy):
    # alpha 1e6 predicts the mean price: far worse on every fold
    study = ridge_study(small_xy, {"kind": "median", "startup_trials": 1}, [10.0, 1e6])
    good, bad = study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert list(bad.intermediate_values) == [0]
    # Optuna keeps the last running mean on a pruned trial, but never makes it the result.
    assert study.best_trial.number == good.number and study.best_value == good.value


def test_hyperband_prunes_hopeless_trials_at_its_first_rung(small_xy):
    study = ridge_study(
        small_xy, {"kind": "hyperband", "reduction_factor": 3}, [10.0, 3.0, 30.0, 1e6, 3e5, 1e5, 5e5, 2e5]
    )
    assert isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.params["alpha"] >= 1e5 for t in pruned)
    assert all(len(t.intermediate_values) < 3 for t in pruned)
    assert study.best_trial.params["alpha"] <= 30.0


def test_successive_halving_keeps_only_the_best_third_at_its_first_rung(small_xy):
    study = ridge_study(
        small_xy, {"kind": "successive_halving", "reduction_factor": 3}, [10.0, 3.0, 30.0, 1e6, 3e5, 1e5, 5e5, 2e5]
    )
    assert isinstance(study.pruner, optuna.pruners.SuccessiveHalvingPruner)
    hopeless = [t for t in study.trials if t.params["alpha"] >= 1e5]
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in hopeless)
    assert all(len(t.intermediate_values) == 2 for t in hopeless)  # the first rung: after 2 of 3 folds
    assert study.best_trial.params["alpha"] <= 30.0


# -------------------------------------------------------------------------- apply
def test_apply_edits_only_the_models_keys_and_keeps_comments(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    before_text = path.read_text()
    before = before_text.splitlines()
    changes = apply_to_params(path, "mlp", {"lr": 0.0042, "hidden": [256, 128], "dropout": 0.0})
    assert changes == [("models.mlp.hidden", [128], [256, 128]), ("models.mlp.lr", 0.007, 0.0042)]
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    assert len(before) == len(after) and len(changed) == 2
    assert changed[0][1] == "    hidden: [256, 128]"
    assert changed[1][1].startswith("    lr: 0.0042")
    assert "# Every key is validated" in path.read_text() and path.read_text().count("#") == before_text.count("#")
    assert yaml.safe_load(path.read_text())["models"]["lasso"]["alpha"] == 0.0005


def test_apply_refuses_invalid_params_and_leaves_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    before = path.read_bytes()
    with pytest.raises(
        ConfigError, match=r"params.yaml with the search result: models.lasso.alpha: Input should be greater than 0"
    ):
        apply_to_params(path, "lasso", {"alpha": -1.0})
    assert path.read_bytes() == before


# ------------------------------------------------------------- CLI and storages
def prepare(work: Path) -> None:
    data = {
        k: str(RAW / f)
        for k, f in [
            ("train", "train.csv"),
            ("test", "test.csv"),
            ("sample_submission", "sample_submission.csv"),
            ("checksums", "SHA256SUMS"),
        ]
    }
    (work / "params.yaml").write_text(yaml.safe_dump({"data": data}))
    run(["houseprices", "prepare"], work)


@pytest.fixture(scope="session")
def prepared(run_dir) -> Path:
    """data/prepared from the committed CSVs, made once for every worker (read only: the CLI
    tests link it into their projects)."""
    return built_once(run_dir, "search-prepared", prepare) / "data/prepared"


def project(tmp_path: Path, prepared: Path, fresh: bool = False, **lasso) -> Path:
    """A folder to search in; ``fresh``: no MLflow store yet, as in a new clone."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/prepared").symlink_to(prepared)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_params()))
    write_search(tmp_path / "search.yaml", **lasso)
    if fresh:
        return tmp_path
    uri = new_store(tmp_path / "mlflow.db")
    MlflowClient(uri).create_experiment("houseprices", artifact_location=(tmp_path / "mlruns").as_uri())
    return tmp_path


def search_cmd(*args: str) -> list[str]:
    return ["houseprices", "search", "--model", "lasso", *args]


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    env = stage_env(MLFLOW_TRACKING_URI=f"sqlite:///{cwd / 'mlflow.db'}")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def the_study(storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def freeze_mid_trial(proc: subprocess.Popen, url: str, seconds: float = 300) -> optuna.trial.FrozenTrial | None:
    """Stop `proc` (SIGSTOP) at a moment its trial is RUNNING in storage with a fold reported (so
    heartbeats were recorded): a stopped process cannot finish the trial, so the kill that follows
    is certainly mid-trial, however short the trials are. One storage (one connection pool) for
    all the polls: a storage per poll would exhaust the server's connections."""
    mine = f"{socket.gethostname()}:{proc.pid}"
    storage = optuna.storages.RDBStorage(url)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if not optuna.get_all_study_summaries(storage):
                continue
            os.kill(proc.pid, signal.SIGSTOP)
            running = [
                t
                for t in the_study(storage).get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if t.user_attrs.get("worker") == mine and t.intermediate_values
            ]
            if running:
                return running[0]
            os.kill(proc.pid, signal.SIGCONT)
        return None
    finally:
        storage.engine.dispose()


@pytest.mark.slow(seconds=60)
def test_a_killed_workers_trial_is_failed_and_two_workers_share_the_study(tmp_path, prepared, postgres):  # noqa: F811
    """A worker SIGKILLed mid-trial leaves its trial RUNNING; the two workers that join the
    PostgreSQL study later fail it (its heartbeat is stale) and share the trials that follow."""
    work = project(tmp_path, prepared)
    url = postgres.new_database()
    doomed = start(search_cmd("--trials", "50", "--storage", url), work)
    running = freeze_mid_trial(doomed, url)
    assert running is not None, "the first worker never stopped in the middle of a trial"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    # The workers start more than grace_period (2 s) after the last heartbeat.
    workers = [start(search_cmd("--trials", "3", "--storage", url, "--worker", str(i)), work) for i in (1, 2)]
    for proc in workers:
        finish(proc)
    study = the_study(url)
    states = {t.number: t.state for t in study.trials}
    assert states[running.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.RUNNING not in states.values()
    assert sorted(states) == list(range(len(study.trials)))  # one numbering for every worker
    joined = [t for t in study.trials if t.user_attrs.get("worker") != running.user_attrs["worker"]]
    assert len(joined) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in joined)
    assert {t.user_attrs["worker"] for t in joined} == {f"{socket.gethostname()}:{p.pid}" for p in workers}
    assert len({t.params["alpha"] for t in joined}) == 6


@pytest.mark.slow(seconds=90)
def test_a_resumed_search_applies_what_dvc_shows_and_mlflow_logs(built_repo, tmp_path):
    """Search and apply, then search on (the same study resumes, drawing new values) and apply
    again: params.yaml holds the study's best, DVC sees it, every trial is an MLflow child of its
    search run, and an experiment on the applied file logs the params that trained it."""
    repo = copy_repo(built_repo, tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tracking"]["log_models"] = False  # what is asserted is the logged params, not a model
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "search.yaml").write_text(
        yaml.safe_dump(
            RIDGE_SEARCH,
            sort_keys=False,
        )
    )
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "the built pipeline and search settings"], repo)
    search = ["houseprices", "search", "--model", "ridge", "--trials", "2", "--apply"]
    url = f"sqlite:///{repo / 'search/optuna.db'}"

    out = run(search, repo).stdout
    first = the_study(url)
    assert "params.yaml: models.ridge.alpha: 10.0 -> " in out
    out = run(search, repo).stdout
    again = the_study(url)
    assert again.study_name == first.study_name and [t.number for t in again.trials] == [0, 1, 2, 3]
    assert len({t.params["alpha"] for t in again.trials}) == 4  # the resumed worker drew new values
    assert again.best_value <= first.best_value and f"{again.best_value:.5f}" in out
    assert yaml.safe_load((repo / "params.yaml").read_text())["models"]["ridge"]["alpha"] == again.best_params["alpha"]
    assert "models.ridge.alpha" in run(["dvc", "params", "diff"], repo).stdout
    assert run(["git", "status", "--porcelain"], repo).stdout.split() == ["M", "params.yaml"]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    assert_trials_are_children_of_their_searches(client, searches=2, trials=4)

    run(["dvc", "exp", "run", "-S", "models.ridge.alpha=0.002", "train@ridge"], repo)  # the stage that reads it
    assert yaml.safe_load((repo / "params.yaml").read_text())["models"]["ridge"]["alpha"] == 0.002
    exp = client.get_experiment_by_name("houseprices")
    latest = client.search_runs(
        [exp.experiment_id],
        "attributes.run_name = 'train ridge'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert float(latest.data.params["models.ridge.alpha"]) == 0.002
    assert not math.isnan(latest.data.metrics["cv_log_rmse"])


def assert_trials_are_children_of_their_searches(client: MlflowClient, searches: int, trials: int) -> None:
    """Each trial's run is a child of a search run, with its params and its per-fold scores."""
    exp = client.get_experiment_by_name("houseprices")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    search_runs = [r for r in runs if r.data.tags.get("houseprices.kind") == "search"]
    trial_runs = [r for r in runs if r.data.tags.get("houseprices.kind") == "trial"]
    assert len(search_runs) == searches and len(trial_runs) == trials
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == {r.info.run_id for r in search_runs}
    one = trial_runs[0]
    assert one.data.tags["optuna.state"] == "complete" and "alpha" in one.data.params
    history = client.get_metric_history(one.info.run_id, "fold_log_rmse")
    assert [m.step for m in history] == [0, 1]
    assert one.data.metrics["cv_log_rmse"] == pytest.approx(np.mean([m.value for m in history]))


def test_a_worker_that_loses_the_race_to_create_the_experiment_joins_it(tmp_path, monkeypatch):
    from houseprices.tracking.store import ensure_experiment

    uri = new_store(tmp_path / "mlflow.db")
    winner, loser = MlflowClient(uri), MlflowClient(uri)
    look = loser.get_experiment_by_name
    looks = []

    def racing(name):  # the other worker creates it just after this one looked
        looks.append(name)
        if len(looks) == 1:
            winner.create_experiment(name)
            return None
        return look(name)

    monkeypatch.setattr(loser, "get_experiment_by_name", racing)
    assert ensure_experiment(loser, uri, "houseprices", tmp_path) == look("houseprices").experiment_id
    assert len(looks) == 2


# ------------------------------------------------------ a server that hangs
@pytest.fixture
def own_postgres():
    """A server of this test's own, since the test hangs it (SIGSTOP on every one of its
    processes) and only the teardown resumes it."""
    if unavailable():
        pytest.skip(unavailable())
    server = PostgresServer().start()
    yield server
    server_processes(server, signal.SIGCONT)
    server.stop()


def server_processes(server: PostgresServer, sig: signal.Signals) -> None:
    """``sig`` to the postmaster and every backend (a paused VM stops them all)."""
    main = psutil.Process(int((server.dir / "data/postmaster.pid").read_text().split()[0]))
    for proc in [main, *main.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


def ended_within_a_minute(proc: subprocess.Popen, since: float) -> tuple[str, float]:
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the worker still waits 120 s after the hang:\n{proc.communicate()[0][-3000:]}")
    seconds = time.monotonic() - since
    print(f"\nhung PostgreSQL: exit {proc.returncode} after {seconds:.1f} s")
    assert proc.returncode == 2 and "Traceback" not in out, out
    assert seconds < 60, f"took {seconds:.0f} s"
    return out, seconds


@pytest.mark.slow(seconds=36)
def test_a_postgres_server_that_hangs_mid_search_ends_the_worker(tmp_path, prepared, own_postgres):
    work = project(tmp_path, prepared)
    url = own_postgres.new_database()
    worker = start(search_cmd("--trials", "500", "--storage", url), work)
    storage = optuna.storages.RDBStorage(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        summaries = optuna.get_all_study_summaries(storage)
        if summaries and summaries[0].n_trials >= 2:
            break
        time.sleep(0.2)
    storage.engine.dispose()
    assert worker.poll() is None, worker.communicate()[0]
    server_processes(own_postgres, signal.SIGSTOP)
    out, _ = ended_within_a_minute(worker, time.monotonic())
    (line,) = [line for line in out.splitlines() if ": error: " in line]
    assert f"PostgreSQL server 127.0.0.1:{own_postgres.port}/" in line and "did not answer" in line, out
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    statuses = {r.info.status for r in client.search_runs([client.get_experiment_by_name("houseprices").experiment_id])}
    assert "RUNNING" not in statuses, statuses


@pytest.mark.slow(seconds=20)
def test_a_listener_that_never_answers_ends_the_worker_at_start(tmp_path, prepared):
    """A port that accepts connections (the kernel does) and never says a word."""
    work = project(tmp_path, prepared)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        worker = start(search_cmd("--storage", f"postgresql+psycopg://postgres@127.0.0.1:{port}/db"), work)
        out, _ = ended_within_a_minute(worker, time.monotonic())
    assert f"PostgreSQL server 127.0.0.1:{port}/db did not answer a connection within" in out, out


# ------------------------------------------------------- workers start together
@pytest.mark.slow(seconds=25)
def test_workers_started_together_on_a_fresh_clone_share_the_stores(tmp_path, prepared):
    """No mlflow.db and no search/optuna.db yet (the README's two workers on one machine):
    the first creates MLflow's schema and the study, the other waits and joins."""
    work = project(tmp_path, prepared, fresh=True)
    workers = [start(search_cmd("--trials", "2", "--worker", str(i)), work) for i in (0, 1, 2)]
    for proc in workers:
        finish(proc, timeout=300)
    study = the_study(f"sqlite:///{work / 'search/optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 6
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    search_runs = client.search_runs([client.get_experiment_by_name("houseprices").experiment_id])
    assert sum(r.info.run_name == "search lasso" for r in search_runs) == 3


@pytest.mark.slow(seconds=47)
def test_workers_started_together_share_postgres_stores(tmp_path, prepared, postgres):  # noqa: F811
    """The same on PostgreSQL: Optuna's study and MLflow's store in new databases."""
    work = project(tmp_path, prepared, fresh=True)
    storage, store = postgres.new_database(), postgres.new_database()
    env = stage_env(MLFLOW_TRACKING_URI=store)
    workers = [
        subprocess.Popen(
            search_cmd("--trials", "2", "--worker", str(i), "--storage", storage),
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (0, 1, 2)
    ]
    for proc in workers:
        finish(proc, timeout=300)
    assert [t.state for t in the_study(storage).trials] == [optuna.trial.TrialState.COMPLETE] * 6
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("houseprices").experiment_id])
    assert sum(r.info.run_name == "search lasso" and r.info.status == "FINISHED" for r in runs) == 3


@pytest.mark.slow(seconds=32)
def test_an_mlflow_store_on_postgres_that_hangs_mid_search_ends_the_worker(tmp_path, prepared, own_postgres):
    work = project(tmp_path, prepared, fresh=True)
    store = own_postgres.new_database()
    worker = subprocess.Popen(
        search_cmd("--trials", "500"),
        cwd=work,
        env=stage_env(MLFLOW_TRACKING_URI=store),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    storage = f"sqlite:///{work / 'search/optuna.db'}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
        if (work / "search/optuna.db").exists():
            with contextlib.suppress(Exception):  # the worker may be creating it
                summaries = optuna.get_all_study_summaries(storage)
                if summaries and summaries[0].n_trials >= 2:
                    break
    assert worker.poll() is None, worker.communicate()[0]
    server_processes(own_postgres, signal.SIGSTOP)
    out, _ = ended_within_a_minute(worker, time.monotonic())
    (line,) = [line for line in out.splitlines() if ": error: " in line]
    assert f"PostgreSQL server 127.0.0.1:{own_postgres.port}/" in line and "did not answer" in line, out
    states = {t.state for t in the_study(storage).trials}
    assert optuna.trial.TrialState.RUNNING not in states, states
