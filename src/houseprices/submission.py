"""The Kaggle submission file: checked against the competition's sample before writing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.data.download import KAGGLE_CLI_TIMEOUT_S, KAGGLE_COMPETITION, kaggle_credentials_available
from houseprices.data.schema import ID, TARGET
from houseprices.errors import OutputPathError, SubmissionError
from houseprices.util.files import checked_destination


def build_submission(ids, prices) -> pd.DataFrame:
    return pd.DataFrame({ID: np.asarray(ids, dtype="int64"), TARGET: np.asarray(prices, dtype="float64")})


def checked_submission(path: Path, frame: pd.DataFrame, sample_path: Path) -> pd.DataFrame:
    """``frame`` put in the sample's row order once it has the same header, exactly the
    sample's Ids once each and finite positive prices; writes nothing."""
    sample = pd.read_csv(sample_path)
    if list(frame.columns) != list(sample.columns):
        raise SubmissionError(f"{path}: header {list(frame.columns)} != expected {list(sample.columns)}")
    ids = frame[ID]
    dup = ids[ids.duplicated()]
    if len(dup):
        raise SubmissionError(f"{path}: duplicate Id(s) {dup.head(5).tolist()}")
    missing = sorted(set(sample[ID]) - set(ids))
    extra = sorted(set(ids) - set(sample[ID]))
    if missing or extra:
        raise SubmissionError(
            f"{path}: Ids differ from the sample submission: "
            f"{len(missing)} missing (e.g. {missing[:5]}), {len(extra)} unexpected (e.g. {extra[:5]})"
        )
    prices = frame[TARGET].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(prices) | (prices <= 0)
    if bad.any():
        rows = frame.loc[bad, ID].head(5).tolist()
        raise SubmissionError(f"{path}: {int(bad.sum())} price(s) not finite and positive, e.g. Id {rows}")
    return frame.set_index(ID).loc[sample[ID]].reset_index()


def check_destination(path: Path, key: str = "submission.path") -> None:
    """Refuse a destination that leaves the working tree or lands in an input (through a
    symlink, say), before anything is written."""
    root = Path.cwd().resolve()
    if not path.resolve().is_relative_to(root):
        raise SubmissionError(f"{key}: {path} resolves to {path.resolve()}, outside {root}; nothing was written")
    try:
        checked_destination(path)
    except OutputPathError as err:
        raise OutputPathError(f"{key}: {err}") from None


def upload(path: Path, message: str, competition: str = KAGGLE_COMPETITION) -> str:
    """Submit with the Kaggle CLI; refuses clearly (and changes nothing) without it."""
    if not path.is_file():
        raise SubmissionError(f"{path}: no submission to upload; run `dvc repro` first")
    if not kaggle_credentials_available():
        raise SubmissionError(
            "Kaggle credentials not found: put kaggle.json in ~/.kaggle/ (or set KAGGLE_USERNAME and "
            "KAGGLE_KEY) and `pip install kaggle`; nothing was uploaded"
        )
    cmd = ["kaggle", "competitions", "submit", "-c", competition, "-f", str(path), "-m", message]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=KAGGLE_CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SubmissionError(
            f"kaggle CLI did not finish the upload within {KAGGLE_CLI_TIMEOUT_S:.0f} s; check the competition's "
            "submissions page before submitting again"
        ) from None
    if result.returncode != 0:
        raise SubmissionError(f"kaggle CLI failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()
