"""Liveness and readiness."""

from __future__ import annotations

import time

from agenthub.api.base import BaseHandler

STARTED = time.monotonic()


class HealthHandler(BaseHandler):
    route = "/healthz"
    auth_required = False

    async def get(self) -> None:
        self.reply(200, {"status": "ok", "uptime": round(time.monotonic() - STARTED, 3)})


class ReadyHandler(BaseHandler):
    route = "/readyz"
    auth_required = False

    async def get(self) -> None:
        if await self.services.db.ping():
            self.reply(200, {"status": "ready", "checks": {"db": "ok"}})
        else:
            self.reply(503, {"status": "unavailable", "checks": {"db": "unavailable"}})
