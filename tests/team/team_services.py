"""`team/services.py` (what `make team-up` runs) started for one test and stopped after it."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT
from postgres import unavailable

SERVICES = ROOT / "team" / "services.py"
_spec = importlib.util.spec_from_file_location("team_services_module", SERVICES)
team = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(team)


def missing() -> str:
    """Why the services cannot start here ("" when they can)."""
    if unavailable():
        return unavailable()
    for module, extra in (("moto", "moto[server]"), ("dvc_s3", "dvc-s3"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is None:
            return f"{extra} is not installed (pip install -e '.[test]')"
    return ""


def services(action: str, folder: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`python team/services.py ACTION --dir FOLDER --fast` (fsync off: throwaway servers)."""
    result = subprocess.run(
        [sys.executable, str(SERVICES), action, "--dir", str(folder), "--fast"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, f"team services {action} failed:\n{result.stdout}\n{result.stderr}"
    return result


def read_env(folder: Path) -> dict[str, str]:
    """The variables `up` wrote to ``folder/env`` (``export KEY=VALUE`` lines)."""
    pairs = (line.removeprefix("export ").split("=", 1) for line in (folder / "env").read_text().splitlines())
    return dict(pairs)


@contextlib.contextmanager
def team_up() -> Iterator[dict[str, str]]:
    """The services up in a folder of their own: yields the variables a teammate exports; always
    stopped (and the folder removed) after. Not under pytest's tmp_path: as root PostgreSQL runs
    as the ``postgres`` user, who cannot enter pytest's private folders."""
    if missing():
        pytest.skip(missing())
    folder = Path(tempfile.mkdtemp(prefix="houseprices-team-"))
    folder.chmod(0o755)
    try:
        services("up", folder)
        yield read_env(folder)
    finally:
        services("down", folder, check=False)
        shutil.rmtree(folder, ignore_errors=True)
