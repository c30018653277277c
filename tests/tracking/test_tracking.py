"""Where runs go, what they carry, and what happens when the store is away."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import copy_repo, free_port, make_repo, new_store, run, stage_env
from houseprices.config.params import load_params, parse_params
from houseprices.errors import TrackingError
from houseprices.paths import in_workspace, repo_root
from houseprices.tracking.lineage import pipeline_run_id, pipeline_run_name
from houseprices.tracking.registry import CHAMPION, SUBMITTED, mark_submitted
from houseprices.tracking.store import check_reachable, tracking_uri
from houseprices.tracking.tags import PIPELINE_RUN_TAG
from houseprices.tracking.tracker import Tracker, flatten
from houseprices.util.files import file_sha256


# ---------------------------------------------------------------- resolution
def test_default_store_is_the_repo_root_sqlite(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri() == "http://127.0.0.1:5000"
    assert tracking_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"  # params win


def test_queued_experiment_copy_resolves_to_the_main_repo(monkeypatch, tmp_path):
    copy = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    copy.mkdir(parents=True)
    monkeypatch.setenv("DVC_ROOT", str(copy))
    assert repo_root() == (tmp_path / "repo").resolve()


def test_pipeline_run_id_is_shared_through_the_environment(monkeypatch):
    monkeypatch.setenv("HOUSEPRICES_PIPELINE_RUN_ID", "abc")
    assert pipeline_run_id() == "abc"


def test_params_are_flattened_with_dotted_names():
    assert flatten({"models": {"mlp": {"lr": 0.1, "hidden": [2]}}, "seed": 1}) == {
        "models.mlp.lr": 0.1,
        "models.mlp.hidden": [2],
        "seed": 1,
    }


# ------------------------------------------------------------ unreachable
def test_unreachable_server_fails_fast_naming_the_uri():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with pytest.raises(TrackingError, match=uri.replace(".", r"\.")):
        check_reachable(uri)
    assert time.perf_counter() - start < 10


def test_unwritable_sqlite_store_is_refused(tmp_path):
    with pytest.raises(TrackingError, match="missing or not writable"):
        check_reachable(f"sqlite:///{tmp_path}/no/such/dir/mlflow.db")


def test_not_required_tracking_warns_and_goes_on(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    params = parse_params({"tracking": {"uri": uri, "required": False}})
    with pytest.warns(UserWarning, match="training without tracking"):
        tracker = Tracker.open(params, root=tmp_path)
    assert tracker.off
    with tracker.run("x", "stage", {"a": 1}) as run, tracker.run("y", "fold", parent=run) as child:
        run.log_metrics({"m": 1.0}, tags={"t": 1})
        child.log_steps([("loss", 1.0, 1)])
        assert run.log_model(object(), pd.DataFrame(), member_files={}, description="", version_tags={}) is None
    tracker.set_parent_metrics({"m": 1.0})


@pytest.mark.parametrize("required", [True, False])
def test_a_store_that_fails_mid_stage_fails_it_or_turns_tracking_off(tmp_path, monkeypatch, required):
    """Required: the store's failure is the stage's one-line error and the run ends FAILED.
    Not required: one warning, then every call does nothing and the stage goes on."""
    from mlflow.exceptions import MlflowException

    params = parse_params({"tracking": {"uri": new_store(tmp_path / "mlflow.db"), "required": required}})
    monkeypatch.setenv("HOUSEPRICES_PIPELINE_RUN_ID", "mid-stage")
    tracker = Tracker.open(params, root=tmp_path)
    client, calls = tracker.client, []

    def gone(*args, **kwargs):
        calls.append(args)
        raise MlflowException("db gone")

    with contextlib.ExitStack() as stack:
        if required:
            stack.enter_context(pytest.raises(TrackingError, match="MLflow store .*: db gone"))
        else:
            stack.enter_context(pytest.warns(UserWarning, match="db gone; training without tracking"))
        with tracker.run("train m", "model") as run:
            monkeypatch.setattr(client, "log_batch", gone)
            run.log_metrics({"m": 1.0})
            run.log_metrics({"m": 2.0})  # off by now when not required: not even tried
    assert len(calls) == 1 and tracker.off == (not required)
    (stage,) = client.search_runs([tracker.experiment_id], "attributes.run_name = 'train m'")
    assert stage.info.status == ("FAILED" if required else "RUNNING")  # the next stage closes a stale run


def test_workspace_is_anything_outside_dvc_experiment_copies(monkeypatch, tmp_path):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert in_workspace(tmp_path)
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    copy.mkdir(parents=True)
    assert not in_workspace(copy)
    monkeypatch.setenv("DVC_ROOT", str(copy))
    assert not in_workspace(tmp_path)


def test_pipeline_run_is_named_by_experiment_else_commit_and_time():
    now = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert (
        pipeline_run_name({"git.commit": "abcdef123456", "git.dirty": "true", "dvc.experiment": ""}, now)
        == "abcdef1+ 2026-01-02 03:04"
    )
    assert pipeline_run_name({"git.commit": "abcdef123456", "dvc.experiment": "sappy-dace"}, now) == "sappy-dace"


# ------------------------------------------------------------ remote server
@pytest.mark.slow(seconds=140)
def test_forced_rerun_to_a_remote_server_is_byte_identical_and_logs_its_run_tree(built_repo, tmp_path, mlflow_server):
    """`dvc repro -f` of the built repo with MLFLOW_TRACKING_URI set: the same bytes as the first
    run, dvc.lock included (no output holds a wall-clock value, the pickled models included), and
    the whole run tree on the server, nothing in the repo's own store."""
    uri, _ = mlflow_server
    repo = copy_repo(built_repo, tmp_path / "repo")
    outputs = [
        "dvc.lock",
        "submission.csv",
        "predictions_with_intervals.csv",
        "metrics/mlp.json",
        "metrics/ensemble.json",
        "plots/curves/mlp.csv",
        "plots/ensemble/oof.csv",
    ]
    before = {p: (repo / p).read_bytes() for p in [*outputs, "mlflow.db"]}
    run(["dvc", "repro", "-f"], repo, MLFLOW_TRACKING_URI=uri)
    for path in [*outputs, "mlflow.db"]:
        assert (repo / path).read_bytes() == before[path], path

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("houseprices")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("houseprices.kind") == "pipeline"]
    assert len(parents) == 1
    assert_run_tree(client, runs, parents[0], repo)
    assert_champion_prices_raw_rows(uri, repo)


