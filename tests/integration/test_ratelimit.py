"""Rate limits over real HTTP, on servers started with small limits.

Each test speaks from its own loopback address (127.0.0.x: Linux routes all of 127/8 to lo),
so the server sees distinct client addresses, and the probes of the fixture do not count.
The limits are per minute, so a bucket cannot refill during a test's handful of requests.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ScratchDatabase as PgDatabase
from tests.servers import Server, run_cli, start_server, stop_server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    server: Server,
    source: str,
    method: str,
    path: str,
    token: str | None = None,
) -> Reply:
    """One request from the loopback address ``source``."""
    port = int(server.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    is_json = hdrs.get("content-type", "").startswith("application/json")
    return Reply(resp.status, hdrs, json.loads(text) if text and is_json else text)


def assert_rate_limited(reply: Reply) -> None:
    assert reply.status == 429, reply
    assert reply.body["error"]["code"] == "rate_limited"
    retry = int(reply.headers["retry-after"])
    assert retry >= 1
    assert reply.body["error"]["details"]["retryAfter"] == retry


@pytest.fixture(scope="module")
def limited(database: PgDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = dict(
        database.env,
        RATE_LIMIT_ANONYMOUS_PER_MINUTE="5",
        RATE_LIMIT_AGENT_PER_MINUTE="4",
        RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS="3",
        RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX="2",
    )
    srv = start_server(env, tmp_path_factory.mktemp("limited") / "agenthub.log")
    yield srv
    assert stop_server(srv) == 0


def new_token(server: Server, name: str) -> str:
    run_cli(server.env, "agent", "create", "--name", name)
    return run_cli(server.env, "token", "issue", "--agent", name).stdout.strip()


def test_anonymous_requests_are_limited_per_address(limited: Server) -> None:
    for _ in range(5):
        assert call(limited, "127.0.0.21", "GET", "/api/v1/openapi.json").status == 200
    assert_rate_limited(call(limited, "127.0.0.21", "GET", "/api/v1/openapi.json"))
    # Unknown routes and bad credentials count against the address too.
    assert_rate_limited(call(limited, "127.0.0.21", "GET", "/nope"))
    assert_rate_limited(call(limited, "127.0.0.21", "GET", "/api/v1/rooms", token="bad.jwt.x"))
    # Another address has its own allowance.
    assert call(limited, "127.0.0.22", "GET", "/api/v1/openapi.json").status == 200


def test_probes_and_scrapes_are_never_rate_limited(limited: Server) -> None:
    """A balancer checks /readyz on every worker and Prometheus scrapes /metrics from one
    address, many times a minute: refusing them would take healthy backends out."""
    source = "127.0.0.31"
    for _ in range(5):
        call(limited, source, "GET", "/api/v1/openapi.json")
    assert_rate_limited(call(limited, source, "GET", "/api/v1/openapi.json"))
    for path in ("/healthz", "/readyz", "/metrics"):
        for _ in range(3):
            assert call(limited, source, "GET", path).status == 200, path


def test_authenticated_requests_are_limited_per_agent(limited: Server) -> None:
    source = "127.0.0.23"
    jwts = []
    for name in ("rl-agent-a", "rl-agent-b"):
        reply = call(limited, source, "POST", "/api/v1/sessions", token=new_token(limited, name))
        assert reply.status == 201, reply
        jwts.append(reply.body["token"])
    a, b = jwts
    for _ in range(4):
        assert call(limited, source, "GET", "/api/v1/agents/me", token=a).status == 200
    assert_rate_limited(call(limited, source, "GET", "/api/v1/agents/me", token=a))
    assert_rate_limited(call(limited, source, "GET", "/api/v1/rooms", token=a))
    # Same address, another agent: its own allowance; and the address's anonymous one is
    # untouched by agent A's requests (2 logins of 5 used).
    assert call(limited, source, "GET", "/api/v1/agents/me", token=b).status == 200
    assert call(limited, source, "GET", "/api/v1/openapi.json").status == 200


def test_failed_logins_are_refused_per_address_before_verification(
    limited: Server, sql: Callable[..., list[tuple[object, ...]]]
) -> None:
    source = "127.0.0.24"
    good = new_token(limited, "rl-login-good")

    def failures() -> int:
        rows = sql(
            "SELECT count(*) FROM audit_events WHERE type = 'login-failed' "
            "AND payload->>'address' = %s",
            source,
        )
        return int(str(rows[0][0]))

    for _ in range(3):
        bad = call(limited, source, "POST", "/api/v1/sessions", token="agt_not-a-token")
        assert bad.status == 401
    assert failures() == 3
    refused = call(limited, source, "POST", "/api/v1/sessions", token="agt_not-a-token")
    assert_rate_limited(refused)
    # Refused before the token is looked at: even the right token is turned away, and the
    # refusals write no audit row (a flood costs neither Argon2 nor a database write).
    assert_rate_limited(call(limited, source, "POST", "/api/v1/sessions", token=good))
    assert failures() == 3
    # Other addresses log in normally.
    assert call(limited, "127.0.0.25", "POST", "/api/v1/sessions", token=good).status == 201
    assert limited.log_text().count(f"failed logins throttled: address={source}") == 1


def test_failed_logins_are_refused_per_token_prefix(
    limited: Server, sql: Callable[..., list[tuple[object, ...]]]
) -> None:
    good = new_token(limited, "rl-prefix-victim")
    prefix = good.split("_")[1]
    wrong = f"agt_{prefix}_{'x' * 43}"
    # Two failures from two addresses: each address is far from its own limit.
    assert call(limited, "127.0.0.26", "POST", "/api/v1/sessions", token=wrong).status == 401
    assert call(limited, "127.0.0.27", "POST", "/api/v1/sessions", token=wrong).status == 401
    assert_rate_limited(call(limited, "127.0.0.28", "POST", "/api/v1/sessions", token=wrong))
    # The prefix is blocked for everyone until its bucket refills (the documented trade-off)...
    assert_rate_limited(call(limited, "127.0.0.28", "POST", "/api/v1/sessions", token=good))
    rows = sql(
        "SELECT count(*) FROM audit_events WHERE type = 'login-failed' AND payload->>'prefix' = %s",
        prefix,
    )
    assert int(str(rows[0][0])) == 2
    # ...while other tokens from the same address still work.
    other = new_token(limited, "rl-prefix-other")
    assert call(limited, "127.0.0.28", "POST", "/api/v1/sessions", token=other).status == 201


def test_limits_are_configurable_and_validated(database: PgDatabase, tmp_path: Path) -> None:
    bad = run_cli(dict(database.env, RATE_LIMIT_AGENT_PER_MINUTE="0"), "check-config", check=False)
    assert bad.returncode == 78
    assert "RATE_LIMIT_AGENT_PER_MINUTE" in bad.stderr
    shown = run_cli(dict(database.env, RATE_LIMIT_ANONYMOUS_PER_MINUTE="42"), "check-config")
    assert "42" in shown.stdout and "RATE_LIMIT_ANONYMOUS_PER_MINUTE" in shown.stdout
