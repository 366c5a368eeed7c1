"""All services, built once from settings and shared by REST, sockets and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agenthub.auth.api_tokens import TokenHasher
from agenthub.config import Settings
from agenthub.domain import PageBounds
from agenthub.events import EventBus
from agenthub.ratelimit import LoginLimits
from agenthub.services.agents import AgentService
from agenthub.services.audit import AuditService
from agenthub.services.directory import Directory
from agenthub.services.mentions import MentionService
from agenthub.services.messages import MessageService
from agenthub.services.reads import ReadService
from agenthub.services.rooms import RoomService
from agenthub.services.search import SearchService
from agenthub.services.sessions import SessionService
from agenthub.services.tokens import TokenService
from agenthub.store.db import Database
from agenthub.waiters import Waiters


@dataclass
class Services:
    settings: Settings
    db: Database
    bus: EventBus
    directory: Directory
    hasher: TokenHasher
    agents: AgentService
    tokens: TokenService
    sessions: SessionService
    rooms: RoomService
    messages: MessageService
    mentions: MentionService
    reads: ReadService
    search: SearchService
    audit: AuditService
    waiters: Waiters
    # REDIS_URL set: whether this process's Redis subscriptions are in force (/readyz).
    redis_ok: Callable[[], bool] | None = None

    async def close(self) -> None:
        await self.db.close()
        self.hasher.close()


def build_services(settings: Settings, db: Database) -> Services:
    bus = EventBus()
    # Long polls (?wait=) are woken by the messages the bus publishes after their commit.
    # Half the pool at most for the queries of woken waiters: the rest serves other requests.
    waiters = Waiters(settings.max_waiters, requeries=max(1, settings.db_pool_max // 2))
    bus.subscribe(waiters.on_event, everywhere=True)
    pages = PageBounds(default=settings.page_size_default, maximum=settings.page_size_max)
    hasher = TokenHasher(workers=settings.argon2_workers)
    directory = Directory(db)
    return Services(
        settings=settings,
        db=db,
        bus=bus,
        directory=directory,
        hasher=hasher,
        agents=AgentService(db, bus, directory),
        tokens=TokenService(db, hasher, bus, directory),
        sessions=SessionService(
            db,
            hasher,
            bus,
            jwt_secret=settings.jwt_secret,
            ttl_seconds=settings.jwt_ttl_seconds,
            login_limits=LoginLimits(
                settings.rate_limit_login_failures_per_address,
                settings.rate_limit_login_failures_per_prefix,
            ),
        ),
        rooms=RoomService(db, bus, directory),
        messages=MessageService(
            db,
            bus,
            directory,
            max_body_chars=settings.max_message_chars,
            pages=pages,
            waiters=waiters,
            max_wait_seconds=settings.max_wait_seconds,
        ),
        mentions=MentionService(db, pages=pages),
        reads=ReadService(
            db, bus, directory, waiters=waiters, max_wait_seconds=settings.max_wait_seconds
        ),
        search=SearchService(db, directory, pages=pages),
        audit=AuditService(db, directory, pages=pages),
        waiters=waiters,
    )
