"""Loading and validating the competition CSVs. Problems are collected and reported together,
each with file, column and CSV line, so a user fixes a broken file in one pass."""

from __future__ import annotations

import csv
import io
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.data.schema import CATEGORICAL_FEATURES, CODE_FEATURES, FEATURES, ID, NUMERIC_FEATURES, TARGET
from houseprices.errors import DataError

MAX_EXAMPLES = 5
# No Ames measurement comes near this; far above it, sums of squares in scaling and fitting overflow.
MAX_MAGNITUDE = 1e15


def _record_lines(text: str, path: Path) -> np.ndarray:
    """The file line where each data record starts, after checking every record has as
    many fields as the header (pandas would silently fill a short row with NaN)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header, starts, ragged, end = None, [], [], 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue  # a blank line: pandas skips it too
            if header is None:
                header = record
                continue
            starts.append(start)
            if len(record) != len(header):
                ragged.append(f"line {start} has {len(record)}")
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV at line {reader.line_num}: {err}") from None
    if ragged:
        more = f" and {len(ragged) - MAX_EXAMPLES} more" if len(ragged) > MAX_EXAMPLES else ""
        raise DataError(
            f"{path}: {len(ragged)} row(s) with the wrong number of fields (the header has "
            f"{len(header)}): {', '.join(ragged[:MAX_EXAMPLES])}{more}"
        )
    return np.asarray(starts, dtype=np.int64)


def _lines(index: pd.Index, lines: np.ndarray | None = None) -> str:
    # CSV line of a 0-based data row: row + 2 (the header is line 1) unless mapped.
    shown = [str(lines[i] if lines is not None else i + 2) for i in index[:MAX_EXAMPLES]]
    more = f" and {len(index) - MAX_EXAMPLES} more" if len(index) > MAX_EXAMPLES else ""
    return f"line{'s' if len(index) > 1 else ''} {', '.join(shown)}{more}"


def _parse(path: Path | str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One CSV as read (categories kept as text) and the file line of each row. Decoded whole,
    so a bad byte is reported at its offset in the file (pandas, decoding chunk by chunk,
    reports offsets within a chunk)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if not raw:
        raise DataError(f"{path}: file is empty")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte offset {err.start}, "
            f"line {line}: {raw[err.start : err.start + 1]!r})"
        ) from None
    lines = _record_lines(text, path)
    try:
        # Categories stay text exactly as written ("60", not 60.0); "NA" and empty are missing.
        frame = pd.read_csv(io.StringIO(text), dtype={c: "str" for c in CATEGORICAL_FEATURES})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty (no header line)") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: not a readable CSV: {err}") from None
    return frame, (lines if len(lines) == len(frame) else None)


def read_csv(path: Path, *, is_train: bool, price_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """One competition CSV read and validated: numeric features float64 (NaN where missing),
    categorical ones ``str``, whatever the file's own parsing gave."""
    frame, lines = _parse(path)
    return validate_frame(frame, str(path), is_train=is_train, lines=lines, price_range=price_range)


