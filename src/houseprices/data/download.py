"""Download the competition CSVs with the Kaggle CLI (needs an account) or from the d2l.ai
mirror (none). Every file is size-capped and checked against its SHA-256 in ``data/raw/SHA256SUMS``
before anything is replaced; the mirror may redirect only to the same host and path."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import http.client
import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from houseprices.data.checksums import read_checksums
from houseprices.errors import HousePricesError
from houseprices.paths import CHECKSUMS
from houseprices.util.files import atomic_path

logger = logging.getLogger(__name__)

# S3 Transfer Acceleration serves https (bucket names without dots match its certificate).
D2L_BASE_URL = "https://d2l-data.s3-accelerate.amazonaws.com/"
KAGGLE_COMPETITION = "house-prices-advanced-regression-techniques"
#: Per file: only stops a runaway or hostile server.
MAX_BYTES = 50 * 2**20

#: local file name -> remote file name on the d2l mirror
D2L_FILES: dict[str, str] = {
    "train.csv": "kaggle_house_pred_train.csv",
    "test.csv": "kaggle_house_pred_test.csv",
}

#: Files from the Kaggle archive that are worth keeping (the first two are required).
KAGGLE_FILES: tuple[str, ...] = (
    "train.csv",
    "test.csv",
    "sample_submission.csv",
    "data_description.txt",
)

DEADLINE_S = 50.0
MIN_RATE = 4096  # bytes per second, averaged since the start
RATE_GRACE_S = 10.0
SOCKET_TIMEOUT_S = 15.0
KAGGLE_CLI_TIMEOUT_S = 55.0  # a download or an upload


class DownloadError(HousePricesError, RuntimeError):
    """Raised when data cannot be fetched or fails verification."""


class _Pace:
    """A deadline and, past a grace period, a minimum average rate (far below any working
    connection) for all the mirror's files together: a server that trickles a byte at a time
    resets every socket timeout. :meth:`check` after each chunk."""

    def __init__(self) -> None:
        self.start, self.received = time.monotonic(), 0

    def check(self, what: str, chunk: int) -> None:
        self.received += chunk
        elapsed = time.monotonic() - self.start
        if elapsed > DEADLINE_S:
            raise DownloadError(f"{what}: not done after {DEADLINE_S:.0f} s; stopped, nothing was replaced")
        if elapsed > RATE_GRACE_S and self.received < MIN_RATE * elapsed:
            raise DownloadError(
                f"{what}: {self.received} bytes in {elapsed:.0f} s, below {MIN_RATE} bytes/s "
                "(the server stalls); stopped, nothing was replaced"
            )


def kaggle_credentials_available(env: Mapping[str, str] | None = None, home: Path | None = None) -> bool:
    """Whether the Kaggle CLI is installed and can find credentials, so that
    ``download(source="auto")`` can fall back to the mirror instead of failing inside the CLI."""
    env = os.environ if env is None else env
    configs = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    configs.append((Path.home() if home is None else home) / ".kaggle")
    has_file = any((d / "kaggle.json").is_file() for d in configs)
    if not (has_file or (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"))):
        return False
    return shutil.which("kaggle", path=env.get("PATH")) is not None


def _expected(checksums: Path, names: Iterable[str]) -> dict[str, str]:
    """{file name: SHA-256} for ``names``, every one of them listed in ``checksums``."""
    listed = read_checksums(Path(checksums))
    unlisted = [n for n in names if n not in listed]
    if unlisted:
        raise DownloadError(f"{checksums}: no SHA-256 listed for {unlisted}; nothing was downloaded")
    return {n: listed[n] for n in names}


def _copy_verified(
    src: BinaryIO, tmp: Path, what: str, expected: str, checksums: Path, max_bytes: int, pace: _Pace | None = None
) -> None:
    """Stream ``src`` into ``tmp``, stopping past ``max_bytes`` or when ``pace`` runs out;
    fail unless the SHA-256 matches. ``read1``: what has arrived, not a full chunk's wait."""
    digest, size = hashlib.sha256(), 0
    with open(tmp, "wb") as out:
        while chunk := src.read1(1 << 16):
            if pace is not None:
                pace.check(what, len(chunk))
            size += len(chunk)
            if size > max_bytes:
                raise DownloadError(f"{what}: larger than the {max_bytes}-byte cap; refused")
            digest.update(chunk)
            out.write(chunk)
    actual = digest.hexdigest()
    if actual != expected:
        raise DownloadError(
            f"Checksum mismatch for {what}: expected SHA-256 {expected} (listed in "
            f"{checksums}), got {actual}; nothing was replaced"
        )


