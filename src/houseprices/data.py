"""Loading and validating the competition CSVs.

Problems are collected and reported together, each with file, column and CSV line,
so a user fixes a broken file in one pass instead of one error per run.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

logger = logging.getLogger(__name__)

ID = "Id"
TARGET = "SalePrice"

# The 36 features that data_description.txt defines as numbers (MSSubClass is a
# numeric code; the features config can still treat it as a category).
NUMERIC_FEATURES: tuple[str, ...] = (
    "MSSubClass", "LotFrontage", "LotArea", "OverallQual", "OverallCond", "YearBuilt",
    "YearRemodAdd", "MasVnrArea", "BsmtFinSF1", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF",
    "1stFlrSF", "2ndFlrSF", "LowQualFinSF", "GrLivArea", "BsmtFullBath", "BsmtHalfBath",
    "FullBath", "HalfBath", "BedroomAbvGr", "KitchenAbvGr", "TotRmsAbvGrd", "Fireplaces",
    "GarageYrBlt", "GarageCars", "GarageArea", "WoodDeckSF", "OpenPorchSF", "EnclosedPorch",
    "3SsnPorch", "ScreenPorch", "PoolArea", "MiscVal", "MoSold", "YrSold",
)
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "MSZoning", "Street", "Alley", "LotShape", "LandContour", "Utilities", "LotConfig",
    "LandSlope", "Neighborhood", "Condition1", "Condition2", "BldgType", "HouseStyle",
    "RoofStyle", "RoofMatl", "Exterior1st", "Exterior2nd", "MasVnrType", "ExterQual",
    "ExterCond", "Foundation", "BsmtQual", "BsmtCond", "BsmtExposure", "BsmtFinType1",
    "BsmtFinType2", "Heating", "HeatingQC", "CentralAir", "Electrical", "KitchenQual",
    "Functional", "FireplaceQu", "GarageType", "GarageFinish", "GarageQual", "GarageCond",
    "PavedDrive", "PoolQC", "Fence", "MiscFeature", "SaleType", "SaleCondition",
)
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# Numbers that name a class (data_description.txt): new values in test are new categories.
CODE_FEATURES: tuple[str, ...] = ("MSSubClass",)
MAX_EXAMPLES = 5


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksums(checksums: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` listing into {file name: hex digest}."""
    if not checksums.is_file():
        raise DataError(f"{checksums}: checksum list not found")
    sums = {}
    for lineno, line in enumerate(checksums.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{checksums}, line {lineno}: expected '<sha256>  <file name>'")
        sums[name.strip()] = digest
    return sums


def verify_checksums(checksums: Path, files: list[Path]) -> dict[str, str]:
    """Fail unless every file is present and unchanged; returns {path: digest}."""
    expected = read_checksums(checksums)
    problems, seen = [], {}
    for path in files:
        if path.name not in expected:
            problems.append(f"{path}: no checksum listed in {checksums}")
        elif not path.is_file():
            problems.append(f"{path}: file is missing (restore it with `git checkout -- {path}` "
                            "or `houseprices download`)")
        else:
            actual = sha256(path)
            seen[str(path)] = actual
            if actual != expected[path.name]:
                problems.append(f"{path}: checksum mismatch: expected {expected[path.name]}, "
                                f"got {actual}; the file was altered")
    if problems:
        raise DataError("input files failed verification:\n  " + "\n  ".join(problems))
    return seen


def _csv_lines(path: Path, n_rows: int) -> np.ndarray | None:
    """The file line of every data row, counting the blank lines pandas skips; None when
    the count does not match (a quoted field spanning lines): then row + 2 is used."""
    with open(path, "rb") as fh:
        filled = [n for n, line in enumerate(fh, start=1) if line.strip()]
    data_lines = np.asarray(filled[1:], dtype=np.int64)  # the first non-blank line is the header
    return data_lines if len(data_lines) == n_rows else None


def _lines(index: pd.Index, lines: np.ndarray | None = None) -> str:
    # CSV line of a 0-based data row: row + 2 (the header is line 1) unless mapped.
    shown = [str(lines[i] if lines is not None else i + 2) for i in index[:MAX_EXAMPLES]]
    more = f" and {len(index) - MAX_EXAMPLES} more" if len(index) > MAX_EXAMPLES else ""
    return f"line{'s' if len(index) > 1 else ''} {', '.join(shown)}{more}"


def read_csv(path: Path, *, is_train: bool) -> pd.DataFrame:
    """Read and validate one competition CSV into typed columns.

    Numeric features become float64 (NaN where missing) and categorical ones ``str``,
    the same types whatever the file's own parsing gave.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        # Categories stay text exactly as written ("60", not 60.0); "NA" and empty are missing.
        frame = pd.read_csv(path, dtype={c: "str" for c in CATEGORICAL_FEATURES})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty (no header line)") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: not a readable CSV: {err}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return validate_frame(frame, str(path), is_train=is_train, lines=_csv_lines(path, len(frame)))


def validate_frame(frame: pd.DataFrame, source: str, *, is_train: bool,
                   lines: np.ndarray | None = None) -> pd.DataFrame:
    """Check one competition frame and return it typed; every problem at once in a DataError.

    Problems name the source, the column and up to five example CSV lines (``lines``
    maps a 0-based row to its file line; by default row + 2).
    """
    problems: list[str] = []
    if frame.empty:
        raise DataError(f"{source}: no data rows (only a header)" if len(frame.columns) else f"{source}: no columns")
    frame = frame.reset_index(drop=True)

    def at(index: pd.Index) -> str:
        return _lines(index, lines)

    required = (ID, *FEATURES) + ((TARGET,) if is_train else ())
    missing = [c for c in required if c not in frame.columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")

    extra = [c for c in frame.columns if c not in required and not (c == TARGET and not is_train)]
    if extra:
        warnings.warn(f"{source}: ignoring unknown column(s) {extra}", stacklevel=2)
    if not is_train and TARGET in frame.columns:
        warnings.warn(f"{source}: test rows carry a {TARGET} column; it is ignored", stacklevel=2)

    out = frame[[c for c in required if c in frame.columns]].copy()

    if ID in out.columns:
        ids = pd.to_numeric(out[ID], errors="coerce")
        finite = np.isfinite(ids.fillna(np.inf))
        bad = out.index[~finite | (ids != np.floor(ids.where(finite, 0)))]
        if len(bad):
            problems.append(f"column '{ID}': not an integer at {at(bad)} "
                            f"(e.g. {_shown(out.loc[bad[0], ID])})")
        dup = out.index[ids.duplicated(keep=False) & ids.notna()]
        if len(dup):
            problems.append(f"column '{ID}': duplicate ids at {at(dup)} (e.g. {ids[dup[0]]:g})")
        if not len(bad):
            out[ID] = ids.astype("int64")

    for col in NUMERIC_FEATURES + ((TARGET,) if is_train else ()):
        if col not in out.columns:
            continue
        values = pd.to_numeric(out[col], errors="coerce")
        bad = out.index[(values.isna() & out[col].notna()) | np.isinf(values.fillna(0))]
        if len(bad):
            problems.append(f"column '{col}': not a finite number at {at(bad)} "
                            f"(e.g. {_shown(out.loc[bad[0], col])})")
        out[col] = values.astype("float64")

    if is_train and TARGET in out.columns and not any(f"'{TARGET}'" in p for p in problems):
        price = out[TARGET]
        bad = out.index[price.isna() | (price <= 0)]
        if len(bad):
            problems.append(f"column '{TARGET}': must be present and positive, not at {at(bad)} "
                            f"(e.g. {_shown(frame.loc[bad[0], TARGET])})")

    for col in CATEGORICAL_FEATURES:
        if col in out.columns:
            out[col] = out[col].astype("str").where(out[col].notna(), np.nan).astype("str")

    if problems:
        raise DataError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return out.reset_index(drop=True)


def _shown(value) -> str:
    return "an empty cell" if pd.isna(value) else repr(value.item() if isinstance(value, np.generic) else value)


def split_target(train: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features and log price: the competition scores RMSE on log prices."""
    y = np.log(train[TARGET]).rename("log_price")
    return train.drop(columns=[TARGET]), y


def warn_unseen_categories(train: pd.DataFrame, test: pd.DataFrame, source: str) -> dict[str, list[str]]:
    """Categories only the test rows have: the encoders ignore them, users should know."""
    unseen = {}
    for col in CATEGORICAL_FEATURES + CODE_FEATURES:
        if col in train.columns and col in test.columns:
            new = sorted(set(test[col].dropna()) - set(train[col].dropna()))
            if new:
                unseen[col] = [f"{v:g}" if isinstance(v, float) else str(v) for v in new]
    if unseen:
        listing = "; ".join(f"{c}: {v}" for c, v in unseen.items())
        warnings.warn(f"{source}: categories absent from the training rows (encoded as unknown): {listing}",
                      stacklevel=2)
    return unseen
