"""Tests for houseprices.data.download, against a local HTTP server (no internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import stat
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from houseprices.data import download as dl

TRAIN_BYTES = b"Id,LotArea,SalePrice\n1,8450,208500\n2,9600,181500\n"
TEST_BYTES = b"Id,LotArea\n1461,11622\n1462,14267\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def served_dir(tmp_path: Path) -> Path:
    d = tmp_path / "served"
    d.mkdir()
    return d


@pytest.fixture
def base_url(served_dir: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(served_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sums(tmp_path: Path) -> Path:
    """A SHA256SUMS listing the fake files, as data/raw/SHA256SUMS lists the real ones."""
    path = tmp_path / "SHA256SUMS"
    path.write_text(f"{_sha256(TRAIN_BYTES)}  train.csv\n{_sha256(TEST_BYTES)}  test.csv\n")
    return path


@pytest.fixture
def fake_files(served_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Serve small fake CSVs under the mirror's remote names."""
    (served_dir / "remote_train.csv").write_bytes(TRAIN_BYTES)
    (served_dir / "remote_test.csv").write_bytes(TEST_BYTES)
    monkeypatch.setattr(dl, "D2L_FILES", {"train.csv": "remote_train.csv", "test.csv": "remote_test.csv"})
    return {"train.csv": TRAIN_BYTES, "test.csv": TEST_BYTES}


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment with no Kaggle env vars and an empty home directory."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    return home


def _make_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fake_kaggle_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake `kaggle` CLI first on PATH; it writes a zip into the -p dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = textwrap.dedent(
        f"""\
        #!{sys.executable}
        import sys, zipfile
        args = sys.argv[1:]
        if args[:2] != ["competitions", "download"] or "-c" not in args or "-p" not in args:
            sys.stderr.write("bad args: %r\\n" % (args,))
            sys.exit(2)
        if args[args.index("-c") + 1] != {dl.KAGGLE_COMPETITION!r}:
            sys.stderr.write("403 Forbidden: unknown competition\\n")
            sys.exit(1)
        out = args[args.index("-p") + 1]
        with zipfile.ZipFile(out + "/{dl.KAGGLE_COMPETITION}.zip", "w") as zf:
            zf.writestr("train.csv", {TRAIN_BYTES!r})
            zf.writestr("test.csv", {TEST_BYTES!r})
        """
    )
    _make_executable(bin_dir / "kaggle", script)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    return bin_dir


def _leftovers(dest: Path, expected: set[str]) -> set[str]:
    return {p.name for p in dest.iterdir()} - expected


def test_mirror_download_writes_exact_bytes(
    tmp_path: Path, sums: Path, base_url: str, fake_files: dict[str, bytes]
) -> None:
    dest = tmp_path / "out" / "raw"  # does not exist yet
    paths = dl.download_from_mirror(dest, base_url=base_url, timeout=5, checksums=sums)
    assert paths == [dest / "train.csv", dest / "test.csv"]
    for name, data in fake_files.items():
        assert (dest / name).read_bytes() == data
    assert _leftovers(dest, set(fake_files)) == set()


def test_checksum_mismatch_raises_and_leaves_nothing(
    tmp_path: Path,
    sums: Path,
    served_dir: Path,
    base_url: str,
    fake_files: dict[str, bytes],
) -> None:
    tampered = b"Id,LotArea,SalePrice\n1,8450,1\n"
    (served_dir / "remote_train.csv").write_bytes(tampered)
    dest = tmp_path / "out"
    with pytest.raises(dl.DownloadError) as excinfo:
        dl.download_from_mirror(dest, base_url=base_url, timeout=5, checksums=sums)
    msg = str(excinfo.value)
    assert base_url + "remote_train.csv" in msg
    assert _sha256(TRAIN_BYTES) in msg
    assert _sha256(tampered) in msg
    assert list(dest.iterdir()) == []


