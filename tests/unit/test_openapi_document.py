"""The OpenAPI document is built from the route table: a route without a documented operation
(or a documented operation without a route) stops the build, so the two cannot drift."""

from __future__ import annotations

import pytest

from agenthub.api.base import BaseHandler
from agenthub.api.openapi import OPERATIONS, UndocumentedRoute, build_document, field_schema
from agenthub.api.routes import HANDLERS
from agenthub.config import load_settings
from agenthub.schemas import IssueTokenRequest, SyncRoomEvent

SETTINGS = load_settings({"JWT_SECRET": "s" * 40})


def test_every_handler_method_is_documented() -> None:
    doc = build_document(SETTINGS, HANDLERS)
    for handler in HANDLERS:
        for method in handler.methods():
            assert method.lower() in doc["paths"][handler.route]


def test_an_undocumented_route_stops_the_build() -> None:
    class Extra(BaseHandler):
        route = "/api/v1/extra"

        async def get(self) -> None:
            self.reply(200, {})

    with pytest.raises(UndocumentedRoute, match="/api/v1/extra"):
        build_document(SETTINGS, [*HANDLERS, Extra])


def test_an_undocumented_method_stops_the_build() -> None:
    rooms = next(h for h in HANDLERS if h.route == "/api/v1/rooms/{id}")

    class RoomWithDelete(rooms):  # type: ignore[valid-type,misc]
        async def delete(self, room_id: str) -> None:
            self.reply(204, None)

    handlers = [RoomWithDelete if h is rooms else h for h in HANDLERS]
    with pytest.raises(UndocumentedRoute, match="DELETE"):
        build_document(SETTINGS, handlers)


def test_a_removed_route_stops_the_build() -> None:
    handlers = [h for h in HANDLERS if h.route != "/api/v1/audit"]
    with pytest.raises(UndocumentedRoute, match="documented but gone"):
        build_document(SETTINGS, handlers)
    assert ("/api/v1/audit", "GET") in OPERATIONS


def test_field_conversion() -> None:
    expires = IssueTokenRequest().fields["expiresAt"]
    assert field_schema(expires) == {
        "type": ["string", "null"],
        "format": "date-time",
        "default": None,
    }
    after = SyncRoomEvent().fields["afterSeq"]
    assert field_schema(after) == {"type": "integer"}