def assert_run_tree(client: MlflowClient, runs: list, parent, repo: Path) -> None:
    """Lineage tags and headline metrics on the pipeline run; a child per stage, a grandchild
    per fold with a point per epoch; plots and the submission as artifacts."""
    by_id = {r.info.run_id: r for r in runs}
    tags = parent.data.tags
    for key in (
        "git.commit",
        "git.dirty",
        "params.sha256",
        "data.train.csv.sha256",
        "data.test.csv.sha256",
        "version.torch",
        "version.skorch",
        "version.scikit-learn",
        "version.mlflow",
        "version.dvc",
        "python.version",
        PIPELINE_RUN_TAG,
    ):
        assert tags.get(key), key
    assert tags["git.commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert {
        "cv_log_rmse",
        "cv_log_rmse_excl_outliers",
        "coverage_80",
        "coverage_95",
        "mlp.cv_log_rmse",
        "ridge.cv_log_rmse",
    } <= set(parent.data.metrics)

    def parent_of(r):
        return r.data.tags.get("mlflow.parentRunId")

    children = {r.info.run_name: r for r in runs if parent_of(r) == parent.info.run_id}
    assert {"featurize", "train mlp", "train ridge", "ensemble", "submission"} <= set(children)
    mlp = children["train mlp"]
    assert mlp.data.params["models.mlp.hidden"] == "[16]"
    folds = [r for r in runs if parent_of(r) == mlp.info.run_id]
    assert sorted(r.info.run_name for r in folds) == ["mlp r1f1", "mlp r1f2"]
    history = client.get_metric_history(folds[0].info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2, 3]  # one point per epoch
    assert all(parent_of(by_id[parent_of(f)]) == parent.info.run_id for f in folds)

    artifacts = {a.path for a in client.list_artifacts(children["ensemble"].info.run_id, "plots")}
    assert "plots/predicted_vs_actual.png" in artifacts
    assert [a.path for a in client.list_artifacts(children["submission"].info.run_id, "submission")]