def test_checksum_mismatch_keeps_existing_file(
    tmp_path: Path,
    sums: Path,
    served_dir: Path,
    base_url: str,
    fake_files: dict[str, bytes],
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    existing = b"previous good copy\n"
    (dest / "train.csv").write_bytes(existing)
    (served_dir / "remote_train.csv").write_bytes(b"corrupted")
    with pytest.raises(dl.DownloadError, match="expected SHA-256"):
        dl.download_from_mirror(dest, base_url=base_url, timeout=5, checksums=sums)
    assert (dest / "train.csv").read_bytes() == existing
    assert _leftovers(dest, {"train.csv"}) == set()


def test_http_404_raises_and_leaves_nothing(
    tmp_path: Path,
    sums: Path,
    served_dir: Path,
    base_url: str,
    fake_files: dict[str, bytes],
) -> None:
    (served_dir / "remote_train.csv").unlink()
    dest = tmp_path / "out"
    with pytest.raises(dl.DownloadError) as excinfo:
        dl.download_from_mirror(dest, base_url=base_url, timeout=5, checksums=sums)
    assert base_url + "remote_train.csv" in str(excinfo.value)
    assert "404" in str(excinfo.value)
    assert list(dest.iterdir()) == []


def test_connection_error_raises_download_error(tmp_path: Path, sums: Path, fake_files: dict[str, bytes]) -> None:
    port = free_port()  # free, then closed: nothing listens
    url = f"http://127.0.0.1:{port}/"
    dest = tmp_path / "out"
    with pytest.raises(dl.DownloadError, match=f"127.0.0.1:{port}/remote_train.csv"):
        dl.download_from_mirror(dest, base_url=url, timeout=5, checksums=sums)
    assert list(dest.iterdir()) == []


def test_auto_uses_mirror_without_credentials(
    tmp_path: Path,
    sums: Path,
    base_url: str,
    fake_files: dict[str, bytes],
    no_credentials: Path,
    fake_kaggle_bin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The CLI is installed but there are no credentials: must not be used.
    def boom(dest_dir: Path) -> list[Path]:
        raise AssertionError("kaggle should not be used")

    monkeypatch.setattr(dl, "download_from_kaggle", boom)
    dest = tmp_path / "out"
    paths = dl.download(dest, source="auto", base_url=base_url, checksums=sums)
    assert paths == [dest / "train.csv", dest / "test.csv"]
    assert (dest / "train.csv").read_bytes() == TRAIN_BYTES


def test_auto_uses_kaggle_with_credentials(
    tmp_path: Path,
    sums: Path,
    no_credentials: Path,
    fake_kaggle_bin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "user")
    monkeypatch.setenv("KAGGLE_KEY", "secret")

    def boom(*args: object, **kwargs: object) -> list[Path]:
        raise AssertionError("mirror should not be used")

    monkeypatch.setattr(dl, "download_from_mirror", boom)
    dest = tmp_path / "out"
    paths = dl.download(dest, source="auto", checksums=sums)
    assert sorted(p.name for p in paths) == ["test.csv", "train.csv"]


def test_kaggle_source_without_credentials_explains_setup(
    tmp_path: Path, no_credentials: Path, fake_kaggle_bin: Path
) -> None:
    with pytest.raises(dl.DownloadError) as excinfo:
        dl.download(tmp_path / "out", source="kaggle")
    msg = str(excinfo.value)
    assert "kaggle.json" in msg
    assert "KAGGLE_USERNAME" in msg and "KAGGLE_KEY" in msg
    assert "pip install kaggle" in msg
    assert not (tmp_path / "out").exists()


def test_credentials_detection(
    tmp_path: Path, no_credentials: Path, fake_kaggle_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = no_credentials
    path_env = os.environ["PATH"]
    empty_bin = tmp_path / "empty_bin"
    empty_bin.mkdir()

    # Nothing configured.
    assert dl.kaggle_credentials_available() is False
    assert dl.kaggle_credentials_available(env={"PATH": path_env}, home=home) is False

    # Env vars + CLI on PATH.
    env = {"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k", "PATH": path_env}
    assert dl.kaggle_credentials_available(env=env, home=home) is True
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert dl.kaggle_credentials_available() is True

    # Only one of the two env vars is not enough.
    only_user = {"KAGGLE_USERNAME": "u", "PATH": path_env}
    assert dl.kaggle_credentials_available(env=only_user, home=home) is False

    # Env vars but no CLI on PATH.
    assert dl.kaggle_credentials_available(env={**env, "PATH": str(empty_bin)}, home=home) is False

    # kaggle.json in ~/.kaggle.
    (home / ".kaggle").mkdir()
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert dl.kaggle_credentials_available(env={"PATH": path_env}, home=home) is True
    assert dl.kaggle_credentials_available(env={"PATH": str(empty_bin)}, home=home) is False

    # kaggle.json in $KAGGLE_CONFIG_DIR.
    other_home = tmp_path / "other_home"
    other_home.mkdir()
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    env_cfg = {"KAGGLE_CONFIG_DIR": str(cfg), "PATH": path_env}
    assert dl.kaggle_credentials_available(env=env_cfg, home=other_home) is False
    (cfg / "kaggle.json").write_text("{}")
    assert dl.kaggle_credentials_available(env=env_cfg, home=other_home) is True


def test_download_from_kaggle_moves_files(tmp_path: Path, sums: Path, fake_kaggle_bin: Path) -> None:
    dest = tmp_path / "raw"
    paths = dl.download_from_kaggle(dest, checksums=sums)
    assert paths == [dest / "train.csv", dest / "test.csv"]
    assert (dest / "train.csv").read_bytes() == TRAIN_BYTES
    assert (dest / "test.csv").read_bytes() == TEST_BYTES
    # The temporary download directory and archive are cleaned up.
    assert sorted(p.name for p in dest.iterdir()) == ["test.csv", "train.csv"]


def test_download_from_kaggle_failure_includes_stderr(
    tmp_path: Path, sums: Path, fake_kaggle_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dl, "KAGGLE_COMPETITION", "no-such-competition")
    dest = tmp_path / "raw"
    with pytest.raises(dl.DownloadError, match="403 Forbidden"):
        dl.download_from_kaggle(dest, checksums=sums)
    assert list(dest.iterdir()) == []


# ------------------------------------------------------------ hostile mirrors
def _serve(handler_cls) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _redirecting_to(target: str):
    class Redirect(_QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target.format(path=self.path))
            self.end_headers()

    return Redirect


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}{path}",  # another host name
        "http://127.0.0.1:{port}/elsewhere.csv",  # the same host, another path
    ],
)
def test_redirects_elsewhere_are_refused(
    tmp_path: Path, sums: Path, base_url: str, fake_files: dict[str, bytes], target: str
) -> None:
    port = base_url.rstrip("/").rsplit(":", 1)[1]
    server, url = _serve(_redirecting_to(target.replace("{port}", port)))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "train.csv").write_bytes(b"previous\n")
    try:
        with pytest.raises(dl.DownloadError, match=r"redirects to .*: refused"):
            dl.download_from_mirror(dest, base_url=url, timeout=5, checksums=sums)
    finally:
        server.shutdown()
        server.server_close()
    assert (dest / "train.csv").read_bytes() == b"previous\n"
    assert _leftovers(dest, {"train.csv"}) == set()


