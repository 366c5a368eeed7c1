"""A throwaway PostgreSQL cluster, for the fault scenarios that stop and start PostgreSQL.

The machine's own cluster (127.0.0.1:5432) serves the other tests and the other people on the
machine: nothing here may restart it. This one is made by ``initdb`` in a temporary directory,
listens on a free port of 127.0.0.1 with trust authentication, and is deleted afterwards. The
binaries come from the distribution's ``postgresql`` package (``/usr/lib/postgresql/N/bin``),
which ``scripts/dev-up`` installs, so they exist wherever ``scripts/test`` runs.

PostgreSQL refuses to run as root; under root every server command runs as the ``postgres``
account that the same package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from tests.helpers import free_port

BINARIES = "/usr/lib/postgresql/*/bin"
USER = "agenthub"


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin directory that has initdb and pg_ctl."""

    def version(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else 0

    for candidate in sorted(glob.glob(BINARIES), key=version, reverse=True):
        if all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    raise RuntimeError(
        f"no initdb/pg_ctl under {BINARIES}: install the postgresql package (scripts/dev-up does)"
    )


class ThrowawayCluster:
    """``init()`` once, then ``start()``/``stop()`` as often as a scenario needs;
    ``remove()`` stops it and deletes its directory."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="agenthub-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError(
                    "running as root, but there is no postgres account to run PostgreSQL as"
                ) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self.running = False

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as_owner, str(self.bin / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{log}"
            )

    def init(self) -> None:
        # --no-sync: initdb's own fsync only protects the freshly made files against a power
        # cut; the cluster itself keeps the default fsync/synchronous_commit, as in production.
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# agenthub fault tests\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 50\n"
                "shared_buffers = 32MB\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (what ``systemctl restart postgresql`` does): roll back open transactions,
        close every connection, checkpoint, exit."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def params(self, dbname: str) -> dict[str, str]:
        return {"host": "127.0.0.1", "port": str(self.port), "user": USER, "dbname": dbname}

    def create_database(self, name: str) -> None:
        conn = psycopg2.connect(**self.params("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def env(self, base: dict[str, str], dbname: str) -> dict[str, str]:
        """``base`` with the POSTGRES_* settings that point at this cluster."""
        return dict(
            base,
            POSTGRES_HOST="127.0.0.1",
            POSTGRES_PORT=str(self.port),
            POSTGRES_USER=USER,
            POSTGRES_PASSWORD="",
            POSTGRES_DB=dbname,
        )
