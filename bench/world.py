"""What every benchmark builds its world from: a throwaway database and a real server on it.

``throwaway_database`` creates a PostgreSQL database (POSTGRES_* from the environment, e.g.
``.agenthub-dev/env``) and drops it afterwards (or keeps it, saying how to drop it);
``server_env`` is the environment of an ``agenthub`` command on that database (rate limits
opened wide: the benchmarks measure the service, not its limiters); ``cli`` runs one
``agenthub`` command; ``serving`` starts ``agenthub serve``, waits for ``/readyz`` and stops it
with SIGTERM afterwards.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

from tests.helpers import free_port, pg_params


@contextmanager
def throwaway_database(prefix: str, keep: bool = False) -> Iterator[str]:
    """A new database named ``prefix`` + this process + random hex; dropped after, unless
    ``keep``."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin_db = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
    admin_db.autocommit = True
    try:
        with admin_db.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            if keep:
                print(f"kept the database {name} (drop it with: DROP DATABASE {name})")
            else:
                with admin_db.cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin_db.close()


def server_env(database: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of ``agenthub`` on ``database``, listening on a free port of
    127.0.0.1 (``PORT``), with a fresh JWT secret."""
    env = dict(
        os.environ,
        POSTGRES_DB=database,
        JWT_SECRET=secrets.token_hex(32),
        HOST="127.0.0.1",
        PORT=str(free_port()),
        LOG_LEVEL="warning",
        # All clients come from 127.0.0.1 as a handful of agents: measure the service,
        # not the per-agent rate limit (600/min by default).
        RATE_LIMIT_ANONYMOUS_PER_MINUTE="1000000",
        RATE_LIMIT_AGENT_PER_MINUTE="1000000",
    )
    env.update(extra or {})
    env.pop("JOURNAL_STREAM", None)
    env.pop("POSTGRES_ADMIN_DB", None)
    return env


def cli(agenthub: str, env: dict[str, str], *args: str) -> str:
    """Run ``agenthub ARGS`` and return what it printed (stripped); raise if it failed."""
    done = subprocess.run([agenthub, *args], env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


@contextmanager
def serving(agenthub: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``agenthub serve`` with ``env`` until the block ends: yields its base URL and pid once
    ``/readyz`` answers 200 (exits with the server's log if it does not within 30 s)."""
    base_url = f"http://127.0.0.1:{env['PORT']}"
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen([agenthub, "serve"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not _ready(base_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit(f"bench: server did not start:\n{log.read().decode()}")
            time.sleep(0.1)
        yield base_url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
