"""Loading and validating the competition CSVs.

Problems are collected and reported together, each with file, column and CSV line,
so a user fixes a broken file in one pass instead of one error per run.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
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


def _lines(index: pd.Index) -> str:
    # CSV line = 0-based data row + 2 (the header is line 1).
    shown = [str(i + 2) for i in index[:MAX_EXAMPLES]]
    more = f" and {len(index) - MAX_EXAMPLES} more" if len(index) > MAX_EXAMPLES else ""
    return f"line{'s' if len(index) > 1 else ''} {', '.join(shown)}{more}"


@dataclass(frozen=True)
class Schema:
    require_target: bool


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
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: not a readable CSV: {err}") from None
    return validate_frame(frame, str(path), is_train=is_train)


def validate_frame(frame: pd.DataFrame, source: str, *, is_train: bool) -> pd.DataFrame:
    problems: list[str] = []
    if frame.empty:
        raise DataError(f"{source}: no data rows")

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
        bad = out.index[ids.isna() | (ids != np.floor(ids.fillna(0)))]
        if len(bad):
            problems.append(f"column '{ID}': not an integer at {_lines(bad)} "
                            f"(e.g. {out.loc[bad[0], ID]!r})")
        dup = out.index[ids.duplicated(keep=False) & ids.notna()]
        if len(dup):
            problems.append(f"column '{ID}': duplicate ids at {_lines(dup)} (e.g. {ids[dup[0]]:.0f})")
        if not len(bad):
            out[ID] = ids.astype("int64")

    for col in NUMERIC_FEATURES + ((TARGET,) if is_train else ()):
        if col not in out.columns:
            continue
        values = pd.to_numeric(out[col], errors="coerce")
        bad = out.index[values.isna() & out[col].notna()]
        if len(bad):
            problems.append(f"column '{col}': not a number at {_lines(bad)} "
                            f"(e.g. {out.loc[bad[0], col]!r})")
        out[col] = values.astype("float64")

    if is_train and TARGET in out.columns and not any(f"'{TARGET}'" in p for p in problems):
        price = out[TARGET]
        bad = out.index[price.isna() | (price <= 0) | ~np.isfinite(price.fillna(0))]
        if len(bad):
            problems.append(f"column '{TARGET}': must be present and positive, not at {_lines(bad)} "
                            f"(e.g. {frame.loc[bad[0], TARGET]!r})")

    for col in CATEGORICAL_FEATURES:
        if col in out.columns:
            out[col] = out[col].astype("str").where(out[col].notna(), np.nan).astype("str")

    if problems:
        raise DataError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return out.reset_index(drop=True)


def split_target(train: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features and log price: the competition scores RMSE on log prices."""
    y = np.log(train[TARGET]).rename("log_price")
    return train.drop(columns=[TARGET]), y


def warn_unseen_categories(train: pd.DataFrame, test: pd.DataFrame, source: str) -> dict[str, list[str]]:
    """Categories only the test rows have: the encoders ignore them, users should know."""
    unseen = {}
    for col in CATEGORICAL_FEATURES:
        if col in train.columns and col in test.columns:
            new = sorted(set(test[col].dropna()) - set(train[col].dropna()))
            if new:
                unseen[col] = new
    if unseen:
        listing = "; ".join(f"{c}: {v}" for c, v in unseen.items())
        warnings.warn(f"{source}: categories absent from the training rows (encoded as unknown): {listing}",
                      stacklevel=2)
    return unseen
