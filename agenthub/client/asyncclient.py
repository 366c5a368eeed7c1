"""``AsyncAgentHub``: one method per REST operation of AgentHub, for asyncio programs.

Room and agent arguments take what the server takes: an id, a room's slug, an agent's name,
or ``"me"`` (docs/API.md, "Naming rooms and agents").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agenthub.client.errors import AgentHubError, Unauthorized
from agenthub.client.http import NO_RETRY, HttpTransport, RetryPolicy, segment
from agenthub.client.models import (
    Agent,
    AuditPage,
    Inbox,
    IssuedToken,
    Member,
    MentionPage,
    Message,
    MessagePage,
    ReadMark,
    Room,
    SearchPage,
    Session,
    TokenInfo,
)
from agenthub.client.session import SessionManager, session_problem

if TYPE_CHECKING:
    from agenthub.client.subscribe import Subscription

log = logging.getLogger("agenthub.client")

API = "/api/v1"
# Extra seconds an HTTP call with ``wait`` may take beyond the wait itself.
WAIT_MARGIN = 30.0


class AsyncAgentHub:
    """An agent's connection to AgentHub (asyncio).

    ``url`` is the server (``http://hub:3000``), ``api_token`` the agent's API token
    (``agt_…``): it is exchanged for a session JWT on first use, and the JWT is renewed before
    it expires. ``retry`` is how ``send`` and the idempotent calls (reads, PUT, DELETE, joins,
    DMs, archiving) retry a request that got no answer, a 5xx, or a 429/503 with
    ``Retry-After``; other writes are tried once. ``timeout`` bounds one HTTP request (a long
    poll gets its ``wait`` on top).

    Use it as an async context manager, or call ``aclose()`` when done::

        async with AsyncAgentHub("http://hub:3000", token) as hub:
            msg = await hub.send("general", "hello")
    """

    def __init__(
        self,
        url: str,
        api_token: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        refresh_fraction: float = 0.8,
        ca_file: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        # ca_file: PEM CA certificates to trust besides the system's (default: $AGENTHUB_CA_FILE).
        self.http = HttpTransport(self.url, timeout=timeout, ca_file=ca_file)
        self.session = SessionManager(self.http, api_token, refresh_fraction=refresh_fraction)
        self._subscriptions: set[Subscription] = set()

    def __repr__(self) -> str:
        agent = self.session.current.agent.name if self.session.current else None
        return f"AsyncAgentHub(url={self.url!r}, agent={agent!r})"

    async def __aenter__(self) -> AsyncAgentHub:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the subscriptions still open, then the HTTP session."""
        for sub in list(self._subscriptions):
            await sub.aclose()
        await self.http.close()

    # --- plumbing ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (aiohttp's, per request)
        retry: RetryPolicy | None = None,
    ) -> Any:
        """One authenticated call: the decoded JSON answer. A 401 about the session gets one
        new login and one more try; failures ``retry`` allows are retried with backoff."""
        policy = retry or NO_RETRY
        tries = 0
        relogged = False
        while True:
            tries += 1
            token: str | None = None
            try:
                token = await self.session.token()
                return await self.http.request(
                    method, path, token=token, body=body, params=params, timeout=timeout
                )
            except Unauthorized as exc:
                if relogged or token is None or not session_problem(exc):
                    raise
                relogged = True
                tries -= 1
                log.info("session refused (%s): logging in again", exc.message)
                self.session.invalidate(token)
            except AgentHubError as exc:
                delay = policy.delay(tries, exc)
                if delay is None:
                    raise
                log.info("%s %s: %s; retry %d in %.2f s", method, path, exc, tries, delay)
                await asyncio.sleep(delay)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request("GET", path, params=params, retry=self.retry, **kw)

    # --- sessions and agents ----------------------------------------------------------------

    async def login(self) -> Session:
        """Exchange the API token for a new session JWT now (calls do it when needed)."""
        return await self.session.login()

    async def me(self) -> Agent:
        """The agent this client acts as."""
        return Agent.from_json(await self._get(f"{API}/agents/me"))

    async def list_agents(self) -> list[Agent]:
        return [Agent.from_json(a) for a in (await self._get(f"{API}/agents"))["agents"]]

    async def get_agent(self, agent: str) -> Agent:
        return Agent.from_json(await self._get(f"{API}/agents/{segment(agent)}"))

    async def create_agent(
        self, name: str, *, display_name: str | None = None, role: str = "agent"
    ) -> Agent:
        """(admin) A new agent."""
        body: dict[str, Any] = {"name": name, "role": role}
        if display_name is not None:
            body["displayName"] = display_name
        return Agent.from_json(await self.request("POST", f"{API}/agents", body=body))

    async def set_agent_disabled(self, agent: str, disabled: bool) -> Agent:
        """(admin) Disable an agent (its sessions end at once) or enable it again."""
        answer = await self.request(
            "PATCH", f"{API}/agents/{segment(agent)}", body={"disabled": disabled}, retry=self.retry
        )
        return Agent.from_json(answer)

    # --- API tokens -------------------------------------------------------------------------

    async def issue_token(self, agent: str, *, expires_at: datetime | None = None) -> IssuedToken:
        """(admin) A new API token for ``agent``; its secret is only in this answer."""
        body = {"expiresAt": expires_at.isoformat()} if expires_at is not None else {}
        answer = await self.request("POST", f"{API}/agents/{segment(agent)}/tokens", body=body)
        return IssuedToken.from_json(answer)

    async def list_tokens(self, agent: str = "me") -> list[TokenInfo]:
        answer = await self._get(f"{API}/agents/{segment(agent)}/tokens")
        return [TokenInfo.from_json(t) for t in answer["tokens"]]

    async def revoke_token(self, prefix: str) -> None:
        """Revoke an API token (idempotent); its sessions end at once."""
        await self.request("DELETE", f"{API}/tokens/{segment(prefix)}", retry=self.retry)

    # --- rooms ------------------------------------------------------------------------------

    async def list_rooms(self, *, kind: str | None = None) -> list[Room]:
        """Public rooms and the private rooms the agent is in; ``kind``: ``"room"`` or ``"dm"``."""
        answer = await self._get(f"{API}/rooms", {"kind": kind})
        return [Room.from_json(r) for r in answer["rooms"]]

    async def get_room(self, room: str) -> Room:
        return Room.from_json(await self._get(f"{API}/rooms/{segment(room)}"))

    async def create_room(
        self,
        slug: str,
        *,
        name: str | None = None,
        visibility: str = "public",
        topic: str | None = None,
    ) -> Room:
        body: dict[str, Any] = {"slug": slug, "visibility": visibility}
        if name is not None:
            body["name"] = name
        if topic is not None:
            body["topic"] = topic
        return Room.from_json(await self.request("POST", f"{API}/rooms", body=body))

    async def update_room(
        self, room: str, *, name: str | None = None, topic: str | None = None
    ) -> Room:
        """(creator or admin) Change the name and/or topic."""
        body = {k: v for k, v in (("name", name), ("topic", topic)) if v is not None}
        answer = await self.request(
            "PATCH", f"{API}/rooms/{segment(room)}", body=body, retry=self.retry
        )
        return Room.from_json(answer)

    async def archive_room(self, room: str) -> Room:
        answer = await self.request(
            "POST", f"{API}/rooms/{segment(room)}/archive", retry=self.retry
        )
        return Room.from_json(answer)

    async def unarchive_room(self, room: str) -> Room:
        answer = await self.request(
            "POST", f"{API}/rooms/{segment(room)}/unarchive", retry=self.retry
        )
        return Room.from_json(answer)

    # --- members ----------------------------------------------------------------------------

    async def list_members(self, room: str) -> list[Member]:
        answer = await self._get(f"{API}/rooms/{segment(room)}/members")
        return [Member.from_json(m) for m in answer["members"]]

    async def join(self, room: str) -> Member:
        """Join a room (idempotent: joining again answers the same membership)."""
        answer = await self.request(
            "POST", f"{API}/rooms/{segment(room)}/members", body={}, retry=self.retry
        )
        return Member.from_json(answer)

    async def add_member(self, room: str, agent: str) -> Member:
        answer = await self.request(
            "POST",
            f"{API}/rooms/{segment(room)}/members",
            body={"agentId": agent},
            retry=self.retry,
        )
        return Member.from_json(answer)

    async def remove_member(self, room: str, agent: str) -> None:
        await self.request("DELETE", f"{API}/rooms/{segment(room)}/members/{segment(agent)}")

    async def leave(self, room: str) -> None:
        """Leave a room (``remove_member(room, "me")``)."""
        await self.remove_member(room, "me")

    # --- messages ---------------------------------------------------------------------------

    async def send(
        self,
        room: str,
        body: str = "",
        *,
        client_msg_id: str | None = None,
        reply_to: int | None = None,
        kind: str | None = None,
        data: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Message:
        """Post a message; the stored Message (with its ``seq``).

        Safe to retry: a ``client_msg_id`` (a UUID when not given) goes with every try, so a
        try whose answer was lost after the server committed is answered with the stored
        message, never stored twice. Network errors, 5xx and 429/503 are retried by ``retry``
        (the client's policy by default)."""
        payload: dict[str, Any] = {
            "body": body,
            "clientMsgId": client_msg_id or str(uuid.uuid4()),
        }
        if reply_to is not None:
            payload["replyTo"] = reply_to
        if kind is not None:
            payload["kind"] = kind
        if data is not None:
            payload["data"] = dict(data)
        answer = await self.request(
            "POST",
            f"{API}/rooms/{segment(room)}/messages",
            body=payload,
            retry=retry or self.retry,
        )
        return Message.from_json(answer)

    async def send_dm(self, agent: str, body: str = "", **kw: Any) -> Message:
        """Post into the direct-message room with ``agent`` (opened when needed)."""
        room = await self.open_dm(agent)
        return await self.send(room.id, body, **kw)

    async def list_messages(
        self,
        room: str,
        *,
        after: int | None = None,
        cursor: str | None = None,
        thread: int | None = None,
        kind: str | None = None,
        wait: float | None = None,
        limit: int | None = None,
    ) -> MessagePage:
        """A page of messages: newest first (``cursor`` for older pages), or oldest first
        after seq ``after``. ``thread`` reads one thread, ``kind`` filters. ``wait`` (seconds,
        with ``after``) blocks until something arrives or ``wait`` passes (an empty page)."""
        params = {
            "after": after,
            "cursor": cursor,
            "thread": thread,
            "kind": kind,
            "wait": wait,
            "limit": limit,
        }
        timeout = self.http.timeout + wait if wait else None
        answer = await self._get(f"{API}/rooms/{segment(room)}/messages", params, timeout=timeout)
        return MessagePage.from_json(answer)

    async def get_message(self, room: str, seq: int) -> Message:
        answer = await self._get(f"{API}/rooms/{segment(room)}/messages/{segment(seq)}")
        return Message.from_json(answer)

    async def redact(self, room: str, seq: int) -> None:
        """(sender or admin) Make a message a tombstone (idempotent)."""
        await self.request(
            "DELETE", f"{API}/rooms/{segment(room)}/messages/{segment(seq)}", retry=self.retry
        )

    # --- read state -------------------------------------------------------------------------

    async def mark_read(self, room: str, seq: int) -> ReadMark:
        """Move the read marker to ``seq`` (only forward: a lower seq answers the stored one)."""
        answer = await self.request(
            "PUT", f"{API}/rooms/{segment(room)}/read", body={"seq": seq}, retry=self.retry
        )
        return ReadMark.from_json(answer)

    async def inbox(self, *, wait: float | None = None) -> Inbox:
        """The rooms with something unread. ``wait``: if nothing is unread, block until a new
        message or mention for the agent arrives, or ``wait`` seconds pass."""
        timeout = self.http.timeout + wait if wait else None
        answer = await self._get(f"{API}/inbox", {"wait": wait}, timeout=timeout)
        return Inbox.from_json(answer)

    # --- mentions, DMs, search, audit -------------------------------------------------------

    async def mentions(
        self,
        *,
        after: str | int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        unread: bool | None = None,
    ) -> MentionPage:
        """Messages that mention the agent: newest first (``cursor``), or oldest first with
        ``after`` (``0``, then each page's ``next_cursor``)."""
        params = {"after": after, "cursor": cursor, "limit": limit, "unread": unread}
        return MentionPage.from_json(await self._get(f"{API}/mentions", params))

    async def open_dm(self, agent: str) -> Room:
        """The direct-message room with ``agent``, created on first use (either side)."""
        answer = await self.request("POST", f"{API}/dms", body={"agentId": agent}, retry=self.retry)
        return Room.from_json(answer)

    async def search(
        self,
        q: str,
        *,
        room: str | None = None,
        sender: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        """Full-text search (PostgreSQL websearch syntax) over the agent's rooms."""
        params = {
            "q": q,
            "room": room,
            "sender": sender,
            "kind": kind,
            "limit": limit,
            "cursor": cursor,
        }
        return SearchPage.from_json(await self._get(f"{API}/search", params))

    async def audit(
        self, *, type: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> AuditPage:
        """(admin) The audit trail, newest first."""
        params = {"type": type, "limit": limit, "cursor": cursor}
        return AuditPage.from_json(await self._get(f"{API}/audit", params))

    # --- real time --------------------------------------------------------------------------

    def subscribe(
        self,
        rooms: Iterable[str] | None = None,
        *,
        after: Mapping[str, int] | None = None,
        reconnect: RetryPolicy | None = None,
        max_reconnects: int | None = None,
    ) -> Subscription:
        """Events over socket.io (``async for event in hub.subscribe(): …``).

        ``rooms``: only these (ids or slugs; the agent must be a member); ``None``: all the
        agent's rooms, and rooms it joins or is added to later (those from their first
        message). Each room starts after its newest message at the first connection (only new
        messages), or after the seq given for it in ``after``. Every ``message:new`` is
        yielded exactly once per room and seq, in seq order, across disconnects, server
        restarts and session expiry. See ``Subscription``."""
        from agenthub.client.subscribe import Subscription

        return Subscription(
            self, rooms, after=after, reconnect=reconnect, max_reconnects=max_reconnects
        )
