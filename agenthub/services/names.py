"""Patterns for names and slugs, shared by agents and rooms."""

from __future__ import annotations

import re

from agenthub.errors import ValidationFailed

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SLUG_RULE = "1-64 characters: lowercase letters, digits and '-', not starting or ending with '-'"
MAX_DISPLAY_NAME = 200


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
