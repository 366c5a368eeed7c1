"""GET /metrics: the Prometheus exposition.

Open by default: Prometheus on the LAN scrapes without credentials, and the metrics carry no
secret (room ids are opaque UUIDs, no names or bodies). With ``METRICS_TOKEN`` set, a scrape
must send ``Authorization: Bearer <METRICS_TOKEN>`` (Prometheus: ``authorization:
credentials_file``). docs/METRICS.md.
"""

from __future__ import annotations

import hmac

from agenthub.api.base import BaseHandler
from agenthub.errors import Unauthorized


class MetricsHandler(BaseHandler):
    route = "/metrics"
    auth_required = False
    rate_limited = False

    async def get(self) -> None:
        expected = self.guards.metrics_token
        if expected:
            header = self.request.headers.get("Authorization", "")
            scheme, _, credential = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), expected.encode()
            ):
                raise Unauthorized("metrics need the METRICS_TOKEN bearer credential")
        body, content_type = self.guards.metrics.render(self.request.headers.get("Accept"))
        self.set_status(200)
        self.set_header("Content-Type", content_type)
        self.finish(body)
