"""The suite's own scheduling: tests that share a slow module fixture (a repo after `dvc
repro`) run in one pytest-xdist worker, so the fixture is built once, not once per worker
(pytest-xdist 3.8 groups by a node id that pytest 9.2 no longer reads: pyproject.toml pins
pytest below it; pytest-dev/pytest-xdist#1386); a build its tests only copy is made once for
all workers (``conftest.built_once``), so those tests spread over the workers; the slow work
starts longest first, and a build's users other than the longest after the work that does not wait
for it; quick tests fill a worker's queue behind each long test, so the next long one goes to
another worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The nested runs have no pyproject.toml: its addopts' plugin switch, and no cache in the temp folder.
NO_UNUSED_PLUGINS = ("-p", "no:hydra_pytest", "-p", "no:cacheprovider")

USERS_OF_A_SHARED_FIXTURE = """
import os

import pytest


@pytest.fixture(scope="module")
def repo():
    with open(os.environ["FIXTURE_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")


@pytest.mark.parametrize("i", range(6))
def test_uses_the_built_repo(repo, i):
    pass
"""


USERS_OF_A_BUILD_BUILT_ONCE = """
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
"""


@pytest.fixture(scope="module")
def nested_suite(tmp_path_factory) -> Path:
    """One `pytest -n 3 --dist loadgroup` run of both modules above, with this conftest: the
    folder holding their logs."""
    folder = tmp_path_factory.mktemp("nested")
    shutil.copy(Path(__file__).with_name("conftest.py"), folder / "conftest.py")
    (folder / "test_shared_fixture.py").write_text(USERS_OF_A_SHARED_FIXTURE)
    (folder / "test_built_once.py").write_text(USERS_OF_A_BUILD_BUILT_ONCE)
    env = {
        "FIXTURE_LOG": str(folder / "fixture.log"),
        "BUILD_LOG": str(folder / "builds.log"),
        "USER_LOG": str(folder / "users.log"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "3",
            "--dist",
            "loadgroup",
            "--no-loadscope-reorder",
            "-q",
            *NO_UNUSED_PLUGINS,
            str(folder),
        ],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "12 passed" in proc.stdout, proc.stdout + proc.stderr
    return folder


@pytest.mark.slow(seconds=20)
def test_users_of_a_slow_module_fixture_build_it_once(nested_suite):
    log = (nested_suite / "fixture.log").read_text()
    assert len(log.split()) == 1, log


@pytest.mark.slow
def test_a_build_made_once_serves_tests_on_every_worker(nested_suite):
    builds = (nested_suite / "builds.log").read_text()
    assert len(builds.split()) == 1, builds
    assert len(set((nested_suite / "users.log").read_text().split())) > 1  # not grouped: several workers


SLOW_TESTS_OF_SEVERAL_LENGTHS = """
import pytest


@pytest.fixture(scope="module")
def repo():
    pass


@pytest.mark.parametrize("i", range(4))
def test_fast(i):
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


@pytest.mark.slow(seconds=40)
def test_copies_the_build(built_repo):
    pass


@pytest.mark.slow(seconds=60)
def test_copies_the_build_longest(built_repo):
    pass
"""


def test_slow_work_starts_longest_first_with_quick_tests_queued_behind_each_long_unit(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_lengths.py").write_text(SLOW_TESTS_OF_SEVERAL_LENGTHS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *NO_UNUSED_PLUGINS, str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTEST_XDIST_WORKER_COUNT": "2"},  # as in a worker of -n 2
        capture_output=True,
        text=True,
        timeout=120,
    )
    order = [line.split("::")[1] for line in proc.stdout.splitlines() if "::" in line]
    # The longest user of the shared build starts it; the other users follow the work that does not wait.
    # Each worker's second unit is a quick test, and behind each long unit quick tests make three
    # unfinished tests (xdist tops a worker up below that), while they last.
    assert order == [
        "test_copies_the_build_longest",
        "test_grouped_a",
        "test_grouped_b",
        "test_fast[0]",
        "test_fast[1]",
        "test_long",
        "test_fast[2]",
        "test_fast[3]",
        "test_short",
        "test_slow_unsaid",
        "test_copies_the_build",
    ], proc.stdout + proc.stderr
