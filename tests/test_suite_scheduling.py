"""The suite's own scheduling: tests that share a slow module fixture (a repo after `dvc
repro`) run in one pytest-xdist worker, so the fixture is built once, not once per worker
(pytest-xdist 3.8 groups by a node id that pytest 9.2 no longer reads: pyproject.toml pins
pytest below it; pytest-dev/pytest-xdist#1386); a build its tests only copy is made once for
all workers (``conftest.built_once``), so those tests spread over the workers; the slow work
starts longest first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

USERS_OF_A_SHARED_FIXTURE = '''
import os

import pytest


@pytest.fixture(scope="module")
def repo():
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")


@pytest.mark.parametrize("i", range(6))
def test_uses_the_built_repo(repo, i):
    pass
'''


USERS_OF_A_BUILD_BUILT_ONCE = '''
import os
import time

import pytest
from conftest import built_once


def build(dest):
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(1)  # the other workers arrive while it builds


@pytest.fixture(scope="session")
def built(run_dir):
    return built_once(run_dir, "shared-build", build)


@pytest.mark.parametrize("i", range(6))
def test_copies_the_built_repo(built, i):
    assert built.is_dir()
    with open(os.environ["USER_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
'''


def run_suite(folder: Path, module: str, **env: str) -> str:
    shutil.copy(Path(__file__).with_name("conftest.py"), folder / "conftest.py")
    (folder / "test_shared.py").write_text(module)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-q",
                           "-p", "no:cacheprovider", str(folder)],
                          cwd=folder, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_users_of_a_slow_module_fixture_build_it_once(tmp_path):
    log = tmp_path / "builds.log"
    assert "6 passed" in run_suite(tmp_path, USERS_OF_A_SHARED_FIXTURE, BUILD_LOG=str(log))
    assert len(log.read_text().split()) == 1, log.read_text()


@pytest.mark.slow
def test_a_build_made_once_serves_tests_on_every_worker(tmp_path):
    builds, users = tmp_path / "builds.log", tmp_path / "users.log"
    assert "6 passed" in run_suite(tmp_path, USERS_OF_A_BUILD_BUILT_ONCE, BUILD_LOG=str(builds), USER_LOG=str(users))
    assert len(builds.read_text().split()) == 1, builds.read_text()
    assert len(set(users.read_text().split())) > 1  # not grouped: the tests ran on several workers


SLOW_TESTS_OF_SEVERAL_LENGTHS = '''
import pytest


@pytest.fixture(scope="module")
def repo():
    pass


def test_fast():
    pass


@pytest.mark.slow
def test_slow_unsaid():
    pass


@pytest.mark.slow(seconds=10)
def test_short():
    pass


@pytest.mark.slow(seconds=30)
def test_grouped_a(repo):
    pass


@pytest.mark.slow(seconds=30)
def test_grouped_b(repo):
    pass


@pytest.mark.slow(seconds=50)
def test_long():
    pass
'''


def test_slow_work_starts_longest_first_counting_a_groups_tests_together(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_lengths.py").write_text(SLOW_TESTS_OF_SEVERAL_LENGTHS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    order = [line.split("::")[1] for line in proc.stdout.splitlines() if "::" in line]
    assert order == ["test_grouped_a", "test_grouped_b", "test_long", "test_short", "test_slow_unsaid",
                     "test_fast"], proc.stdout + proc.stderr
