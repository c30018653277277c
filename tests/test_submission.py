from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import RAW
from houseprices.errors import SubmissionError
from houseprices.submission import build_submission, check_destination, checked_submission, upload
from houseprices.util.files import write_csv


@pytest.fixture()
def sample():
    return pd.read_csv(RAW / "sample_submission.csv")


def test_valid_submission_is_written_in_sample_order(tmp_path, sample):
    shuffled = sample.sample(frac=1, random_state=0)
    frame = build_submission(shuffled["Id"], np.full(len(shuffled), 150000.0))
    out = tmp_path / "submission.csv"
    write_csv(out, checked_submission(out, frame, RAW / "sample_submission.csv"), float_format="%.2f")
    written = pd.read_csv(out)
    assert list(written.columns) == ["Id", "SalePrice"]
    assert written["Id"].tolist() == sample["Id"].tolist()
    assert len(written) == 1459


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.rename(columns={"SalePrice": "Price"}), "header"),
        (lambda f: f.iloc[:-1], "1 missing"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate"),
        (lambda f: f.assign(SalePrice=f["SalePrice"].where(f.index != 3, np.nan)), "not finite and positive"),
        (lambda f: f.assign(SalePrice=f["SalePrice"].where(f.index != 3, -5.0)), "not finite and positive"),
    ],
)
def test_invalid_submission_is_refused_and_nothing_written(tmp_path, sample, mutate, message):
    frame = mutate(build_submission(sample["Id"], np.full(len(sample), 150000.0)))
    out = tmp_path / "submission.csv"
    out.write_text("previous\n")
    with pytest.raises(SubmissionError, match=message):
        write_csv(out, checked_submission(out, frame, RAW / "sample_submission.csv"), float_format="%.2f")
    assert out.read_text() == "previous\n"
    assert list(tmp_path.iterdir()) == [out]


def test_upload_without_credentials_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "none"))
    sub = tmp_path / "submission.csv"
    sub.write_text("Id,SalePrice\n1461,1.0\n")
    with pytest.raises(SubmissionError, match="credentials not found"):
        upload(sub, "msg")
    assert sub.read_text() == "Id,SalePrice\n1461,1.0\n"


def test_checked_submission_orders_rows_and_writes_nothing(tmp_path, sample, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = build_submission(sample["Id"][::-1], np.full(len(sample), 150000.0))
    checked = checked_submission(Path("submission.csv"), frame, RAW / "sample_submission.csv")
    assert checked["Id"].tolist() == sample["Id"].tolist()
    assert list(tmp_path.iterdir()) == []


def test_destination_behind_a_symlink_out_of_the_repo_is_refused(tmp_path, monkeypatch):
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (repo / "sub.csv").symlink_to(outside / "stolen.csv")
    (repo / "inside.csv").symlink_to(repo / "real.csv")
    monkeypatch.chdir(repo)
    check_destination(Path("inside.csv"))  # a link that stays inside is fine
    with pytest.raises(SubmissionError, match=r"submission.path: sub.csv resolves to .*stolen.csv, outside"):
        check_destination(Path("sub.csv"))
