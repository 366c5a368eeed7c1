"""Agents: create, look up, list, disable."""

from __future__ import annotations

from agenthub.actors import Actor
from agenthub.domain import ROLES, one_of
from agenthub.errors import Conflict, Forbidden, NotFound, ValidationFailed
from agenthub.events import AgentDisabled, EventBus
from agenthub.models import Agent
from agenthub.services import auth_changes
from agenthub.services.audit import record
from agenthub.services.directory import AgentRef, Directory
from agenthub.services.names import check_agent_name, check_display_name
from agenthub.store import agents as agent_store
from agenthub.store.db import Database, UniqueViolation


class AgentService:
    def __init__(self, db: Database, bus: EventBus, directory: Directory) -> None:
        self._db = db
        self._directory = directory
        self._bus = bus

    async def create_agent(
        self,
        actor: Actor,
        *,
        name: str,
        display_name: str | None = None,
        role: str = "agent",
    ) -> Agent:
        if not actor.is_admin:
            raise Forbidden("only admins may create agents")
        check_agent_name(name)
        display = check_display_name("displayName", display_name or name)
        if role not in ROLES:
            raise ValidationFailed("invalid role", {"role": one_of(ROLES)})
        try:
            async with self._db.transaction() as s:
                row = await agent_store.insert(s, name=name, display_name=display, role=role)
                await record(
                    s,
                    "agent-created",
                    actor.audit_agent_id,
                    createdAgentId=str(row["id"]),
                    name=name,
                    role=role,
                    via=actor.via,
                )
        except UniqueViolation:
            raise Conflict(
                "an agent with this name already exists", {"name": [f"{name!r} is taken"]}
            ) from None
        return Agent.from_row(row)

    async def get_agent(self, actor: Actor, ref: AgentRef) -> Agent:
        agent_id = await self._directory.agent_id(actor, ref)
        async with self._db.session() as s:
            row = await agent_store.by_id(s, agent_id)
        if row is None:
            raise NotFound("agent not found")
        return Agent.from_row(row)

    async def get_agent_by_name(self, name: str) -> Agent:
        async with self._db.session() as s:
            row = await agent_store.by_name(s, name)
        if row is None:
            raise NotFound(f"agent {name!r} not found")
        return Agent.from_row(row)

    async def list_agents(self, actor: Actor) -> list[Agent]:
        async with self._db.session() as s:
            rows = await agent_store.list_all(s)
        return [Agent.from_row(r) for r in rows]

    async def set_disabled(self, actor: Actor, ref: AgentRef, disabled: bool) -> Agent:
        if not actor.is_admin:
            raise Forbidden("only admins may disable agents")
        agent_id = await self._directory.agent_id(actor, ref)
        if actor.is_agent(agent_id) and disabled:
            raise ValidationFailed("an admin cannot disable itself", {"disabled": "self"})
        async with self._db.transaction() as s:
            row = await agent_store.set_disabled(s, agent_id, disabled)
            if row is not None:
                # Every server process hears it when this commits (its sockets, its cache).
                await auth_changes.announce(s, auth_changes.AgentChanged(agent_id, disabled))
        if row is None:
            raise NotFound("agent not found")
        if disabled:
            await self._bus.publish(AgentDisabled(agent_id=agent_id))
        return Agent.from_row(row)
