"""Helpers for the revocation tests: read a server's metrics, find its notification listener's
PostgreSQL backend, and take the listener down (and keep it down) on purpose."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from tests.servers import AgentCtx, Server, login

WAIT = 15.0  # "eventually": a generous bound on a slow box, never a timing assertion


def metric(server: Server, name: str, **labels: str) -> float:
    """The value of one sample on ``server``'s /metrics (0.0 when absent)."""
    text = server.api().get("/metrics").text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = (
        "^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if wanted else "") + r" (\S+)$"
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def selects(server: Server) -> float:
    """SQL SELECT statements ``server`` has run so far."""
    return metric(server, "agenthub_db_query_duration_seconds_count", operation="select")


def wait_until(predicate: Any, what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def listener_up(server: Server) -> bool:
    return metric(server, "agenthub_auth_listener_up") == 1.0


def wait_listener(server: Server, up: bool = True) -> None:
    wait_until(lambda: listener_up(server) is up, f"the listener to be {'up' if up else 'down'}")


def listener_backend(conn: Any, server: Server) -> int | None:
    """The PostgreSQL backend pid of ``server``'s notification listener, if connected."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"agenthub-listener-{server.process.pid}",),
        )
        row = cur.fetchone()
    return None if row is None else int(row[0])


@contextlib.contextmanager
def listener_held_down(conn: Any, server: Server, dbname: str) -> Iterator[None]:
    """Terminate ``server``'s listener and keep it from reconnecting until the block ends: the
    database's connection limit is set to the connections it has without the listener, so the
    server's pooled (idle) connections keep working but no new one is accepted. ``dbname``
    must be a database of the test's own, not shared with another server."""
    wait_listener(server)
    pid = listener_backend(conn, server)
    assert pid is not None
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            (dbname, pid),
        )
        others = int(cur.fetchone()[0])
        cur.execute(f'ALTER DATABASE "{dbname}" CONNECTION LIMIT {others}')
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    try:
        wait_listener(server, up=False)
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{dbname}" CONNECTION LIMIT -1')


def prefix_of(api_token: str) -> str:
    return api_token.split("_")[1]  # agt_<prefix>_<secret>


def agent_on(hub: Server, admin: AgentCtx, role: str = "agent") -> AgentCtx:
    """A fresh agent, created through ``hub`` by the session's admin, and logged in there."""
    api = hub.api(login(hub, admin.api_token))
    name = f"reval-{uuid.uuid4().hex[:10]}"
    created = api.post("/api/v1/agents", {"name": name, "role": role})
    assert created.status == 201, created.text
    token = second_token(hub, admin, created.body["id"])
    jwt = login(hub, token)
    return AgentCtx(created.body["id"], name, role, token, jwt, hub.api(jwt))


def second_token(hub: Server, admin: AgentCtx, agent_id: str, **body: Any) -> str:
    issued = hub.api(login(hub, admin.api_token)).post(f"/api/v1/agents/{agent_id}/tokens", body)
    assert issued.status == 201, issued.text
    return str(issued.body["token"])
