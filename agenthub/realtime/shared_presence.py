"""Presence across processes (REDIS_URL set): an agent is online in a room while any of its
sockets on any process is in it.

Each process keeps its own table (realtime.presence) and tells Redis only when an agent comes
online or goes offline in a room *on this process*: the set ``<prefix>:presence:<room>:<agent>``
holds the ids of the processes where it is. Online everywhere starts when that set gets its
first member and ends when it loses its last; the Lua scripts make each check atomic, so of two
processes racing exactly one announces.

A process that dies without a word (kill -9, a lost host) leaves its ids behind: it renews
``<prefix>:alive:<process>`` (TTL: the presence timeout) every third of that timeout, and every
process sweeps, at the same pace, the entries of processes whose key has expired, announcing
offline where the set empties. So a ghost lasts at most about one and a third timeouts.

After a Redis restart that lost the data, each process puts its own presence back at its
next heartbeat. Redis unavailable: each answer falls back to this process's own table (a
duplicate or missed ``presence:update`` at worst; the member list's ``online`` then reflects
this process only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis

from agenthub.realtime.fanout import redis_options

log = logging.getLogger("agenthub.realtime")

# KEYS: presence set, this process's held set; ARGV: process id, "room:agent".
_ARRIVE = """
redis.call('SADD', KEYS[2], ARGV[2])
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""
# Same keys. Empty after this: offline everywhere (also when Redis lost the set meanwhile).
_DEPART = """
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
"""
# A dead process's entry: only the sweeper that removes it may announce.
_SWEEP = """
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
"""

Announce = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]


class SharedPresence:
    def __init__(
        self,
        url: str,
        prefix: str,
        timeout: float,
        announce_offline: Announce,
        here: Callable[[], list[tuple[uuid.UUID, uuid.UUID]]],
    ) -> None:
        self.process = uuid.uuid4().hex
        self._here = here  # (room, agent) online on this process, to restore after a restart
        self._prefix = prefix
        self._timeout = timeout
        self._announce_offline = announce_offline
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, **redis_options())
        self._arrive = self._redis.register_script(_ARRIVE)
        self._depart = self._redis.register_script(_DEPART)
        self._sweep = self._redis.register_script(_SWEEP)
        self._task: asyncio.Task[None] | None = None
        # After a failure, answers come from this process's table for a while: with Redis
        # unreachable (not refusing), each call would otherwise wait for the connect timeout.
        self._skip_until = 0.0

    def _usable(self) -> bool:
        return asyncio.get_running_loop().time() >= self._skip_until

    def _failed(self, exc: Exception) -> None:
        if self._usable():
            log.warning("presence in redis not updated (%s); this process's view only", exc)
        self._skip_until = asyncio.get_running_loop().time() + 5.0

    def _key(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> str:
        return f"{self._prefix}:presence:{room_id}:{agent_id}"

    def _held(self, process: str) -> str:
        return f"{self._prefix}:held:{process}"

    def _alive(self, process: str) -> str:
        return f"{self._prefix}:alive:{process}"

    @property
    def _processes(self) -> str:
        return f"{self._prefix}:processes"

    async def arrived(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
        """The agent came online in the room on this process: True if nowhere else it is."""
        if not self._usable():
            return True
        try:
            keys = [self._key(room_id, agent_id), self._held(self.process)]
            return bool(await self._arrive(keys=keys, args=[self.process, f"{room_id}:{agent_id}"]))
        except Exception as exc:
            self._failed(exc)
            return True

    async def departed(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
        """The agent went offline in the room on this process: True if it is nowhere now."""
        if not self._usable():
            return True
        try:
            keys = [self._key(room_id, agent_id), self._held(self.process)]
            return bool(await self._depart(keys=keys, args=[self.process, f"{room_id}:{agent_id}"]))
        except Exception as exc:
            self._failed(exc)
            return True

    async def online(
        self, room_id: uuid.UUID, agents: Iterable[uuid.UUID], here: Callable[[uuid.UUID], bool]
    ) -> set[uuid.UUID]:
        """Which of ``agents`` are online in the room on any process (``here`` answers for
        this process alone when Redis does not)."""
        agents = list(agents)
        if not self._usable():
            return {agent for agent in agents if here(agent)}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for agent_id in agents:
                    pipe.exists(self._key(room_id, agent_id))
                found = await pipe.execute()
            return {agent for agent, count in zip(agents, found, strict=True) if count}
        except Exception as exc:
            self._failed(exc)
            return {agent for agent in agents if here(agent)}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._redis.delete(self._alive(self.process))
            await self._redis.srem(self._processes, self.process)
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def _heartbeat(self) -> None:
        interval = self._timeout / 3
        first = True
        while True:
            try:
                ttl = max(1, round(self._timeout))
                previous = await self._redis.set(self._alive(self.process), "1", ex=ttl, get=True)
                await self._redis.sadd(self._processes, self.process)
                self._skip_until = 0.0  # Redis answers again
                if previous is None and not first:
                    await self.restore()
                first = False
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("presence heartbeat failed: %s", exc)
            await asyncio.sleep(interval)

    async def restore(self) -> None:
        """Our key was gone (Redis restarted without its data, or was cut off longer than the
        timeout): put this process's presence back."""
        entries = self._here()
        log.info("restoring %d presence entries in redis", len(entries))
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id, agent_id in entries:
                pipe.sadd(self._key(room_id, agent_id), self.process)
                pipe.sadd(self._held(self.process), f"{room_id}:{agent_id}")
            await pipe.execute()

    async def sweep(self) -> None:
        """Take the entries of processes that stopped renewing their key offline."""
        for raw in await self._redis.smembers(self._processes):
            process = raw.decode() if isinstance(raw, bytes) else str(raw)
            if process == self.process or await self._redis.exists(self._alive(process)):
                continue
            held = self._held(process)
            for entry in await self._redis.smembers(held):
                text = entry.decode() if isinstance(entry, bytes) else str(entry)
                room, _, agent = text.partition(":")
                room_id, agent_id = uuid.UUID(room), uuid.UUID(agent)
                keys = [self._key(room_id, agent_id)]
                if await self._sweep(keys=keys, args=[process]):
                    log.info(
                        "agent %s offline in room %s: process %s is gone", agent, room, process
                    )
                    await self._announce_offline(room_id, agent_id)
                await self._redis.srem(held, entry)
            await self._redis.srem(self._processes, process)
