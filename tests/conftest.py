"""Session fixtures: a fresh PostgreSQL database, migrated by alembic, and a real server.

The server is the real ``agenthub serve`` process on a free port (tests/servers.py); tests
talk to it over HTTP and socket.io. Database credentials come from POSTGRES_* (scripts/test sets
them from the dev setup); the role needs CREATEDB.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

from tests.helpers import pg_params
from tests.servers import (
    AGENTHUB,
    AgentCtx,
    ScratchDatabase,
    Server,
    login,
    run_cli,
    start_server,
    stop_server,
)


@pytest.fixture(scope="session")
def database() -> Iterator[ScratchDatabase]:
    name = f"agenthub_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    env = dict(os.environ)
    env.update(
        {
            "POSTGRES_DB": name,
            "JWT_SECRET": secrets.token_hex(32),
            "LOG_LEVEL": "info",
            # Every test talks from 127.0.0.1: the shared server must not rate-limit the
            # suite. tests/integration/test_ratelimit.py starts servers with low limits.
            "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "1000000",
            "RATE_LIMIT_AGENT_PER_MINUTE": "1000000",
            "RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS": "1000000",
            "RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX": "1000000",
        }
    )
    env.pop("JOURNAL_STREAM", None)
    # The suite's own variable, not a setting: the CLI would warn that it looks like POSTGRES_DB.
    env.pop("POSTGRES_ADMIN_DB", None)
    db = ScratchDatabase(name, env)
    subprocess.run([AGENTHUB, "migrate"], env=env, check=True, capture_output=True)
    try:
        yield db
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def server(database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("server") / "agenthub.log"
    srv = start_server(database.env, log_path)
    yield srv
    code = stop_server(srv)
    assert code == 0, f"server exited with {code}:\n{srv.log_text()[-4000:]}"


# A session JWT lives 15 minutes and the suite runs longer than that on a busy machine: the
# session's admin logs in again once its JWT is this old.
_ADMIN_JWT_MAX_AGE = 300.0


@pytest.fixture(scope="session")
def _admin_identity(server: Server) -> dict[str, Any]:
    """An admin bootstrapped the way ops do it: with the CLI on the host (once a session)."""
    name = f"admin-{secrets.token_hex(3)}"
    created = run_cli(server.env, "agent", "create", "--name", name, "--role", "admin", "--json")
    agent_id = json.loads(created.stdout)["id"]
    token = run_cli(server.env, "token", "issue", "--agent", name).stdout.strip()
    return {"id": agent_id, "name": name, "token": token, "jwt": None, "at": 0.0}


@pytest.fixture
def admin(server: Server, _admin_identity: dict[str, Any]) -> AgentCtx:
    """The session's admin, with a JWT that has at least 10 minutes left."""
    ident = _admin_identity
    if ident["jwt"] is None or time.monotonic() - ident["at"] > _ADMIN_JWT_MAX_AGE:
        ident["jwt"], ident["at"] = login(server, ident["token"]), time.monotonic()
    jwt = ident["jwt"]
    return AgentCtx(ident["id"], ident["name"], "admin", ident["token"], jwt, server.api(jwt))


@pytest.fixture
def make_agent(server: Server, admin: AgentCtx) -> Callable[..., AgentCtx]:
    """Create an agent through the admin API and log it in."""

    def factory(role: str = "agent", name: str | None = None) -> AgentCtx:
        name = name or f"agent-{uuid.uuid4().hex[:10]}"
        resp = admin.api.post("/api/v1/agents", {"name": name, "role": role})
        assert resp.status == 201, resp.text
        agent_id = resp.body["id"]
        issued = admin.api.post(f"/api/v1/agents/{agent_id}/tokens", {})
        assert issued.status == 201, issued.text
        token = issued.body["token"]
        jwt = login(server, token)
        return AgentCtx(agent_id, name, role, token, jwt, server.api(jwt))

    return factory


@pytest.fixture
def make_room(server: Server) -> Callable[..., dict[str, object]]:
    def factory(
        owner: AgentCtx, visibility: str = "public", slug: str | None = None
    ) -> dict[str, object]:
        slug = slug or f"room-{uuid.uuid4().hex[:10]}"
        resp = owner.api.post(
            "/api/v1/rooms", {"slug": slug, "name": slug, "visibility": visibility}
        )
        assert resp.status == 201, resp.text
        return dict(resp.body)

    return factory


TABLES = ("agents", "api_tokens", "rooms", "room_members", "messages", "audit_events")


@pytest.fixture(scope="session")
def db_conn(database: ScratchDatabase) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection to the test database, for checking what was stored."""
    conn = database.connect()
    yield conn
    conn.close()


@pytest.fixture
def sql(db_conn: psycopg2.extensions.connection) -> Callable[..., list[tuple[object, ...]]]:
    """Run one statement on the test database; returns its rows (empty for no result)."""

    def run(statement: str, *params: object) -> list[tuple[object, ...]]:
        with db_conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall()) if cur.description else []

    return run


@pytest.fixture
def table_counts(sql: Callable[..., list[tuple[object, ...]]]) -> Callable[[], dict[str, int]]:
    """Row counts of every table: compare before/after to prove a request stored nothing."""

    def counts() -> dict[str, int]:
        return {t: int(str(sql(f"SELECT count(*) FROM {t}")[0][0])) for t in TABLES}  # noqa: S608

    return counts


@pytest.fixture
def fresh_database(database: ScratchDatabase) -> Iterator[Callable[[], ScratchDatabase]]:
    """Factory: another empty, migrated database (same credentials), dropped after the test."""
    created: list[str] = []

    def factory() -> ScratchDatabase:
        name = f"{database.name}_x{len(created)}"
        admin = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        created.append(name)
        env = dict(database.env, POSTGRES_DB=name)
        subprocess.run([AGENTHUB, "migrate"], env=env, check=True, capture_output=True)
        return ScratchDatabase(name, env)

    yield factory
    admin = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        for name in created:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
