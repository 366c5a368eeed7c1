"""Agents and their API tokens."""

from __future__ import annotations

from agenthub import schemas
from agenthub.api.base import BaseHandler


class AgentsHandler(BaseHandler):
    route = "/api/v1/agents"

    async def get(self) -> None:
        agents = await self.services.agents.list_agents(self.current())
        self.reply(200, {"agents": [a.to_dict() for a in agents]})

    async def post(self) -> None:
        data = self.json_body(schemas.CreateAgentRequest)
        agent = await self.services.agents.create_agent(
            self.current(), name=data["name"], display_name=data["displayName"], role=data["role"]
        )
        self.set_header("Location", f"/api/v1/agents/{agent.id}")
        self.reply(201, agent.to_dict())


class MeHandler(BaseHandler):
    route = "/api/v1/agents/me"

    async def get(self) -> None:
        agent = await self.services.agents.get_agent(self.current(), self.current().agent_id)
        self.reply(200, agent.to_dict())


class AgentHandler(BaseHandler):
    route = "/api/v1/agents/{id}"

    async def get(self, agent_id: str) -> None:
        agent = await self.services.agents.get_agent(self.current(), self.path_ref(agent_id))
        self.reply(200, agent.to_dict())

    async def patch(self, agent_id: str) -> None:
        target = self.path_ref(agent_id)
        data = self.json_body(schemas.UpdateAgentRequest)
        agent = await self.services.agents.set_disabled(self.current(), target, data["disabled"])
        self.reply(200, agent.to_dict())


class AgentTokensHandler(BaseHandler):
    route = "/api/v1/agents/{id}/tokens"

    async def get(self, agent_id: str) -> None:
        tokens = await self.services.tokens.list_tokens(self.current(), self.path_ref(agent_id))
        self.reply(200, {"tokens": [t.to_dict() for t in tokens]})

    async def post(self, agent_id: str) -> None:
        target = self.path_ref(agent_id)
        data = self.json_body(schemas.IssueTokenRequest)
        issued = await self.services.tokens.issue_token(self.current(), target, data["expiresAt"])
        self.reply(201, issued.to_dict())


class TokenHandler(BaseHandler):
    route = "/api/v1/tokens/{prefix}"

    async def delete(self, prefix: str) -> None:
        await self.services.tokens.revoke_token(self.current(), prefix)
        self.reply(204, None)
