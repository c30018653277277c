"""Loading and validating the competition CSVs.

Problems are collected and reported together, each with file, column and CSV line,
so a user fixes a broken file in one pass instead of one error per run.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.data.schema import CATEGORICAL_FEATURES, CODE_FEATURES, FEATURES, ID, NUMERIC_FEATURES, TARGET
from houseprices.errors import DataError

logger = logging.getLogger(__name__)


MAX_EXAMPLES = 5
# No Ames measurement (square feet, years, dollars) comes near this; far above it the sums
# of squares in scaling and fitting overflow (LotArea 1e308 ends as NaN inside a model).
MAX_MAGNITUDE = 1e15


def _read_text(path: Path) -> str:
    """The whole file as text; a bad byte is reported at its offset in the file (pandas,
    decoding chunk by chunk, reports offsets within a chunk)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if not raw:
        raise DataError(f"{path}: file is empty")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte offset {err.start}, "
            f"line {line}: {raw[err.start : err.start + 1]!r})"
        ) from None


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
    """One CSV as read (categories kept as text) and the file line of each row."""
    path = Path(path)
    text = _read_text(path)
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
    """Read and validate one competition CSV into typed columns.

    Numeric features become float64 (NaN where missing) and categorical ones ``str``,
    the same types whatever the file's own parsing gave.
    """
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
        sample = sample[[ID]].reset_index(drop=True)
        _check_ids(sample, lambda index: _lines(index, sample_lines), problems)
    else:
        problems.append(f"missing required column(s): {ID}")
    if problems:
        raise DataError(f"{sample_submission}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    check_test_ids(train_frame, test_frame, sample[ID], f"{test}", f"{train}", f"{sample_submission}", lines)
    return train_frame, test_frame


def check_test_ids(
    train: pd.DataFrame,
    test: pd.DataFrame,
    sample_ids: pd.Series,
    source: str,
    train_source: str,
    sample_source: str,
    lines: np.ndarray | None = None,
) -> None:
    """Test rows are unseen houses, exactly those the sample submission lists."""
    problems = []
    shared = test.index[test[ID].isin(train[ID])]
    if len(shared):
        problems.append(
            f"column '{ID}': also in {train_source} at {_lines(shared, lines)} "
            f"(e.g. {test.loc[shared[0], ID]}); test rows must be houses the model never saw"
        )
    absent = test.index[~test[ID].isin(sample_ids)]
    if len(absent):
        problems.append(
            f"column '{ID}': not in {sample_source} at {_lines(absent, lines)} (e.g. {test.loc[absent[0], ID]})"
        )
    missing = sorted(set(sample_ids) - set(test[ID]))
    if missing:
        problems.append(
            f"column '{ID}': {len(missing)} Id(s) of {sample_source} have no test row (e.g. {missing[:MAX_EXAMPLES]})"
        )
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
    """Check one competition frame and return it typed; every problem at once in a DataError.

    Problems name the source, the column and up to five example CSV lines (``lines``
    maps a 0-based row to its file line; by default row + 2). ``price_range`` (dollars)
    bounds the training target.
    """
    if frame.empty:
        raise DataError(f"{source}: no data rows (only a header)" if len(frame.columns) else f"{source}: no columns")
    problems: list[str] = []

    def at(index: pd.Index) -> str:
        return _lines(index, lines)

    out = _required_columns(frame.reset_index(drop=True), source, is_train, problems)
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
    if problems:
        raise DataError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return out.reset_index(drop=True)


def _required_columns(frame: pd.DataFrame, source: str, is_train: bool, problems: list[str]) -> pd.DataFrame:
    """The competition's columns in their order; unknown ones are dropped with a warning."""
    required = (ID, *FEATURES) + ((TARGET,) if is_train else ())
    missing = [c for c in required if c not in frame.columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in required and not (c == TARGET and not is_train)]
    if extra:
        warnings.warn(f"{source}: ignoring unknown column(s) {extra}", stacklevel=3)
    if not is_train and TARGET in frame.columns:
        warnings.warn(f"{source}: test rows carry a {TARGET} column; it is ignored", stacklevel=3)
    return frame[[c for c in required if c in frame.columns]].copy()


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
