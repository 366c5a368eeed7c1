"""The load a fault scenario runs: REST posters and python-socketio senders that follow the
documented client contract (docs/API.md, "Real time", step 5), and a ``/readyz`` probe.

Every message gets a ``clientMsgId``. A send that is refused (503 / ``unavailable``, 429 /
``rate_limited``) or gets no answer (a reset, a disconnect, a timeout) is sent again with the
same ``clientMsgId`` until it is acknowledged; only then does the sender go on to its next
message. Each attempt's outcome is recorded, so a scenario can tell afterwards which sends the
server committed without the client learning it (the retry came back "already stored").

The socket senders are ``socketio.AsyncClient`` with reconnection on and are connected once: if
one comes back after a fault, it came back by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from tests.faults.world import Agent

NAMESPACE = "/agents"


def now() -> float:
    return time.monotonic()


@dataclass
class Send:
    """One message a sender means to store, the same ``clientMsgId`` across its retries."""

    sender: str
    transport: str
    room_id: str
    key: str  # the clientMsgId
    body: str
    started: float
    attempts: int = 0  # requests/emits actually sent
    no_answer: int = 0  # attempts that ended without an answer: reset, disconnect, timeout
    refused: int = 0  # attempts answered "not stored, retry" (503, unavailable, 429)
    acked_at: float | None = None
    created: bool | None = None  # what the acknowledging answer said
    message_id: str | None = None
    seq: int | None = None
    error: str | None = None  # an answer that is neither an ack nor a refusal

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    @property
    def ack_lost(self) -> bool:
        """The server committed an attempt that got no answer: the retry found it stored."""
        return self.acked and self.created is False and self.no_answer > 0

    @property
    def stored_despite_refusal(self) -> bool:
        """Every earlier attempt was answered "not stored", yet the retry found it stored."""
        return self.acked and self.created is False and self.no_answer == 0


class Outcome(enum.Enum):
    ACKED = "acked"
    REFUSED = "refused"
    NO_ANSWER = "no answer"
    UNREACHABLE = "unreachable"  # nothing went out: the server refused the connection
    NOT_SENT = "not sent"  # nothing went out: a socket sender waiting for its connection
    ERROR = "error"


RETRY_CODES = {"unavailable", "rate_limited"}


class Sender:
    transport = ""

    def __init__(self, agent: Agent, base_url: str, pause: float) -> None:
        self.agent = agent
        self.base_url = base_url
        self.pause = pause
        self.sends: list[Send] = []
        self.failure_reasons: Counter[str] = Counter()
        self.resumes: list[float] = []  # seconds from a first failed attempt to the next ack
        self._failing_since: float | None = None

    @property
    def name(self) -> str:
        return self.agent.name

    async def open(self) -> None:
        """Connect, if the transport needs it."""

    async def close(self) -> None:
        """Release the connection."""

    async def attempt(self, send: Send, load: LoadControl) -> Outcome:
        raise NotImplementedError

    async def run(self, load: LoadControl) -> None:
        """Send message after message until told to stop; the message in hand when the stop
        comes is still delivered (retried until acked or the load's give-up time)."""
        n = 0
        while not load.stopping.is_set():
            send = Send(
                self.name,
                self.transport,
                self.agent.room_id,
                key=f"{self.name}-{n:05d}",
                body=f"{self.name} message {n}",
                started=now(),
            )
            self.sends.append(send)
            n += 1
            await self.deliver(send, load)
            if send.error is not None or not send.acked:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(load.stopping.wait(), self.pause)

    async def deliver(self, send: Send, load: LoadControl) -> None:
        backoff = 0.05
        while True:
            outcome = await self.attempt(send, load)
            if outcome is Outcome.ACKED:
                if self._failing_since is not None:
                    self.resumes.append(now() - self._failing_since)
                    self._failing_since = None
                await load.note()
                return
            if outcome is Outcome.ERROR:
                return
            if self._failing_since is None:
                self._failing_since = now()
            if load.give_up_at is not None and now() > load.give_up_at:
                return
            if outcome is not Outcome.NOT_SENT:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)

    def _acked(self, send: Send, message: dict[str, Any], created: bool) -> Outcome:
        send.acked_at = now()
        send.created = created
        send.message_id = str(message["id"])
        send.seq = int(message["seq"])
        return Outcome.ACKED


class RestPoster(Sender):
    """``POST /api/v1/rooms/{id}/messages`` over one keep-alive connection (aiohttp)."""

    transport = "rest"

    def __init__(self, agent: Agent, base_url: str, pause: float, timeout: float = 10.0) -> None:
        super().__init__(agent, base_url, pause)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),
            headers={"Authorization": f"Bearer {self.agent.jwt}"},
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def attempt(self, send: Send, load: LoadControl) -> Outcome:
        assert self.session is not None
        url = f"{self.base_url}/api/v1/rooms/{send.room_id}/messages"
        await load.note(in_flight=1)
        try:
            async with self.session.post(
                url, json={"body": send.body, "clientMsgId": send.key}, timeout=self.timeout
            ) as resp:
                send.attempts += 1
                status = resp.status
                text = await resp.text()
        except aiohttp.ClientConnectorError:
            self.failure_reasons["connection refused"] += 1
            return Outcome.UNREACHABLE
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            send.attempts += 1
            send.no_answer += 1
            self.failure_reasons[type(exc).__name__] += 1
            return Outcome.NO_ANSWER
        finally:
            await load.note(in_flight=-1)
        if status in (200, 201):
            return self._acked(send, _json(text), created=status == 201)
        if status in (429, 503):
            send.refused += 1
            self.failure_reasons[f"HTTP {status}"] += 1
            return Outcome.REFUSED
        send.error = f"HTTP {status}: {text[:300]}"
        return Outcome.ERROR


