"""The real `dvc repro`, on a copy of the repository with a tiny params override."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import ROOT

pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["cv"] = {"folds": 2, "repeats": 1}
    mlp = {**params["models"]["mlp"], "hidden": [16], "epochs": 3}
    params["models"] = {"mlp": mlp, "ridge": {"kind": "ridge", "alpha": 10.0}}
    params["ensemble"]["members"] = ["mlp", "ridge"]
    params.pop("search", None)
    return params


def copy_repo(dest: Path) -> None:
    """What a clean clone would hold: tracked files plus new, non-ignored ones."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def stage_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "DVC_", "HOUSEPRICES_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=stage_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("repo")
    copy_repo(dest)
    (dest / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        run(cmd, dest)
    run(["dvc", "repro"], dest)
    return dest


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
    ignored = subprocess.run(["git", "check-ignore", "submission.csv", "models/members/mlp", "mlflow.db",
                              "mlruns", "data/prepared"], cwd=repo, capture_output=True, text=True)
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
    assert parent.data.tags["git.commit"] != "unknown"
    children = {r.info.run_name: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    # featurize may be skipped: its params are unchanged and its committed outputs current.
    assert {"train mlp", "train ridge", "ensemble"} <= set(children)
    train_mlp = children["train mlp"]
    assert train_mlp.data.params["models.mlp.epochs"] == "3"
    assert "cv_log_rmse_mean" in train_mlp.data.metrics
    folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == train_mlp.info.run_id]
    assert len(folds) == 2 and all("log_rmse" in f.data.metrics for f in folds)

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/houseprices-ensemble/1")
    raw = pd.read_csv(repo / "data/raw/test.csv")
    prices = np.asarray(model.predict(raw), dtype=float)
    sub = pd.read_csv(repo / "submission.csv")
    np.testing.assert_allclose(prices, sub["SalePrice"], atol=0.01)


def test_forced_rerun_is_byte_identical(repo):
    before = (repo / "submission.csv").read_bytes()
    run(["dvc", "repro", "-f"], repo)
    assert (repo / "submission.csv").read_bytes() == before
