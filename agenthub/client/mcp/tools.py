"""What each MCP tool does, on the client library: plain async methods returning JSON-ready
dicts, free of the MCP SDK (server.py registers them and turns errors into tool errors).

Results are shaped for a model's context: compact (no ids where a name serves, no nulls, no
defaults), senders and mentions by agent name, messages oldest first, and long listings cut at
``max_chars`` with a note saying where to go on from.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from agenthub.client.asyncclient import AsyncAgentHub
from agenthub.client.errors import Forbidden, ValidationFailed
from agenthub.client.models import InboxEntry, Message, MessagePage, Room

JSON = dict[str, Any]

# The server's longest long poll (MAX_WAIT_SECONDS, 60 unless configured lower): a longer wait
# is several polls in a row.
SERVER_MAX_WAIT = 60.0
MAX_TIMEOUT_SECONDS = 300.0
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_MAX_CHARS = 20_000
# A search result's body is clipped to this many characters (its highlight is whole).
SEARCH_BODY_CHARS = 300
# Kept free in a listing for ``"truncated":true,"nextAfterSeq":N`` or ``"hasMore":true,…``.
NOTE_CHARS = 60


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is (fewer tokens than \\u escapes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def room_json(room: Room) -> JSON:
    out: JSON = {"room": room.slug, "name": room.name}
    if room.kind != "room":
        out["kind"] = room.kind
    if room.visibility != "public":
        out["visibility"] = room.visibility
    if room.topic:
        out["topic"] = room.topic
    if room.archived:
        out["archived"] = True
    out["member"] = room.member
    out["lastSeq"] = room.last_seq
    if room.member:
        if room.last_read_seq is not None:
            out["lastReadSeq"] = room.last_read_seq
        if room.unread_count is not None:
            out["unread"] = room.unread_count
        if room.unread_mentions:
            out["unreadMentions"] = room.unread_mentions
    return out


class Names:
    """Agent ids to names, from ``GET /agents``; asked again when an unknown id shows up (an
    agent created since), at most once per ``refresh_after`` seconds."""

    def __init__(self, hub: AsyncAgentHub, refresh_after: float = 5.0) -> None:
        self._hub = hub
        self._names: dict[str, str] = {}
        self._refresh_after = refresh_after
        self._loaded_at: float | None = None

    async def load(self, ids: Iterable[str]) -> None:
        missing = {i for i in ids if i not in self._names}
        if not missing:
            return
        now = time.monotonic()
        if self._loaded_at is not None and now - self._loaded_at < self._refresh_after:
            return
        self._loaded_at = now
        self._names = {a.id: a.name for a in await self._hub.list_agents()}

    def name(self, agent_id: str) -> str:
        return self._names.get(agent_id, agent_id)


def _ids_in(messages: Iterable[Message]) -> set[str]:
    ids: set[str] = set()
    for m in messages:
        ids.add(m.sender_id)
        ids.update(m.mentions)
    return ids


class HubTools:
    """The tools' behaviour over one ``AsyncAgentHub``."""

    def __init__(self, hub: AsyncAgentHub) -> None:
        self.hub = hub
        self.names = Names(hub)
        self.max_wait = SERVER_MAX_WAIT

    # --- shaping ------------------------------------------------------------------------

    def message_json(self, m: Message) -> JSON:
        out: JSON = {"seq": m.seq, "from": self.names.name(m.sender_id)}
        raw_at = m.raw.get("createdAt")
        out["at"] = raw_at if isinstance(raw_at, str) else m.created_at.isoformat()
        if m.redacted:
            out["redacted"] = True
        else:
            out["body"] = m.body
        if m.kind != "text":
            out["kind"] = m.kind
        if m.data is not None:
            out["data"] = m.data
        if m.reply_to is not None:
            out["replyTo"] = m.reply_to
        if m.thread_root is not None and m.thread_root != m.reply_to:
            out["threadRoot"] = m.thread_root
        if m.reply_count:
            out["replies"] = m.reply_count
        if m.mentions:
            out["mentions"] = [self.names.name(i) for i in m.mentions]
        if m.mentions_room:
            out["mentionsRoom"] = True
        if m.edited_at is not None:
            out["edited"] = True
        return out

    async def messages_json(
        self, messages: list[Message], max_chars: int | None, out: JSON
    ) -> JSON:
        """``out`` with ``messages`` (oldest first) added while their JSON text fits in
        ``max_chars``; when one does not, ``truncated`` and ``nextAfterSeq`` (the last seq
        given: read on with ``after_seq`` = it). A first message longer than the budget by
        itself is given with its body cut (``bodyTruncated``), so paging always advances."""
        await self.names.load(_ids_in(messages))
        budget = max_chars if max_chars is not None else DEFAULT_MAX_CHARS
        shown: list[JSON] = []
        # The listing's own keys, and room for the note saying it was cut.
        used = len(dumps(out)) + len(',"messages":[]') + NOTE_CHARS
        for m in messages:
            item = self.message_json(m)
            size = len(dumps(item)) + 1
            if used + size > budget:
                if not shown:
                    if "body" in item:
                        room_left = budget - used - (size - len(dumps(item["body"])))
                        item["body"] = item["body"][: max(room_left - 25, 0)]
                        item["bodyTruncated"] = True
                    shown.append(item)
                out["messages"] = shown
                out["truncated"] = True
                out["nextAfterSeq"] = shown[-1]["seq"]
                return out
            shown.append(item)
            used += size
        out["messages"] = shown
        return out

    async def page_json(
        self, room: str, page: MessagePage, max_chars: int | None, out: JSON
    ) -> JSON:
        result = await self.messages_json(page.messages, max_chars, {"room": room, **out})
        if page.has_more and not result.get("truncated") and page.messages:
            result["hasMore"] = True
            result["nextAfterSeq"] = page.messages[-1].seq
        return result

    async def entry_json(self, entry: InboxEntry) -> JSON:
        out: JSON = {"room": entry.room.slug}
        if entry.room.kind != "room":
            out["kind"] = entry.room.kind
        out["unread"] = entry.unread_count
        if entry.unread_mentions:
            out["unreadMentions"] = entry.unread_mentions
        if entry.room.last_read_seq is not None:
            out["lastReadSeq"] = entry.room.last_read_seq
        if entry.last_message is not None:
            await self.names.load(_ids_in([entry.last_message]))
            out["lastMessage"] = self.message_json(entry.last_message)
        return out

    async def my_id(self) -> str:
        await self.hub.session.token()
        current = self.hub.session.current
        if current is None:  # pragma: no cover (token() logged in)
            raise RuntimeError("no session")
        return current.agent.id

    async def read_marker(self, room: str) -> tuple[Room, int]:
        info = await self.hub.get_room(room)
        if info.last_read_seq is None:
            raise Forbidden(
                "forbidden", f"not a member of room {info.slug!r}: join_room first", 403
            )
        return info, info.last_read_seq

    # --- the tools ----------------------------------------------------------------------

    async def whoami(self) -> JSON:
        me = await self.hub.me()
        return {"id": me.id, "name": me.name, "displayName": me.display_name, "role": me.role}

    async def list_rooms(self, kind: str | None = None, unread_only: bool = False) -> JSON:
        rooms = await self.hub.list_rooms(kind=kind)
        if unread_only:
            rooms = [r for r in rooms if r.unread_count or r.unread_mentions]
        return {"rooms": [room_json(r) for r in rooms]}

    async def list_agents(self) -> JSON:
        agents = await self.hub.list_agents()
        out = []
        for a in agents:
            item: JSON = {"name": a.name, "displayName": a.display_name}
            if a.role != "agent":
                item["role"] = a.role
            if a.disabled:
                item["disabled"] = True
            out.append(item)
        return {"agents": out}

    async def create_room(
        self, room: str, name: str | None, topic: str | None, private: bool
    ) -> JSON:
        created = await self.hub.create_room(
            room, name=name, topic=topic, visibility="private" if private else "public"
        )
        return room_json(created)

    async def join_room(self, room: str) -> JSON:
        await self.hub.join(room)
        return room_json(await self.hub.get_room(room))

    async def leave_room(self, room: str) -> JSON:
        await self.hub.leave(room)
        return {"left": room}

    async def send_message(
        self,
        room: str,
        body: str,
        reply_to: int | None,
        kind: str | None,
        data: Mapping[str, Any] | str | None,
    ) -> JSON:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise ValidationFailed(
                    None, "data is not JSON", 400, {"data": ["a JSON object"]}
                ) from None
            if not isinstance(data, dict):
                raise ValidationFailed(
                    None, "data is not an object", 400, {"data": ["a JSON object"]}
                )
        sent = await self.hub.send(room, body, reply_to=reply_to, kind=kind, data=data)
        out: JSON = {"room": room, "seq": sent.seq}
        if sent.thread_root is not None:
            out["threadRoot"] = sent.thread_root
        if sent.mentions:
            await self.names.load(sent.mentions)
            out["mentions"] = [self.names.name(i) for i in sent.mentions]
        return out

    async def send_dm(self, agent: str, body: str) -> JSON:
        dm = await self.hub.open_dm(agent)
        sent = await self.hub.send(dm.id, body)
        return {"room": dm.slug, "to": agent, "seq": sent.seq}

    async def read_messages(
        self,
        room: str,
        after_seq: int | None,
        unread_only: bool,
        thread: int | None,
        limit: int | None,
        max_chars: int | None,
    ) -> JSON:
        if after_seq is not None and unread_only:
            raise ValidationFailed(
                None,
                "give after_seq or unread_only, not both",
                400,
                {"after_seq": ["not with unread_only"]},
            )
        extra: JSON = {}
        after = after_seq
        if unread_only:
            info, after = await self.read_marker(room)
            extra = {"lastReadSeq": after, "lastSeq": info.last_seq}
        page = await self.hub.list_messages(
            room, after=after, thread=thread, limit=limit or DEFAULT_LIMIT
        )
        messages = page.messages
        if after is None and thread is None:
            # The newest page comes newest first; a model reads a conversation oldest first.
            messages = list(reversed(messages))
            page = MessagePage(messages, None, False)
            if messages and messages[0].seq > 1:
                extra["olderBeforeSeq"] = messages[0].seq
        return await self.page_json(room, page, max_chars, extra)

    async def get_thread(
        self, room: str, seq: int, limit: int | None, max_chars: int | None
    ) -> JSON:
        message = await self.hub.get_message(room, seq)
        root = message.thread_root if message.thread_root is not None else seq
        page = await self.hub.list_messages(room, thread=root, limit=limit or DEFAULT_LIMIT)
        return await self.page_json(room, page, max_chars, {"thread": root})

    async def wait_for_messages(
        self,
        room: str | None,
        timeout_seconds: float,
        max_chars: int | None,
        progress: Callable[[float, float], Awaitable[None]] | None = None,
    ) -> JSON:
        timeout = min(max(timeout_seconds, 0.0), MAX_TIMEOUT_SECONDS)
        deadline = time.monotonic() + timeout
        if room is None:
            return await self._wait_inbox(deadline, timeout, progress)
        return await self._wait_room(room, deadline, timeout, max_chars, progress)

    async def _poll(self, call: Callable[[float], Awaitable[Any]], remaining: float) -> Any:
        """One long poll of at most the server's longest wait (learnt from its 400 when it is
        configured below 60 s)."""
        while True:
            chunk = min(remaining, self.max_wait)
            try:
                return await call(round(chunk, 3))
            except ValidationFailed as exc:
                if "wait" not in exc.details or self.max_wait <= 1:
                    raise
                self.max_wait = max(1.0, self.max_wait / 2)

    async def _wait_after(self, room: str, after: int, wait: float) -> MessagePage:
        return await self.hub.list_messages(
            room, after=after, wait=wait or None, limit=DEFAULT_LIMIT
        )

    async def _wait_room(
        self,
        room: str,
        deadline: float,
        total: float,
        max_chars: int | None,
        progress: Callable[[float, float], Awaitable[None]] | None,
    ) -> JSON:
        info, marker = await self.read_marker(room)
        me = await self.my_id()
        after = marker
        while True:
            remaining = deadline - time.monotonic()
            page: MessagePage = await self._poll(
                functools.partial(self._wait_after, room, after),
                max(remaining, 0.0),
            )
            if any(m.sender_id != me for m in page.messages):
                # What is new for the caller: every message past its read marker (its own
                # included, for the context), fetched again from the marker when its own
                # posts moved ``after`` on.
                if after != marker:
                    page = await self.hub.list_messages(room, after=marker, limit=DEFAULT_LIMIT)
                return await self.page_json(info.slug, page, max_chars, {"lastReadSeq": marker})
            if page.messages:
                after = page.messages[-1].seq  # only the caller's own posts: wait past them
            if time.monotonic() >= deadline:
                return {"room": info.slug, "timedOut": True}
            if progress is not None:
                await progress(total - (deadline - time.monotonic()), total)

    async def _wait_inbox(
        self,
        deadline: float,
        total: float,
        progress: Callable[[float, float], Awaitable[None]] | None,
    ) -> JSON:
        while True:
            remaining = deadline - time.monotonic()
            inbox = await self._poll(
                lambda wait: self.hub.inbox(wait=wait or None), max(remaining, 0.0)
            )
            if inbox.rooms:
                return {
                    "rooms": [await self.entry_json(e) for e in inbox.rooms],
                    "totalUnread": inbox.total_unread,
                }
            if time.monotonic() >= deadline:
                return {"timedOut": True}
            if progress is not None:
                await progress(total - (deadline - time.monotonic()), total)

    async def mark_read(self, room: str, seq: int | None) -> JSON:
        if seq is None:
            seq = (await self.hub.get_room(room)).last_seq
        mark = await self.hub.mark_read(room, seq)
        return {"room": room, "lastReadSeq": mark.last_read_seq}

    async def inbox(self) -> JSON:
        inbox = await self.hub.inbox()
        return {
            "rooms": [await self.entry_json(e) for e in inbox.rooms],
            "totalUnread": inbox.total_unread,
        }

    async def mentions(self, unread_only: bool, limit: int | None) -> JSON:
        page = await self.hub.mentions(limit=limit or 20, unread=unread_only or None)
        await self.names.load(_ids_in(m.message for m in page.mentions))
        return {
            "mentions": [
                {"room": m.room.slug, **self.message_json(m.message)} for m in page.mentions
            ]
        }

    async def search_messages(self, query: str, room: str | None, limit: int | None) -> JSON:
        page = await self.hub.search(query, room=room, limit=limit or 20)
        await self.names.load(_ids_in(r.message for r in page.results))
        results = []
        for r in page.results:
            item: JSON = {"room": r.room.slug, **self.message_json(r.message)}
            body = item.pop("body", None)
            if r.highlight:
                item["highlight"] = _clip(r.highlight, SEARCH_BODY_CHARS)
            elif body is not None:
                item["body"] = _clip(body, SEARCH_BODY_CHARS)
            results.append(item)
        return {"results": results}

    async def recent(self, room: str, limit: int = 20) -> JSON:
        return await self.read_messages(room, None, False, None, limit, DEFAULT_MAX_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
