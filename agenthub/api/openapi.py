"""The OpenAPI 3.1 document, generated from the route table and the marshmallow schemas.

Paths and methods come from the handlers ``build_document`` is given (each handler's ``route``
and the methods it implements); request bodies from the request schemas in ``agenthub.schemas``;
response bodies from the response schemas below, which describe ``models.*.to_dict``. A
handler method without an entry in ``OPERATIONS``, or an entry without a handler, makes
``build_document`` raise, so the document cannot drift from the code: the server builds it at
start, tests check both ways, and schemathesis checks live responses against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, fields, missing, validate

from agenthub import __version__, schemas
from agenthub.api.base import BaseHandler
from agenthub.config import Settings

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"


class UndocumentedRoute(Exception):
    """A handler method has no operation in OPERATIONS, or an operation has no handler."""


# --- marshmallow -> JSON Schema (the field types AgentHub uses) -----------------------------


def field_schema(f: fields.Field[Any]) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(f, fields.Nested):
        nested = f.nested
        target = nested if isinstance(nested, type) else type(nested)
        ref: dict[str, Any] = {"$ref": f"#/components/schemas/{_name(target)}"}
        out = {"type": "array", "items": ref} if f.many else ref
    elif isinstance(f, fields.List):
        out = {"type": "array", "items": field_schema(f.inner)}
    elif isinstance(f, fields.Dict):
        out = {"type": "object"}
    elif isinstance(f, fields.UUID):
        out = {"type": "string", "format": "uuid"}
    elif isinstance(f, fields.DateTime):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(f, fields.Boolean):
        out = {"type": "boolean"}
    elif isinstance(f, fields.Integer):
        out = {"type": "integer"}
    elif isinstance(f, fields.Number):
        out = {"type": "number"}
    elif isinstance(f, fields.String):
        out = {"type": "string"}
    elif isinstance(f, fields.Raw):
        out = {}
    else:  # pragma: no cover - a new field type must be taught here
        raise TypeError(f"no JSON Schema mapping for {type(f).__name__}")
    for v in f.validators:
        if isinstance(v, validate.OneOf):
            out["enum"] = list(v.choices)
        elif isinstance(v, validate.Range):
            if v.min is not None:
                out["minimum" if v.min_inclusive else "exclusiveMinimum"] = v.min
            if v.max is not None:
                out["maximum" if v.max_inclusive else "exclusiveMaximum"] = v.max
        elif isinstance(v, validate.Length):
            if v.equal is not None:
                out["minLength"] = out["maxLength"] = v.equal
            if v.min is not None:
                out["minLength"] = v.min
            if v.max is not None:
                out["maxLength"] = v.max
        elif isinstance(v, validate.Regexp):
            out["pattern"] = v.regex.pattern
    if f.allow_none:
        if "$ref" in out:
            out = {"oneOf": [out, {"type": "null"}]}
        elif "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
    default = f.load_default
    if default is not missing and not callable(default):
        try:
            json.dumps(default)
        except TypeError:
            pass
        else:
            out["default"] = default
    description = f.metadata.get("description")
    if description:
        out["description"] = description
    return out


def schema_to_json(schema: type[Schema]) -> dict[str, Any]:
    instance = schema()
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, f in instance.fields.items():
        key = f.data_key or name
        props[key] = field_schema(f)
        if f.required:
            required.append(key)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    if instance.unknown == RAISE:
        out["additionalProperties"] = False
    if schema.__doc__:
        out["description"] = " ".join(schema.__doc__.split())
    return out


def _name(schema: type[Schema]) -> str:
    return schema.__name__


# --- response shapes (what models.*.to_dict and the handlers produce) -----------------------


class _Response(Schema):
    """Every field is always present; nothing else is."""

    class Meta:
        unknown = RAISE


class Agent(_Response):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    displayName = fields.String(required=True)
    role = fields.String(validate=validate.OneOf(["admin", "agent"]), required=True)
    disabled = fields.Boolean(required=True)
    createdAt = fields.DateTime(required=True)


class AgentList(_Response):
    agents = fields.Nested(Agent, many=True, required=True)


class TokenInfo(_Response):
    """An API token's metadata; the secret is never shown again."""

    prefix = fields.String(required=True)
    agentId = fields.UUID(required=True)
    createdAt = fields.DateTime(required=True)
    expiresAt = fields.DateTime(allow_none=True, required=True)
    revokedAt = fields.DateTime(allow_none=True, required=True)
    lastUsedAt = fields.DateTime(allow_none=True, required=True)


class TokenList(_Response):
    tokens = fields.Nested(TokenInfo, many=True, required=True)


