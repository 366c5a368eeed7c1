"""Patterns for names and slugs, shared by agents and rooms."""

from __future__ import annotations

from agenthub.domain import MAX_DISPLAY_NAME, SLUG_RE, SLUG_RULE
from agenthub.errors import ValidationFailed


def check_slug(field: str, value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValidationFailed(f"invalid {field}", {field: SLUG_RULE})
    return value


def check_display_name(field: str, value: str) -> str:
    stripped = value.strip()
    if not stripped or len(stripped) > MAX_DISPLAY_NAME or any(ord(c) < 32 for c in stripped):
        raise ValidationFailed(
            f"invalid {field}",
            {field: f"1-{MAX_DISPLAY_NAME} printable characters"},
        )
    return stripped
