"""The suite's own scheduling: tests that share a slow module fixture (a repo after `dvc
repro`) run in one pytest-xdist worker, so the fixture is built once, not once per worker
(pytest-xdist 3.8 groups by a node id that pytest 9.2 no longer reads: pyproject.toml pins
pytest below it; pytest-dev/pytest-xdist#1386)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

USERS_OF_A_SHARED_FIXTURE = '''
import os

import pytest


@pytest.fixture(scope="module")
def built():
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")


@pytest.mark.parametrize("i", range(6))
def test_uses_the_built_repo(built, i):
    pass
'''


def test_users_of_a_slow_module_fixture_build_it_once(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_shared.py").write_text(USERS_OF_A_SHARED_FIXTURE)
    log = tmp_path / "builds.log"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-q",
                           "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env={**os.environ, "BUILD_LOG": str(log)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 passed" in proc.stdout, proc.stdout
    assert len(log.read_text().split()) == 1, log.read_text()
