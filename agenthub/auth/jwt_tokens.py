"""Session JWTs: HS256 only, short-lived, tied to the API token they were exchanged for.

The ``tid`` claim carries that API token's prefix so that revoking the token ends the
session at once (every request re-checks it), not 15 minutes later.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "role", "iat", "exp", "jti", "tid"]


@dataclass(frozen=True)
class Claims:
    agent_id: uuid.UUID
    role: str
    token_prefix: str
    jti: str
    issued_at: datetime
    expires_at: datetime


class InvalidSession(Exception):
    """The JWT is malformed, signed with another key or algorithm, or expired."""


def issue(
    secret: str,
    *,
    agent_id: uuid.UUID,
    role: str,
    token_prefix: str,
    ttl_seconds: int,
    not_after: datetime | None = None,
) -> tuple[str, datetime]:
    """A signed JWT and its expiry: ``ttl_seconds`` from now, but never after ``not_after``."""
    now = int(time.time())
    exp = now + ttl_seconds
    if not_after is not None:
        exp = min(exp, int(not_after.timestamp()))
    payload = {
        "sub": str(agent_id),
        "role": role,
        "tid": token_prefix,
        "iat": now,
        "exp": exp,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), datetime.fromtimestamp(exp, UTC)


def decode(secret: str, token: str) -> Claims:
    try:
        header = jwt.get_unverified_header(token)
        # Checked before decode too: only HS256 is ever accepted, whatever the library allows.
        if header.get("alg") != ALGORITHM:
            raise InvalidSession("unsupported JWT algorithm")
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS, "verify_iat": True},
        )
        return Claims(
            agent_id=uuid.UUID(str(payload["sub"])),
            role=str(payload["role"]),
            token_prefix=str(payload["tid"]),
            jti=str(payload["jti"]),
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except jwt.ExpiredSignatureError:
        raise InvalidSession("session expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
        raise InvalidSession("invalid session token") from None


class Verifier:
    """``decode`` with a memory: a JWT whose signature and claims were checked once is not
    parsed and verified again on every request of its session (an HMAC, two base64 and two
    JSON parses each time); only its expiry is, against the clock, exactly as ``jwt.decode``
    does it (expired once ``exp`` <= now). The same string is the same signed token, so
    nothing is trusted that was not checked. Bounded: past ``capacity`` the oldest entry
    goes."""

    def __init__(self, secret: str, capacity: int = 4096) -> None:
        self._secret = secret
        self._capacity = capacity
        self._known: dict[str, tuple[Claims, float]] = {}

    def claims(self, token: str) -> Claims:
        known = self._known.get(token)
        if known is None:
            claims = decode(self._secret, token)
            if len(self._known) >= self._capacity:
                del self._known[next(iter(self._known))]
            known = (claims, claims.expires_at.timestamp())
            self._known[token] = known
        if known[1] <= time.time():
            self._known.pop(token, None)
            raise InvalidSession("session expired")
        return known[0]


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` has a JWT's shape (a readable header naming an algorithm), whatever
    its signature: used only to tell a caller which kind of token a route expects."""
    try:
        return "alg" in jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return False