class IssuedToken(_Response):
    """The new API token, shown this once."""

    token = fields.String(required=True)
    prefix = fields.String(required=True)
    agentId = fields.UUID(required=True)
    expiresAt = fields.DateTime(allow_none=True, required=True)


class Session(_Response):
    """A session JWT for ``Authorization: Bearer``."""

    token = fields.String(required=True)
    expiresAt = fields.DateTime(required=True)
    agent = fields.Nested(Agent, required=True)


class Room(_Response):
    id = fields.UUID(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)
    visibility = fields.String(validate=validate.OneOf(["public", "private"]), required=True)
    createdBy = fields.UUID(allow_none=True, required=True)
    lastSeq = fields.Integer(validate=validate.Range(min=0), required=True)
    createdAt = fields.DateTime(required=True)
    member = fields.Boolean(required=True)


class RoomList(_Response):
    rooms = fields.Nested(Room, many=True, required=True)


class Member(_Response):
    agentId = fields.UUID(required=True)
    name = fields.String(required=True)
    displayName = fields.String(required=True)
    role = fields.String(validate=validate.OneOf(["admin", "agent"]), required=True)
    joinedAt = fields.DateTime(required=True)
    online = fields.Boolean(required=True)


class MemberList(_Response):
    members = fields.Nested(Member, many=True, required=True)


class Message(_Response):
    id = fields.UUID(required=True)
    roomId = fields.UUID(required=True)
    seq = fields.Integer(validate=validate.Range(min=1), required=True)
    senderId = fields.UUID(required=True)
    body = fields.String(required=True)
    clientMsgId = fields.String(allow_none=True, required=True)
    createdAt = fields.DateTime(required=True)


class MessagePage(_Response):
    messages = fields.Nested(Message, many=True, required=True)
    nextCursor = fields.String(allow_none=True, required=True)
    hasMore = fields.Boolean(required=True)


class AuditEvent(_Response):
    id = fields.UUID(required=True)
    type = fields.String(required=True)
    agentId = fields.UUID(allow_none=True, required=True)
    payload = fields.Dict(required=True)
    createdAt = fields.DateTime(required=True)


class AuditPage(_Response):
    events = fields.Nested(AuditEvent, many=True, required=True)
    nextCursor = fields.String(allow_none=True, required=True)


