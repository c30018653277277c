"""Output writing: a command's outputs are staged and land together at its commit, so one that
fails or is interrupted leaves the previous outputs intact; outputs land only where the command
may write (links followed); a damaged input, a full or read-only disk is one line naming the file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import pickle
import re
import secrets
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from houseprices.errors import HousePricesError, InputFileError, OutputPathError
from houseprices.paths import remade_by
from houseprices.util.processes import process_alive

STAGING = ".staging"  # <repo>/.staging/<pid>/: the outputs of a running command (git-ignored)

DISK_FAULTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


class DiskError(HousePricesError, OSError):
    """An output could not be written (disk full, read-only); names the path."""


# Set by confined_outputs for a pipeline command: the folder outputs must stay in and the
# resolved files and folders no output may land in. None: a library call, unconfined.
_confinement: tuple[Path, tuple[Path, ...]] | None = None


@contextlib.contextmanager
def confined_outputs(root: Path | str, read_only: Iterable[Path | str]) -> Iterator[None]:
    """Within: every output must resolve inside ``root`` (or the system temp folder, for
    scratch files) and outside ``read_only``, so a link in a params path cannot redirect it."""
    global _confinement
    previous = _confinement
    _confinement = (Path(root).resolve(), tuple(Path(p).resolve() for p in read_only))
    try:
        yield
    finally:
        _confinement = previous


def checked_destination(path: Path | str) -> Path:
    """``path`` with its folder's links resolved; refused (OutputPathError, nothing written)
    when it or the file it links to leads out of the repository or into a read-only input."""
    path = Path(path)
    target = path.parent.resolve() / path.name  # where the atomic rename lands
    if _confinement is None:
        return target
    root, read_only = _confinement
    written = Path(os.path.abspath(path))
    scratch = Path(tempfile.gettempdir()).resolve()
    allowed = root if written.is_relative_to(root) or not written.is_relative_to(scratch) else scratch
    for leads_to in dict.fromkeys((target, path.resolve())):
        if not leads_to.is_relative_to(allowed):
            raise OutputPathError(f"{path} leads to {leads_to}, outside {allowed}; refused, nothing was written")
        hit = next((p for p in read_only if leads_to == p or leads_to.is_relative_to(p)), None)
        if hit is not None:
            raise OutputPathError(
                f"{path} leads to {leads_to}, into the input {hit} the pipeline only reads; "
                "refused, nothing was written"
            )
    return target


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
    path = checked_destination(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Staging:
    """The outputs of one command in ``<root>/.staging/<pid>/``, laid out as in the repository,
    until :meth:`commit` moves them all into place and finishes what waits on it (the MLflow
    runs): a signal or an error before then replaces no output and leaves no temporary file in
    an output folder. (Hand-written: no library stages files for a rename across folders.)"""

    def __init__(self, root: Path):
        self.root, self.dir = root, root / STAGING / str(os.getpid())
        self.removed: list[Path] = []
        self.then: list[Callable[[], object]] = []

    def place(self, dest: Path) -> Path | None:
        """Where ``dest`` is staged; None outside the repository (written in place, at once)."""
        return self.dir / dest.relative_to(self.root) if dest.is_relative_to(self.root) else None

    def commit(self) -> None:
        for dest in self.removed:
            _delete(dest)
        for staged in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            dest = self.root / staged.relative_to(self.dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, dest)
        shutil.rmtree(self.dir, ignore_errors=True)
        for action in self.then:
            try:
                action()
            except Exception as err:  # noqa: BLE001 - the outputs are in place: the command succeeded
                warnings.warn(f"{err} (the outputs are in place)", stacklevel=2)


_staging: Staging | None = None


@contextlib.contextmanager
def staged_outputs(root: Path) -> Iterator[Staging]:
    """Within: outputs under ``root`` are staged until the caller commits them (see :class:`Staging`)."""
    global _staging
    for old in (root / STAGING).glob("*"):  # left by a command killed with SIGKILL
        if not (old.name.isdigit() and process_alive(int(old.name), None)):
            shutil.rmtree(old, ignore_errors=True)
    _staging = Staging(root.resolve())
    try:
        yield _staging
    finally:
        shutil.rmtree(_staging.dir, ignore_errors=True)  # empty after a commit; else nothing lands
        _staging = None


def on_commit(action: Callable[[], object]) -> bool:
    """Run ``action`` when the command's outputs land (True), or nowhere to wait for (False)."""
    if _staging is not None:
        _staging.then.append(action)
    return _staging is not None


@contextlib.contextmanager
def output_path(path: Path | str) -> Iterator[Path]:
    """Where to write output ``path``: its place in the running command's staging folder, else
    a temporary file beside it, renamed into place at once (:func:`atomic_path`)."""
    target = _staging.place(checked_destination(path)) if _staging is not None else None
    if target is None:
        with atomic_path(path) as tmp:
            yield tmp
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    yield target


