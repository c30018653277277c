"""Download the Kaggle House Prices competition data.

The CSVs are committed under ``data/raw/``; this module exists for users who
prefer to fetch fresh copies, either through the official Kaggle CLI (needs an
account and accepted competition rules) or from the public d2l.ai mirror
(no account, integrity checked against the SHA-1s published by the d2l book).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from .errors import HousePricesError

logger = logging.getLogger(__name__)

D2L_BASE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
KAGGLE_COMPETITION = "house-prices-advanced-regression-techniques"

#: local file name -> (remote file name on the d2l mirror, SHA-1 published by d2l)
D2L_FILES: dict[str, tuple[str, str]] = {
    "train.csv": ("kaggle_house_pred_train.csv", "585e9cc93e70b39160e7921475f9bcd7d31219ce"),
    "test.csv": ("kaggle_house_pred_test.csv", "fa19780a7b011d9b009e8bff8e99922a8ee2eb90"),
}

#: Files from the Kaggle archive that are worth keeping.
KAGGLE_FILES: tuple[str, ...] = (
    "train.csv",
    "test.csv",
    "sample_submission.csv",
    "data_description.txt",
)

_CHUNK_SIZE = 1 << 16

_CREDENTIALS_HELP = (
    "Kaggle credentials not found. Create an API token on kaggle.com "
    "(Account -> API -> Create New Token) and save it as ~/.kaggle/kaggle.json "
    "(or in $KAGGLE_CONFIG_DIR/kaggle.json), or set the KAGGLE_USERNAME and "
    "KAGGLE_KEY environment variables; install the CLI with `pip install kaggle` "
    "and accept the competition rules at "
    f"https://www.kaggle.com/c/{KAGGLE_COMPETITION}/rules. "
    "Alternatively use source='mirror', which needs no account."
)


class DownloadError(HousePricesError, RuntimeError):
    """Raised when data cannot be fetched or fails verification."""


def kaggle_credentials_available(
    env: Mapping[str, str] | None = None, home: Path | None = None
) -> bool:
    """Return True if the Kaggle CLI is installed and can find credentials.

    Checked up front so ``download(source="auto")`` can fall back to the mirror
    instead of failing inside the CLI. ``env``/``home`` are injectable for tests.
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else home

    has_env = bool(env.get("KAGGLE_USERNAME")) and bool(env.get("KAGGLE_KEY"))
    config_dir = env.get("KAGGLE_CONFIG_DIR")
    candidates = [home / ".kaggle" / "kaggle.json"]
    if config_dir:
        candidates.insert(0, Path(config_dir) / "kaggle.json")
    has_file = any(p.is_file() for p in candidates)

    if not (has_env or has_file):
        return False
    return shutil.which("kaggle", path=env.get("PATH")) is not None


def _remove_quietly(path: Path) -> None:
    """Delete a temp file, ignoring it already being gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _fetch_verified(url: str, dest: Path, expected_sha1: str, timeout: float) -> None:
    """Stream ``url`` to a temp file beside ``dest``; rename only if SHA-1 matches.

    The temp file lives in the destination directory so ``os.replace`` is an
    atomic same-filesystem rename: readers never see a partial or corrupt file.
    """
    tmp = tempfile.NamedTemporaryFile(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )
    tmp_path = Path(tmp.name)
    try:
        sha1 = hashlib.sha1()
        with tmp:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    while chunk := response.read(_CHUNK_SIZE):
                        sha1.update(chunk)
                        tmp.write(chunk)
            except urllib.error.HTTPError as exc:
                raise DownloadError(f"HTTP error {exc.code} fetching {url}: {exc.reason}") from exc
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"Could not fetch {url}: {reason}") from exc
        actual = sha1.hexdigest()
        if actual != expected_sha1:
            raise DownloadError(
                f"Checksum mismatch for {url}: expected SHA-1 {expected_sha1}, got {actual}"
            )
        os.replace(tmp_path, dest)
    except BaseException:
        _remove_quietly(tmp_path)
        raise


def download_from_mirror(
    dest_dir: Path, base_url: str = D2L_BASE_URL, timeout: float = 60.0
) -> list[Path]:
    """Fetch train/test CSVs from the d2l mirror, verifying each SHA-1.

    No Kaggle account is needed; integrity rests on the published checksums.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for local_name, (remote_name, sha1) in D2L_FILES.items():
        url = base_url + remote_name
        dest = dest_dir / local_name
        logger.info("Downloading %s -> %s", url, dest)
        _fetch_verified(url, dest, sha1, timeout)
        written.append(dest)
    return written


def download_from_kaggle(dest_dir: Path) -> list[Path]:
    """Download the competition archive with the Kaggle CLI and unpack it.

    Uses the CLI rather than its Python API so the optional ``kaggle`` package
    is never imported by this project.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".kaggle-") as tmp:
        tmp_dir = Path(tmp)
        cmd = ["kaggle", "competitions", "download", "-c", KAGGLE_COMPETITION, "-p", str(tmp_dir)]
        logger.info("Running %s", " ".join(cmd))
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise DownloadError(
                "The `kaggle` command was not found; install it with `pip install kaggle`."
            ) from exc
        except subprocess.CalledProcessError as exc:
            stderr = (exc.stderr or "").strip() or (exc.stdout or "").strip()
            raise DownloadError(
                f"`kaggle competitions download` failed (exit {exc.returncode}): {stderr}"
            ) from exc

        extract_dir = tmp_dir / "extracted"
        extract_dir.mkdir()
        archives = sorted(tmp_dir.glob("*.zip"))
        for archive in archives:
            try:
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(extract_dir)
            except zipfile.BadZipFile as exc:
                raise DownloadError(f"Kaggle archive {archive.name} is corrupt") from exc
        # Older CLI versions may leave files unzipped; accept those too.
        search_dirs = [extract_dir, tmp_dir]

        written: list[Path] = []
        for name in KAGGLE_FILES:
            src = next((d / name for d in search_dirs if (d / name).is_file()), None)
            if src is None:
                continue
            dest = dest_dir / name
            # tmp_dir is inside dest_dir, so this is an atomic same-filesystem rename.
            os.replace(src, dest)
            logger.info("Wrote %s", dest)
            written.append(dest)
    if not written:
        raise DownloadError("Kaggle download produced none of the expected files")
    return written


def download(
    dest_dir: Path,
    source: Literal["auto", "kaggle", "mirror"] = "auto",
    base_url: str = D2L_BASE_URL,
) -> list[Path]:
    """Download the competition data into ``dest_dir`` and return written paths.

    ``auto`` prefers Kaggle (the canonical source, includes the data
    description) when credentials exist, else the checksum-verified mirror.
    """
    if source == "mirror":
        return download_from_mirror(dest_dir, base_url=base_url)
    if source == "kaggle":
        if not kaggle_credentials_available():
            raise DownloadError(_CREDENTIALS_HELP)
        return download_from_kaggle(dest_dir)
    if source == "auto":
        if kaggle_credentials_available():
            logger.info("Kaggle credentials found; downloading from Kaggle")
            return download_from_kaggle(dest_dir)
        logger.info("No Kaggle credentials; downloading from the d2l mirror")
        return download_from_mirror(dest_dir, base_url=base_url)
    raise ValueError(f"source must be 'auto', 'kaggle' or 'mirror', not {source!r}")
