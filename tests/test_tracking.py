"""Where runs go, what they carry, and what happens when the store is away."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from houseprices.config import parse_params
from houseprices.errors import TrackingError
from houseprices.tracking import (
    PIPELINE_RUN_TAG,
    Tracker,
    check_reachable,
    flatten,
    pipeline_run_id,
    repo_root,
    tracking_uri,
)
from conftest import make_repo, run, tiny_params


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        "models.mlp.lr": 0.1, "models.mlp.hidden": [2], "seed": 1}


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
    assert not tracker.enabled
    with tracker.stage_run("x", "stage", {"a": 1}) as active:
        assert active is None


def test_stage_command_fails_before_training_when_the_store_is_away(tmp_path):
    """The real CLI: exit 2 in seconds with the URI named; trains with required: false."""
    uri = f"http://127.0.0.1:{free_port()}"
    repo = make_repo(tmp_path / "repo")
    run(["houseprices", "prepare"], repo)
    start = time.perf_counter()
    failed = run(["houseprices", "train", "--model", "ridge"], repo, check=False, MLFLOW_TRACKING_URI=uri)
    assert failed.returncode == 2
    assert uri in failed.stderr and "Traceback" not in failed.stderr
    assert time.perf_counter() - start < 30
    assert not (repo / "models/members/ridge").exists()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tracking"]["required"] = False
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ok = run(["houseprices", "train", "--model", "ridge"], repo, MLFLOW_TRACKING_URI=uri)
    assert "training without tracking" in ok.stderr
    assert (repo / "models/members/ridge/model.joblib").is_file()


# ------------------------------------------------------------ remote server
@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a temporary SQLite backend."""
    work = tmp_path_factory.mktemp("server")
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{work}/backend.db", "--artifacts-destination", str(work / "artifacts"),
         "--workers", "1"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=(work / "server.log").open("w"))
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            check_reachable(uri, timeout=2)
            break
        except TrackingError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"mlflow server did not start:\n{(work / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
    yield uri
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
def test_repro_logs_its_run_tree_to_a_remote_server(tmp_path, mlflow_server):
    repo = make_repo(tmp_path / "repo")
    # -f: every stage runs (featurize's committed outputs would otherwise be current).
    run(["dvc", "repro", "-f"], repo, MLFLOW_TRACKING_URI=mlflow_server)
    assert not (repo / "mlflow.db").exists()

    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("houseprices")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_id = {r.info.run_id: r for r in runs}
    parents = [r for r in runs if r.data.tags.get("houseprices.kind") == "pipeline"]
    assert len(parents) == 1
    parent = parents[0]
    tags = parent.data.tags
    for key in ("git.commit", "git.dirty", "params.sha256", "data.train.csv.sha256", "data.test.csv.sha256",
                "version.torch", "version.skorch", "version.scikit-learn", "version.mlflow", "version.dvc",
                "python.version", PIPELINE_RUN_TAG):
        assert tags.get(key), key
    assert tags["git.commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert {"ensemble.cv_log_rmse", "ensemble.cv_log_rmse_excl_outliers", "ensemble.coverage_80",
            "ensemble.coverage_95", "mlp.cv_log_rmse", "ridge.cv_log_rmse"} <= set(parent.data.metrics)

    def parent_of(r):
        return r.data.tags.get("mlflow.parentRunId")

    children = {r.info.run_name: r for r in runs if parent_of(r) == parent.info.run_id}
    assert {"featurize", "train mlp", "train ridge", "ensemble", "submission"} <= set(children)
    mlp = children["train mlp"]
    assert mlp.data.params["models.mlp.hidden"] == "[16]"
    folds = [r for r in runs if parent_of(r) == mlp.info.run_id]
    assert sorted(r.info.run_name for r in folds) == ["mlp r1f1", "mlp r1f2"]
    history = client.get_metric_history(folds[0].info.run_id, f"train_loss.{folds[0].info.run_name.split()[-1]}")
    assert [m.step for m in history] == [1, 2, 3]  # one point per epoch
    assert all(parent_of(by_id[parent_of(f)]) == parent.info.run_id for f in folds)

    artifacts = {a.path for a in client.list_artifacts(children["ensemble"].info.run_id, "plots")}
    assert "plots/predicted_vs_actual.png" in artifacts
    assert [a.path for a in client.list_artifacts(children["submission"].info.run_id, "submission")]

    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    versions = client.search_model_versions("name = 'houseprices-ensemble'")
    assert len(versions) == 1
    model = mlflow.pyfunc.load_model(f"models:/houseprices-ensemble/{versions[0].version}")
    rows = pd.read_csv(repo / "data/raw/test.csv").head(4)
    rows.loc[0, [c for c in rows.columns if c != "Id"]] = np.nan  # every feature missing
    prices = np.asarray(model.predict(rows), dtype=float)
    assert prices.shape == (4,) and np.isfinite(prices).all() and (prices > 0).all()
    assert model.metadata.signature is not None


@pytest.mark.slow
def test_two_queued_experiments_both_land_in_the_main_store(tmp_path):
    params = tiny_params()
    params["models"] = {"ridge": {"kind": "ridge", "alpha": 10.0}}
    params["ensemble"]["members"] = ["ridge"]
    repo = make_repo(tmp_path / "repo", params)
    run(["dvc", "repro"], repo)
    for alpha in ("1", "100"):
        run(["dvc", "exp", "run", "--queue", "-S", f"models.ridge.alpha={alpha}"], repo)
    run(["dvc", "queue", "start", "-j", "2"], repo)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("houseprices")
    pipelines = client.search_runs([exp.experiment_id], "tags.`houseprices.kind` = 'pipeline'")
    names = {r.data.tags.get("dvc.experiment") for r in pipelines}
    assert len(names - {""}) == 2, names
    shown = run(["dvc", "exp", "show", "--json"], repo).stdout
    for name in names - {""}:
        assert name in shown
