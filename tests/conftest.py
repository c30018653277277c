"""Shared fixtures: small slices of the committed competition data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from houseprices.data import read_csv, split_target

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"

# Tests never log to the developer's store unless a test asks for one.
os.environ.setdefault("GIT_AUTHOR_NAME", "houseprices tests")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@houseprices.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "houseprices tests")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@houseprices.invalid")


@pytest.fixture(scope="session")
def train_frame():
    return read_csv(RAW / "train.csv", is_train=True)


@pytest.fixture(scope="session")
def test_frame():
    return read_csv(RAW / "test.csv", is_train=False)


@pytest.fixture(scope="session")
def small_xy(train_frame):
    """300 training rows: enough for every encoder to see most categories."""
    X, y = split_target(train_frame.sample(300, random_state=0).reset_index(drop=True))
    return X, y
