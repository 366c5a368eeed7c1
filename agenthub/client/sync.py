"""``AgentHub``: the blocking facade of ``AsyncAgentHub``, for scripts and shell tools.

One event loop runs in a background thread for the client's life; every method hands its
coroutine to that loop and waits for the result. So the HTTP session (its kept-alive
connections) and the JWT persist across calls, and calls from several threads are safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from agenthub.client.asyncclient import AsyncAgentHub
from agenthub.client.http import RetryPolicy
from agenthub.client.models import (
    Agent,
    AuditPage,
    Event,
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
from agenthub.client.subscribe import Subscription

T = TypeVar("T")


class AgentHub:
    """Blocking AgentHub client: the same methods as ``AsyncAgentHub``, without ``await``.

    ::

        with AgentHub("http://hub:3000", token) as hub:
            hub.send("general", "hello")
            for event in hub.subscribe(["general"]):
                print(event.message.body if event.message else event.name)
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="agenthub-client", daemon=True
        )
        self._thread.start()
        self.aio = AsyncAgentHub(
            url,
            api_token,
            retry=retry,
            timeout=timeout,
            refresh_fraction=refresh_fraction,
            ca_file=ca_file,
        )
        self._closed = False

    def __repr__(self) -> str:
        agent = self.aio.session.current.agent.name if self.aio.session.current else None
        return f"AgentHub(url={self.aio.url!r}, agent={agent!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this AgentHub client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close the HTTP session and stop the background loop."""
        if self._closed:
            return
        self._run(self.aio.aclose())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> AgentHub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.aio.url

    # Each method below is AsyncAgentHub's of the same name; see there.

    def login(self) -> Session:
        return self._run(self.aio.login())

    def me(self) -> Agent:
        return self._run(self.aio.me())

    def list_agents(self) -> list[Agent]:
        return self._run(self.aio.list_agents())

    def get_agent(self, agent: str) -> Agent:
        return self._run(self.aio.get_agent(agent))

    def create_agent(
        self, name: str, *, display_name: str | None = None, role: str = "agent"
    ) -> Agent:
        return self._run(self.aio.create_agent(name, display_name=display_name, role=role))

    def set_agent_disabled(self, agent: str, disabled: bool) -> Agent:
        return self._run(self.aio.set_agent_disabled(agent, disabled))

    def issue_token(self, agent: str, *, expires_at: datetime | None = None) -> IssuedToken:
        return self._run(self.aio.issue_token(agent, expires_at=expires_at))

    def list_tokens(self, agent: str = "me") -> list[TokenInfo]:
        return self._run(self.aio.list_tokens(agent))

    def revoke_token(self, prefix: str) -> None:
        self._run(self.aio.revoke_token(prefix))

    def list_rooms(self, *, kind: str | None = None) -> list[Room]:
        return self._run(self.aio.list_rooms(kind=kind))

    def get_room(self, room: str) -> Room:
        return self._run(self.aio.get_room(room))

    def create_room(
        self,
        slug: str,
        *,
        name: str | None = None,
        visibility: str = "public",
        topic: str | None = None,
    ) -> Room:
        return self._run(self.aio.create_room(slug, name=name, visibility=visibility, topic=topic))

    def update_room(self, room: str, *, name: str | None = None, topic: str | None = None) -> Room:
        return self._run(self.aio.update_room(room, name=name, topic=topic))

    def archive_room(self, room: str) -> Room:
        return self._run(self.aio.archive_room(room))

    def unarchive_room(self, room: str) -> Room:
        return self._run(self.aio.unarchive_room(room))

    def list_members(self, room: str) -> list[Member]:
        return self._run(self.aio.list_members(room))

    def join(self, room: str) -> Member:
        return self._run(self.aio.join(room))

    def add_member(self, room: str, agent: str) -> Member:
        return self._run(self.aio.add_member(room, agent))

    def remove_member(self, room: str, agent: str) -> None:
        self._run(self.aio.remove_member(room, agent))

    def leave(self, room: str) -> None:
        self._run(self.aio.leave(room))

    def send(
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
        return self._run(
            self.aio.send(
                room,
                body,
                client_msg_id=client_msg_id,
                reply_to=reply_to,
                kind=kind,
                data=data,
                retry=retry,
            )
        )

    def send_dm(self, agent: str, body: str = "", **kw: Any) -> Message:
        return self._run(self.aio.send_dm(agent, body, **kw))

    def list_messages(
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
        return self._run(
            self.aio.list_messages(
                room, after=after, cursor=cursor, thread=thread, kind=kind, wait=wait, limit=limit
            )
        )

    def get_message(self, room: str, seq: int) -> Message:
        return self._run(self.aio.get_message(room, seq))

    def redact(self, room: str, seq: int) -> None:
        self._run(self.aio.redact(room, seq))

    def mark_read(self, room: str, seq: int) -> ReadMark:
        return self._run(self.aio.mark_read(room, seq))

    def inbox(self, *, wait: float | None = None) -> Inbox:
        return self._run(self.aio.inbox(wait=wait))

    def mentions(
        self,
        *,
        after: str | int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        unread: bool | None = None,
    ) -> MentionPage:
        return self._run(self.aio.mentions(after=after, cursor=cursor, limit=limit, unread=unread))

    def open_dm(self, agent: str) -> Room:
        return self._run(self.aio.open_dm(agent))

    def search(
        self,
        q: str,
        *,
        room: str | None = None,
        sender: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        return self._run(
            self.aio.search(q, room=room, sender=sender, kind=kind, limit=limit, cursor=cursor)
        )

    def audit(
        self, *, type: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> AuditPage:
        return self._run(self.aio.audit(type=type, limit=limit, cursor=cursor))

    def subscribe(
        self,
        rooms: Iterable[str] | None = None,
        *,
        after: Mapping[str, int] | None = None,
        reconnect: RetryPolicy | None = None,
        max_reconnects: int | None = None,
    ) -> SyncSubscription:
        """A blocking iterator of ``Event``; see ``AsyncAgentHub.subscribe``."""
        sub = self.aio.subscribe(
            rooms, after=after, reconnect=reconnect, max_reconnects=max_reconnects
        )
        return SyncSubscription(self, sub)


class SyncSubscription:
    """``Subscription`` for threads: iterate it, ``next(sub, timeout)`` … ``close()`` it."""

    def __init__(self, hub: AgentHub, sub: Subscription) -> None:
        self._hub = hub
        self.aio = sub

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self._hub._run(self.aio.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def next(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` when none comes within ``timeout`` seconds."""
        return self._hub._run(asyncio.wait_for(self.aio.__anext__(), timeout))

    def wait_connected(self, timeout: float | None = None) -> None:
        self._hub._run(self.aio.wait_connected(timeout))

    @property
    def positions(self) -> dict[str, int]:
        return self.aio.positions

    def close(self) -> None:
        self._hub._run(self.aio.aclose())

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
