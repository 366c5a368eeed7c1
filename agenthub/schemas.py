"""Request shapes shared by REST handlers and socket events. Unknown fields are rejected.

These check types and presence; the services check the rules (slugs, limits, access). One rule
holds for every string in every payload, whatever its schema: it must be valid Unicode, so a
lone UTF-16 surrogate (which JSON's ``\\ud800`` escapes can produce) never reaches a service or
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from agenthub.domain import DEFAULT_MESSAGE_KIND, REF_PATTERN, REF_RULE, ROLES, VISIBILITIES
from agenthub.errors import ValidationFailed


class StrictBoolean(fields.Boolean):
    """Only JSON true/false; marshmallow's Boolean would also take "yes" or 1."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


# A room (id or slug) or an agent (id, name or "me"): the services look names up.
NAME_OR_ID = validate.Regexp(REF_PATTERN, error=REF_RULE)
ROOM_REF_DOC = {"description": "the room's id or its slug"}
AGENT_REF_DOC = {"description": "the agent's id, its name, or me"}


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class CreateAgentRequest(_Strict):
    name = fields.String(required=True)
    displayName = fields.String(load_default=None)
    role = fields.String(load_default="agent", validate=validate.OneOf(ROLES))


class UpdateAgentRequest(_Strict):
    disabled = StrictBoolean(required=True)


class IssueTokenRequest(_Strict):
    expiresAt = fields.AwareDateTime(load_default=None, allow_none=True)


class CreateRoomRequest(_Strict):
    slug = fields.String(required=True)
    name = fields.String(load_default=None)
    topic = fields.String(load_default="")
    visibility = fields.String(load_default="public", validate=validate.OneOf(VISIBILITIES))


class UpdateRoomRequest(_Strict):
    name = fields.String(load_default=None)
    topic = fields.String(load_default=None)


class AddMemberRequest(_Strict):
    # Absent (or an empty body): the caller joins.
    agentId = fields.String(load_default=None, validate=NAME_OR_ID, metadata=AGENT_REF_DOC)


class CreateDmRequest(_Strict):
    agentId = fields.String(
        required=True,
        validate=NAME_OR_ID,
        metadata={"description": "the other agent: its id or its name"},
    )


class PostMessageRequest(_Strict):
    body = fields.String(load_default="", metadata={"description": "may be empty with data"})
    clientMsgId = fields.String(load_default=None, allow_none=True)
    replyTo = fields.Integer(load_default=None, allow_none=True, strict=True)
    kind = fields.String(load_default=DEFAULT_MESSAGE_KIND)
    data = fields.Dict(load_default=None, allow_none=True, keys=fields.String())


# The largest seq PostgreSQL's bigint holds: anything above is refused here, not by the database.
MAX_SEQ = 2**63 - 1


class MarkReadRequest(_Strict):
    seq = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_SEQ),
        metadata={"description": "the seq read up to (0 up to the room's lastSeq)"},
    )


class RoomRef(_Strict):
    roomId = fields.String(required=True, validate=NAME_OR_ID, metadata=ROOM_REF_DOC)


class SendMessageEvent(PostMessageRequest):
    roomId = fields.String(required=True, validate=NAME_OR_ID, metadata=ROOM_REF_DOC)


class RoomReadEvent(MarkReadRequest):
    roomId = fields.String(required=True, validate=NAME_OR_ID, metadata=ROOM_REF_DOC)


class SyncRoomEvent(_Strict):
    roomId = fields.String(required=True, validate=NAME_OR_ID, metadata=ROOM_REF_DOC)
    afterSeq = fields.Integer(required=True, strict=True)
    limit = fields.Integer(load_default=None, strict=True)
    # Filters, as on GET /rooms/{id}/messages: one thread (its root's seq), one kind.
    thread = fields.Integer(load_default=None, allow_none=True, strict=True)
    kind = fields.String(load_default=None, allow_none=True)


LONE_SURROGATE = "Not valid Unicode: contains a lone UTF-16 surrogate (U+D800 to U+DFFF)."


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True  # the only str that UTF-8 cannot encode holds a lone surrogate
    return False


def _printable(name: str) -> str:
    """A field name fit to be echoed in ``details`` (its surrogates escaped)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def fields_with_surrogates(data: dict[Any, Any]) -> list[str]:
    """The top-level keys whose name or value (at any depth) holds a lone surrogate.

    Iterative, so a deeply nested payload cannot exhaust the stack here."""
    bad: list[str] = []
    for key, value in data.items():
        name = str(key)
        pending: list[Any] = [name, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                if _has_surrogate(item):
                    bad.append(_printable(name))
                    break
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list | tuple):
                pending.extend(item)
    return bad


# One instance per schema, made on first use: building one deep-copies its fields, several
# times the cost of the load itself, on every request. A schema's load keeps no state on it.
_INSTANCES: dict[type[Schema], Schema] = {}


def _instance(schema: type[Schema]) -> Schema:
    instance = _INSTANCES.get(schema)
    if instance is None:
        instance = _INSTANCES[schema] = schema()
    return instance


def load(schema: type[Schema], data: Any) -> dict[str, Any]:
    """Validate ``data`` against ``schema``; ValidationFailed carries field messages."""
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", {"body": "expected object"})
    bad = fields_with_surrogates(data)
    if bad:
        raise ValidationFailed("request validation failed", {name: LONE_SURROGATE for name in bad})
    try:
        result: dict[str, Any] = _instance(schema).load(data)
    except ValidationError as exc:
        details = exc.normalized_messages()  # type: ignore[no-untyped-call]
        raise ValidationFailed(
            "request validation failed",
            details if isinstance(details, dict) else {"body": details},
        ) from None
    return result
