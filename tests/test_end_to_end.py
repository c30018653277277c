"""The real `dvc repro`, on a copy of the repository with a tiny params override."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import copy_repo, free_port, run, stage_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(name="test_end_to_end:repo")]


@pytest.fixture(scope="module")
def repo(built_repo, tmp_path_factory) -> Path:
    """The tiny repo after `dvc repro`: a copy, as these tests run DVC in it again."""
    return copy_repo(built_repo, tmp_path_factory.mktemp("repo") / "repo")


def test_submission_is_valid(repo):
    sub = pd.read_csv(repo / "submission.csv")
    sample = pd.read_csv(repo / "data/raw/sample_submission.csv")
    assert list(sub.columns) == ["Id", "SalePrice"]
    assert sub["Id"].tolist() == sample["Id"].tolist()
    assert np.isfinite(sub["SalePrice"]).all() and (sub["SalePrice"] > 0).all()
    intervals = pd.read_csv(repo / "predictions_with_intervals.csv")
    assert (intervals["lower_95"] <= intervals["lower_80"]).all()
    assert (intervals["lower_80"] <= intervals["SalePrice"]).all()
    assert (intervals["SalePrice"] <= intervals["upper_80"]).all()


def test_outputs_stay_out_of_git(repo):
    ignored = subprocess.run(
        ["git", "check-ignore", "submission.csv", "models/members/mlp", "mlflow.db", "mlruns", "data/prepared"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert len(ignored.stdout.split()) == 5, ignored.stdout


def test_metrics_show_the_cv_score(repo):
    out = run(["dvc", "metrics", "show", "--json"], repo).stdout
    assert "cv_log_rmse_mean" in out and "metrics/mlp.json" in out and "metrics/ensemble.json" in out


def test_nothing_reruns_when_nothing_changed(repo):
    out = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in out
    assert "up to date" in out


def test_mlflow_holds_one_tree_with_folds_and_a_loadable_model(repo):
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("houseprices")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("houseprices.kind") == "pipeline"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["git.commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert parent.data.tags["git.dirty"] == "false"  # dvc.lock and metrics change during a run
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    # featurize may be skipped: its params are unchanged and its committed outputs current.
    assert {"train mlp", "train ridge", "ensemble"} <= set(children)
    train_mlp = children["train mlp"]
    assert train_mlp.data.params["models.mlp.epochs"] == "3"
    assert "cv_log_rmse" in train_mlp.data.metrics
    folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == train_mlp.info.run_id]
    assert len(folds) == 2 and all("log_rmse" in f.data.metrics for f in folds)

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/houseprices-ensemble/1")
    raw = pd.read_csv(repo / "data/raw/test.csv")
    prices = np.asarray(model.predict(raw), dtype=float)
    sub = pd.read_csv(repo / "submission.csv")
    np.testing.assert_allclose(prices, sub["SalePrice"], atol=0.01)


PRICE = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps([float(p) for p in model.predict(pd.read_csv(sys.argv[2]))]))
"""


def answered(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):  # noqa: S310 - the server on 127.0.0.1
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"{url} did not answer within {seconds:.0f} s")


@pytest.mark.slow(seconds=90)
def test_the_champion_serves_from_nothing_but_its_own_requirements(repo, tmp_path):
    """A virtual environment made from the registered model's requirements.txt alone (not this
    project's): @champion loads there and prices test.csv as submission.csv does, and `mlflow
    models serve` of it, from that environment, answers a REST request with the same prices."""
    uri, champion = f"sqlite:///{repo / 'mlflow.db'}", "models:/houseprices-ensemble@champion"
    mlflow.set_tracking_uri(uri)  # a models:/ URI is looked up in the registry of the current one
    model = Path(mlflow.artifacts.download_artifacts(champion, dst_path=str(tmp_path / "model")))
    venv, uv = tmp_path / "venv", Path(sys.executable).parent / "uv"  # pip's interface, installing in parallel
    links = [f"--find-links={link}" for link in os.environ.get("PIP_FIND_LINKS", "").split()]  # the CPU torch wheel
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, venv], check=True, timeout=120)
    install = [uv, "pip", "install", "-q", "--python", venv / "bin/python", *links, "-r", model / "requirements.txt"]
    subprocess.run(
        install, check=True, timeout=900, capture_output=True, env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv")}
    )
    expected = pd.read_csv(repo / "submission.csv")["SalePrice"]
    test_csv = repo / "data/raw/test.csv"
    compiled = {"PYTHONDONTWRITEBYTECODE": ""}  # imports compiled by the first process only, as in a user's venv
    price = [venv / "bin/python", "-c", PRICE, model, test_csv]
    priced = subprocess.run(price, capture_output=True, text=True, env={**os.environ, **compiled})
    assert priced.returncode == 0, priced.stderr[-3000:]
    np.testing.assert_allclose(json.loads(priced.stdout), expected, atol=0.01)

    port = free_port()
    serve = [venv / "bin/mlflow", "models", "serve", "-m", champion, "--env-manager", "local", "-h", "127.0.0.1"]
    server = subprocess.Popen(
        [*serve, "-p", str(port)],
        cwd=tmp_path,
        env={**stage_env(MLFLOW_TRACKING_URI=uri), **compiled, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        answered(f"http://127.0.0.1:{port}", server)
        rows = pd.read_csv(test_csv).to_json(orient="split", index=False)
        body = json.dumps({"dataframe_split": json.loads(rows)}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the server on 127.0.0.1
            served = json.loads(response.read())["predictions"]
        np.testing.assert_allclose(np.asarray(served, dtype=float), expected, atol=0.01)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