def assert_champion_prices_raw_rows(uri: str, repo: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    versions = MlflowClient(uri).search_model_versions("name = 'houseprices-ensemble'")
    assert len(versions) == 1
    model = mlflow.pyfunc.load_model("models:/houseprices-ensemble@champion")
    rows = pd.read_csv(repo / "data/raw/test.csv").head(4)
    rows.loc[0, [c for c in rows.columns if c != "Id"]] = np.nan  # every feature missing
    prices = np.asarray(model.predict(rows), dtype=float)
    assert prices.shape == (4,) and np.isfinite(prices).all() and (prices > 0).all()
    assert model.metadata.signature is not None


def wait_for_queue(repo: Path, submissions: int, timeout: float = 600) -> str:
    """`dvc queue status` once the store holds this many submission runs (a cheap read; each
    `dvc` call costs ~2 s of CPU the queued experiments need), and every 30 s in case one fails."""
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    deadline, asked = time.time() + timeout, 0.0
    while time.time() < deadline:
        try:
            done = len(
                client.search_runs(
                    [client.get_experiment_by_name("houseprices").experiment_id],
                    "attributes.run_name = 'submission' and attributes.status != 'RUNNING'",
                )
            )
        except Exception:  # noqa: BLE001 - the store may be busy
            done = 0
        if done >= submissions or time.time() - asked > 30:
            asked = time.time()
            status = run(["dvc", "queue", "status"], repo).stdout
            if "Running" not in status and "Queued" not in status:
                return status
        time.sleep(1)
    pytest.fail(f"the queue did not finish within {timeout:.0f}s:\n{status}")


@pytest.mark.slow(seconds=130)
def test_two_queued_experiments_both_land_in_the_main_store(built_repo, tmp_path):
    repo = copy_repo(built_repo, tmp_path / "repo")
    for method in ("mean", "nnls"):  # only ensemble and submission rerun
        run(["dvc", "exp", "run", "--queue", "-S", f"ensemble.method={method}"], repo)
    # The workers are daemons that inherit stdout: a captured pipe would stay open while they
    # idle (under load dvc-task's idle monitor can die and leave them), so no capture, and stop them.
    subprocess.run(
        ["dvc", "queue", "start", "-j", "2"],
        cwd=repo,
        env=stage_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    try:
        status = wait_for_queue(repo, submissions=3)
    finally:
        run(["dvc", "queue", "stop", "--kill"], repo, check=False)
    assert status.count("Success") == 2, status
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("houseprices")
    pipelines = client.search_runs([exp.experiment_id], "tags.`houseprices.kind` = 'pipeline'")
    names = {r.data.tags.get("dvc.experiment") for r in pipelines}
    assert len(names - {""}) == 2, names
    shown = run(["dvc", "exp", "show", "--json"], repo).stdout
    for name in names - {""}:
        assert name in shown
    # Three versions registered; @champion still the workspace's, and it prices as submission.csv does.
    assert len(client.search_model_versions(f"name = '{REGISTERED}'")) == 3
    champion = client.get_model_version_by_alias(REGISTERED, CHAMPION)
    assert champion.tags["dvc.experiment"] == ""
    assert champion.tags["submission.sha256"] == file_sha256(repo / "submission.csv")


# ------------------------------------------------- the pipeline run, in process
REGISTERED = "houseprices-ensemble"


def run_stages(params_file: Path, stages: list[str]) -> None:
    from houseprices.stages import ensemble, prepare, submission, train

    params = load_params(params_file)
    for stage in stages:
        if stage == "prepare":
            prepare.run(params)
        elif stage == "train":
            for name in params.ensemble_members:
                train.run(params, name, params_file)
        elif stage == "ensemble":
            ensemble.run(params, params_file)
        else:
            submission.run(params)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The tiny pipeline's stages run in this process under one pipeline id (as `dvc repro`
    would), then ensemble and submission again in a queued experiment's copy under
    `.dvc/tmp/exps` (as `dvc queue start` would), into the repo's own SQLite store."""
    import mlflow.tracking._tracking_service.utils as uri_state
    import mlflow.tracking.fluent as fluent

    repo = make_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("MLFLOW_", "DVC_", "HOUSEPRICES_"))]:
            mp.delenv(key)
        mp.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # mlflow.set_experiment sets it
        mp.setattr(uri_state, "_tracking_uri", None)
        mp.setattr(fluent, "_active_experiment_id", None)
        mp.chdir(repo)
        mp.setenv("HOUSEPRICES_PIPELINE_RUN_ID", "workspace-run")
        run_stages(Path("params.yaml"), ["prepare", "train", "ensemble", "submission"])

        copy = repo / ".dvc" / "tmp" / "exps" / "tmpq1"
        shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".dvc", ".git", "mlflow.db", "mlruns"))
        mp.chdir(copy)
        mp.setenv("HOUSEPRICES_PIPELINE_RUN_ID", "queued-run")
        mp.setenv("DVC_EXP_NAME", "queued-exp")
        mp.setenv("DVC_ROOT", str(copy))
        run_stages(Path("params.yaml"), ["ensemble", "submission"])
        mp.chdir(repo)

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("houseprices").experiment_id], max_results=1000)
    return repo, client, runs


