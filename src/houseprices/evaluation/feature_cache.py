"""Each CV fold's preprocessing output, kept on disk from one run (or search trial) to the next.

The experiment loop and a search's trials change a model's params (lasso's ``alpha``, a net's
learning rate) and leave the preprocessing as it was, yet fitting it on a fold's training rows
(target statistics, skew transforms, scaling, one-hot) and transforming the fold's validation and
test rows is most of a linear model's fold. :class:`FeatureCache` keeps that output, one file per
fold, keyed by everything it depends on: the unfitted preprocessing (every param, nested steps
included), the fold's rows (after the outlier rule), the data, the thread cap (the last bits of
BLAS results depend on it), the package's source code and the versions of the libraries that
compute it. A hit returns what a refit would make (the fit is deterministic), so the fold
scores, predictions and metrics are byte-identical with or without the cache.

Entries are written atomically; a damaged or unreadable one counts as a miss; past
``resources.fold_cache_mb`` the least recently used ones go. Queued and ``--temp``
experiments run in a copy of the repository and start with an empty cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import joblib

from houseprices.errors import OutputPathError
from houseprices.paths import FOLD_CACHE
from houseprices.util.files import atomic_path
from houseprices.util.threads import current_thread_cap

logger = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]
LIBRARIES = ("numpy", "pandas", "scipy", "sklearn")
SUFFIX = ".pkl"


@dataclass(frozen=True)
class FoldFeatures:
    """The fitted preprocessing's output for one fold: the model's input rows."""

    train: object  # fit_transform of the training rows (outliers removed; y for target statistics)
    valid: object  # transform of the validation rows
    test: object | None = None  # transform of the test rows, when there are any


def preprocessed(preprocess, X_train, y_train, X_valid, X_test=None) -> FoldFeatures:
    """Fit ``preprocess`` (unfitted) on the training rows and transform the others, as the
    whole pipeline's ``fit`` and ``predict`` would."""
    train = preprocess.fit_transform(X_train, y_train)
    valid = preprocess.transform(X_valid)
    return FoldFeatures(train, valid, None if X_test is None else preprocess.transform(X_test))


def code_version() -> str:
    """A digest of what computes the features besides their inputs: this package's source,
    the numerical libraries' versions, the Python version and this process's thread cap."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    versions = [getattr(sys.modules.get(name) or __import__(name), "__version__", "") for name in LIBRARIES]
    digest.update(repr((versions, platform.python_version(), current_thread_cap())).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureCache:
    """Fold features on disk under ``folder``, at most ``max_bytes`` of them; see the module doc."""

    folder: Path
    max_bytes: int
    version: str = field(default_factory=code_version)  # made where the stage runs, sent to workers

    def features(self, preprocess, X_train, y_train, X_valid, X_test, rows_key: str) -> FoldFeatures:
        """The fold's model inputs: from the cache, or ``preprocess`` fit now (and kept).
        ``rows_key`` identifies the data and the fold's row sets (a hash of them)."""
        path = self.folder / f"{joblib.hash((self.version, preprocess, rows_key))}{SUFFIX}"
        found = self._read(path)
        if found is None:
            found = preprocessed(preprocess, X_train, y_train, X_valid, X_test)
            self._write(path, found)
        return found

    def _read(self, path: Path) -> FoldFeatures | None:
        try:
            with open(path, "rb") as file:
                found = pickle.load(file)  # noqa: S301 - this cache's own files in the repository, as models/ are
        except FileNotFoundError:
            return None
        except Exception as err:  # noqa: BLE001 - unpickling raises anything; a damaged entry is a miss
            logger.debug("%s: unreadable fold features (%s); computing them again", path, err)
            return None
        with contextlib.suppress(OSError):  # a read-only cache still serves its entries
            os.utime(path)  # recently used: evicted last
        return found if isinstance(found, FoldFeatures) else None

    def _write(self, path: Path, features: FoldFeatures) -> None:
        """Keep ``features``; a cache that cannot be written (disk full, read-only, a link out of
        the repository) only costs time."""
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as file:
                pickle.dump(features, file, protocol=pickle.HIGHEST_PROTOCOL)
            self._evict()
        except (OSError, OutputPathError) as err:
            logger.debug("%s: fold features not kept (%s)", path, err)

    def _evict(self) -> None:
        """Drop the least recently used entries beyond ``max_bytes``."""
        entries = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):  # another process evicted it first
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):  # another process evicted it first
                path.unlink()
            total -= size


def fold_cache(resources) -> FeatureCache | None:
    """The folds' preprocessing output kept in the workspace (``resources.fold_cache_mb``; 0: none);
    an absolute path, as the fold workers' folder is their fork server's."""
    megabytes = resources.fold_cache_mb
    return FeatureCache(Path.cwd() / FOLD_CACHE, megabytes * 2**20) if megabytes else None
