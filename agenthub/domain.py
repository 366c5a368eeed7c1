"""The domain's fixed vocabulary and bounds, in one place: roles, room visibilities, name
patterns and the limits every transport (REST, socket.io, CLI) enforces alike.

Limits that operators may tune (message size, page sizes) are settings (``agenthub.config``);
``PageBounds`` carries them to the services, which apply them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from agenthub.errors import ValidationFailed

ROLES = ("admin", "agent")
VISIBILITIES = ("public", "private")
ROOM_KINDS = ("room", "dm")

# Slugs (room slugs, agent names): URL- and shell-safe.
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SLUG_RULE = "1-64 characters: lowercase letters, digits and '-', not starting or ending with '-'"
MAX_DISPLAY_NAME = 200
MAX_CLIENT_MSG_ID = 128
MAX_TOPIC = 1000

# Structured messages: a kind names what ``data`` holds ("text" when there is none).
MESSAGE_KIND_PATTERN = r"^[a-z][a-z0-9._-]{0,31}$"
MESSAGE_KIND_RE = re.compile(MESSAGE_KIND_PATTERN.replace("$", r"\Z"))
DEFAULT_MESSAGE_KIND = "text"
MAX_DATA_BYTES = 16 * 1024  # ``data`` serialized as compact JSON

# The longest an API token may be issued for: far enough for any real use, and it keeps every
# expiry a valid PostgreSQL and Python date in every time zone (year 9999 at -14:00 is not).
MAX_TOKEN_LIFETIME_YEARS = 10
MAX_TOKEN_LIFETIME = timedelta(days=3653)  # ten years, leap days included

# The largest seq a client may name (``after``/``afterSeq``): far beyond any real room, and
# small enough to stay exact in a JavaScript number and in PostgreSQL's bigint.
MAX_SEQ = 2**62


# In a path or payload, "me" names the calling agent; no agent may be called that.
ME = "me"
RESERVED_NAMES = frozenset({ME})

_UUID_SHAPE = re.compile(r"^[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\Z")


# What names a room or an agent in a path or payload: a UUID, or a slug / name.
REF_PATTERN = (
    r"^(?:[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}"
    r"|[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)$"
)
REF_RULE = "an id (UUID) or a name (lowercase letters, digits and '-')"
REF_RE = re.compile(REF_PATTERN.removesuffix("$") + r"\Z")  # "$" would allow a final newline


def looks_like_uuid(value: str) -> bool:
    """Whether ``value`` has a UUID's shape (with or without dashes). Such a value in a path or
    payload is always taken as an id, so no slug or name may have this shape."""
    return bool(_UUID_SHAPE.match(value))


def parse_ref(value: str) -> uuid.UUID | str:
    """A path or payload value naming a room or an agent: an id when it is shaped like one,
    else a slug or name (looked up by the services)."""
    return uuid.UUID(value) if looks_like_uuid(value) else value


def one_of(choices: tuple[str, ...]) -> str:
    """The rule text for an enumeration, as error details say it."""
    return f"one of {', '.join(choices)}"


@dataclass(frozen=True)
class PageBounds:
    """How many items one page may hold: ``default`` when the caller names no limit."""

    default: int
    maximum: int

    def limit(self, requested: int | None, field: str = "limit") -> int:
        """The page size to use for ``requested``; ValidationFailed when out of bounds."""
        if requested is None:
            return self.default
        if not 1 <= requested <= self.maximum:
            raise ValidationFailed(
                f"invalid {field}", {field: f"must be between 1 and {self.maximum}"}
            )
        return requested


def check_seq(value: int | None, field: str) -> int | None:
    """A client-given seq position (``after``): 0 up to MAX_SEQ, or None."""
    if value is not None and not 0 <= value <= MAX_SEQ:
        raise ValidationFailed(f"invalid {field}", {field: f"must be between 0 and {MAX_SEQ}"})
    return value