def pipeline_run(runs, pipeline_id: str):
    found = [
        r
        for r in runs
        if r.data.tags.get("houseprices.kind") == "pipeline" and r.data.tags.get(PIPELINE_RUN_TAG) == pipeline_id
    ]
    assert len(found) == 1, [r.info.run_name for r in found]
    return found[0]


def children(runs, parent) -> dict:
    return {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}


@pytest.mark.xdist_group(name="test_tracking:pipeline")
@pytest.mark.slow(seconds=40)  # the in-process pipeline its group shares
def test_pipeline_run_carries_the_params_that_trained_it(pipeline):
    repo, _, runs = pipeline
    params = pipeline_run(runs, "workspace-run").data.params
    expected = {
        "seed": "42",
        "cv.folds": "2",
        "cv.repeats": "1",
        "mlp.epochs": "3",
        "mlp.hidden": "[16]",
        "ridge.alpha": "10.0",
        "features.scaling": "standard",
        "ensemble.members": "['mlp', 'ridge']",
    }
    assert {k: params.get(k) for k in expected} == expected
    assert "mlp.lr" in params and "ensemble.method" in params and "features.outliers.enabled" in params
    assert not any(k.startswith("models.") for k in params)  # readable: the member is the prefix


@pytest.mark.xdist_group(name="test_tracking:pipeline")
@pytest.mark.slow
def test_pipeline_run_has_readable_name_and_headline_metrics(pipeline):
    repo, _, runs = pipeline
    parent = pipeline_run(runs, "workspace-run")
    commit = run(["git", "rev-parse", "--short=7", "HEAD"], repo).stdout.strip()
    assert parent.info.run_name.startswith(f"{commit} ")
    assert pipeline_run(runs, "queued-run").info.run_name == "queued-exp"
    import json

    ensemble = json.loads((repo / "metrics" / "ensemble.json").read_text())
    metrics = parent.data.metrics
    assert metrics["cv_log_rmse"] == pytest.approx(ensemble["cv_log_rmse_mean"])
    assert metrics["cv_log_rmse_excl_outliers"] == pytest.approx(ensemble["cv_log_rmse_excl_outliers"])
    for member in ("mlp", "ridge"):
        member_metrics = json.loads((repo / "metrics" / f"{member}.json").read_text())
        assert metrics[f"{member}.cv_log_rmse"] == pytest.approx(member_metrics["cv_log_rmse_mean"])
    assert 0 < metrics["coverage_80"] < metrics["coverage_95"] <= 1
    train_mlp = children(runs, parent)["train mlp"]
    assert train_mlp.data.metrics["cv_log_rmse"] == pytest.approx(metrics["mlp.cv_log_rmse"], abs=1e-6)


