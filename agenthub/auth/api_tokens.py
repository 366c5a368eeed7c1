"""API tokens: ``agt_<prefix>_<secret>``, shown once, stored as an Argon2id hash.

The prefix is public (it identifies the row); only the secret is hashed. Hashing and
verifying cost ~19 MiB and tens of milliseconds each, so they run in a thread pool,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_SCHEME = "agt"  # noqa: S105 (a label, not a secret)
PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
PREFIX_LENGTH = 12
SECRET_BYTES = 32

_PREFIX_RE = re.compile(rf"^[a-z0-9]{{{PREFIX_LENGTH}}}\Z")
# 32 random bytes in unpadded base64url is 43 characters. \Z, not $: "$" also matches
# before a trailing newline.
_TOKEN_RE = re.compile(
    rf"^{TOKEN_SCHEME}_([a-z0-9]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43,128}})\Z"
)

# OWASP's Argon2id baseline, as ARCHITECTURE §3 says: 19 MiB, 2 iterations, 1 lane.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


@dataclass(frozen=True)
class ParsedToken:
    prefix: str
    secret: str


@dataclass(frozen=True)
class NewToken:
    token: str
    prefix: str
    secret: str


def generate() -> NewToken:
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(token=f"{TOKEN_SCHEME}_{prefix}_{secret}", prefix=prefix, secret=secret)


def parse(token: str) -> ParsedToken | None:
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    return ParsedToken(prefix=match.group(1), secret=match.group(2))


def is_prefix(value: str) -> bool:
    return bool(_PREFIX_RE.match(value))


class TokenHasher:
    """Argon2id in a bounded thread pool: a flood of logins queues instead of starving the loop."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        # Verified against when the prefix is unknown, so both paths cost the same.
        self._dummy_hash = HASHER.hash(secrets.token_urlsafe(SECRET_BYTES))

    async def hash(self, secret: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, HASHER.hash, secret)

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        loop = asyncio.get_running_loop()
        target = stored_hash if stored_hash is not None else self._dummy_hash
        ok = await loop.run_in_executor(self._pool, _verify, target, secret)
        return ok and stored_hash is not None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _verify(stored_hash: str, secret: str) -> bool:
    try:
        return HASHER.verify(stored_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