def test_a_file_above_the_size_cap_is_refused(
    tmp_path: Path, sums: Path, base_url: str, fake_files: dict[str, bytes]
) -> None:
    dest = tmp_path / "out"
    with pytest.raises(dl.DownloadError, match=r"remote_train\.csv: .*above the 20-byte cap"):
        dl.download_from_mirror(dest, base_url=base_url, timeout=5, checksums=sums, max_bytes=20)
    assert list(dest.iterdir()) == []


def test_one_bad_file_replaces_none(
    tmp_path: Path, sums: Path, served_dir: Path, base_url: str, fake_files: dict[str, bytes]
) -> None:
    """train.csv verifies, test.csv does not: the old train.csv stays too."""
    (served_dir / "remote_test.csv").write_bytes(b"tampered\n")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "train.csv").write_bytes(b"previous\n")
    with pytest.raises(dl.DownloadError, match=rf"expected SHA-256 .* \(listed in {sums}\)"):
        dl.download_from_mirror(dest, base_url=base_url, timeout=5, checksums=sums)
    assert (dest / "train.csv").read_bytes() == b"previous\n"
    assert _leftovers(dest, {"train.csv"}) == set()


def test_files_get_the_umask_modes(tmp_path: Path, sums: Path, base_url: str, fake_files: dict[str, bytes]) -> None:
    old = os.umask(0o022)
    try:
        paths = dl.download_from_mirror(tmp_path / "out", base_url=base_url, timeout=5, checksums=sums)
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {0o644}


def test_default_mirror_is_https_and_checked_against_the_repo_list() -> None:
    assert dl.D2L_BASE_URL.startswith("https://")
    assert dl.CHECKSUMS == Path("data/raw/SHA256SUMS")


def test_kaggle_files_are_checksummed(tmp_path: Path, sums: Path, fake_kaggle_bin: Path) -> None:
    sums.write_text(f"{'0' * 64}  train.csv\n{_sha256(TEST_BYTES)}  test.csv\n")
    dest = tmp_path / "raw"
    dest.mkdir()
    (dest / "test.csv").write_bytes(b"previous\n")
    with pytest.raises(dl.DownloadError, match=r"train\.csv from the Kaggle archive: expected SHA-256 0{64}"):
        dl.download_from_kaggle(dest, checksums=sums)
    assert sorted(p.name for p in dest.iterdir()) == ["test.csv"]
    assert (dest / "test.csv").read_bytes() == b"previous\n"


def test_kaggle_archive_members_are_size_capped(tmp_path: Path, sums: Path, fake_kaggle_bin: Path) -> None:
    dest = tmp_path / "raw"
    with pytest.raises(dl.DownloadError, match="above the 30-byte cap|larger than the 30-byte cap"):
        dl.download_from_kaggle(dest, checksums=sums, max_bytes=30)
    assert list(dest.iterdir()) == []


def test_unlisted_files_are_not_downloaded(
    tmp_path: Path, sums: Path, base_url: str, fake_files: dict[str, bytes]
) -> None:
    sums.write_text(f"{_sha256(TRAIN_BYTES)}  train.csv\n")
    with pytest.raises(dl.DownloadError, match=r"no SHA-256 listed for \['test.csv'\]"):
        dl.download_from_mirror(tmp_path / "out", base_url=base_url, timeout=5, checksums=sums)
    assert not (tmp_path / "out").exists()