@pytest.mark.xdist_group(name="test_tracking:pipeline")
@pytest.mark.slow
def test_fold_runs_share_metric_keys_and_span_their_fit(pipeline):
    _, client, runs = pipeline
    parent = pipeline_run(runs, "workspace-run")
    for model, keys in (
        ("mlp", {"log_rmse", "fit_seconds", "train_loss", "holdout_loss"}),
        ("ridge", {"log_rmse", "fit_seconds"}),
    ):
        folds = children(runs, children(runs, parent)[f"train {model}"])
        assert sorted(folds) == [f"{model} r1f1", f"{model} r1f2"]
        for fold in folds.values():
            assert set(fold.data.metrics) == keys  # the fold is the run, not part of the key
            fit_ms = fold.data.metrics["fit_seconds"] * 1000
            open_ms = fold.info.end_time - fold.info.start_time
            assert fit_ms - 5 <= open_ms <= fit_ms + 15_000, (fit_ms, open_ms)
            assert fold.info.status == "FINISHED"
        if model == "mlp":
            history = client.get_metric_history(folds["mlp r1f2"].info.run_id, "train_loss")
            assert [m.step for m in history] == [1, 2, 3]  # one point per epoch


@pytest.mark.xdist_group(name="test_tracking:pipeline")
@pytest.mark.slow
def test_champion_is_the_workspace_version_and_reproduces_its_submission(pipeline):
    import mlflow

    repo, client, runs = pipeline
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{REGISTERED}'")}
    assert set(versions) == {"1", "2"}  # the queued experiment registered one too...
    champion = client.get_model_version_by_alias(REGISTERED, CHAMPION)
    assert str(champion.version) == "1"  # ...but left @champion with the workspace's
    assert champion.tags[PIPELINE_RUN_TAG] == "workspace-run"
    assert champion.tags["git.commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert versions["2"].tags["dvc.experiment"] == "queued-exp" and "ensemble of mlp, ridge" in champion.description
    ensemble_run = children(runs, pipeline_run(runs, "workspace-run"))["ensemble"]
    assert champion.run_id == ensemble_run.info.run_id

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(f"models:/{REGISTERED}@{CHAMPION}")
    finally:
        mlflow.set_tracking_uri(None)
    prices = np.asarray(model.predict(pd.read_csv(repo / "data/raw/test.csv")), dtype=float)
    np.testing.assert_allclose(prices, pd.read_csv(repo / "submission.csv")["SalePrice"], atol=0.01)


@pytest.mark.xdist_group(name="test_tracking:pipeline")
@pytest.mark.slow
def test_submit_marks_the_uploaded_version(pipeline, tmp_path, monkeypatch):
    repo, client, _ = pipeline
    monkeypatch.chdir(repo)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mark_submitted(client, REGISTERED, repo / "submission.csv", "first try") == "1"
    version = client.get_model_version_by_alias(REGISTERED, SUBMITTED)
    assert str(version.version) == "1" and version.tags["kaggle.message"] == "first try"
    other = tmp_path / "other.csv"
    other.write_text("Id,SalePrice\n1,2\n")
    with pytest.warns(UserWarning, match="no houseprices-ensemble version produced it"):
        assert mark_submitted(client, REGISTERED, other, "not ours") is None
