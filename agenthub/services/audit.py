"""The audit trail: written inside each operation's transaction, read by admins."""

from __future__ import annotations

import uuid
from typing import Any

from agenthub import cursors
from agenthub.actors import Actor
from agenthub.domain import PageBounds, one_of
from agenthub.errors import Forbidden, ValidationFailed
from agenthub.models import AuditEvent
from agenthub.services.directory import AgentRef, Directory
from agenthub.store import audit as audit_store
from agenthub.store.db import Database, Session

EVENT_TYPES = (
    "login",
    "login-failed",
    "token-issued",
    "token-revoked",
    "agent-created",
    "room-created",
    "member-added",
    "member-removed",
    "message-sent",
    "room-updated",
    "room-archived",
    "room-unarchived",
    "dm-created",
    "message-redacted",
)


async def record(s: Session, event_type: str, agent_id: uuid.UUID | None, **payload: Any) -> None:
    assert event_type in EVENT_TYPES, event_type
    await audit_store.insert(s, type=event_type, agent_id=agent_id, payload=payload)
    s.audit_written(event_type)


class AuditService:
    def __init__(self, db: Database, directory: Directory, *, pages: PageBounds) -> None:
        self._db = db
        self._directory = directory
        self._pages = pages

    async def list_events(
        self,
        actor: Actor,
        *,
        event_type: str | None,
        limit: int | None,
        cursor: str | None,
        agent: AgentRef | None = None,
    ) -> tuple[list[AuditEvent], str | None]:
        """Newest first; ``limit`` None means the default page size; ``agent`` (id, name or
        ``me``): only the events attributed to that agent (an unknown name: NotFound)."""
        if not actor.is_admin:
            raise Forbidden("only admins may read the audit trail")
        limit = self._pages.limit(limit)
        if event_type is not None and event_type not in EVENT_TYPES:
            raise ValidationFailed("unknown audit event type", {"type": one_of(EVENT_TYPES)})
        agent_id = None if agent is None else await self._directory.agent_id(actor, agent)
        scope = event_type or "*"
        if agent_id is not None:  # (a cursor of an unfiltered page stays valid as it was)
            scope = f"{scope}@{agent_id}"
        before = cursors.decode(cursor, "audit", scope) if cursor else None
        async with self._db.session() as s:
            rows = await audit_store.page(
                s, type=event_type, agent_id=agent_id, before_position=before, limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = (
            cursors.encode("audit", scope, int(rows[-1]["position"])) if more and rows else None
        )
        return [AuditEvent.from_row(r) for r in rows], next_cursor
