"""Atomic output writing: a stage that fails leaves the previous output intact."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from houseprices.util.timing import timed

if TYPE_CHECKING:
    import pandas as pd


def _new_temp(path: Path) -> Path:
    """An empty file beside ``path``, created with mode 0666 so the umask decides its
    permissions (``tempfile.mkstemp`` would force 0600 on every output)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{path}: could not create a temporary file beside it")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    Beside, so the rename stays on one filesystem and readers never see half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@timed("io")
def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path | str, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@timed("io")
def read_json(path: Path | str) -> object:
    return json.loads(Path(path).read_text())


@timed("io")
def write_parquet(path: Path | str, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


@timed("io")
def write_csv(path: Path | str, frame: pd.DataFrame, **kwargs) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", **kwargs)


@timed("io")
def dump_model(path: Path | str, model: object) -> None:
    import joblib  # lazily: the stages that pickle nothing do not pay its import

    with atomic_path(path) as tmp:
        joblib.dump(model, tmp)


@timed("io")
def load_model(path: Path | str) -> object:
    import joblib

    return joblib.load(path)
