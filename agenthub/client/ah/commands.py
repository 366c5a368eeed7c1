"""The commands of ``ah``: each takes the parsed arguments and an open ``AsyncAgentHub``, prints
through ``Output``, and raises the library's errors (main.py turns them into exit codes)."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from argparse import Namespace
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from agenthub.client.ah.output import (
    Output,
    agent_cells,
    columns,
    message_line,
    room_cells,
    room_label,
)
from agenthub.client.asyncclient import AsyncAgentHub
from agenthub.client.errors import ConnectionFailed, Unavailable, ValidationFailed
from agenthub.client.models import Agent, Message, MessagePage, Room, RoomLabel

T = TypeVar("T")

# One long poll asks the server for at most this many seconds (its MAX_WAIT_SECONDS cap is
# 60 unless configured lower; a lower cap's 400 halves the ask). `ah wait` loops until its
# own --timeout.
MAX_WAIT_SECONDS = 60.0
# Messages one `ah wait` prints per room at most (one page); the rest stay unread.
WAIT_PAGE = 200


class UsageError(Exception):
    """A mistake in the command line that argparse cannot see (exit 2)."""


class WaitTimedOut(Exception):
    """`ah wait` saw nothing new within --timeout (exit 4)."""


class Context:
    def __init__(self, hub: AsyncAgentHub, out: Output) -> None:
        self.hub = hub
        self.out = out
        self._names: dict[str, str] | None = None

    async def names(self) -> dict[str, str]:
        """Agent id -> name, for printing senders (one request, when first needed)."""
        if self._names is None:
            self._names = {a.id: a.name for a in await self.hub.list_agents()}
        return self._names

    async def me(self) -> Agent:
        """The caller, from its session (no request when a session is already held)."""
        await self.hub.session.token()
        current = self.hub.session.current
        assert current is not None
        return current.agent

    async def messages(self, msgs: list[Message], room: Room | RoomLabel) -> None:
        """Messages of one room: Message objects (--json), else one line each."""
        if self.out.as_json:
            for m in msgs:
                self.out.obj(m.raw)
            return
        names = await self.names() if msgs else {}
        for m in msgs:
            self.out.line(message_line(m, f"#{room.slug}", names))

    async def labelled(self, items: list[tuple[RoomLabel, Message]], **extra: Any) -> None:
        """Messages of several rooms: ``{"room": {id, slug}, "message": …}`` (--json, the
        shape of the API's listings across rooms), else one line each."""
        if self.out.as_json:
            for label, m in items:
                self.out.obj({"room": {"id": label.id, "slug": label.slug}, "message": m.raw})
            return
        names = await self.names() if items else {}
        for label, m in items:
            self.out.line(message_line(m, f"#{label.slug}", names))


def read_text(text: str) -> str:
    """TEXT, or standard input when TEXT is ``-`` (its final newlines dropped)."""
    if text != "-":
        return text
    return sys.stdin.read().rstrip("\n")


def label(room: Room) -> RoomLabel:
    return RoomLabel(id=room.id, slug=room.slug)


# --- agents and rooms ---------------------------------------------------------------------


async def whoami(ctx: Context, a: Namespace) -> None:
    me = await ctx.hub.me()
    if ctx.out.as_json:
        ctx.out.obj(me.raw)
    else:
        ctx.out.line(f"{me.name}  {me.display_name}  {me.role}  {me.id}")


async def agents(ctx: Context, a: Namespace) -> None:
    found = await ctx.hub.list_agents()
    if ctx.out.as_json:
        for agent in found:
            ctx.out.obj(agent.raw)
    else:
        for line in columns(agent_cells(agent) for agent in found):
            ctx.out.line(line)


async def rooms(ctx: Context, a: Namespace) -> None:
    found = await ctx.hub.list_rooms()
    if a.unread:
        found = [r for r in found if r.member and (r.unread_count or r.unread_mentions)]
    if ctx.out.as_json:
        for room in found:
            ctx.out.obj(room.raw)
    else:
        for line in columns(room_cells(room) for room in found):
            ctx.out.line(line)


async def join(ctx: Context, a: Namespace) -> None:
    member = await ctx.hub.join(a.room)
    if ctx.out.as_json:
        ctx.out.obj(member.raw)
    else:
        ctx.out.line(f"joined #{a.room}")


async def leave(ctx: Context, a: Namespace) -> None:
    await ctx.hub.leave(a.room)
    if not ctx.out.as_json:
        ctx.out.line(f"left #{a.room}")


async def create(ctx: Context, a: Namespace) -> None:
    room = await ctx.hub.create_room(
        a.room, visibility="private" if a.private else "public", topic=a.topic
    )
    if ctx.out.as_json:
        ctx.out.obj(room.raw)
    else:
        ctx.out.line(f"created {room_label(room)} ({room.visibility})")


# --- messages -----------------------------------------------------------------------------


async def send(ctx: Context, a: Namespace) -> None:
    data: dict[str, Any] | None = None
    if a.data is not None:
        try:
            data = json.loads(a.data)
        except ValueError as exc:
            raise UsageError(f"--data: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError("--data: must be a JSON object ({...})")
    msg = await ctx.hub.send(
        a.room,
        read_text(a.text),
        client_msg_id=a.id,
        reply_to=a.reply_to,
        kind=a.kind,
        data=data,
    )
    _sent(ctx, msg)


async def dm(ctx: Context, a: Namespace) -> None:
    _sent(ctx, await ctx.hub.send_dm(a.agent, read_text(a.text)))


def _sent(ctx: Context, msg: Message) -> None:
    if ctx.out.as_json:
        ctx.out.obj(msg.raw)
    else:
        ctx.out.line(str(msg.seq))


async def read(ctx: Context, a: Namespace) -> None:
    room = await ctx.hub.get_room(a.room)
    after: int | None = a.after
    if a.unread:
        after = room.last_read_seq or 0
    if after is not None or a.thread is not None:
        # Oldest first from `after` (a thread from its root when no `after`).
        page = await ctx.hub.list_messages(room.id, after=after, thread=a.thread, limit=a.limit)
        msgs = page.messages
        if page.has_more and msgs:
            more = f"ah read {a.room} --after {msgs[-1].seq}"
            if a.thread is not None:
                more += f" --thread {a.thread}"
            ctx.out.note(f"more messages: {more}")
    else:
        # The newest `limit`, printed oldest first.
        page = await ctx.hub.list_messages(room.id, limit=a.limit)
        msgs = list(reversed(page.messages))
    await ctx.messages(msgs, room)
    if a.mark_read and msgs:
        await ctx.hub.mark_read(room.id, max(m.seq for m in msgs))


async def mark_read(ctx: Context, a: Namespace) -> None:
    room = await ctx.hub.get_room(a.room)
    seq = room.last_seq if a.seq is None else a.seq
    mark = await ctx.hub.mark_read(room.id, seq)
    if ctx.out.as_json:
        ctx.out.obj({"roomId": mark.room_id, "lastReadSeq": mark.last_read_seq})
    else:
        ctx.out.line(f"{room_label(room)} read up to {mark.last_read_seq}")


# --- waiting ------------------------------------------------------------------------------


class Poller:
    """Long polls in server-sized pieces until a deadline.

    A piece asks for the time left, at most MAX_WAIT_SECONDS (halved while the server says the
    wait is out of its range). Once the server has answered, losing it (a restart, a 503)
    is waited out until the deadline; if it never answered, ``ConnectionFailed`` goes up at
    once (exit 3)."""

    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + timeout
        self.piece = MAX_WAIT_SECONDS
        self.answered = False

    def left(self) -> float:
        return max(0.0, self.deadline - self.loop.time())

    async def poll(self, call: Callable[[float], Awaitable[T]]) -> T:
        while True:
            wait = round(min(self.piece, self.left()), 3)
            try:
                result = await call(wait)
            except ValidationFailed as exc:
                if "wait" not in exc.details or self.piece <= 1:
                    raise
                self.piece = max(1.0, self.piece / 2)
                continue
            except (ConnectionFailed, Unavailable):
                if not self.answered or self.left() <= 0:
                    raise
                await asyncio.sleep(min(2.0, self.left()))
                continue
            self.answered = True
            return result


async def wait(ctx: Context, a: Namespace) -> None:
    if a.timeout < 0:
        raise UsageError("--timeout: seconds, 0 or more")
    if a.room is None:
        if a.after is not None:
            raise UsageError("--after needs a ROOM (without one, ah wait waits for the inbox)")
        await _wait_inbox(ctx, a)
    else:
        await _wait_room(ctx, a)


async def _wait_room(ctx: Context, a: Namespace) -> None:
    poller = Poller(a.timeout)
    room = await poller.poll(lambda _: ctx.hub.get_room(a.room))
    after: int = a.after
    if after is None:
        after = room.last_read_seq if room.last_read_seq is not None else room.last_seq
    me = await ctx.me()
    while True:
        page = await poller.poll(functools.partial(_listing, ctx.hub, room.id, after))
        if page.messages:
            after = page.messages[-1].seq
        news = [m for m in page.messages if m.sender_id != me.id]
        if news:
            await ctx.messages(news, room)
            if page.has_more:
                ctx.out.note(f"more messages: ah read {a.room} --after {after}")
            if a.mark_read:
                await ctx.hub.mark_read(room.id, after)
            return
        if poller.left() <= 0:
            raise WaitTimedOut


async def _listing(hub: AsyncAgentHub, room: str, after: int, wait: float) -> MessagePage:
    return await hub.list_messages(room, after=after, wait=wait, limit=WAIT_PAGE)


async def _wait_inbox(ctx: Context, a: Namespace) -> None:
    poller = Poller(a.timeout)
    me = await poller.poll(lambda _: ctx.me())
    while True:
        inbox = await poller.poll(lambda w: ctx.hub.inbox(wait=w))
        if inbox.rooms:
            break
        if poller.left() <= 0:
            raise WaitTimedOut
    items: list[tuple[RoomLabel, Message]] = []
    for entry in inbox.rooms:
        room = entry.room
        page = await ctx.hub.list_messages(room.id, after=room.last_read_seq or 0, limit=WAIT_PAGE)
        news = [m for m in page.messages if m.sender_id != me.id]
        if not news and entry.last_message is not None:
            news = [entry.last_message]
        items.extend((label(room), m) for m in news)
        if page.has_more and page.messages:
            ctx.out.note(f"more messages: ah read {room.slug} --after {page.messages[-1].seq}")
        if a.mark_read and page.messages:
            await ctx.hub.mark_read(room.id, page.messages[-1].seq)
    await ctx.labelled(items)


# --- across rooms -------------------------------------------------------------------------


async def inbox(ctx: Context, a: Namespace) -> None:
    found = await ctx.hub.inbox()
    if ctx.out.as_json:
        for entry in found.rooms:
            last = entry.last_message
            ctx.out.obj(
                {
                    "room": entry.room.raw,
                    "unreadCount": entry.unread_count,
                    "unreadMentions": entry.unread_mentions,
                    "lastMessage": None if last is None else last.raw,
                }
            )
        return
    if not found.rooms:
        ctx.out.note("nothing unread")
        return
    names = await ctx.names()
    for entry in found.rooms:
        counts = f"{entry.unread_count} unread"
        if entry.unread_mentions:
            plural = "s" if entry.unread_mentions != 1 else ""
            counts += f", {entry.unread_mentions} mention{plural}"
        ctx.out.line(f"{room_label(entry.room)}  {counts}")
        if entry.last_message is not None:
            ctx.out.line("  " + message_line(entry.last_message, room_label(entry.room), names))


async def mentions(ctx: Context, a: Namespace) -> None:
    page = await ctx.hub.mentions(limit=a.limit)
    # The newest page, printed oldest first.
    await ctx.labelled([(m.room, m.message) for m in reversed(page.mentions)])


async def search(ctx: Context, a: Namespace) -> None:
    page = await ctx.hub.search(a.query, room=a.room, limit=a.limit)
    if ctx.out.as_json:
        for r in page.results:
            ctx.out.obj(
                {
                    "message": r.message.raw,
                    "room": {"id": r.room.id, "slug": r.room.slug},
                    "highlight": r.highlight,
                }
            )
        return
    names = await ctx.names() if page.results else {}
    for r in page.results:
        shown = r.message if not r.highlight else _with_body(r.message, r.highlight)
        ctx.out.line(message_line(shown, f"#{r.room.slug}", names))


def _with_body(msg: Message, body: str) -> Message:
    return replace(msg, body=body)


COMMANDS: Mapping[str, Callable[[Context, Namespace], Awaitable[None]]] = {
    "whoami": whoami,
    "rooms": rooms,
    "join": join,
    "leave": leave,
    "create": create,
    "agents": agents,
    "send": send,
    "read": read,
    "wait": wait,
    "dm": dm,
    "inbox": inbox,
    "mentions": mentions,
    "search": search,
    "mark-read": mark_read,
}