def staged(path: Path | str) -> Path:
    """The file a command reads back after writing it: its staged copy, while it is not committed."""
    target = _staging.place(Path(path).resolve()) if _staging is not None else None
    return target if target is not None and target.exists() else Path(path)


def remove(path: Path | str) -> None:
    """Remove an output file or folder (at the commit, when the command stages its outputs)."""
    path = checked_destination(path)
    target = _staging.place(path) if _staging is not None else None
    if target is None:
        _delete(path)
    else:
        _staging.removed.append(path)
        _delete(target)


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> None:
    with output_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path | str, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def reading(path: Path | str) -> Iterator[None]:
    """A file that exists but cannot be read (truncated, corrupt, half-written by hand) is one
    line naming it and the command that writes it again, not a library's traceback."""
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - pickle, parquet and JSON readers raise anything
        reason = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise InputFileError(
            f"{path}: cannot be read ({type(err).__name__}: {reason[:200]}); it is damaged or "
            f"half-written: run `{remade_by(path)}` to write it again"
        ) from None


def read_json(path: Path | str) -> object:
    with reading(path):
        return json.loads(Path(path).read_text())


def read_parquet(path: Path | str, **kwargs) -> pd.DataFrame:
    with reading(path):
        import pandas  # lazily, like the other readers' libraries

        return pandas.read_parquet(path, **kwargs)


def write_parquet(path: Path | str, frame: pd.DataFrame) -> None:
    with output_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(path: Path | str, frame: pd.DataFrame, **kwargs) -> None:
    with output_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", **kwargs)


class _SameBytesPickler(pickle._Pickler):  # the Python pickler: the C one never asks about sets
    """The same object pickles to the same bytes in any process: a set's items sorted (their order
    follows the per-process string hash), a torch storage in torch's zip format (plain pickling
    names it by its memory address), so a refit model leaves dvc.lock as it was."""

    def reducer_override(self, obj):
        if type(obj) in (set, frozenset):
            with contextlib.suppress(TypeError):
                return type(obj), (sorted(obj),)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.storage.TypedStorage):
            buffer = io.BytesIO()
            torch.save(obj, buffer)
            return torch.storage._load_from_bytes, (buffer.getvalue(),)  # what torch's own reduce names
        return NotImplemented


def pickled(obj: object) -> bytes:
    buffer = io.BytesIO()
    _SameBytesPickler(buffer, protocol=4).dump(obj)
    return buffer.getvalue()


def dump_model(path: Path | str, model: object) -> None:
    """``model`` pickled (joblib loads it) with the digest :func:`verify_model` checks beside it."""
    with output_path(path) as tmp:
        tmp.write_bytes(pickled(model))
        digest = file_sha256(tmp)
    write_text(digest_path(path), f"{digest}  {Path(path).name}\n")


def file_sha256(path: Path | str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def digest_path(path: Path | str) -> Path:
    """The ``sha256sum`` line written beside a pickled model."""
    return Path(f"{path}.sha256")


def verify_model(path: Path | str) -> None:
    """A pickled model is whole and unchanged since :func:`dump_model` wrote it: checked
    against its digest, without unpickling (which would import every library it needs)."""
    with reading(path):
        expected = digest_path(path).read_text().split()[0] if digest_path(path).is_file() else None
        if expected is None:
            raise ValueError(f"no {digest_path(path).name} beside it")
        if file_sha256(path) != expected:
            raise ValueError(f"its SHA-256 differs from {digest_path(path).name}, written with it")


def load_model(path: Path | str) -> object:
    import joblib

    with reading(path):
        return joblib.load(path)


def error_chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    while err is not None and err not in seen and len(seen) < 10:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


def disk_error(err: BaseException) -> DiskError | None:
    """A full or read-only disk under ``err``, as one line naming the output (an atomic
    write's temporary file ``dir/.name.abc123.tmp`` is named as ``dir/name``)."""
    chain = error_chain(err)
    found = next((e for e in chain if isinstance(e, OSError) and e.errno in DISK_FAULTS), None)
    if found is None and "No space left on device" not in " ".join(str(e) for e in chain):
        return None
    where, what, fix = f"an output under {Path.cwd()}", DISK_FAULTS[errno.ENOSPC], "free space"
    if found is not None:
        what, fix = DISK_FAULTS[found.errno], "free space (or make it writable)"
        if found.filename:
            path = Path(found.filename)
            match = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", path.name)
            where = str(path.with_name(match.group(1)) if match else path)
    return DiskError(
        f"{where}: {what}; {fix} and rerun (outputs are replaced only when complete: the previous ones are intact)"
    )
