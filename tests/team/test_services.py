"""`make team-up`'s services: only on 127.0.0.1, the PostgreSQL password nowhere but its 0600
file, a second `up` changes nothing, `down` leaves no process behind."""

from __future__ import annotations

import json
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from team_services import missing, services, team_up

from conftest import ROOT

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "-")


def pids_of(folder: Path) -> dict[str, int]:
    return json.loads((folder / "state.json").read_text())["pids"]


def server_processes(folder: Path) -> list[psutil.Process]:
    """The MLflow and S3 servers, the PostgreSQL postmaster, and every worker they started."""
    pids = list(pids_of(folder).values())
    pids.append(int((folder / "pg" / "data" / "postmaster.pid").read_text().split()[0]))
    found = []
    for pid in pids:
        proc = psutil.Process(pid)
        found += [proc, *proc.children(recursive=True)]
    return found


def listening(procs: list[psutil.Process]) -> set[tuple[str, int]]:
    pids = {p.pid for p in procs}
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


@pytest.mark.slow(seconds=40)
def test_services_listen_on_loopback_only_and_keep_the_password_out_of_sight():
    with team_up() as env:
        folder = Path(env["PGPASSFILE"]).parent
        procs = server_processes(folder)
        addresses = listening(procs)
        assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
        assert len(addresses) >= 3  # PostgreSQL, MLflow, S3

        pgpass = Path(env["PGPASSFILE"])
        assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
        password = pgpass.read_text().strip().split(":", 4)[4]
        assert len(password) >= 24
        before = pids_of(folder)
        again = services("up", folder)  # already up: the same variables, the same servers
        assert pids_of(folder) == before and f"MLFLOW_TRACKING_URI={env['MLFLOW_TRACKING_URI']}" in again.stdout
        written = [again.stdout, again.stderr, *(p.read_text(errors="replace") for p in folder.rglob("*.log"))]
        written += [(folder / "env").read_text(), (folder / "state.json").read_text(), *env.values()]
        assert all(password not in text for text in written)
        tracked = subprocess.run(["git", "grep", "-F", "-q", "-e", password], cwd=ROOT, check=False)
        assert tracked.returncode == 1  # not in any tracked file

        import psycopg

        port = env["HOUSEPRICES_OPTUNA_STORAGE"].split(":")[-1].split("/")[0]
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"host=127.0.0.1 port={port} user=houseprices dbname=optuna passfile=/dev/null")
        with psycopg.connect(f"host=127.0.0.1 port={port} user=houseprices dbname=optuna passfile={pgpass}"):
            pass
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)


@pytest.mark.slow(seconds=40)
def test_recorded_pids_of_other_processes_are_never_trusted_nor_signalled(tmp_path):
    """After a reboot the pids in state.json and postmaster.pid name other processes (here the
    test's own): `up` starts every server anew within a minute, and neither `up` nor `down`
    signals those processes."""
    with team_up() as env:
        folder = Path(env["PGPASSFILE"]).parent
        services("down", folder)
        strangers = [subprocess.Popen(["sleep", "300"]) for _ in range(3)]
        try:
            state = json.loads((folder / "state.json").read_text())
            state["pids"] = {"mlflow": strangers[0].pid, "s3": strangers[1].pid}
            (folder / "state.json").write_text(json.dumps(state))
            pidfile = folder / "pg" / "data" / "postmaster.pid"
            pidfile.write_text(f"{strangers[2].pid}\n{folder / 'pg' / 'data'}\n0\n")
            start = time.monotonic()
            services("up", folder)
            assert time.monotonic() - start < 60
            assert set(pids_of(folder).values()).isdisjoint(p.pid for p in strangers)
            with urllib.request.urlopen(f"{env['MLFLOW_TRACKING_URI']}/health", timeout=10) as resp:  # noqa: S310
                assert resp.status == 200  # on PostgreSQL started anew
            services("down", folder)
            assert all(p.poll() is None for p in strangers), "a process the services did not start was signalled"
        finally:
            for proc in strangers:
                proc.kill()
                proc.wait()
