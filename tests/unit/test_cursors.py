"""Opaque cursors: they round-trip, and anything not minted for this listing is refused."""

from __future__ import annotations

import base64
import json

import pytest

from agenthub import cursors
from agenthub.errors import ValidationFailed


@pytest.mark.parametrize("position", [0, 1, 42, 2**62])
def test_round_trip(position):
    token = cursors.encode("messages", "room-1", position)
    assert cursors.decode(token, "messages", "room-1") == position


def test_cursor_is_url_safe():
    token = cursors.encode("messages", "r" * 50, 123456789)
    assert all(c.isalnum() or c in "-_" for c in token)


def _mint(data: object) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "%%%",
        "eyJ",  # truncated base64 of '{"'
        _mint([1, 2, 3]),
        _mint({"k": "messages", "s": "room-1"}),
        _mint({"k": "messages", "s": "room-1", "p": -1}),
        _mint({"k": "messages", "s": "room-1", "p": "7"}),
        _mint({"k": "messages", "s": "room-1", "p": 1.5}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_tampered_cursor_is_rejected(cursor):
    with pytest.raises(ValidationFailed) as info:
        cursors.decode(cursor, "messages", "room-1")
    assert "cursor" in info.value.details


def test_cursor_for_another_room_is_rejected():
    token = cursors.encode("messages", "room-1", 5)
    with pytest.raises(ValidationFailed):
        cursors.decode(token, "messages", "room-2")


def test_cursor_for_another_listing_is_rejected():
    token = cursors.encode("audit", "*", 5)
    with pytest.raises(ValidationFailed):
        cursors.decode(token, "messages", "*")
