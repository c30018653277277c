"""Hostile input through the real CLI: every bad value exits 2 with one message naming the
file, key, column or line, prints no traceback and changes nothing already on disk (bytes,
mtimes, and no new files). No model is trained: the cases stop before any fit."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import RAW, edit_cell, free_port, refused, snapshot, stage_env
from houseprices.cli import main

PREVIOUS = (
    "data/prepared/X_train.parquet",
    "data/prepared/y_train.parquet",
    "data/prepared/X_test.parquet",
    "submission.csv",
    "predictions_with_intervals.csv",
    "metrics/features.json",
    "models/members/ridge/model.joblib",
    "metrics/ridge.json",
)


def closed_port_uri() -> str:
    """An http tracking URI nothing listens on: the store check fails within milliseconds."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository-like working directory: raw data, the committed params (tracking
    pointed at a closed port), previous outputs of every stage, and predictions."""
    shutil.copytree(RAW, tmp_path / "data" / "raw")
    params = yaml.safe_load((RAW.parents[1] / "params.yaml").read_text())
    params["tracking"].update(uri=closed_port_uri(), required=False)
    params["data"]["verify_checksums"] = False  # the cases edit the CSVs; one test turns it on
    params.pop("search", None)
    write_params(tmp_path, params)
    for rel in PREVIOUS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(f"previous {rel}\n".encode())
    ids = pd.read_csv(RAW / "sample_submission.csv")["Id"]
    log_price = np.full(len(ids), np.log(180000.0))
    (tmp_path / "models/ensemble").mkdir(parents=True)
    pd.DataFrame(
        {"Id": ids, "log_price": log_price, "lower_80": log_price - 0.1, "upper_80": log_price + 0.1}
    ).to_parquet(tmp_path / "models/ensemble/predictions.parquet", index=False)
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith(("MLFLOW_", "DVC_", "HOUSEPRICES_"))]:
        monkeypatch.delenv(var)
    return tmp_path


def write_params(ws: Path, params: dict) -> None:
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def edit_params(ws: Path, **changes: object) -> None:
    """``edit_params(ws, **{"models.lasso.alpha": inf})``: set nested keys by dotted path
    ("|" separates the parts instead when a key holds dots itself)."""
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("|" if "|" in dotted else ".")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    write_params(ws, params)


# ------------------------------------------------------------------ params
@pytest.fixture
def search_file(ws) -> Path:
    shutil.copy(RAW.parents[1] / "search.yaml", ws / "search.yaml")
    return ws / "search.yaml"


def test_a_search_key_written_twice_is_refused(ws, search_file, capsys):
    text = search_file.read_text()
    first = next(i for i, line in enumerate(text.split("\n"), 1) if line.startswith("grace_period:"))
    search_file.write_text(text + "grace_period: 5\n")
    line = text.count("\n") + 1
    refused(
        ws,
        capsys,
        ["search", "--model", "lasso", "--trials", "1"],
        f"search.yaml, line {line}: key 'grace_period' is already set at line {first}",
    )


def test_a_search_key_written_twice_in_a_space_is_refused(ws, search_file, capsys):
    text = search_file.read_text().replace(
        "      alpha: {low: 0.00005, high: 0.01, log: true}\n",
        "      alpha: {low: 0.00005, high: 0.01, log: true}\n      alpha: {low: 0.1, high: 1.0}\n",
    )
    search_file.write_text(text)
    refused(ws, capsys, ["search", "--model", "lasso", "--trials", "1"], "search.yaml, line", "key 'alpha'")


def test_a_search_file_that_is_not_utf8_is_refused(ws, search_file, capsys):
    search_file.write_bytes(search_file.read_bytes() + b"# caf\xe9\n")
    refused(
        ws,
        capsys,
        ["search", "--model", "lasso", "--trials", "1"],
        "search.yaml: not UTF-8 text (invalid continuation byte at byte offset",
    )


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("models.lasso.alpha", float("inf"), "models.lasso.alpha: Input should be a finite number"),
        ("features.pca.n_components", float("nan"), "features.pca.n_components"),
        ("features.outliers.max_price", float("-inf"), "features.outliers.max_price"),
        ("seed", 2**40, "seed: Input should be less than 4294967296"),
        ("ensemble.members", ["lasso", "lasso"], "ensemble.members: ['lasso'] listed more than once"),
        ("models|../../pwned", {"kind": "ridge"}, "model name(s) ['../../pwned'] must be letters, digits"),
        ("models|-rf", {"kind": "ridge"}, "model name(s) ['-rf'] must be letters, digits"),
        ("data.price_range", [500000, 1000], "data.price_range: low (500000) must be below high (1000)"),
        ("submission.path", "data/raw/train.csv", "submission.path"),
        ("submission.path", "data/raw/new.csv", "submission.path"),
        ("submission.path", "../outside.csv", "submission.path: '../outside.csv' is not a plain relative path"),
        ("submission.path", "/tmp/outside.csv", "submission.path: '/tmp/outside.csv' is not a plain relative path"),
        ("submission.path", "", "submission.path: empty"),
        ("submission.path", "submission.txt", "submission.path: 'submission.txt' must end in .csv"),
        ("submission.path", "models/x.csv", "submission.path: 'models/x.csv' is inside models/"),
        ("submission.path", "predictions_with_intervals.csv", "would overwrite an input or another output"),
    ],
)
@pytest.mark.parametrize("command", [["prepare"], ["submission"]])
def test_params_that_cannot_work_are_refused_at_load(ws, capsys, command, key, value, fragment):
    edit_params(ws, **{key: value})
    refused(ws, capsys, command, "params.yaml", fragment)


def test_a_key_written_twice_is_refused(ws, capsys):
    text = (ws / "params.yaml").read_text()
    (ws / "params.yaml").write_text(text + "seed: 7\n")
    line = text.count("\n") + 1
    refused(ws, capsys, ["prepare"], f"params.yaml, line {line}: key 'seed' is already set at line 1")


def test_params_that_are_not_utf8_are_refused(ws, capsys):
    (ws / "params.yaml").write_bytes((ws / "params.yaml").read_bytes() + b"# caf\xe9\n")
    refused(ws, capsys, ["prepare"], "params.yaml: not UTF-8 text (invalid continuation byte at byte offset")


def test_nested_duplicate_key_is_refused(ws, capsys):
    text = (ws / "params.yaml").read_text().replace("  folds: 5\n", "  folds: 5\n  folds: 3\n")
    (ws / "params.yaml").write_text(text)
    refused(ws, capsys, ["prepare"], "key 'folds' is already set at line")


# -------------------------------------------------------------------- data
def test_a_test_row_cut_short_is_refused(ws, capsys):
    path = ws / "data/raw/test.csv"
    lines = path.read_text().rstrip("\n").split("\n")
    lines[-1] = ",".join(lines[-1].split(",")[:64])
    path.write_text("\n".join(lines) + "\n")
    refused(
        ws,
        capsys,
        ["prepare"],
        f"data/raw/test.csv: 1 row(s) with the wrong number of fields (the header has 80): line {len(lines)} has 64",
    )


def test_a_long_training_row_is_refused(ws, capsys):
    path = ws / "data/raw/train.csv"
    lines = path.read_text().split("\n")
    lines[4] += ",1"
    path.write_text("\n".join(lines))
    refused(ws, capsys, ["prepare"], "data/raw/train.csv: 1 row(s) with the wrong number of fields", "line 5 has 82")


def test_test_ids_in_train_are_refused(ws, capsys):
    edit_cell(ws / "data/raw/test.csv", 3, "Id", "1")
    refused(ws, capsys, ["prepare"], "data/raw/test.csv", "column 'Id': also in data/raw/train.csv at line 3 (e.g. 1)")


def test_test_ids_not_in_the_sample_are_refused(ws, capsys):
    edit_cell(ws / "data/raw/test.csv", 4, "Id", "99999")
    refused(
        ws,
        capsys,
        ["prepare"],
        "column 'Id': not in data/raw/sample_submission.csv at line 4 (e.g. 99999)",
        "1 Id(s) of data/raw/sample_submission.csv have no test row (e.g. [1463])",
    )


@pytest.mark.parametrize(
    "file, column, value, fragment",
    [
        ("train.csv", "LotArea", "1e308", "column 'LotArea': beyond ±1e+15 at line 4 (e.g. 1e+308)"),
        ("test.csv", "LotArea", "1e308", "column 'LotArea': beyond ±1e+15 at line 4"),
        ("test.csv", "GrLivArea", "inf", "column 'GrLivArea': not a finite number at line 4"),
        ("train.csv", "SalePrice", "1e300", "column 'SalePrice': outside data.price_range [10000, 2e+06] at line 4"),
        ("train.csv", "SalePrice", "5", "column 'SalePrice': outside data.price_range [10000, 2e+06] at line 4"),
    ],
)
def test_values_outside_their_range_name_column_and_line(ws, capsys, file, column, value, fragment):
    edit_cell(ws / "data/raw" / file, 4, column, value)
    refused(ws, capsys, ["prepare"], f"data/raw/{file}", fragment)


def test_checksum_mismatch_names_the_list_and_the_switch(ws, capsys):
    edit_params(ws, **{"data.verify_checksums": True})
    edit_cell(ws / "data/raw/train.csv", 4, "LotArea", "12345")
    refused(
        ws,
        capsys,
        ["prepare"],
        "verification against data/raw/SHA256SUMS",
        "data.verify_checksums: false",
        "data/raw/train.csv: checksum mismatch",
    )


def test_a_latin1_byte_is_reported_at_its_offset(ws, capsys):
    path = ws / "data/raw/train.csv"
    data = path.read_bytes()
    offset = data.index(b"NoRidge", 5000) + 2
    path.write_bytes(data[:offset] + b"\xe9" + data[offset + 1 :])
    line = data.count(b"\n", 0, offset) + 1
    refused(
        ws,
        capsys,
        ["prepare"],
        f"data/raw/train.csv: not UTF-8 text (invalid continuation byte at byte offset {offset}, line {line}",
    )


# ----------------------------------------------- counts known after prepare
@pytest.fixture
def prepared(ws, capsys) -> Path:
    """data/prepared from the real stage, on the first 15 training rows."""
    train = ws / "data/raw/train.csv"
    train.write_text("\n".join(train.read_text().split("\n")[:16]) + "\n")
    assert main(["prepare"]) == 0
    capsys.readouterr()
    return ws


def test_more_pca_components_than_features_is_refused(prepared, capsys):
    edit_params(prepared, **{"features.pca.enabled": True, "features.pca.n_components": 5000})
    refused(prepared, capsys, ["featurize"], "features.pca.n_components: 5000 components, but the preprocessing gives")


def test_more_folds_than_rows_is_refused(prepared, capsys):
    edit_params(prepared, **{"cv.folds": 20, "models.ridge": {"kind": "ridge"}})
    refused(
        prepared,
        capsys,
        ["train", "--model", "ridge"],
        "cv.folds: 20 folds need at least 20 training rows; the prepared data has 15",
    )


# -------------------------------------------------------------- submission
def test_unreachable_store_stops_the_submission_before_it_writes(ws, capsys):
    edit_params(ws, **{"tracking.required": True})
    refused(ws, capsys, ["submission"], "is unreachable")


def test_a_symlink_out_of_the_repo_is_refused(ws, capsys, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "stolen.csv"
    (ws / "sub.csv").symlink_to(outside)
    edit_params(ws, **{"submission.path": "sub.csv"})
    refused(ws, capsys, ["submission"], "submission.path: sub.csv resolves to", "outside")
    assert not outside.exists()


def test_a_submission_through_a_linked_folder_into_the_inputs_is_refused(ws, capsys):
    (ws / "subs").symlink_to(ws / "data/raw", target_is_directory=True)
    edit_params(ws, **{"submission.path": "subs/train.csv"})
    refused(
        ws,
        capsys,
        ["submission"],
        "subs/train.csv leads to",
        "data/raw/train.csv, into the input",
        "nothing was written",
    )


def test_a_linked_submission_file_into_the_inputs_is_refused(ws, capsys):
    (ws / "mine.csv").symlink_to(ws / "data/raw/sample_submission.csv")
    edit_params(ws, **{"submission.path": "mine.csv"})
    refused(ws, capsys, ["submission"], "mine.csv leads to", "data/raw/sample_submission.csv, into the input")


def test_an_output_folder_linked_into_the_inputs_is_refused(ws, capsys):
    """Not only submission.path: a stage's own folder (data/prepared here) replaced by a link."""
    shutil.rmtree(ws / "data/prepared")
    (ws / "data/prepared").symlink_to(ws / "data/raw", target_is_directory=True)
    refused(ws, capsys, ["prepare"], "data/prepared/X_train.parquet leads to", "data/raw/X_train.parquet, into")
    assert not (ws / "data/raw/X_train.parquet").exists()


