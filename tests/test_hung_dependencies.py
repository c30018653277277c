"""Dependencies that hang or race, through the real CLI against real servers on 127.0.0.1: a
mirror that trickles a byte every 2 s, a tracking server, a PostgreSQL server and a listener
that never answers (hung with SIGSTOP, resumed and stopped in the teardown), and workers that
start together on a fresh clone.

Each hang ends the command within 60 s with exit 2 and one line naming what hung; the time
it took is printed (``pytest -s``)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port, stage_env

HANG_LIMIT_S = 60


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


def timed(proc: subprocess.Popen, since: float, limit: float = HANG_LIMIT_S + 60) -> tuple[str, float]:
    """(stderr, seconds from ``since`` to the exit); the process is killed past ``limit``."""
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"still running {limit:.0f} s after the hang:\n{err[-3000:]}")
    seconds = time.monotonic() - since
    print(f"\n{' '.join(proc.args[:3])}: exit {proc.returncode} after {seconds:.1f} s")
    return err, seconds


# ------------------------------------------------------------------ a mirror
class _Trickle(http.server.BaseHTTPRequestHandler):
    """Announces 1000 bytes and sends one every 2 s: no socket timeout ever fires."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(1000):
                if self.server.stopping.is_set():
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
                self.server.stopping.wait(2)

    def log_message(self, *args):
        pass


@pytest.fixture
def trickling_mirror() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.stopping = threading.Event()
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def download_cmd(base_url: str, dest: Path, sums: Path) -> list[str]:
    return ["houseprices", "download", "--source", "mirror", "--base-url", base_url, "--dest", str(dest)] + [
        "--checksums",
        str(sums),
    ]


def fake_raw(work: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """data/raw holding a train.csv and test.csv of its own, and the SHA256SUMS to check against."""
    raw = work / "data/raw"
    raw.mkdir(parents=True)
    files = {"train.csv": b"Id,SalePrice\n1,1\n", "test.csv": b"Id\n2\n"}
    for name, data in files.items():
        (raw / name).write_bytes(data)
    sums = work / "SHA256SUMS"
    sums.write_text("".join(f"{hashlib.sha256(b'x' * 1000).hexdigest()}  {n}\n" for n in files))
    return raw, sums, files


def left_in(raw: Path, files: dict[str, bytes]) -> tuple[list[str], bool]:
    """(temp files in ``raw``, whether the data there is as it was)."""
    return [p.name for p in raw.iterdir() if p.name.endswith(".tmp")], all(
        (raw / n).read_bytes() == d for n, d in files.items()
    )


@pytest.mark.slow(seconds=11)
def test_a_trickling_mirror_ends_the_download(tmp_path, trickling_mirror):
    raw, sums, files = fake_raw(tmp_path)
    start = time.monotonic()
    proc = subprocess.Popen(
        download_cmd(trickling_mirror, raw, sums), cwd=tmp_path, env=stage_env(), stderr=subprocess.PIPE, text=True
    )
    err, seconds = timed(proc, start)
    assert proc.returncode == 2 and "Traceback" not in err, err
    (line,) = error_lines(err)
    assert trickling_mirror in line and "bytes/s" in line, line
    assert seconds < HANG_LIMIT_S
    assert left_in(raw, files) == ([], True)


@pytest.mark.slow(seconds=5)
def test_a_download_killed_leaves_no_temp_file_after_the_next_one(tmp_path, trickling_mirror):
    """SIGTERM: the temp file goes at once; SIGKILL leaves no time, so the next download removes it."""
    raw, sums, files = fake_raw(tmp_path)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(
            download_cmd(trickling_mirror, raw, sums), cwd=tmp_path, env=stage_env(), stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while not left_in(raw, files)[0] and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert left_in(raw, files)[0], "the download never started"
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        assert proc.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
        assert left_in(raw, files) == ([], True) or sig == signal.SIGKILL
    closed = f"http://127.0.0.1:{free_port()}/"
    rerun = subprocess.run(download_cmd(closed, raw, sums), cwd=tmp_path, env=stage_env(), capture_output=True)
    assert rerun.returncode == 2
    assert left_in(raw, files) == ([], True)
