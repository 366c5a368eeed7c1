"""A request's session is checked from memory, not with a query, and revocations still apply to
the very next request: made over REST, with the CLI, or while the notification listener is down
(then every request asks the database). docs/adr/0005-auth-notifications.md."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.auth_support import (
    agent_on,
    listener_held_down,
    listener_up,
    prefix_of,
    selects,
    wait_listener,
)
from tests.realtime_support import custom_server
from tests.servers import AgentCtx, Server, login, run_cli

if TYPE_CHECKING:
    from tests.servers import ScratchDatabase

ME = "/api/v1/agents/me"  # its handler runs exactly one SELECT of its own


@pytest.fixture(scope="module")
def hub(database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: its /metrics count only this module's queries."""
    log_path = tmp_path_factory.mktemp("auth-cache") / "server.log"
    with custom_server(database, log_path) as srv:
        wait_listener(srv)
        yield srv


def warmed(hub: Server, admin: AgentCtx) -> AgentCtx:
    agent = agent_on(hub, admin)
    for _ in range(3):
        assert agent.api.get(ME).status == 200
    return agent


def test_repeated_requests_run_no_query_for_the_session(hub: Server, admin: AgentCtx) -> None:
    agent = warmed(hub, admin)
    before = selects(hub)
    for _ in range(20):
        assert agent.api.get(ME).status == 200
    assert selects(hub) - before == 20  # the handler's own; none to check the session


def test_rest_revocation_ends_the_next_request(hub: Server, admin: AgentCtx) -> None:
    agent = warmed(hub, admin)
    assert agent.api.delete(f"/api/v1/tokens/{prefix_of(agent.api_token)}").status == 204
    assert agent.api.get(ME).status == 401


def test_rest_disable_ends_the_next_request_and_enable_restores_it(
    hub: Server, admin: AgentCtx
) -> None:
    agent = warmed(hub, admin)
    boss = hub.api(login(hub, admin.api_token))
    assert boss.patch(f"/api/v1/agents/{agent.id}", {"disabled": True}).status == 200
    assert agent.api.get(ME).status == 401
    assert boss.patch(f"/api/v1/agents/{agent.id}", {"disabled": False}).status == 200
    assert agent.api.get(ME).status == 200


def test_cli_revocation_ends_the_next_request(hub: Server, admin: AgentCtx) -> None:
    agent = warmed(hub, admin)
    run_cli(hub.env, "token", "revoke", prefix_of(agent.api_token))
    resp = agent.api.get(ME)
    assert resp.status == 401, resp.text
    assert resp.body["error"]["message"] == "session is no longer valid"


def test_cli_disable_ends_the_next_request_and_enable_restores_it(
    hub: Server, admin: AgentCtx
) -> None:
    agent = warmed(hub, admin)
    run_cli(hub.env, "agent", "disable", agent.name)
    assert agent.api.get(ME).status == 401
    run_cli(hub.env, "agent", "enable", agent.name)
    assert agent.api.get(ME).status == 200


def test_while_the_listener_is_down_every_request_asks_the_database(
    fresh_database: Callable[[], ScratchDatabase], tmp_path: Path
) -> None:
    db = fresh_database()
    with custom_server(db, tmp_path / "server.log") as srv:
        run_cli(srv.env, "agent", "create", "--name", "solo")
        token = run_cli(srv.env, "token", "issue", "--agent", "solo").stdout.strip()
        api = srv.api(login(srv, token))
        for _ in range(3):
            assert api.get(ME).status == 200  # in the cache now
        conn = db.connect()
        try:
            with listener_held_down(conn, srv, db.name):
                before = selects(srv)
                for _ in range(5):
                    assert api.get(ME).status == 200
                assert selects(srv) - before == 10  # the session is re-read every time
                # Revoked with no notification that this server could hear...
                with conn.cursor() as cur:
                    cur.execute(
                        "UPDATE api_tokens SET revoked_at = now() WHERE prefix = %s",
                        (prefix_of(token),),
                    )
                # ...and still refused at once: the JWT alone is never trusted.
                assert api.get(ME).status == 401
                assert not listener_up(srv)
            wait_listener(srv)
            assert api.get(ME).status == 401
        finally:
            conn.close()
        log = srv.log_text()
        assert log.count("notification listener lost its connection") == 1
        # Retries while the database refused it are not logged one by one.
        assert log.count("notification listener cannot connect") <= 1
