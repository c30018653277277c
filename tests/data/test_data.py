"""Input validation: every broken CSV stops `houseprices prepare` with a message that names
file, column and CSV line, exit code 2, and the previous outputs left as they were."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import RAW, edit_cell, refused
from houseprices.data.checksums import verify_checksums
from houseprices.data.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from houseprices.data.validation import read_csv, validate_frame, warn_unseen_categories
from houseprices.errors import DataError

HOUSEPRICES = Path(sys.executable).parent / "houseprices"
PREPARED = ("X_train.parquet", "y_train.parquet", "X_test.parquet")


# ----------------------------------------------------------------- helpers
def drop_column(path: Path, column: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.drop(columns=[column]).to_csv(path, index=False, lineterminator="\n")


def add_column(path: Path, column: str, value: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame[column] = value
    frame.to_csv(path, index=False, lineterminator="\n")


def write_checksums(ws: Path) -> None:
    lines = [
        f"{hashlib.sha256((ws / 'raw' / n).read_bytes()).hexdigest()}  {n}"
        for n in ("train.csv", "test.csv", "sample_submission.csv")
    ]
    (ws / "raw" / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory like the repository's (and the current one): raw CSVs, params,
    previous outputs."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        shutil.copy(RAW / name, raw / name)
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    for name in PREPARED:
        (prepared / name).write_bytes(f"previous {name}".encode())
    set_params(tmp_path, verify_checksums=False)
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith(("MLFLOW_", "DVC_"))]:
        monkeypatch.delenv(var)
    return tmp_path


def set_params(ws: Path, **data) -> None:
    params = {
        "data": {
            "train": "raw/train.csv",
            "test": "raw/test.csv",
            "sample_submission": "raw/sample_submission.csv",
            "checksums": "raw/SHA256SUMS",
            "verify_checksums": False,
            **data,
        }
    }
    (ws / "params.yaml").write_text(yaml.safe_dump(params))


def prepare(ws: Path) -> subprocess.CompletedProcess:
    """The real stage command, as dvc.yaml runs it (a process of its own: its warnings print)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(
        [str(HOUSEPRICES), "prepare", "--params", "params.yaml"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused(ws: Path, capsys, *fragments: str) -> str:
    """`houseprices prepare` in this process, refused: exit 2, the fragments named, nothing changed."""
    return refused(ws, capsys, ["prepare", "--params", "params.yaml"], *fragments)


# ------------------------------------------------------- the stage command
def test_train_problems_are_all_reported_with_file_column_and_line(ws, capsys):
    train = ws / "raw" / "train.csv"
    edit_cell(train, 3, "Id", "2.5")
    edit_cell(train, 5, "Id", "1")  # duplicates line 2's id
    edit_cell(train, 6, "LotArea", "big")
    edit_cell(train, 7, "GrLivArea", "inf")
    edit_cell(train, 8, "SalePrice", "-5")
    edit_cell(train, 9, "SalePrice", "")
    err = assert_refused(ws, capsys, "raw/train.csv: 5 problem(s)")
    assert "column 'Id': not an integer at line 3 (e.g. 2.5)" in err
    assert "column 'Id': duplicate ids at lines 2, 5 (e.g. 1)" in err
    assert "column 'LotArea': not a finite number at line 6 (e.g. 'big')" in err
    assert "column 'GrLivArea': not a finite number at line 7" in err
    assert "column 'SalePrice': must be present and positive, not at lines 8, 9" in err


def test_test_file_problems_stop_before_anything_is_written(ws, capsys):
    """train.csv is fine, test.csv is not: no fresh X_train beside a stale X_test."""
    test = ws / "raw" / "test.csv"
    drop_column(test, "Neighborhood")
    edit_cell(test, 10, "TotalBsmtSF", "n/a?")
    assert_refused(
        ws,
        capsys,
        "raw/test.csv: 2 problem(s)",
        "missing required column(s): Neighborhood",
        "column 'TotalBsmtSF': not a finite number at line 10 (e.g. 'n/a?')",
    )


def test_train_without_saleprice_is_refused(ws, capsys):
    drop_column(ws / "raw" / "train.csv", "SalePrice")
    assert_refused(ws, capsys, "raw/train.csv", "missing required column(s): SalePrice")


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "raw/train.csv: file is empty"),
        ("Id,MSSubClass,SalePrice\n", "raw/train.csv: no data rows"),
    ],
)
def test_empty_files_are_refused(ws, content, message, capsys):
    (ws / "raw" / "train.csv").write_text(content)
    assert_refused(ws, capsys, message)


def test_missing_file_is_named(ws, capsys):
    (ws / "raw" / "test.csv").unlink()
    assert_refused(ws, capsys, "raw/test.csv: file not found")


def test_checksum_mismatch_and_missing_file_are_named(ws, capsys):
    set_params(ws, verify_checksums=True)
    write_checksums(ws)
    edit_cell(ws / "raw" / "train.csv", 4, "LotArea", "12345")
    (ws / "raw" / "sample_submission.csv").unlink()
    assert_refused(
        ws,
        capsys,
        "input files failed verification against raw/SHA256SUMS",
        "set data.verify_checksums: false",
        "raw/train.csv: checksum mismatch: expected",
        "raw/sample_submission.csv: file is missing",
    )


def test_missing_checksum_list_is_named(ws, capsys):
    set_params(ws, verify_checksums=True)
    assert_refused(ws, capsys, "raw/SHA256SUMS: checksum list not found")


