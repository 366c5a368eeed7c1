"""agenthub.client against the real server: every REST method, the error mapping, sessions
renewed and refused, send() retried without duplicates, the blocking facade."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import traceback
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agenthub.client import (
    AgentHub,
    AgentHubError,
    AsyncAgentHub,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
    Unauthorized,
    ValidationFailed,
)
from agenthub.client.models import Session
from tests.client_support import LossyProxy
from tests.helpers import free_port
from tests.realtime_support import custom_server, run


def hub_for(server, agent) -> AgentHub:
    return AgentHub(server.base_url, agent.api_token)


def test_me_agents_and_tokens(server, admin, make_agent):
    bob = make_agent()
    with hub_for(server, admin) as hub:
        assert hub.me().id == admin.id
        name = f"client-{uuid.uuid4().hex[:8]}"
        created = hub.create_agent(name, display_name="Client Test")
        assert created.name == name and created.display_name == "Client Test"
        assert created.role == "agent" and not created.disabled
        assert hub.get_agent(name) == created
        assert hub.get_agent(created.id) == created
        assert name in [a.name for a in hub.list_agents()]
        issued = hub.issue_token(name, expires_at=datetime.now(UTC) + timedelta(days=1))
        assert issued.token.startswith("agt_") and issued.agent_id == created.id
        assert issued.token not in repr(issued)
        with AgentHub(server.base_url, issued.token) as new:
            assert new.me().name == name
            assert [t.prefix for t in new.list_tokens()] == [issued.prefix]
            assert hub.set_agent_disabled(name, True).disabled is True
            with pytest.raises(Unauthorized) as refused:
                new.me()
            assert refused.value.status == 401
            assert hub.set_agent_disabled(name, False).disabled is False
            assert new.me().name == name
            hub.revoke_token(issued.prefix)
            hub.revoke_token(issued.prefix)  # idempotent
            with pytest.raises(Unauthorized):
                new.me()
        with pytest.raises(NotFound) as missing:
            hub.get_agent(f"nobody-{uuid.uuid4().hex[:8]}")
        assert missing.value.code == "not_found" and missing.value.status == 404
    with hub_for(server, bob) as hub:
        with pytest.raises(Forbidden) as forbidden:
            hub.create_agent(f"x-{uuid.uuid4().hex[:8]}")
        assert forbidden.value.code == "forbidden" and forbidden.value.status == 403
        with pytest.raises(Forbidden):
            hub.audit()


def test_rooms_members_and_archiving(server, make_agent):
    alice, bob = make_agent(), make_agent()
    slug = f"room-{uuid.uuid4().hex[:8]}"
    with hub_for(server, alice) as a, hub_for(server, bob) as b:
        room = a.create_room(slug, name="Planning", topic="Q3")
        assert (room.slug, room.name, room.topic, room.visibility) == (
            slug,
            "Planning",
            "Q3",
            "public",
        )
        assert room.member and room.kind == "room" and not room.archived and room.last_seq == 0
        assert a.get_room(slug).id == room.id
        assert slug in [r.slug for r in a.list_rooms(kind="room")]
        with pytest.raises(Conflict) as dup:
            a.create_room(slug)
        assert dup.value.code == "conflict" and dup.value.status == 409
        with pytest.raises(ValidationFailed) as bad:
            a.create_room("Not A Slug")
        assert bad.value.status == 400 and "slug" in bad.value.details
        assert a.update_room(slug, topic="Q4").topic == "Q4"
        with pytest.raises(Forbidden):
            b.update_room(slug, topic="mine")

        # members: join is POST members with {}
        with pytest.raises(Forbidden):
            b.send(slug, "not a member yet")
        member = b.join(slug)
        assert member.agent_id == bob.id and member.name == bob.name
        assert b.join(slug).agent_id == bob.id  # again: the same membership
        assert {m.agent_id for m in a.list_members(slug)} == {alice.id, bob.id}
        b.leave(slug)
        assert {m.agent_id for m in a.list_members(room.id)} == {alice.id}
        assert a.add_member(slug, bob.name).agent_id == bob.id
        with pytest.raises(Forbidden):
            a.remove_member(slug, bob.name)  # only the member itself, or an admin
        b.remove_member(slug, "me")
        with pytest.raises(NotFound):
            b.leave(slug)

        # archive: posts refused with room_archived (a Conflict), reads still work
        assert a.archive_room(slug).archived is True
        with pytest.raises(Conflict) as archived:
            a.send(slug, "too late")
        assert archived.value.code == "room_archived"
        assert a.list_messages(slug).messages == []
        assert a.unarchive_room(slug).archived is False
        assert a.send(slug, "back").seq == 1

        # a private room is invisible to others: 404
        private = a.create_room(f"priv-{uuid.uuid4().hex[:8]}", visibility="private")
        with pytest.raises(NotFound):
            b.get_room(private.id)
        with pytest.raises(NotFound):
            b.join(private.slug)


def test_messages_threads_kinds_and_redaction(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    slug = str(room["slug"])
    with hub_for(server, alice) as a, hub_for(server, bob) as b:
        b.join(slug)
        first = a.send(slug, f"deploy plan? @{bob.name}")
        assert first.seq == 1 and first.room_id == room["id"] and first.sender_id == alice.id
        assert first.client_msg_id  # generated
        assert first.mentions == (bob.id,)
        reply = b.send(slug, "looks good", reply_to=first.seq)
        assert reply.reply_to == 1 and reply.thread_root == 1
        task = a.send(slug, "", kind="task", data={"pr": 412})
        assert task.kind == "task" and task.data == {"pr": 412}
        again = a.send(slug, "once", client_msg_id="fixed-id-1")
        assert a.send(slug, "once", client_msg_id="fixed-id-1").seq == again.seq

        page = a.list_messages(slug, after=0, limit=2)
        assert [m.seq for m in page.messages] == [1, 2] and page.has_more
        newest = a.list_messages(slug, limit=2)
        assert [m.seq for m in newest.messages] == [4, 3] and newest.next_cursor
        older = a.list_messages(slug, cursor=newest.next_cursor, limit=2)
        assert [m.seq for m in older.messages] == [2, 1]
        thread = a.list_messages(slug, thread=1)
        assert [m.seq for m in thread.messages] == [1, 2]
        assert thread.messages[0].reply_count == 1
        assert [m.seq for m in a.list_messages(slug, kind="task").messages] == [3]
        assert a.get_message(slug, 2).body == "looks good"
        with pytest.raises(NotFound):
            a.get_message(slug, 99)
        with pytest.raises(ValidationFailed):
            a.send(slug, "x", reply_to=99)
        with pytest.raises(PayloadTooLarge) as large:
            a.send(slug, "x" * 100_000)
        assert large.value.status == 413 and large.value.limit

        with pytest.raises(Forbidden):
            b.redact(slug, 1)
        a.redact(slug, 1)
        a.redact(slug, 1)  # idempotent
        tomb = b.get_message(slug, 1)
        assert tomb.redacted and tomb.body == "" and tomb.redacted_at is not None

        # the long poll: wait returns when bob posts
        done: list[int] = []

        def post_later() -> None:
            import time

            time.sleep(0.5)
            done.append(b.send(slug, "your turn").seq)

        thread_ = threading.Thread(target=post_later)
        thread_.start()
        waited = a.list_messages(slug, after=4, wait=10)
        thread_.join()
        assert [m.body for m in waited.messages] == ["your turn"] and done == [5]
        assert a.list_messages(slug, after=5, wait=0.2).messages == []


def test_mentions_dms_search_and_audit(server, admin, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    word = f"zebra{uuid.uuid4().hex[:8]}"
    with hub_for(server, alice) as a, hub_for(server, bob) as b:
        b.join(str(room["slug"]))
        sent = a.send(str(room["slug"]), f"@{bob.name} please look at {word}")
        page = b.mentions()
        assert [m.message.id for m in page.mentions] == [sent.id]
        assert page.mentions[0].room.slug == room["slug"]
        assert [m.message.id for m in b.mentions(after=0).mentions] == [sent.id]

        dm = a.open_dm(bob.name)
        assert dm.kind == "dm" and dm.member
        assert b.open_dm(alice.name).id == dm.id
        dm_msg = b.send_dm(alice.name, "just us")
        assert dm_msg.room_id == dm.id
        assert [r.id for r in a.list_rooms(kind="dm")] == [dm.id]
        with pytest.raises(ValidationFailed):
            a.open_dm("me")

        found = b.search(word)
        assert [r.message.id for r in found.results] == [sent.id]
        assert "«" in found.results[0].highlight
        assert b.search(word, room=str(room["slug"]), sender=alice.name).results
        with pytest.raises(ValidationFailed):
            b.search("!!!")
    with hub_for(server, admin) as hub:
        events = hub.audit(type="dm-created", limit=5).events
        assert any(e.payload.get("roomId") == dm.id for e in events)
        assert hub.audit(limit=1).next_cursor


def test_expired_or_invalid_session_is_renewed_once(server, make_agent):
    alice = make_agent()

    async def scenario() -> None:
        async with AsyncAgentHub(server.base_url, alice.api_token) as hub:
            session = await hub.login()
            assert hub.session.logins == 1
            # The server no longer takes this JWT (as after its expiry): one 401, one new
            # login, the call succeeds.
            hub.session.current = Session(
                token=session.token[:-4] + "AAAA",
                expires_at=session.expires_at,
                agent=session.agent,
            )
            assert (await hub.me()).id == alice.id
            assert hub.session.logins == 2

    run(scenario())


def test_sessions_are_renewed_before_expiry(server, make_agent):
    alice = make_agent()

    async def scenario() -> None:
        # refresh_fraction 0.000001: every call finds the JWT due and logs in again first.
        async with AsyncAgentHub(
            server.base_url, alice.api_token, refresh_fraction=0.000001
        ) as hub:
            await hub.me()
            await asyncio.sleep(0.01)
            await hub.me()
            assert hub.session.logins == 2
        async with AsyncAgentHub(server.base_url, alice.api_token) as hub:
            await hub.me()
            await hub.me()
            assert hub.session.logins == 1
            assert 700 < hub.session.refresh_due_in() <= 720  # 80 % of 900 s

    run(scenario())


def test_the_api_token_never_shows(server, make_agent, caplog):
    alice = make_agent()
    secret_part = alice.api_token.split("_")[-1]
    wrong = alice.api_token[:-6] + "zzzzzz"
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        for url, token in (
            (server.base_url, wrong),  # refused login
            (server.base_url, "agt_notatoken"),
            (f"http://127.0.0.1:{free_port()}", alice.api_token),  # nothing listens
        ):
            hub = AgentHub(url, token, retry=RetryPolicy(attempts=2, base_delay=0.01))
            texts.append(repr(hub))
            texts.append(repr(hub.aio))
            texts.append(repr(hub.aio.session))
            with pytest.raises(AgentHubError) as caught:
                hub.me()
            err = caught.value
            assert isinstance(err, Unauthorized | ConnectionFailed)
            texts += [str(err), repr(err), err.message, str(err.details), str(err.args)]
            texts.append("".join(traceback.format_exception(err)))
            hub.close()
        with AgentHub(server.base_url, alice.api_token) as hub:
            session = hub.login()
            texts += [repr(hub), repr(session), str(session.raw)]
    finally:
        logging.getLogger().removeHandler(handler)
    texts += [stream.getvalue(), caplog.text]
    for text in texts:
        assert secret_part not in text
        assert "zzzzzz" not in text
        assert "agt_notatoken" not in text


def test_error_mapping_and_rate_limit(database, tmp_path, make_agent):
    with custom_server(database, tmp_path / "s.log", RATE_LIMIT_AGENT_PER_MINUTE="3") as limited:
        alice = make_agent()
        with AgentHub(limited.base_url, alice.api_token, retry=RetryPolicy(attempts=1)) as hub:
            with pytest.raises(RateLimited) as caught:
                for _ in range(10):
                    hub.me()
            err = caught.value
            assert err.code == "rate_limited" and err.status == 429
            assert err.retry_after is not None and err.retry_after >= 1
            assert err.details["retryAfter"] == err.retry_after
        # send() honours Retry-After, but not one longer than max_retry_after: raised.
        with (
            AgentHub(
                limited.base_url,
                alice.api_token,
                retry=RetryPolicy(attempts=3, max_retry_after=0.5),
            ) as hub,
            pytest.raises(RateLimited),
        ):
            hub.send("general", "x")


def test_connection_failed_when_nothing_listens():
    with AgentHub(
        f"http://127.0.0.1:{free_port()}", "agt_x_y", retry=RetryPolicy(attempts=2, base_delay=0.01)
    ) as hub:
        with pytest.raises(ConnectionFailed) as caught:
            hub.list_rooms()
        assert caught.value.code == "connection_failed" and caught.value.status is None


@pytest.mark.parametrize("mode", ["close", "502"])
def test_send_whose_answer_is_lost_is_retried_and_stored_once(server, make_agent, make_room, mode):
    alice = make_agent()
    room = make_room(alice)
    port = int(server.base_url.rsplit(":", 1)[1])

    async def scenario() -> None:
        # The proxy lets the server commit, then loses the answer to the first two posts.
        losses = {"left": 2}

        def drop(method: str, path: str) -> bool:
            if method == "POST" and path.endswith("/messages") and losses["left"]:
                losses["left"] -= 1
                return True
            return False

        proxy = LossyProxy(("127.0.0.1", port), drop, mode=mode)
        url = await proxy.start()
        try:
            async with AsyncAgentHub(
                url, alice.api_token, retry=RetryPolicy(attempts=4, base_delay=0.05)
            ) as hub:
                first = await hub.send(str(room["id"]), "exactly once")
                assert proxy.dropped == 2
                second = await hub.send(str(room["id"]), "and the next")
                assert (first.seq, second.seq) == (1, 2)
                page = await hub.list_messages(str(room["id"]), after=0)
                assert [m.body for m in page.messages] == ["exactly once", "and the next"]
                # With no retries the lost answer is the caller's ConnectionFailed/ServerError.
                losses["left"] = 1
                with pytest.raises(AgentHubError) as caught:
                    await hub.send(
                        str(room["id"]),
                        "lost",
                        client_msg_id="lost-1",
                        retry=RetryPolicy(attempts=1),
                    )
                assert caught.value.code in ("connection_failed", "internal")
                again = await hub.send(str(room["id"]), "lost", client_msg_id="lost-1")
                assert again.seq == 3  # it had been stored: the retry gets it, not a copy
                page = await hub.list_messages(str(room["id"]), after=0)
                assert [m.seq for m in page.messages] == [1, 2, 3]
        finally:
            await proxy.close()

    run(scenario())


def test_blocking_facade_from_several_threads(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    with hub_for(server, alice) as hub:
        seqs: list[int] = []
        lock = threading.Lock()

        def post(i: int) -> None:
            for j in range(5):
                msg = hub.send(str(room["slug"]), f"t{i}-{j}")
                with lock:
                    seqs.append(msg.seq)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(seqs) == list(range(1, 21))
        assert hub.aio.session.logins == 1
    with pytest.raises(RuntimeError):
        hub.me()


def test_read_state_and_the_inbox(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(bob)
    slug = str(room["slug"])
    with hub_for(server, alice) as a, hub_for(server, bob) as b:
        a.join(slug)
        assert a.inbox().rooms == [] and a.inbox().total_unread == 0
        b.send(slug, "one")
        b.send(slug, f"two @{alice.name}")
        last = b.send(slug, "three")
        mine = a.get_room(slug)
        assert (mine.last_read_seq, mine.unread_count, mine.unread_mentions) == (0, 3, 1)
        inbox = a.inbox()
        assert inbox.total_unread == 3 and [e.room.id for e in inbox.rooms] == [room["id"]]
        entry = inbox.rooms[0]
        assert (entry.unread_count, entry.unread_mentions) == (3, 1)
        assert entry.last_message is not None and entry.last_message.id == last.id
        assert [m.message.seq for m in a.mentions(unread=True).mentions] == [2]

        mark = a.mark_read(slug, 2)
        assert (mark.room_id, mark.last_read_seq) == (room["id"], 2)
        assert a.mark_read(slug, 1).last_read_seq == 2  # only forward
        assert a.get_room(slug).unread_count == 1 and a.mentions(unread=True).mentions == []
        with pytest.raises(ValidationFailed) as beyond:
            a.mark_read(slug, 99)
        assert "seq" in beyond.value.details
        a.mark_read(slug, 3)
        assert a.inbox().rooms == []

        # inbox(wait=): blocks until bob posts
        def post_later() -> None:
            import time

            time.sleep(0.5)
            b.send(slug, "wake up")

        poster = threading.Thread(target=post_later)
        poster.start()
        woken = a.inbox(wait=10)
        poster.join()
        assert woken.total_unread == 1 and woken.rooms[0].last_message is not None
        assert woken.rooms[0].last_message.body == "wake up"
    outsider = make_agent()
    with hub_for(server, outsider) as c, pytest.raises(Forbidden):
        c.mark_read(slug, 1)
