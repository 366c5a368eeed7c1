"""Which browser origins may call the API or open a socket: exact origins, or any origin whose
host is an IP address inside a configured CIDR block (a LAN's agents rarely have stable host
names). One policy for both endpoints: ``agenthub.api.security`` and ``agenthub.realtime``
import it from here."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OriginPolicy:
    """Callable for engine.io's CORS check and a container for Tornado's websocket check.

    python-engineio calls ``policy(origin, environ)``; its Tornado handler tests
    ``origin in policy``. Both ask the same question.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self._exact: set[str] = set()
        self._networks: list[IPNetwork] = []
        for item in allowed:
            if "://" in item:
                self._exact.add(item.lower().rstrip("/"))
            else:
                self._networks.append(ipaddress.ip_network(item, strict=False))

    def allows(self, origin: str | None, host: str | None = None) -> bool:
        """``host``: the request's own ``Host`` header. An origin naming that same host (and
        port) is the console served by this server (whatever name or address the person
        used): always allowed, whatever ALLOWED_ORIGINS says (DESIGN.md, "The console is
        same-origin"). The scheme is not compared: behind a TLS proxy the browser says https
        and the request reaching us is http."""
        if not origin:
            # Non-browser clients (python-socketio, Node) send no Origin; CORS does not apply.
            return True
        normalized = origin.strip().lower().rstrip("/")
        if normalized in self._exact or is_same_origin(normalized, host):
            return True
        if not self._networks:
            return False
        try:
            parts = urllib.parse.urlsplit(normalized)
            host = parts.hostname
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def __call__(self, origin: str | None, environ: dict[str, Any] | None = None) -> bool:
        return self.allows(origin, (environ or {}).get("HTTP_HOST"))

    def __contains__(self, origin: object) -> bool:
        return isinstance(origin, str) and self.allows(origin)


def is_same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` (lower case) names the host:port the request was sent to."""
    if not host:
        return False
    scheme, sep, netloc = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and netloc == host.strip().lower()


def cors_setting(allowed: tuple[str, ...]) -> str | OriginPolicy:
    """The value for python-socketio's ``cors_allowed_origins``."""
    if "*" in allowed:
        return "*"
    return OriginPolicy(allowed)
