"""Two agents coordinate a task, each through its own tool: A in a shell with ``ah``, B as a
coding agent through MCP (the official SDK's client talking to ``ah mcp`` over stdio). A posts
a ``kind: task`` message mentioning B; B's ``wait_for_messages`` wakes with it; B replies in
the thread; A's ``ah wait`` wakes with the reply; both mark read and both inboxes are empty."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.integration.test_ah import AH, Ah, wait_until_waiting
from tests.integration.test_mcp import call
from tests.servers import AgentCtx, Server


@asynccontextmanager
async def ah_mcp(server: Server, agent: AgentCtx, errlog: Path) -> AsyncIterator[ClientSession]:
    """B's side: ``ah mcp`` itself (the command an agent's MCP configuration runs)."""
    params = StdioServerParameters(
        command=AH,
        args=["mcp"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AGENTHUB_URL": server.base_url,
            "AGENTHUB_TOKEN": agent.api_token,
        },
    )
    with open(errlog, "w") as err:  # noqa: ASYNC230 (a local file for the subprocess's stderr)
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def test_a_shell_agent_and_an_mcp_agent_coordinate_a_task_in_a_thread(
    server: Server, make_agent: Any, tmp_path: Path
) -> None:
    alice, bob = make_agent(), make_agent()
    a = Ah(server, alice, tmp_path / "alice")
    room = f"task-{uuid.uuid4().hex[:10]}"
    a.ok("create", room)

    async def scenario() -> None:
        async with ah_mcp(server, bob, tmp_path / "bob-mcp.log") as b:
            await call(b, "join_room", room=room)
            # B waits for anything addressed to it (no room: its inbox).
            b_waits = asyncio.create_task(call(b, "wait_for_messages", timeout_seconds=60))
            await asyncio.to_thread(wait_until_waiting, server)
            sent = await asyncio.to_thread(
                a.json,
                "send",
                room,
                f"@{bob.name} please review PR 412",
                "--kind",
                "task",
                "--data",
                '{"pr": 412}',
            )
            task_seq = sent[0]["seq"]
            woken = await asyncio.wait_for(b_waits, 30)
            assert "timedOut" not in woken, woken
            task = await call(b, "read_messages", room=room, unread_only=True)
            (message,) = task["messages"]
            assert message["seq"] == task_seq and message["from"] == alice.name
            assert message["kind"] == "task" and message["data"] == {"pr": 412}
            mentions = await call(b, "mentions")
            assert json.dumps(mentions).count("please review PR 412") == 1

            # A waits in the room for the answer (its own task message does not count).
            a_waits = a.popen("wait", room, "--timeout", "60", "--json", "--mark-read")
            try:
                await asyncio.to_thread(wait_until_waiting, server)
                reply = await call(
                    b, "send_message", room=room, body="LGTM, merging", reply_to=task_seq
                )
                out, err = await asyncio.to_thread(a_waits.communicate, timeout=30)
            finally:
                a_waits.kill()
            assert a_waits.returncode == 0, err
            (got,) = [json.loads(line) for line in out.splitlines()]
            assert got["seq"] == reply["seq"] and got["body"] == "LGTM, merging"
            assert got["replyTo"] == task_seq and got["threadRoot"] == task_seq

            thread = await call(b, "get_thread", room=room, seq=task_seq)
            assert [m["seq"] for m in thread["messages"]] == [task_seq, reply["seq"]]
            await call(b, "mark_read", room=room)
            assert await call(b, "inbox") == {"rooms": [], "totalUnread": 0}

    asyncio.run(scenario())
    # A marked read with --mark-read: nothing is unread on either side.
    assert a.json("inbox") == []
    assert alice.api.get("/api/v1/inbox").body == {"rooms": [], "totalUnread": 0}
    assert bob.api.get("/api/v1/inbox").body == {"rooms": [], "totalUnread": 0}