class ErrorBody(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class Error(_Response):
    """Every error, on every route (docs/adr/0003-error-format.md)."""

    error = fields.Nested(ErrorBody, required=True)


class Health(_Response):
    status = fields.String(validate=validate.OneOf(["ok"]), required=True)
    uptime = fields.Float(required=True)


class Readiness(_Response):
    status = fields.String(validate=validate.OneOf(["ready", "unavailable"]), required=True)
    checks = fields.Dict(required=True)


COMPONENT_SCHEMAS: tuple[type[Schema], ...] = (
    schemas.CreateAgentRequest,
    schemas.UpdateAgentRequest,
    schemas.IssueTokenRequest,
    schemas.CreateRoomRequest,
    schemas.AddMemberRequest,
    schemas.PostMessageRequest,
    Agent,
    AgentList,
    TokenInfo,
    TokenList,
    IssuedToken,
    Session,
    Room,
    RoomList,
    Member,
    MemberList,
    Message,
    MessagePage,
    AuditEvent,
    AuditPage,
    ErrorBody,
    Error,
    Health,
    Readiness,
)

# --- operations --------------------------------------------------------------------------

_ERROR_TEXT = {
    400: "Validation failed (malformed JSON, wrong types, unknown fields, bad ids or parameters)",
    401: "Missing, invalid or expired credential",
    403: "Not allowed (role, membership, or a browser origin outside ALLOWED_ORIGINS)",
    404: "No such resource (or one the caller may not see)",
    409: "Conflict with stored state",
    413: "Request body or message too large",
    429: "Rate limited; retry after the number of seconds in Retry-After",
    503: "The database is unavailable",
}

PUBLIC = "public"  # no credential
SESSION = "session"  # a session JWT
API_TOKEN = "apiToken"  # noqa: S105 (a scheme name) - an API token, POST /api/v1/sessions


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    responses: dict[int, type[Schema] | str | None]  # schema, a media type, or no body
    errors: Sequence[int] = ()
    auth: str = SESSION
    request: type[Schema] | None = None
    request_required: bool = True
    query: Sequence[str] = ()
    tags: Sequence[str] = field(default=())
    description: str = ""


_AUTH_ERRORS = (401, 403, 429, 503)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/healthz", "GET"): Operation(
        "health", "Liveness: the process answers", {200: Health}, (403, 429), PUBLIC, tags=["ops"]
    ),
    ("/readyz", "GET"): Operation(
        "readiness",
        "Readiness: the database answers",
        {200: Readiness, 503: Readiness},
        (403, 429),
        PUBLIC,
        tags=["ops"],
    ),
    ("/metrics", "GET"): Operation(
        "metrics",
        "Prometheus text exposition",
        {200: "text/plain"},
        (401, 403, 429),
        PUBLIC,
        tags=["ops"],
        description="Open unless METRICS_TOKEN is set; then send it as a bearer credential.",
    ),
    ("/api/v1/openapi.json", "GET"): Operation(
        "openapi", "This document", {200: "application/json"}, (403, 429), PUBLIC, tags=["ops"]
    ),
    ("/api/v1/sessions", "POST"): Operation(
        "createSession",
        "Exchange an API token for a session JWT",
        {201: Session},
        (401, 403, 413, 429, 503),
        API_TOKEN,
        tags=["sessions"],
        description="Failed attempts are limited per client address and per token prefix "
        "(429 with Retry-After, before the token is verified).",
    ),
    ("/api/v1/agents", "GET"): Operation(
        "listAgents", "List agents", {200: AgentList}, _AUTH_ERRORS, tags=["agents"]
    ),
    ("/api/v1/agents", "POST"): Operation(
        "createAgent",
        "Create an agent (admin)",
        {201: Agent},
        (400, 409, 413, *_AUTH_ERRORS),
        request=schemas.CreateAgentRequest,
        tags=["agents"],
    ),
    ("/api/v1/agents/me", "GET"): Operation(
        "getMe", "The calling agent", {200: Agent}, (404, *_AUTH_ERRORS), tags=["agents"]
    ),
    ("/api/v1/agents/{id}", "GET"): Operation(
        "getAgent", "One agent", {200: Agent}, (400, 404, *_AUTH_ERRORS), tags=["agents"]
    ),
    ("/api/v1/agents/{id}", "PATCH"): Operation(
        "updateAgent",
        "Disable or enable an agent (admin)",
        {200: Agent},
        (400, 404, 413, *_AUTH_ERRORS),
        request=schemas.UpdateAgentRequest,
        tags=["agents"],
    ),
    ("/api/v1/agents/{id}/tokens", "GET"): Operation(
        "listTokens",
        "An agent's API tokens (admin, or the agent itself)",
        {200: TokenList},
        (400, 404, *_AUTH_ERRORS),
        tags=["tokens"],
    ),
    ("/api/v1/agents/{id}/tokens", "POST"): Operation(
        "issueToken",
        "Issue an API token (admin)",
        {201: IssuedToken},
        (400, 404, 413, *_AUTH_ERRORS),
        request=schemas.IssueTokenRequest,
        request_required=False,
        tags=["tokens"],
    ),
    ("/api/v1/tokens/{prefix}", "DELETE"): Operation(
        "revokeToken",
        "Revoke an API token by its prefix",
        {204: None},
        (400, 404, *_AUTH_ERRORS),
        tags=["tokens"],
    ),
    ("/api/v1/rooms", "GET"): Operation(
        "listRooms", "Rooms the caller can see", {200: RoomList}, _AUTH_ERRORS, tags=["rooms"]
    ),
    ("/api/v1/rooms", "POST"): Operation(
        "createRoom",
        "Create a room (the creator becomes a member)",
        {201: Room},
        (400, 409, 413, *_AUTH_ERRORS),
        request=schemas.CreateRoomRequest,
        tags=["rooms"],
    ),
    ("/api/v1/rooms/{id}", "GET"): Operation(
        "getRoom", "One room", {200: Room}, (400, 404, *_AUTH_ERRORS), tags=["rooms"]
    ),
    ("/api/v1/rooms/{id}/members", "GET"): Operation(
        "listMembers",
        "A room's members",
        {200: MemberList},
        (400, 404, *_AUTH_ERRORS),
        tags=["members"],
    ),
    ("/api/v1/rooms/{id}/members", "POST"): Operation(
        "addMember",
        "Add a member (200 when already a member)",
        {201: Member, 200: Member},
        (400, 404, 409, 413, *_AUTH_ERRORS),
        request=schemas.AddMemberRequest,
        tags=["members"],
    ),
    ("/api/v1/rooms/{id}/members/{agentId}", "DELETE"): Operation(
        "removeMember",
        "Remove a member",
        {204: None},
        (400, 404, 409, *_AUTH_ERRORS),
        tags=["members"],
    ),
    ("/api/v1/rooms/{id}/messages", "GET"): Operation(
        "listMessages",
        "Messages in seq order, paged by cursor or after a seq",
        {200: MessagePage},
        (400, 404, *_AUTH_ERRORS),
        query=("limit", "after", "cursor"),
        tags=["messages"],
    ),
    ("/api/v1/rooms/{id}/messages", "POST"): Operation(
        "postMessage",
        "Post a message (200 returns the stored one for a repeated clientMsgId)",
        {201: Message, 200: Message},
        (400, 404, 409, 413, *_AUTH_ERRORS),
        request=schemas.PostMessageRequest,
        tags=["messages"],
    ),
    ("/api/v1/audit", "GET"): Operation(
        "listAudit",
        "The audit trail, newest first (admin)",
        {200: AuditPage},
        (400, *_AUTH_ERRORS),
        query=("type", "limit", "cursor"),
        tags=["audit"],
    ),
}


