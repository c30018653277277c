"""The real `dvc repro`, on a copy of the repository with a tiny params override."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import copy_repo, run

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


@pytest.mark.slow(seconds=25)
def test_mlflow_models_predict_reproduces_the_submission(repo, tmp_path):
    out = tmp_path / "predictions.json"
    run(
        [
            "mlflow",
            "models",
            "predict",
            "-m",
            "models:/houseprices-ensemble/1",
            "-i",
            "data/raw/test.csv",
            "-t",
            "csv",
            "--env-manager",
            "local",
            "-o",
            str(out),
        ],
        repo,
        MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}",
    )
    predicted = np.asarray(json.loads(out.read_text())["predictions"], dtype=float)
    sub = pd.read_csv(repo / "submission.csv")
    np.testing.assert_allclose(predicted, sub["SalePrice"], atol=0.01)
