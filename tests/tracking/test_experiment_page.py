"""The experiment as a teammate opens it in MLflow's UI (headless chromium): on its training
runs, with the tags that name it a model-training experiment and its primary metric."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from houseprices.tracking.store import ensure_experiment
from houseprices.tracking.tags import EXPERIMENT_TAGS, KIND_TAG

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# MLflow 3.17 picks an experiment's page from its workflow switch (GenAI / Model training), kept
# in the browser and GenAI until changed; this parameter sets it, as `make ui` prints.
RUNS_PAGE = "#/experiments/{id}?workflowType=machine_learning"


def browse(url: str, expect: str, screenshot: Path | None = None) -> str:
    """The page's DOM once ``expect`` shows in it (the UI fetches runs after it loads: a few
    tries, each with more time), and a screenshot when asked."""
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"]
    for budget in (10_000, 20_000, 40_000):
        command = [*base, f"--virtual-time-budget={budget}"]
        dom = subprocess.run([*command, "--dump-dom", url], capture_output=True, timeout=120).stdout.decode()
        if expect in dom:
            break
    if screenshot is not None:
        subprocess.run([*command, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    return dom


@pytest.mark.slow(seconds=30)
def test_the_experiment_opens_on_its_training_runs(mlflow_server, tmp_path):
    if CHROMIUM is None:  # .ci/run installs it: CI fails without it, a developer machine skips
        (pytest.fail if os.environ.get("CI") else pytest.skip)("chromium not installed (apt-get install chromium)")
    uri, _ = mlflow_server
    client = MlflowClient(uri)
    experiment = ensure_experiment(client, uri, "houseprices", tmp_path)
    assert {k: client.get_experiment(experiment).tags.get(k) for k in EXPERIMENT_TAGS} == EXPERIMENT_TAGS
    run = client.create_run(experiment, run_name="teammate-a ridge 30", tags={KIND_TAG: "pipeline"})
    client.log_metric(run.info.run_id, "cv_log_rmse", 0.1234)
    client.set_terminated(run.info.run_id)

    folder = os.environ.get("PLOTS_SCREENSHOTS")  # screenshots for people, only when asked
    shot = Path(folder) / "mlflow-experiment.png" if folder else None
    dom = browse(f"{uri}/{RUNS_PAGE.format(id=experiment)}", "matching run", shot)
    assert "teammate-a ridge 30" in dom and "matching run" in dom, dom[-3000:]
    assert "Detect Issues" not in dom  # the GenAI overview's pop-up