def test_test_only_columns_and_categories_warn_and_succeed(ws):
    """A column or category only the test file has is reported, never fatal."""
    set_params(ws, verify_checksums=True)
    test = ws / "raw" / "test.csv"
    add_column(test, "Comment", "renovated")
    edit_cell(test, 2, "Neighborhood", "Atlantis")
    write_checksums(ws)
    result = prepare(ws)
    assert result.returncode == 0, result.stderr
    assert "ignoring unknown column(s) ['Comment']" in result.stderr
    assert "Neighborhood: ['Atlantis']" in result.stderr
    assert "MSSubClass: ['150']" in result.stderr  # a class code only test.csv uses
    X_test = pd.read_parquet(ws / "data/prepared/X_test.parquet")
    assert "Comment" not in X_test.columns and X_test.loc[0, "Neighborhood"] == "Atlantis"
    y = pd.read_parquet(ws / "data/prepared/y_train.parquet")
    assert np.allclose(np.exp(y["log_price"]), pd.read_csv(RAW / "train.csv")["SalePrice"])


# ----------------------------------------------------------- in process
def test_line_numbers_count_skipped_blank_lines(tmp_path):
    text = (RAW / "train.csv").read_text().split("\n")
    text.insert(3, "")  # a blank line after data line 3
    path = tmp_path / "train.csv"
    path.write_text("\n".join(text))
    edit_cell(path, 6, "LotArea", "oops")  # line 6 of the file, data row 4
    with pytest.raises(DataError, match=r"column 'LotArea': not a finite number at line 6 "):
        read_csv(path, is_train=True)


def test_not_utf8_is_reported_at_its_byte_offset(tmp_path):
    path = tmp_path / "train.csv"
    original = (RAW / "train.csv").read_bytes()
    data = original[:5000] + original[5000:].replace(b"CollgCr", b"Coll\xe9Cr", 1)  # a Latin-1 byte
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    line = data.count(b"\n", 0, offset) + 1
    assert offset > 5000  # where pandas used to report "byte 1"
    with pytest.raises(
        DataError,
        match=rf"not UTF-8 text \(invalid continuation byte at byte offset {offset}, "
        rf"line {line}: ",
    ):
        read_csv(path, is_train=True)


def test_long_and_short_rows_are_named_with_their_lines(tmp_path):
    """pandas refuses a long row but fills a short one with NaN: both are refused here."""
    path = tmp_path / "test.csv"
    lines = (RAW / "test.csv").read_text().split("\n")
    lines[4] += ",1,2,3"
    last = max(i for i, line in enumerate(lines) if line)
    lines[last] = ",".join(lines[last].split(",")[:64])  # the last row cut short
    path.write_text("\n".join(lines))
    with pytest.raises(
        DataError,
        match=rf"test\.csv: 2 row\(s\) with the wrong number of fields \(the header "
        rf"has 80\): line 5 has 83, line {last + 1} has 64$",
    ):
        read_csv(path, is_train=False)


def test_valid_files_come_out_typed(train_frame, test_frame):
    for frame in (train_frame, test_frame):
        assert frame["Id"].dtype == "int64" and frame["Id"].is_unique
        assert all(frame[c].dtype == "float64" for c in NUMERIC_FEATURES)
        assert not any(pd.api.types.is_numeric_dtype(frame[c]) for c in CATEGORICAL_FEATURES)
    assert "SalePrice" in train_frame and "SalePrice" not in test_frame
    assert train_frame["PoolQC"].isna().mean() > 0.9  # "NA" stays missing, for NoneFiller


def test_categories_stay_text_as_written(tmp_path):
    """A category that looks like a number is not turned into 1.0."""
    path = tmp_path / "test.csv"
    lines = (RAW / "test.csv").read_text().split("\n")
    header = lines[0].split(",")
    for i in range(1, len(lines)):
        if lines[i]:
            cells = lines[i].split(",")
            cells[header.index("Fence")] = "1" if i % 2 else "NA"
            lines[i] = ",".join(cells)
    path.write_text("\n".join(lines))
    frame = read_csv(path, is_train=False)
    assert set(frame["Fence"].dropna()) == {"1"}


def test_test_rows_with_saleprice_warn_and_drop_it(test_frame):
    frame = test_frame.assign(SalePrice=1.0)
    with pytest.warns(UserWarning, match="test rows carry a SalePrice column"):
        out = validate_frame(frame, "test.csv", is_train=False)
    assert "SalePrice" not in out.columns


def test_unseen_categories_are_listed(train_frame, test_frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unseen = warn_unseen_categories(train_frame, test_frame.assign(Street="Canal"), "test.csv")
    assert unseen["Street"] == ["Canal"] and unseen["MSSubClass"] == ["150"]


def test_verify_checksums_names_each_bad_file(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x\n")
    b.write_text("y\n")
    sums = tmp_path / "SUMS"
    digest = hashlib.sha256(b"x\n").hexdigest()
    sums.write_text(f"{digest}  a.csv\n{'0' * 64}  b.csv\n")
    assert str(a) in verify_checksums(sums, [a])
    with pytest.raises(DataError) as err:
        verify_checksums(sums, [a, b, tmp_path / "c.csv"])
    assert f"{b}: checksum mismatch" in str(err.value)
    assert f"{tmp_path / 'c.csv'}: no checksum listed" in str(err.value)
    sums.write_text("not a checksum line\n")
    with pytest.raises(DataError, match="line 1: expected"):
        verify_checksums(sums, [a])
