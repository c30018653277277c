"""The team's services on this machine, for trying the shared setup (``make team-up``) and for
the tests: PostgreSQL (MLflow's backend store and the Optuna storage), an ``mlflow server``
that proxies artifacts, and moto's S3-compatible object store for the DVC remote.

Everything listens on 127.0.0.1 and lives in one git-ignored folder (``.team/``). The
PostgreSQL password is generated once, kept in ``<folder>/pgpass`` (mode 0600, read by libpq
through ``PGPASSFILE``) and never printed or put in a URL. ``up`` prints the variables to
export (also in ``<folder>/env``); ``down`` stops the servers and keeps their data.

A recorded pid is never trusted alone (after a reboot or a container restart it may name any
process): the servers and their workers carry ``HOUSEPRICES_TEAM_DIR=<folder>`` in their
environment, and PostgreSQL's postmaster its data folder on its command line; only processes
that do are taken for ours, signalled or waited on.

    python team/services.py up [--dir .team]
    python team/services.py down [--dir .team]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

HOST = "127.0.0.1"
PG_USER = "houseprices"
DATABASES = ("mlflow", "optuna")
BUCKET = "houseprices"
# moto accepts any key; these are not secrets, and a real store's keys never go in a file here.
FAKE_S3_KEYS = {"AWS_ACCESS_KEY_ID": "team-local", "AWS_SECRET_ACCESS_KEY": "team-local"}
# Bounded retries: botocore's default ("legacy", 5 attempts with backoff, per file) keeps a DVC
# pull from an unreachable store waiting over a minute; these fail it in seconds.
S3_RETRIES = {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "3"}
START_DEADLINE_S = 120
STOP_DEADLINE_S = 30
MARK = "HOUSEPRICES_TEAM_DIR"  # in the environment of every server this folder's `up` started


class ServiceError(RuntimeError):
    """A service that would not start or stop, named with its log."""


def binary(name: str) -> str:
    """A tool from this environment's bin/ first (mlflow, moto_server), else PATH, else
    Debian's PostgreSQL folders."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        found = versions[-1] if versions else None
    if not found:
        raise ServiceError(f"{name}: not found on PATH (install PostgreSQL, or pip install -e '.[team]')")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Free to listen on, as a server does (SO_REUSEADDR: a port just closed is in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def port_freed(port: int, seconds: float = 5.0) -> bool:
    """Free, or freed within ``seconds`` (a server killed a moment ago still holds its port)."""
    deadline = time.monotonic() + seconds
    while not port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def wait_until(ready, what: str, log: Path, proc: subprocess.Popen | None = None) -> None:
    """Poll ``ready()`` until it holds; fail naming ``what`` and the end of its log after the deadline."""
    deadline = time.monotonic() + START_DEADLINE_S
    while not ready():
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServiceError(f"{what} did not start (log {log}):\n{tail}")
        time.sleep(0.5)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own http server on 127.0.0.1
            return resp.status < 500
    except OSError:
        return False


class Services:
    """The three servers kept in ``folder``: ``up()`` -> the variables to export, ``down()``."""

    def __init__(self, folder: Path, fast: bool = False):
        self.dir = folder.resolve()
        self.fast = fast  # tests: fsync off (a crash may lose the data, fine for throwaway servers)
        self.as_root = os.geteuid() == 0
        self.state_file = self.dir / "state.json"

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def _save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=1))

    def _ports(self, state: dict, running: set[str]) -> dict[str, int]:
        """The ports of the last start: kept for what runs, reused where free (stable URLs for
        teammates), else new ones."""
        ports = dict(state.get("ports", {}))
        for name in ("postgres", "mlflow", "s3"):
            if name not in running and (not ports.get(name) or not port_freed(ports[name])):
                ports[name] = free_port()
        return ports

    def _postgres_running(self) -> bool:
        """Our postmaster runs: the pid in ``postmaster.pid`` is a postgres of this data folder. A
        stale file (a crash, a reboot: its pid may now be any process) is removed, so it starts."""
        data = self.dir / "pg" / "data"
        pidfile = data / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            proc = psutil.Process(int(pidfile.read_text().split()[0]))
            if proc.status() != psutil.STATUS_ZOMBIE and str(data) in proc.cmdline():
                return True
        except (psutil.Error, ValueError, IndexError):
            pass
        pidfile.unlink()
        return False

    # --------------------------------------------------------------- postgres
    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        """PostgreSQL refuses to run as root: as root, run its tools as the ``postgres`` user."""
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run(prefix + list(cmd), capture_output=True, text=True, timeout=START_DEADLINE_S)
        if result.returncode != 0:
            raise ServiceError(f"{Path(cmd[0]).name} failed: {result.stderr.strip()[-2000:]}")
        return result

    def _password(self) -> str:
        """The PostgreSQL password, generated on the first start and kept in ``pgpass`` (0600)."""
        pgpass = self.dir / "pgpass"
        if pgpass.exists():
            return pgpass.read_text().split(":", 4)[4].strip()
        return secrets.token_urlsafe(24)

    def _write_pgpass(self, port: int, password: str) -> None:
        pgpass = self.dir / "pgpass"
        fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{HOST}:{port}:*:{PG_USER}:{password}\n")

    def _initdb(self, data: Path, password: str) -> None:
        if self.as_root and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(self.dir)]).returncode:
            raise ServiceError(f"{self.dir}: the postgres user cannot enter it (PostgreSQL refuses to run as root)")
        pg = self.dir / "pg"
        pg.mkdir(exist_ok=True)
        pwfile = pg / "initdb.pw"
        pwfile.write_text(password)
        pwfile.chmod(0o600)
        if self.as_root:
            shutil.chown(pg, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            self._as_postgres(
                binary("initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
                "-A", "scram-sha-256", "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def _start_postgres(self, port: int, password: str) -> None:
        data = self.dir / "pg" / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(data, password)
        options = f"-h {HOST} -p {port} -k {self.dir / 'pg'}" + (" -c fsync=off" if self.fast else "")
        log = self.dir / "pg" / "server.log"
        self._as_postgres(
            binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", str(START_DEADLINE_S), "start"
        )
        self._create_databases(port, password)

    def _create_databases(self, port: int, password: str) -> None:
        import psycopg

        conninfo = dict(host=HOST, port=port, user=PG_USER, password=password, dbname="postgres", connect_timeout=10)
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(f"CREATE DATABASE {name}")

    def pg_url(self, port: int, database: str) -> str:
        """No password in the URL: libpq reads it from ``PGPASSFILE``."""
        return f"postgresql+psycopg://{PG_USER}@{HOST}:{port}/{database}"

    # ------------------------------------------------------------ s3, mlflow
    def _start_s3(self, port: int) -> int:
        return start_object_store(self.dir, port)

    def _start_mlflow(self, port: int, pg_port: int) -> int:
        cmd = [
            binary("mlflow"), "server", "--host", HOST, "--port", str(port), "--workers", "1",
            "--backend-store-uri", self.pg_url(pg_port, "mlflow"),
            "--artifacts-destination", str(self.dir / "artifacts"),
        ]  # fmt: skip
        env = {"PGPASSFILE": str(self.dir / "pgpass"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        proc = spawn(self.dir, "mlflow", cmd, env)
        uri = f"http://{HOST}:{port}"
        wait_until(lambda: answers(f"{uri}/health"), f"mlflow server {uri}", self.dir / "mlflow.log", proc)
        return proc.pid

    # ---------------------------------------------------------------- up/down
    def up(self) -> dict[str, str]:
        """Start what is not running (all three at first, the one that died after a crash); the
        variables a teammate exports (also written to ``env``)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._state()
        pids = {name: pid for name, pid in state.get("pids", {}).items() if ours(pid, self.dir)}
        stop_ours(self.dir, keep=set(pids.values()))  # what is left of a crashed server (its workers) frees the port
        postgres_up = self._postgres_running()
        ports = self._ports(state, set(pids) | ({"postgres"} if postgres_up else set()))
        password = self._password()
        self._write_pgpass(ports["postgres"], password)
        self._save({"ports": ports, "pids": pids})
        try:
            if not postgres_up:
                self._start_postgres(ports["postgres"], password)
            if "s3" not in pids:
                pids["s3"] = self._start_s3(ports["s3"])
                self._save({"ports": ports, "pids": pids})
            if "mlflow" not in pids:
                pids["mlflow"] = self._start_mlflow(ports["mlflow"], ports["postgres"])
                self._save({"ports": ports, "pids": pids})
        except BaseException:
            self.down()
            raise
        variables = self.variables(ports)
        (self.dir / "env").write_text("".join(f"export {k}={v}\n" for k, v in variables.items()))
        return variables

    def variables(self, ports: dict[str, int]) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": f"http://{HOST}:{ports['mlflow']}",
            "HOUSEPRICES_OPTUNA_STORAGE": self.pg_url(ports["postgres"], "optuna"),
            "PGPASSFILE": str(self.dir / "pgpass"),
            "AWS_ENDPOINT_URL_S3": f"http://{HOST}:{ports['s3']}",
            **FAKE_S3_KEYS,
            **S3_RETRIES,
        }

    def down(self) -> None:
        """Stop the servers (their data stays in the folder; the object store is in memory)."""
        state = self._state()
        stop_ours(self.dir)
        data = self.dir / "pg" / "data"
        if self._postgres_running():
            self._as_postgres(binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_DEADLINE_S), "stop")
        if state:
            self._save({"ports": state.get("ports", {}), "pids": {}})


def spawn(folder: Path, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A server in a session of its own (so `down` ends it and its workers as one group),
    logging to ``folder/<name>.log``."""
    log = (folder / f"{name}.log").open("w")
    return subprocess.Popen(
        cmd,
        cwd=folder,
        env={**os.environ, **env, MARK: str(folder)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_object_store(folder: Path, port: int) -> int:
    """moto's S3-compatible server on 127.0.0.1:``port`` with the bucket the DVC remote names."""
    proc = spawn(folder, "s3", [binary("moto_server"), "-H", HOST, "-p", str(port)], {})
    endpoint = f"http://{HOST}:{port}"
    wait_until(lambda: answers(endpoint), f"object store {endpoint}", folder / "s3.log", proc)
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_boto_keys())
    s3.create_bucket(Bucket=BUCKET)
    return proc.pid


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }


def ours(pid: int, folder: Path) -> bool:
    """``pid`` is a live server (or worker) that ``up`` started for ``folder``, not a process that
    happens to have its number now."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(MARK) == str(folder)
    except psutil.Error:
        return False


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def stop_ours(folder: Path, keep: set[int] = frozenset()) -> None:
    """SIGTERM to the processes ``up`` started for ``folder`` (but the groups of ``keep``), SIGKILL
    after the deadline; no other process is ever signalled."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        targets = [p for p in psutil.process_iter() if ours(p.pid, folder) and _group(p.pid) not in keep]
        for proc in targets:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(targets, timeout=STOP_DEADLINE_S)
        if not alive:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the team's services on 127.0.0.1 (PostgreSQL, MLflow, S3)")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", default=".team", help="where their data, logs and env live (default: %(default)s)")
    parser.add_argument("--fast", action="store_true", help="fsync off: for throwaway servers in tests")
    args = parser.parse_args(argv)
    services = Services(Path(args.dir), fast=args.fast)
    try:
        if args.action == "down":
            services.down()
            print(f"stopped the services in {services.dir} (their data stays there)")
            return 0
        variables = services.up()
    except ServiceError as err:
        print(f"team services: error: {err}", file=sys.stderr)
        return 2
    print(f"# services up in {services.dir}; to use them: . {services.dir / 'env'}")
    for key, value in variables.items():
        print(f"export {key}={value}")
    print(f"# runs in a browser: {variables['MLFLOW_TRACKING_URI']}/#/experiments/1?workflowType=machine_learning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