def read_inputs(
    train: Path, test: Path, sample_submission: Path, price_range: tuple[float, float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both competition files validated, and the test Ids checked against the training
    Ids (none shared) and the sample submission (the same set)."""
    train_frame = read_csv(train, is_train=True, price_range=price_range)
    frame, lines = _parse(test)
    test_frame = validate_frame(frame, str(test), is_train=False, lines=lines)
    sample, sample_lines = _parse(sample_submission)
    problems: list[str] = []
    if ID in sample.columns:
        _check_ids(sample, partial(_lines, lines=sample_lines), problems)
    else:
        problems.append(f"missing required column(s): {ID}")
    _refuse(sample_submission, problems)
    ids, at = test_frame[ID], partial(_lines, lines=lines)
    shared = test_frame.index[ids.isin(train_frame[ID])]
    if len(shared):
        problems.append(
            f"column '{ID}': also in {train} at {at(shared)} (e.g. {ids[shared[0]]}); "
            "test rows must be houses the model never saw"
        )
    absent = test_frame.index[~ids.isin(sample[ID])]
    if len(absent):
        problems.append(f"column '{ID}': not in {sample_submission} at {at(absent)} (e.g. {ids[absent[0]]})")
    missing = sorted(set(sample[ID]) - set(ids))
    if missing:
        problems.append(
            f"column '{ID}': {len(missing)} Id(s) of {sample_submission} have no test row "
            f"(e.g. {missing[:MAX_EXAMPLES]})"
        )
    _refuse(test, problems)
    return train_frame, test_frame


def _refuse(source: Path | str, problems: list[str]) -> None:
    if problems:
        raise DataError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


def validate_frame(
    frame: pd.DataFrame,
    source: str,
    *,
    is_train: bool,
    lines: np.ndarray | None = None,
    price_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Check one competition frame and return its columns in order, typed (unknown ones
    dropped with a warning); every problem at once in a DataError. ``lines`` maps a 0-based
    row to its file line (by default row + 2)."""
    if frame.empty:
        raise DataError(f"{source}: no data rows (only a header)" if len(frame.columns) else f"{source}: no columns")
    problems: list[str] = []
    at = partial(_lines, lines=lines)
    required = (ID, *FEATURES) + ((TARGET,) if is_train else ())
    missing = [c for c in required if c not in frame.columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in required and not (c == TARGET and not is_train)]
    if extra:
        warnings.warn(f"{source}: ignoring unknown column(s) {extra}", stacklevel=2)
    if not is_train and TARGET in frame.columns:
        warnings.warn(f"{source}: test rows carry a {TARGET} column; it is ignored", stacklevel=2)
    out = frame.reset_index(drop=True)[[c for c in required if c in frame.columns]].copy()
    if ID in out.columns:
        _check_ids(out, at, problems)
    for col in NUMERIC_FEATURES + ((TARGET,) if is_train else ()):
        if col in out.columns:
            limit = np.inf if col == TARGET and price_range else MAX_MAGNITUDE
            out[col] = _checked_numbers(out[col], col, limit, at, problems)
    if is_train and TARGET in out.columns and not any(f"'{TARGET}'" in p for p in problems):
        _check_prices(out[TARGET], price_range, at, problems)
    for col in CATEGORICAL_FEATURES:
        if col in out.columns:
            out[col] = out[col].astype("str").where(out[col].notna(), np.nan).astype("str")
    _refuse(source, problems)
    return out.reset_index(drop=True)


def _check_ids(out: pd.DataFrame, at, problems: list[str]) -> None:
    """Integer, unique Ids (within float's exact-integer range); typed int64 in place."""
    ids = pd.to_numeric(out[ID], errors="coerce")
    finite = np.isfinite(ids.fillna(np.inf)) & (ids.abs() < 2**53)
    bad = out.index[~finite | (ids != np.floor(ids.where(finite, 0)))]
    if len(bad):
        problems.append(f"column '{ID}': not an integer at {at(bad)} (e.g. {_shown(out.loc[bad[0], ID])})")
    dup = out.index[ids.duplicated(keep=False) & ids.notna()]
    if len(dup):
        problems.append(f"column '{ID}': duplicate ids at {at(dup)} (e.g. {ids[dup[0]]:g})")
    if not len(bad):
        out[ID] = ids.astype("int64")


def _checked_numbers(column: pd.Series, col: str, limit: float, at, problems: list[str]) -> pd.Series:
    """The column as float64; text, infinities and magnitudes above ``limit`` are problems."""
    values = pd.to_numeric(column, errors="coerce")
    bad = column.index[(values.isna() & column.notna()) | np.isinf(values.fillna(0))]
    if len(bad):
        problems.append(f"column '{col}': not a finite number at {at(bad)} (e.g. {_shown(column[bad[0]])})")
    huge = column.index[np.isfinite(values.fillna(0)) & (values.abs() > limit)]
    if len(huge):
        problems.append(
            f"column '{col}': beyond ±{limit:g} at {at(huge)} (e.g. {_shown(column[huge[0]])}); "
            "no house has such a value, and sums of squares of it overflow"
        )
    return values.astype("float64")


def _check_prices(price: pd.Series, price_range: tuple[float, float] | None, at, problems: list[str]) -> None:
    """Positive prices, inside ``data.price_range`` when one is given."""
    bad = price.index[price.isna() | (price <= 0)]
    if len(bad):
        problems.append(
            f"column '{TARGET}': must be present and positive, not at {at(bad)} (e.g. {_shown(price[bad[0]])})"
        )
    if price_range:
        low, high = price_range
        odd = price.index[(price > 0) & ((price < low) | (price > high))]
        if len(odd):
            problems.append(
                f"column '{TARGET}': outside data.price_range [{low:g}, {high:g}] at {at(odd)} "
                f"(e.g. {price[odd[0]]:g}); fix the rows or widen data.price_range"
            )


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
        warnings.warn(
            f"{source}: categories absent from the training rows (encoded as unknown): {listing}", stacklevel=2
        )
    return unseen