class _SamePlaceRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same host and path (an http -> https upgrade, say):
    a mirror that sends us elsewhere is not the mirror we checked."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        same = old.hostname == new.hostname and old.path == new.path
        scheme_ok = new.scheme == old.scheme or (old.scheme, new.scheme) == ("http", "https")
        if not (same and scheme_ok and (new.port == old.port or new.scheme != old.scheme)):
            raise DownloadError(
                f"{req.full_url} redirects to {newurl}: refused (only the same host and "
                "path are followed); check --base-url"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _write_all(dest_dir: Path, names: Iterable[str], fill: Callable[[str, Path], None]) -> list[Path]:
    """Fill a temp file per name with ``fill(name, tmp)``; replace the destinations only
    once every file is fetched and verified, so a failure leaves all of them as they were.
    Temp files a killed download left first go (SIGKILL leaves no time to clean)."""
    written = [Path(dest_dir) / name for name in names]
    for dest in written:
        for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.tmp"):
            logger.info("Removing %s, left by an interrupted download", stale)
            stale.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        for dest in written:
            fill(dest.name, stack.enter_context(atomic_path(dest)))
    for dest in written:
        logger.info("Wrote %s", dest)
    return written


def download_from_mirror(
    dest_dir: Path,
    base_url: str = D2L_BASE_URL,
    timeout: float = 60.0,
    checksums: Path = CHECKSUMS,
    max_bytes: int = MAX_BYTES,
) -> list[Path]:
    """Fetch train/test CSVs from the d2l mirror (no Kaggle account needed)."""
    if urllib.parse.urlsplit(base_url).scheme != "https":
        logger.warning("%s is not https: integrity rests on the SHA-256 check alone", base_url)
    expected = _expected(checksums, D2L_FILES)
    pace = _Pace()

    def fill(name: str, tmp: Path) -> None:
        url = base_url + D2L_FILES[name]
        logger.info("Downloading %s", url)
        opener = urllib.request.build_opener(_SamePlaceRedirects)
        try:
            with opener.open(url, timeout=min(timeout, SOCKET_TIMEOUT_S)) as response:
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > max_bytes:
                    raise DownloadError(f"{url}: {length} bytes announced, above the {max_bytes}-byte cap; refused")
                _copy_verified(response, tmp, url, expected[name], checksums, max_bytes, pace)
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"HTTP error {exc.code} fetching {url}: {exc.reason}") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise DownloadError(f"Could not fetch {url}: {getattr(exc, 'reason', exc)}") from exc

    return _write_all(dest_dir, D2L_FILES, fill)


def _kaggle_members(tmp_dir: Path, max_bytes: int, stack: contextlib.ExitStack) -> dict[str, Callable[[], BinaryIO]]:
    """{file name: opener} for the wanted files in the downloaded archive(s), or loose
    files (older CLI versions leave them unzipped). Nothing is extracted to disk."""
    found: dict[str, Callable[[], BinaryIO]] = {}
    for archive in sorted(tmp_dir.glob("*.zip")):
        if archive.stat().st_size > max_bytes:
            raise DownloadError(f"Kaggle archive {archive.name} is above the {max_bytes}-byte cap; refused")
        try:
            zf = stack.enter_context(zipfile.ZipFile(archive))
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"Kaggle archive {archive.name} is corrupt") from exc
        for info in zf.infolist():
            if info.filename in KAGGLE_FILES:
                found.setdefault(info.filename, lambda zf=zf, info=info: zf.open(info))
    for name in KAGGLE_FILES:
        if (tmp_dir / name).is_file():
            found.setdefault(name, lambda path=tmp_dir / name: open(path, "rb"))
    missing = [n for n in KAGGLE_FILES[:2] if n not in found]
    if missing:
        raise DownloadError(f"Kaggle download lacks {missing}; nothing was replaced")
    return found


def download_from_kaggle(dest_dir: Path, checksums: Path = CHECKSUMS, max_bytes: int = MAX_BYTES) -> list[Path]:
    """Download the competition archive with the Kaggle CLI and keep the verified files.
    The CLI, not its Python API, so this project never imports the optional ``kaggle``."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".kaggle-") as tmp, contextlib.ExitStack() as stack:
        cmd = ["kaggle", "competitions", "download", "-c", KAGGLE_COMPETITION, "-p", tmp]
        logger.info("Running %s", " ".join(cmd))
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=KAGGLE_CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DownloadError(
                f"`kaggle competitions download` did not finish within {KAGGLE_CLI_TIMEOUT_S:.0f} s; "
                "stopped, nothing was replaced"
            ) from None
        except FileNotFoundError as exc:
            raise DownloadError("The `kaggle` command was not found; install it with `pip install kaggle`.") from exc
        except subprocess.CalledProcessError as exc:
            stderr = (exc.stderr or "").strip() or (exc.stdout or "").strip()
            raise DownloadError(f"`kaggle competitions download` failed (exit {exc.returncode}): {stderr}") from exc
        members = _kaggle_members(Path(tmp), max_bytes, stack)
        names = [n for n in KAGGLE_FILES if n in members]
        expected = _expected(checksums, names)

        def fill(name: str, tmp_path: Path) -> None:
            with members[name]() as src:
                _copy_verified(src, tmp_path, f"{name} from the Kaggle archive", expected[name], checksums, max_bytes)

        return _write_all(dest_dir, names, fill)


def download(
    dest_dir: Path,
    source: Literal["auto", "kaggle", "mirror"] = "auto",
    base_url: str = D2L_BASE_URL,
    checksums: Path = CHECKSUMS,
    max_bytes: int = MAX_BYTES,
) -> list[Path]:
    """Download the competition data into ``dest_dir`` and return written paths. ``auto``
    prefers Kaggle (the canonical source, with the data description) when credentials exist."""
    if source not in ("auto", "kaggle", "mirror"):
        raise ValueError(f"source must be 'auto', 'kaggle' or 'mirror', not {source!r}")
    if source != "mirror" and kaggle_credentials_available():
        logger.info("Downloading from Kaggle")
        return download_from_kaggle(dest_dir, checksums, max_bytes)
    if source == "kaggle":
        raise DownloadError(
            "Kaggle credentials not found. Create an API token on kaggle.com "
            "(Account -> API -> Create New Token) and save it as ~/.kaggle/kaggle.json "
            "(or in $KAGGLE_CONFIG_DIR/kaggle.json), or set the KAGGLE_USERNAME and "
            "KAGGLE_KEY environment variables; install the CLI with `pip install kaggle` "
            "and accept the competition rules at "
            f"https://www.kaggle.com/c/{KAGGLE_COMPETITION}/rules. "
            "Alternatively use source='mirror', which needs no account."
        )
    logger.info("Downloading from the d2l mirror")
    return download_from_mirror(dest_dir, base_url=base_url, checksums=checksums, max_bytes=max_bytes)