def _path_parameter(name: str) -> dict[str, Any]:
    if name == "prefix":
        schema: dict[str, Any] = {"type": "string", "description": "an API token's prefix"}
    else:
        schema = {"type": "string", "format": "uuid"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameter(name: str, settings: Settings) -> dict[str, Any]:
    schemas_by_name: dict[str, dict[str, Any]] = {
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": settings.page_size_max,
            "default": settings.page_size_default,
        },
        "after": {"type": "integer", "minimum": 0, "description": "return messages after seq"},
        "cursor": {"type": "string", "maxLength": 512, "description": "opaque nextCursor"},
        "type": {"type": "string", "maxLength": 64, "description": "audit event type"},
    }
    return {"name": name, "in": "query", "required": False, "schema": schemas_by_name[name]}


def _ref(schema: type[Schema]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{_name(schema)}"}


def _responses(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, body in sorted(op.responses.items()):
        entry: dict[str, Any] = {"description": "OK" if status < 300 else "see body"}
        if isinstance(body, str):
            entry["content"] = {body: {"schema": {} if body != JSON else {"type": "object"}}}
        elif body is not None:
            entry["content"] = {JSON: {"schema": _ref(body)}}
        if status == 201:
            entry["description"] = "Created"
        elif status == 204:
            entry["description"] = "Done; no body"
        out[str(status)] = entry
    for status in sorted(set(op.errors)):
        entry = {"description": _ERROR_TEXT[status], "content": {JSON: {"schema": _ref(Error)}}}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}}
            }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        out[str(status)] = entry
    return out


def _operation(route: str, op: Operation, settings: Settings) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "responses": _responses(op),
    }
    if op.description:
        doc["description"] = op.description
    doc["security"] = [] if op.auth == PUBLIC else [{op.auth: []}]
    params = [
        _path_parameter(part[1:-1])
        for part in route.split("/")
        if part.startswith("{") and part.endswith("}")
    ]
    params += [_query_parameter(name, settings) for name in op.query]
    if params:
        doc["parameters"] = params
    if op.request is not None:
        doc["requestBody"] = {
            "required": op.request_required,
            "content": {JSON: {"schema": _ref(op.request)}},
        }
    return doc


def implemented(handlers: Iterable[type[BaseHandler]]) -> set[tuple[str, str]]:
    return {(h.route, method) for h in handlers for method in h.methods()}


def build_document(settings: Settings, handlers: Iterable[type[BaseHandler]]) -> dict[str, Any]:
    handlers = list(handlers)
    live = implemented(handlers)
    undocumented = sorted(live - OPERATIONS.keys())
    stale = sorted(OPERATIONS.keys() - live)
    if undocumented or stale:
        raise UndocumentedRoute(f"undocumented: {undocumented}; documented but gone: {stale}")
    paths: dict[str, dict[str, Any]] = {}
    for handler in handlers:
        for method in handler.methods():
            op = OPERATIONS[(handler.route, method)]
            paths.setdefault(handler.route, {})[method.lower()] = _operation(
                handler.route, op, settings
            )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "AgentHub",
            "version": __version__,
            "description": "REST API of AgentHub (docs/API.md). Every error is "
            '{"error": {"code", "message", "details?"}}. Browsers may call from '
            "ALLOWED_ORIGINS only (CORS preflight via OPTIONS on every path).",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {_name(s): schema_to_json(s) for s in COMPONENT_SCHEMAS},
            "securitySchemes": {
                SESSION: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A session JWT from POST /api/v1/sessions (15 minutes).",
                },
                API_TOKEN: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token agt_<prefix>_<secret>.",
                },
            },
        },
        "security": [{SESSION: []}],
    }


class OpenApiHandler(BaseHandler):
    """Serves the document ``agenthub.api.routes`` builds once, at start, from its table."""

    route = "/api/v1/openapi.json"
    auth_required = False

    def initialize(self, *args: Any, document: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.document = document

    async def get(self) -> None:
        assert self.document is not None, "OpenApiHandler needs the document (routes.url_specs)"
        self.reply(200, self.document)
