"""POST /api/v1/sessions: API token in, JWT out."""

from __future__ import annotations

from agenthub.api.base import BaseHandler


class SessionsHandler(BaseHandler):
    route = "/api/v1/sessions"
    auth_required = False  # the bearer here is the API token, checked by the service

    async def post(self) -> None:
        # Failed-login throttling is the service's rule; it needs the client address.
        session = await self.services.sessions.exchange_token(
            self.bearer_credential(), address=self.client_address()
        )
        self.reply(201, session.to_dict())
