"""The OpenAPI document is built from the route table: a route without a documented operation
(or a documented operation without a route) stops the build, so the two cannot drift. Its
bodies are apispec's rendering of the schemas the requests are loaded and responses dumped
with."""

from __future__ import annotations

import inspect
import warnings
from types import SimpleNamespace

import pytest

from agenthub import wire
from agenthub.api import routes
from agenthub.api.base import BaseHandler
from agenthub.api.openapi import (
    COMPONENT_SCHEMAS,
    OPERATIONS,
    OpenApiHandler,
    UndocumentedRoute,
    build_document,
    component_name,
)
from agenthub.api.routes import HANDLERS
from agenthub.api.security import HttpGuards
from agenthub.config import load_settings
from agenthub.metrics import Metrics

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


def test_fields_become_json_schema() -> None:
    components = build_document(SETTINGS, HANDLERS)["components"]["schemas"]
    assert components["IssueTokenRequest"]["properties"]["expiresAt"] == {
        "type": ["string", "null"],
        "format": "date-time",
        "default": None,
    }
    assert components["IssueTokenRequest"]["additionalProperties"] is False
    message = components["Message"]
    assert message["properties"]["seq"] == {"type": "integer", "minimum": 1}
    assert message["properties"]["clientMsgId"] == {"type": ["string", "null"]}
    assert message["properties"]["createdAt"] == {"type": "string", "format": "date-time"}
    assert message["additionalProperties"] is False
    assert set(message["required"]) == set(message["properties"])  # every key, always
    assert components["Room"]["properties"]["createdBy"] == {
        "type": ["string", "null"],
        "format": "uuid",
    }
    assert components["Session"]["properties"]["agent"] == {"$ref": "#/components/schemas/Agent"}
    assert components["MessagePage"]["properties"]["messages"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Message"},
    }
    assert components["TokenInfo"]["description"].startswith("An API token's metadata")


def test_bodies_refer_to_the_schemas_they_are_loaded_and_dumped_with() -> None:
    post = build_document(SETTINGS, HANDLERS)["paths"]["/api/v1/rooms/{id}/messages"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PostMessageRequest"}
    for status, ref in (("201", "Message"), ("200", "Message"), ("404", "Error")):
        schema = post["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{ref}"}, status


def test_every_wire_schema_is_published_under_its_name_and_nothing_else_is() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. apispec registering a schema twice
        components = build_document(SETTINGS, HANDLERS)["components"]["schemas"]
    wire_schemas = {
        cls
        for _, cls in inspect.getmembers(wire, inspect.isclass)
        if issubclass(cls, wire.WireSchema) and cls is not wire.WireSchema
    }
    assert wire_schemas <= set(COMPONENT_SCHEMAS)
    assert set(components) == {component_name(s) for s in COMPONENT_SCHEMAS}
    assert component_name(wire.SessionSchema) == "Session"


def test_the_server_serves_the_document_built_at_start_from_its_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = SimpleNamespace(settings=SETTINGS)
    guards = HttpGuards.from_settings(SETTINGS, Metrics(process_collectors=False))
    served = [args for _, h, args in routes.url_specs(services, guards) if h is OpenApiHandler]
    assert [args["document"] for args in served] == [build_document(SETTINGS, HANDLERS)]

    class Extra(BaseHandler):
        route = "/api/v1/extra"

        async def post(self) -> None:
            self.reply(201, {})

    monkeypatch.setattr(routes, "HANDLERS", [*HANDLERS, Extra])
    with pytest.raises(UndocumentedRoute, match="/api/v1/extra"):
        routes.url_specs(services, guards)


def test_every_operation_documents_the_head_limits() -> None:
    # api/heads.py answers 414 / 431 on any route before its handler runs.
    paths = build_document(SETTINGS, HANDLERS)["paths"]
    for route, methods in paths.items():
        for method, operation in methods.items():
            assert {"414", "431"} <= set(operation["responses"]), (route, method)
