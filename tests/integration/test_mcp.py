"""The MCP server (``python -m agenthub.client.mcp``) driven by the official SDK's client over
stdio, against the real server: the tool list, each tool, errors as tool errors with
AgentHub's code, ``max_chars``, ``wait_for_messages`` released by another agent's post or timed
out, and the resources."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import TextResourceContents

TOOLS = {
    "whoami",
    "list_rooms",
    "list_agents",
    "create_room",
    "join_room",
    "leave_room",
    "send_message",
    "send_dm",
    "read_messages",
    "wait_for_messages",
    "mark_read",
    "inbox",
    "mentions",
    "search_messages",
    "get_thread",
}


@asynccontextmanager
async def mcp_client(
    server, token: str, errlog: Path | None = None
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agenthub.client.mcp"],
        env={"AGENTHUB_URL": server.base_url, "AGENTHUB_TOKEN": token},
    )
    # The server's stderr (its logs) goes to errlog: a real file, as the subprocess needs one.
    with (
        open(errlog or os.devnull, "w") as err,  # noqa: ASYNC230 (opening a local file)
    ):
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def text_of(result: Any) -> str:
    assert len(result.content) == 1
    text: str = result.content[0].text
    return text


async def call(session: ClientSession, tool: str, **args: Any) -> Any:
    result = await session.call_tool(tool, args)
    text = text_of(result)
    assert not result.is_error, text
    return json.loads(text)


async def call_error(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, args)
    text = text_of(result)
    assert result.is_error, text
    assert "Traceback" not in text
    error: dict[str, Any] = json.loads(text)["error"]
    return error


def resource_text(result: Any) -> str:
    (content,) = result.contents
    assert isinstance(content, TextResourceContents)
    return content.text


def slug() -> str:
    return f"mcp-{uuid.uuid4().hex[:10]}"


def test_tools_and_resources_are_listed(server, make_agent):
    async def scenario() -> None:
        async with mcp_client(server, make_agent().api_token) as s:
            tools = (await s.list_tools()).tools
            assert {t.name for t in tools} == TOOLS
            for tool in tools:
                assert tool.description and len(tool.description) > 60, tool.name
                props = tool.input_schema.get("properties", {})
                assert all(p == p.lower() for p in props), (tool.name, props)
            by_name = {t.name: t for t in tools}
            send = by_name["send_message"].input_schema
            assert set(send["properties"]) == {"room", "body", "reply_to", "kind", "data"}
            assert set(send["required"]) == {"room", "body"}
            read = by_name["read_messages"].input_schema["properties"]
            assert {"after_seq", "unread_only", "thread", "limit", "max_chars"} <= set(read)
            wait = by_name["wait_for_messages"].input_schema["properties"]
            assert set(wait) >= {"room", "timeout_seconds"}
            assert wait["timeout_seconds"]["maximum"] == 300
            assert wait["timeout_seconds"]["default"] == 60
            resources = (await s.list_resources()).resources
            assert [str(r.uri) for r in resources] == ["agenthub://rooms"]
            templates = (await s.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["agenthub://rooms/{room}/recent"]

    asyncio.run(scenario())


def test_each_tool_against_the_server(server, make_agent):
    alice, bob = make_agent(), make_agent()
    room = slug()

    async def scenario() -> None:
        async with mcp_client(server, alice.api_token) as a, mcp_client(server, bob.api_token) as b:
            me = await call(a, "whoami")
            assert me == {
                "id": alice.id,
                "name": alice.name,
                "displayName": alice.name,
                "role": "agent",
            }
            assert bob.name in [x["name"] for x in (await call(a, "list_agents"))["agents"]]

            created = await call(a, "create_room", room=room, topic="release plan")
            assert created["room"] == room and created["topic"] == "release plan"
            assert created["member"] is True and created["lastSeq"] == 0
            joined = await call(b, "join_room", room=room)
            assert joined["room"] == room and joined["member"] is True

            first = await call(a, "send_message", room=room, body=f"@{bob.name} deploy plan?")
            assert first == {"room": room, "seq": 1, "mentions": [bob.name]}
            task = await call(
                a,
                "send_message",
                room=room,
                body="check the canary",
                kind="task",
                data={"step": 2},
                reply_to=1,
            )
            assert task == {"room": room, "seq": 2, "threadRoot": 1}
            # data as a JSON string (some clients send objects so)
            await call(b, "send_message", room=room, body="on it", reply_to=2, data='{"ok":true}')

            latest = await call(b, "read_messages", room=room)
            assert [m["seq"] for m in latest["messages"]] == [1, 2, 3]
            m1, m2, m3 = latest["messages"]
            assert m1["from"] == alice.name and m1["mentions"] == [bob.name]
            assert m1["replies"] == 2 and "kind" not in m1
            assert m2["kind"] == "task" and m2["data"] == {"step": 2} and m2["replyTo"] == 1
            assert m3 == {
                **m3,
                "from": bob.name,
                "replyTo": 2,
                "threadRoot": 1,
                "data": {"ok": True},
            }
            after = await call(b, "read_messages", room=room, after_seq=1, limit=1)
            assert [m["seq"] for m in after["messages"]] == [2]
            assert after["hasMore"] is True and after["nextAfterSeq"] == 2
            thread = await call(b, "read_messages", room=room, thread=1)
            assert [m["seq"] for m in thread["messages"]] == [1, 2, 3]
            by_reply = await call(b, "get_thread", room=room, seq=3)
            assert by_reply["thread"] == 1
            assert [m["seq"] for m in by_reply["messages"]] == [1, 2, 3]

            found = await call(b, "search_messages", query="canary", room=room)
            assert [(r["room"], r["seq"]) for r in found["results"]] == [(room, 2)]
            assert "«canary»" in found["results"][0]["highlight"]
            mentions = await call(b, "mentions")
            assert [(m["room"], m["seq"]) for m in mentions["mentions"]][:1] == [(room, 1)]

            dm = await call(a, "send_dm", agent=bob.name, body="a word in private")
            assert dm["to"] == bob.name and dm["seq"] == 1
            dm_read = await call(b, "read_messages", room=dm["room"])
            assert [(m["from"], m["body"]) for m in dm_read["messages"]] == [
                (alice.name, "a word in private")
            ]
            dms = await call(b, "list_rooms", kind="dm")
            assert [r["room"] for r in dms["rooms"]] == [dm["room"]]

            left = await call(b, "leave_room", room=room)
            assert left == {"left": room}
            rooms = {r["room"]: r for r in (await call(b, "list_rooms"))["rooms"]}
            assert rooms[room]["member"] is False and "unread" not in rooms[room]

    asyncio.run(scenario())


def test_read_state_unread_inbox_and_mark_read(server, make_agent):
    alice, bob = make_agent(), make_agent()
    room = slug()

    async def scenario() -> None:
        async with mcp_client(server, bob.api_token) as b:
            alice.api.post("/api/v1/rooms", {"slug": room, "name": room})
            await call(b, "join_room", room=room)
            for i in range(3):
                alice.api.post(f"/api/v1/rooms/{room}/messages", {"body": f"note {i}"})
            listed = {r["room"]: r for r in (await call(b, "list_rooms"))["rooms"]}
            assert listed[room]["unread"] == 3 and listed[room]["lastReadSeq"] == 0
            unread_rooms = (await call(b, "list_rooms", unread_only=True))["rooms"]
            assert [r["room"] for r in unread_rooms] == [room]

            inbox = await call(b, "inbox")
            assert inbox["totalUnread"] == 3
            (entry,) = inbox["rooms"]
            assert entry["room"] == room and entry["unread"] == 3
            assert entry["lastMessage"]["seq"] == 3 and entry["lastMessage"]["from"] == alice.name

            assert (await call(b, "mark_read", room=room, seq=1)) == {
                "room": room,
                "lastReadSeq": 1,
            }
            unread = await call(b, "read_messages", room=room, unread_only=True)
            assert unread["lastReadSeq"] == 1
            assert [m["body"] for m in unread["messages"]] == ["note 1", "note 2"]
            # Reading does not mark read; mark_read without seq marks everything.
            assert (await call(b, "mark_read", room=room)) == {"room": room, "lastReadSeq": 3}
            assert await call(b, "inbox") == {"rooms": [], "totalUnread": 0}
            assert (await call(b, "read_messages", room=room, unread_only=True))["messages"] == []

    asyncio.run(scenario())


def test_errors_are_tool_errors_with_the_servers_code(server, make_agent, make_room, tmp_path):
    alice, bob = make_agent(), make_agent()
    private = make_room(alice, visibility="private")
    public = make_room(alice)
    errlog = tmp_path / "mcp.err"

    async def scenario() -> None:
        async with mcp_client(server, bob.api_token, errlog) as b:
            missing = await call_error(b, "read_messages", room="no-such-room")
            assert missing["code"] == "not_found" and missing["message"]
            assert (await call_error(b, "send_message", room=private["slug"], body="hi"))[
                "code"
            ] == "not_found"
            assert (await call_error(b, "send_message", room=public["slug"], body="hi"))[
                "code"
            ] == "forbidden"
            both = await call_error(
                b, "read_messages", room=public["slug"], after_seq=0, unread_only=True
            )
            assert both["code"] == "validation_failed"
            taken = await call_error(b, "create_room", room=public["slug"])
            assert taken["code"] == "conflict"
            await call(b, "join_room", room=public["slug"])
            bad_kind = await call_error(
                b, "send_message", room=public["slug"], body="x", kind="Not A Kind"
            )
            assert bad_kind["code"] == "validation_failed" and "kind" in bad_kind["details"]
            # Arguments the schema refuses are tool errors too (the SDK's own).
            out_of_range = await b.call_tool("wait_for_messages", {"timeout_seconds": 301})
            assert out_of_range.is_error

        async with mcp_client(server, "agt_nothing_like_a_token", errlog) as s:
            refused = await call_error(s, "whoami")
            assert refused["code"] == "unauthorized"

    asyncio.run(scenario())
    assert bob.api_token not in errlog.read_text()
    assert "agt_nothing_like_a_token" not in errlog.read_text()


def test_read_messages_stops_at_max_chars(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    bodies = [f"{i:02d} " + "x" * 300 for i in range(12)]
    for body in bodies:
        alice.api.post(f"/api/v1/rooms/{room['slug']}/messages", {"body": body})

    async def scenario() -> None:
        async with mcp_client(server, alice.api_token) as a:
            seen: list[int] = []
            after = 0
            for _ in range(10):
                result = await a.call_tool(
                    "read_messages", {"room": room["slug"], "after_seq": after, "max_chars": 1000}
                )
                text = text_of(result)
                assert len(text) <= 1000, len(text)
                page = json.loads(text)
                seen += [m["seq"] for m in page["messages"]]
                if not page.get("truncated"):
                    break
                assert 1 <= len(page["messages"]) < 12
                after = page["nextAfterSeq"]
                assert after == page["messages"][-1]["seq"]
            assert seen == list(range(1, 13))
            # One message longer than the budget by itself: its body is cut, paging advances.
            alice.api.post(f"/api/v1/rooms/{room['slug']}/messages", {"body": "y" * 3000})
            page = await call(a, "read_messages", room=room["slug"], after_seq=12, max_chars=500)
            (only,) = page["messages"]
            assert only["seq"] == 13 and only["bodyTruncated"] is True
            assert page["truncated"] is True and page["nextAfterSeq"] == 13
            whole = await call(a, "read_messages", room=room["slug"], after_seq=12)
            assert whole["messages"][0]["body"] == "y" * 3000 and "truncated" not in whole

    asyncio.run(scenario())


def test_wait_for_messages_released_by_another_agents_post(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    path = f"/api/v1/rooms/{room['slug']}/messages"

    async def post_later(body: str, delay: float = 1.0) -> None:
        await asyncio.sleep(delay)
        await asyncio.to_thread(alice.api.post, path, {"body": body})

    async def scenario() -> None:
        async with mcp_client(server, bob.api_token) as b:
            await call(b, "join_room", room=room["slug"])
            # Bob's own post does not end his wait; Alice's does.
            await call(b, "send_message", room=room["slug"], body="anyone?")
            started = time.monotonic()
            waited, _ = await asyncio.gather(
                call(b, "wait_for_messages", room=room["slug"], timeout_seconds=30),
                post_later("here"),
            )
            elapsed = time.monotonic() - started
            assert 0.9 < elapsed < 10, elapsed
            assert waited["room"] == room["slug"] and waited["lastReadSeq"] == 0
            assert [(m["from"], m["body"]) for m in waited["messages"]] == [
                (bob.name, "anyone?"),
                (alice.name, "here"),
            ]
            # Unread messages answer at once; after mark_read the wait blocks again.
            again = await call(b, "wait_for_messages", room=room["slug"], timeout_seconds=30)
            assert [m["seq"] for m in again["messages"]] == [1, 2]
            await call(b, "mark_read", room=room["slug"])

            # Without room: anything for Bob, through the inbox's long poll.
            started = time.monotonic()
            waited, _ = await asyncio.gather(
                call(b, "wait_for_messages", timeout_seconds=30), post_later("ping")
            )
            assert 0.9 < time.monotonic() - started < 10
            (entry,) = waited["rooms"]
            assert entry["room"] == room["slug"] and entry["unread"] == 1
            assert entry["lastMessage"]["body"] == "ping"

    asyncio.run(scenario())


def test_wait_for_messages_times_out(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)

    async def scenario() -> None:
        async with mcp_client(server, alice.api_token) as a:
            await call(a, "send_message", room=room["slug"], body="my own")  # not news
            for args in ({"room": room["slug"]}, {}):
                await call(a, "mark_read", room=room["slug"]) if not args else None
                started = time.monotonic()
                result = await call(a, "wait_for_messages", timeout_seconds=1.5, **args)
                elapsed = time.monotonic() - started
                assert result["timedOut"] is True, result
                assert 1.4 < elapsed < 6, elapsed

    asyncio.run(scenario())


def test_resources(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    alice.api.post(f"/api/v1/rooms/{room['slug']}/messages", {"body": "resource body"})

    async def scenario() -> None:
        async with mcp_client(server, alice.api_token) as a:
            rooms = await a.read_resource("agenthub://rooms")
            listed = json.loads(resource_text(rooms))["rooms"]
            mine = next(r for r in listed if r["room"] == room["slug"])
            assert mine["lastSeq"] == 1 and mine["member"] is True
            recent = await a.read_resource(f"agenthub://rooms/{room['slug']}/recent")
            assert rooms.contents[0].mime_type == "application/json"
            body = json.loads(resource_text(recent))
            assert [m["body"] for m in body["messages"]] == ["resource body"]
            try:
                await a.read_resource("agenthub://rooms/no-such-room/recent")
            except Exception as exc:  # the SDK's McpError: a protocol error
                assert "not_found" in str(exc)
            else:
                raise AssertionError("reading a missing room's resource succeeded")

    asyncio.run(scenario())


def test_main_without_configuration_exits_2():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHUB_")}
    proc = subprocess.run(
        [sys.executable, "-m", "agenthub.client.mcp"],
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "AGENTHUB_URL and AGENTHUB_TOKEN must be set" in proc.stderr


def test_the_mcp_server_loads_no_server_module():
    """``pip install 'agenthub[client,mcp]'`` on an agent's machine: no server dependency."""
    server_only = ("aiopg", "psycopg2", "tornado", "sqlalchemy", "alembic", "marshmallow")
    code = (
        "import sys, agenthub.client.mcp.server as s, agenthub.client as c\n"
        "s.build_server(c.AsyncAgentHub('http://127.0.0.1:9', 'agt_x_y'))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({server_only!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
