"""HTTP hardening shared by every handler: security headers, the CORS origin policy, and the
limits built once in ``agenthub.app`` (docs/SECURITY.md)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import tornado.httputil
import tornado.web

from agenthub.config import Settings
from agenthub.metrics import Metrics
from agenthub.origins import OriginPolicy
from agenthub.ratelimit import RequestLimits, SharedRequestLimits

# Browsers keep to HTTPS for a year once they saw it over HTTPS (ignored over plain HTTP).
HSTS_VALUE = "max-age=31536000"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin",
    "X-Content-Type-Options": "nosniff",
}

# What a browser script may send and read across origins.
CORS_ALLOW_HEADERS = "Authorization, Content-Type"
CORS_EXPOSE_HEADERS = "Location, Retry-After, WWW-Authenticate"
CORS_MAX_AGE = "600"


class SecurityHeaders(tornado.web.OutputTransform):
    """Adds the security headers to every response the application sends, whichever handler
    (REST, /metrics, socket.io polling) wrote it, errors included. ``hsts``: add
    ``Strict-Transport-Security`` too (TLS served here, or HSTS=1 behind a TLS balancer)."""

    def __init__(self, request: tornado.httputil.HTTPServerRequest, hsts: bool = False) -> None:
        super().__init__(request)
        self.hsts = hsts

    def transform_first_chunk(
        self,
        status_code: int,
        headers: tornado.httputil.HTTPHeaders,
        chunk: bytes,
        finishing: bool,
    ) -> tuple[int, tornado.httputil.HTTPHeaders, bytes]:
        for name, value in SECURITY_HEADERS.items():
            if name not in headers:
                headers[name] = value
        if self.hsts:
            headers["Strict-Transport-Security"] = HSTS_VALUE
        return status_code, headers, chunk


class CorsPolicy:
    """Browser origins allowed by ``ALLOWED_ORIGINS``: exact origins, CIDR blocks matched
    against an IP-literal origin host, or ``*``. The same ``OriginPolicy`` object is what the
    socket.io server gets as ``cors_allowed_origins``, so both endpoints answer alike."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.any = "*" in allowed
        self.policy = OriginPolicy(item for item in allowed if item != "*")

    def allows(self, origin: str, host: str | None = None) -> bool:
        """``host``: the request's Host header; an origin naming it is same-origin (the
        console) and always allowed."""
        return self.any or self.policy.allows(origin, host)


class ClientAddress:
    """The client's address: the TCP peer, unless the peer is a trusted proxy (TRUSTED_PROXIES,
    e.g. the HAProxy in front of the workers): then the nearest address in X-Forwarded-For
    that is not itself a trusted proxy. An untrusted peer's X-Forwarded-For is ignored (anyone
    can write one)."""

    def __init__(self, trusted: tuple[str, ...]) -> None:
        self.trusted = tuple(ipaddress.ip_network(item, strict=False) for item in trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def of(self, request: tornado.httputil.HTTPServerRequest) -> str:
        peer = request.remote_ip or "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        hops = [
            hop.strip()
            for header in request.headers.get_list("X-Forwarded-For")
            for hop in header.split(",")
            if hop.strip()
        ]
        # Each proxy appends the address it saw: read from the right, past our own proxies.
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage from beyond our proxies: not an address to key on
        return peer


@dataclass
class HttpGuards:
    """Per-application HTTP state handed to every handler (never a module global)."""

    cors: CorsPolicy
    requests: RequestLimits | SharedRequestLimits
    metrics: Metrics
    metrics_token: str
    client_address: ClientAddress

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> HttpGuards:
        requests: RequestLimits | SharedRequestLimits
        if settings.redis_url:
            requests = SharedRequestLimits(
                settings.redis_url,
                settings.redis_prefix,
                settings.rate_limit_anonymous_per_minute,
                settings.rate_limit_agent_per_minute,
                metrics.rate_limit_store_unavailable.inc,
            )
        else:
            requests = RequestLimits(
                settings.rate_limit_anonymous_per_minute, settings.rate_limit_agent_per_minute
            )
        return cls(
            cors=CorsPolicy(settings.allowed_origins),
            requests=requests,
            metrics=metrics,
            metrics_token=settings.metrics_token,
            client_address=ClientAddress(settings.trusted_proxies),
        )
