"""Patterns for names and slugs, shared by agents and rooms."""

from __future__ import annotations

from agenthub.domain import MAX_DISPLAY_NAME, RESERVED_NAMES, SLUG_RE, SLUG_RULE, looks_like_uuid
from agenthub.errors import ValidationFailed


def check_slug(field: str, value: str) -> str:
    """A room slug or an agent name. One shaped like a UUID is refused: paths take either, and a
    UUID-shaped value there is always an id."""
    if not SLUG_RE.match(value):
        raise ValidationFailed(f"invalid {field}", {field: SLUG_RULE})
    if looks_like_uuid(value):
        raise ValidationFailed(
            f"invalid {field}", {field: "must not be shaped like a UUID (ids take that shape)"}
        )
    return value


def check_agent_name(value: str) -> str:
    check_slug("name", value)
    if value in RESERVED_NAMES:
        raise ValidationFailed("invalid name", {"name": f"{value!r} is reserved"})
    return value


def check_display_name(field: str, value: str) -> str:
    stripped = value.strip()
    if not stripped or len(stripped) > MAX_DISPLAY_NAME or any(ord(c) < 32 for c in stripped):
        raise ValidationFailed(
            f"invalid {field}",
            {field: f"1-{MAX_DISPLAY_NAME} printable characters"},
        )
    return stripped