def test_an_output_folder_linked_out_of_the_repo_is_refused(ws, capsys, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    shutil.rmtree(ws / "data/prepared")
    (ws / "data/prepared").symlink_to(outside, target_is_directory=True)
    refused(ws, capsys, ["prepare"], "data/prepared/X_train.parquet leads to", "outside")
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------- damaged inputs
def test_damaged_predictions_stop_the_submission_naming_the_file(ws, capsys):
    path = ws / "models/ensemble/predictions.parquet"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    refused(
        ws,
        capsys,
        ["submission"],
        "models/ensemble/predictions.parquet: cannot be read",
        "run `dvc repro ensemble` to write it again",
    )


@pytest.mark.parametrize("command", [["featurize"], ["train", "--model", "ridge"]])
def test_damaged_prepared_data_stops_the_stage_naming_the_file(ws, capsys, command):
    """``ws`` holds a text line where each prepared parquet file should be."""
    edit_params(ws, **{"models.ridge": {"kind": "ridge"}})
    refused(ws, capsys, command, "data/prepared/X_train.parquet: cannot be read", "run `dvc repro prepare`")


def test_a_valid_submission_is_written_with_the_umask_modes(ws, capsys):
    """The control for the cases above: the same workspace succeeds when nothing is wrong."""
    edit_params(ws, **{"submission.path": "out/my_submission.csv"})
    old = os.umask(0o022)
    try:
        assert main(["submission"]) == 0
    finally:
        os.umask(old)
    written = pd.read_csv(ws / "out/my_submission.csv")
    assert written["SalePrice"].round().eq(180000).all() and len(written) == 1459
    for path in (ws / "out/my_submission.csv", ws / "predictions_with_intervals.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ------------------------------------------------------ the console script
def test_the_console_script_exits_2_without_a_traceback(ws):
    edit_params(ws, **{"models.lasso.alpha": float("inf")})
    before = snapshot(ws)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "houseprices"), "prepare"],
        cwd=ws,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "houseprices prepare: error: params.yaml" in result.stderr
    assert "models.lasso.alpha" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(ws) == before
