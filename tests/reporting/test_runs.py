"""`houseprices runs`: pipeline runs read back from a real (SQLite) MLflow store."""

from __future__ import annotations

import time

import pytest
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from conftest import new_store
from houseprices.config.params import parse_params
from houseprices.errors import TrackingError
from houseprices.reporting.runs import format_table, member_times, pipeline_runs, print_runs
from houseprices.tracking.tags import KIND_TAG


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Four pipeline runs (one per end state) and a stage run that must not be listed
    (read-only for the tests: one store, created once)."""
    tmp_path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("houseprices", artifact_location=(tmp_path / "mlruns").as_uri())
    start = int(time.time() * 1000)
    specs = [
        ("FINISHED", {"cv_log_rmse": 0.123456, "mlp.cv_log_rmse": 0.13, "ridge.cv_log_rmse": 0.1251}, "exp-a"),
        ("FAILED", {"ridge.cv_log_rmse": 0.2}, ""),
        ("KILLED", {}, ""),
        ("RUNNING", {}, "exp-d"),
    ]
    for i, (status, metrics, experiment) in enumerate(specs):
        run = client.create_run(
            exp,
            start_time=start + i * 60_000,
            run_name=f"run {i}",
            tags={
                KIND_TAG: "pipeline",
                "git.commit": f"{i}abcdef0123",
                "git.dirty": str(i == 1).lower(),
                "dvc.experiment": experiment,
            },
        )
        client.log_batch(
            run.info.run_id, metrics=[Metric(k, v, start, 0) for k, v in metrics.items()], tags=[RunTag("x", "y")]
        )
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
    client.create_run(exp, run_name="train mlp", tags={KIND_TAG: "model"})
    return uri


@pytest.mark.xdist_group(name="test_runs:store")
def test_lists_pipeline_runs_newest_first_with_their_status(store):
    rows = pipeline_runs(store, "houseprices", last=10)
    assert [r["status"] for r in rows] == ["RUNNING", "KILLED", "FAILED", "FINISHED"]
    assert [r["experiment"] for r in rows] == ["exp-d", "-", "-", "exp-a"]
    assert rows[2]["commit"] == "1abcdef+"  # dirty
    assert rows[3]["ensemble"] == 0.123456 and rows[3]["mlp"] == 0.13
    assert len(pipeline_runs(store, "houseprices", last=2)) == 2


@pytest.mark.xdist_group(name="test_runs:store")
def test_table_is_aligned_rounded_and_marks_missing_scores(store):
    table = format_table(pipeline_runs(store, "houseprices", last=10)).splitlines()
    header = table[0].split()
    assert header == ["time", "status", "commit", "experiment", "run_id", "ensemble", "mlp", "ridge"]
    assert len(table) == 5
    finished = table[4]
    assert "0.1235" in finished and "0.123456" not in finished  # 4 decimals
    for column in ("status", "ensemble", "ridge"):  # every cell starts under its heading
        offset = table[0].index(column)
        assert all(line[offset] != " " and (offset == 0 or line[offset - 1] == " ") for line in table[1:]), column
    failed = table[3].split()
    assert failed[2] == "FAILED" and failed[-3:] == ["-", "-", "0.2000"]


def test_empty_store_says_how_to_fill_it(tmp_path):
    assert pipeline_runs(new_store(tmp_path / "m.db"), "houseprices", 10) == []
    assert "dvc repro" in format_table([])


@pytest.mark.xdist_group(name="test_runs:store")
def test_print_runs_reads_the_configured_store(store, capsys):
    print_runs(parse_params({"tracking": {"uri": store}}), last=1)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "RUNNING" in out[1]


def test_unreachable_store_is_named(tmp_path):
    uri = f"sqlite:///{tmp_path}/missing/dir/mlflow.db"
    with pytest.raises(TrackingError, match="missing or not writable"):
        print_runs(parse_params({"tracking": {"uri": uri}}))


def test_member_times_come_from_each_members_newest_finished_train_run(tmp_path):
    uri = new_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    exp = client.create_experiment("houseprices", artifact_location=(tmp_path / "mlruns").as_uri())
    start = int(time.time() * 1000)
    for i, (status, seconds) in enumerate([("FINISHED", 1.0), ("FINISHED", 2.0), ("FAILED", 9.0)]):
        run = client.create_run(exp, start_time=start + i * 1000, run_name="train lasso")
        client.log_batch(run.info.run_id, metrics=[Metric("fit_seconds", seconds, start, 0)])
        client.set_terminated(run.info.run_id, status)
    params = parse_params({"tracking": {"uri": uri}})
    assert member_times(params, ["lasso", "mlp"]) == {"lasso": {"fit_seconds": 2.0}}
    with pytest.warns(UserWarning, match="without times"):
        assert member_times(parse_params({"tracking": {"uri": "http://127.0.0.1:9"}}), ["lasso"]) == {}
