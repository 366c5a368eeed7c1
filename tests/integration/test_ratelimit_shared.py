"""With REDIS_URL the HTTP rate limits hold across processes: two servers sharing one Redis
(and the database) grant one budget per address and per agent, not one each. Redis
unreachable: requests are still served, each process limiting on its own, and the outage is
logged once and counted."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.test_ratelimit import assert_rate_limited, call
from tests.realtime_support import custom_server
from tests.servers import AgentCtx, ScratchDatabase, Server
from tests.workers_support import LOCAL_REDIS

BUDGET = 6


def _limited(prefix: str, redis_url: str = LOCAL_REDIS) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "RATE_LIMIT_ANONYMOUS_PER_MINUTE": str(BUDGET),
        "RATE_LIMIT_AGENT_PER_MINUTE": str(BUDGET),
    }


@pytest.fixture(scope="module")
def two(
    database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    directory = tmp_path_factory.mktemp("shared-limits")
    settings = _limited(f"test-{uuid.uuid4().hex[:12]}")
    with (
        custom_server(database, directory / "a.log", **settings) as a,
        custom_server(database, directory / "b.log", **settings) as b,
    ):
        yield a, b


def test_a_burst_split_across_two_processes_meets_one_address_budget(
    two: tuple[Server, Server],
) -> None:
    source = "127.0.0.71"
    replies = [call(two[i % 2], source, "GET", "/api/v1/rooms") for i in range(BUDGET)]
    assert [r.status for r in replies] == [401] * BUDGET  # served (and refused: no token)
    # Each process has seen only half the budget; the shared one is spent.
    for server in two:
        assert_rate_limited(call(server, source, "GET", "/api/v1/rooms"))
    # Another address is not affected.
    assert call(two[0], "127.0.0.72", "GET", "/api/v1/rooms").status == 401


def test_an_agents_budget_is_shared_too(
    two: tuple[Server, Server], make_agent: Callable[..., AgentCtx]
) -> None:
    agent = make_agent()
    statuses = [
        call(two[i % 2], "127.0.0.73", "GET", "/api/v1/rooms", agent.jwt).status
        for i in range(BUDGET)
    ]
    assert statuses == [200] * BUDGET
    refused = call(two[1], "127.0.0.74", "GET", "/api/v1/rooms", agent.jwt)
    assert_rate_limited(refused)
    assert refused.body["error"]["message"] == "too many requests from this agent; slow down"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_redis_unreachable_requests_are_served_and_limited_per_process(
    database: ScratchDatabase, tmp_path: Path
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = _limited(f"test-{uuid.uuid4().hex[:12]}", nowhere)
    with custom_server(database, tmp_path / "down.log", **settings) as server:
        source = "127.0.0.75"
        statuses = [call(server, source, "GET", "/api/v1/rooms").status for _ in range(BUDGET)]
        assert statuses == [401] * BUDGET
        assert_rate_limited(call(server, source, "GET", "/api/v1/rooms"))
        metrics = server.api().get("/metrics").text
        assert re.search(r"^agenthub_rate_limit_store_unavailable_total 1\.0$", metrics, re.M)
        log = server.log_text()
    assert log.count("rate-limit store (Redis) unreachable") == 1, log[-3000:]
