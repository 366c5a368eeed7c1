"""POST /api/v1/sessions: API token in, JWT out."""

from __future__ import annotations

from agenthub.api.base import BaseHandler


class SessionsHandler(BaseHandler):
    route = "/api/v1/sessions"
    auth_required = False  # the bearer here is the API token, checked by the service

    async def post(self) -> None:
        api_token = self.bearer_credential()
        session = await self.services.sessions.exchange_token(
            api_token, address=self.request.remote_ip
        )
        self.reply(201, session.to_dict())
