"""POST /api/v1/sessions: API token in, JWT out."""

from __future__ import annotations

import logging

from agenthub.api.base import BaseHandler
from agenthub.auth import api_tokens
from agenthub.errors import Unauthorized

log = logging.getLogger("agenthub.api")


class SessionsHandler(BaseHandler):
    route = "/api/v1/sessions"
    auth_required = False  # the bearer here is the API token, checked by the service

    async def post(self) -> None:
        api_token = self.bearer_credential()
        address = self.request.remote_ip or "unknown"
        parsed = api_tokens.parse(api_token)
        prefix = None if parsed is None else parsed.prefix
        # Refused here, before Argon2 is spent, once this address or this token prefix has
        # failed too often; such a refusal writes nothing (docs/SECURITY.md).
        if self.guards is not None:
            self.guards.logins.check(address, prefix)
        try:
            session = await self.services.sessions.exchange_token(api_token, address=address)
        except Unauthorized:
            if self.guards is not None and self.guards.logins.record_failure(address, prefix):
                log.warning("failed logins throttled: address=%s prefix=%s", address, prefix or "-")
            raise
        self.reply(201, session.to_dict())
