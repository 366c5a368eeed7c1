"""Opaque page cursors. They only encode a position; access is re-checked on every page."""

from __future__ import annotations

import base64
import binascii
import json

from agenthub.errors import ValidationFailed


def encode(kind: str, scope: str, position: int) -> str:
    raw = json.dumps({"k": kind, "s": scope, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, kind: str, scope: str) -> int:
    """The position in ``cursor``; ValidationFailed if it is not one of ours for this scope."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position = data["p"]
        valid = (
            data.get("k") == kind
            and data.get("s") == scope
            and isinstance(position, int)
            and position >= 0
        )
    except (ValueError, binascii.Error, KeyError, TypeError, UnicodeError):
        valid = False
    if not valid:
        raise ValidationFailed("invalid cursor", {"cursor": "not a cursor for this listing"})
    return int(position)
