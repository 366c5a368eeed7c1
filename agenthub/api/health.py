"""Liveness and readiness."""

from __future__ import annotations

import time

from agenthub.api.base import BaseHandler

STARTED = time.monotonic()


class HealthHandler(BaseHandler):
    route = "/healthz"
    auth_required = False
    rate_limited = False

    async def get(self) -> None:
        self.reply(200, {"status": "ok", "uptime": round(time.monotonic() - STARTED, 3)})


class ReadyHandler(BaseHandler):
    route = "/readyz"
    auth_required = False
    rate_limited = False

    async def get(self) -> None:
        checks = {"db": "ok"}
        if self.services.redis_ok is not None:
            # Degraded, not down: PostgreSQL is the truth, posts commit without Redis and
            # clients catch up by seq once it is back. So a balancer keeps this process.
            checks["redis"] = "ok" if self.services.redis_ok() else "unavailable"
        if await self.services.db.ping():
            self.reply(200, {"status": "ready", "checks": checks})
        else:
            checks["db"] = "unavailable"
            self.reply(503, {"status": "unavailable", "checks": checks})