class NoAck(Exception):
    """The socket went away before the ack came."""


class SocketSender(Sender):
    """``message:send`` on ``/agents`` through python-socketio's ``AsyncClient``, reconnection
    on (its own backoff, shortened so a test does not wait out the 5 s default maximum)."""

    transport = "socket"

    def __init__(
        self, agent: Agent, base_url: str, pause: float, ack_timeout: float = 10.0
    ) -> None:
        super().__init__(agent, base_url, pause)
        self.ack_timeout = ack_timeout
        self.client = socketio.AsyncClient(
            reconnection=True,
            reconnection_delay=0.5,
            reconnection_delay_max=2.0,
            logger=False,
            engineio_logger=False,
        )
        self.up = asyncio.Event()
        self.connects: list[float] = []
        self.disconnects: list[tuple[float, str]] = []
        self.reconnect_times: list[float] = []  # disconnect → connected again, per episode
        self._waiting: set[asyncio.Future[Any]] = set()
        self.up_at_close = False
        self._closing = False
        self.client.on("connect", self._on_connect, namespace=NAMESPACE)
        self.client.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    async def _on_connect(self) -> None:
        t = now()
        if self.disconnects and len(self.connects) <= len(self.disconnects):
            self.reconnect_times.append(t - self.disconnects[-1][0])
        self.connects.append(t)
        self.up.set()

    async def _on_disconnect(self, reason: Any = None) -> None:
        # Runs before python-socketio forgets its pending callbacks: fail the sends that
        # wait for an ack now, instead of letting each run into its timeout.
        self.up.clear()
        if not self._closing:
            self.disconnects.append((now(), str(reason)))
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(NoAck(str(reason)))

    @property
    def reconnected(self) -> bool:
        """Connected again after a disconnect, and still connected when the load ended."""
        return len(self.connects) > 1 and self.up_at_close

    async def open(self) -> None:
        await self.client.connect(
            self.base_url,
            namespaces=[NAMESPACE],
            auth={"token": self.agent.jwt},
            transports=["websocket"],
            wait_timeout=15,
        )

    async def close(self) -> None:
        self.up_at_close = self.up.is_set()
        self._closing = True
        with contextlib.suppress(Exception):
            await self.client.disconnect()

    async def attempt(self, send: Send, load: LoadControl) -> Outcome:
        if not self.up.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.up.wait(), 0.5)
            return Outcome.NOT_SENT
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*args: Any) -> None:
            if not waiter.done():
                waiter.set_result(args[0] if args else None)

        self._waiting.add(waiter)
        try:
            try:
                await self.client.emit(
                    "message:send",
                    {"roomId": send.room_id, "body": send.body, "clientMsgId": send.key},
                    namespace=NAMESPACE,
                    callback=on_ack,
                )
            except socketio.exceptions.SocketIOError:
                return Outcome.NOT_SENT  # not connected after all: nothing went out
            send.attempts += 1
            await load.note(in_flight=1)
            try:
                ack = await asyncio.wait_for(waiter, self.ack_timeout)
            except (NoAck, TimeoutError) as exc:
                send.no_answer += 1
                self.failure_reasons[type(exc).__name__] += 1
                return Outcome.NO_ANSWER
            finally:
                await load.note(in_flight=-1)
        finally:
            self._waiting.discard(waiter)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved, so asyncio does not log it as forgotten
        if isinstance(ack, dict) and ack.get("ok") is True:
            return self._acked(send, ack["message"], created=bool(ack["created"]))
        code = ack.get("error", {}).get("code") if isinstance(ack, dict) else None
        if code in RETRY_CODES:
            send.refused += 1
            self.failure_reasons[str(code)] += 1
            return Outcome.REFUSED
        send.error = f"ack {ack!r}"[:300]
        return Outcome.ERROR


def _json(text: str) -> dict[str, Any]:
    body = json.loads(text)
    assert isinstance(body, dict), text
    return body


@dataclass
class LoadControl:
    """Shared by the senders: when to stop starting new messages, and when to give up
    retrying the one in hand."""

    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    give_up_at: float | None = None
    in_flight: int = 0  # attempts sent and not yet answered, all senders
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def note(self, in_flight: int = 0) -> None:
        """A sender's state changed: an ack, or ``in_flight`` attempts more (or fewer)."""
        self.in_flight += in_flight
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> bool:
        """Wait (re-checking after every change) until ``predicate`` holds; False on timeout."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(predicate), within)
        return predicate()

    def finish(self, drain_seconds: float) -> None:
        self.give_up_at = now() + drain_seconds
        self.stopping.set()


class ReadyProbe:
    """Polls ``GET /readyz`` on a new connection every ``interval`` seconds and keeps
    (time, status) samples; status None means no answer (refused, reset, timeout)."""

    def __init__(self, base_url: str, interval: float = 0.1) -> None:
        self.url = f"{base_url}/readyz"
        self.interval = interval
        self.samples: list[tuple[float, int | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=timeout
        ) as session:
            while True:
                status: int | None
                try:
                    async with session.get(self.url) as resp:
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError, OSError):
                    status = None
                self.samples.append((now(), status))
                async with self._changed:
                    self._changed.notify_all()
                await asyncio.sleep(self.interval)

    def first(self, status: int | None, after: float) -> float | None:
        return next((t for t, s in self.samples if t >= after and s == status), None)

    def seen(self, status: int | None, start: float, end: float) -> int:
        return sum(1 for t, s in self.samples if start <= t <= end and s == status)

    async def wait_for(self, status: int | None, after: float, within: float) -> float | None:
        """The time of the first sample with ``status`` taken after ``after``, waiting up
        to ``within`` seconds for it; None if none came."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.first(status, after) is not None),
                    within,
                )
        return self.first(status, after)
