"""Request shapes shared by REST handlers and socket events. Unknown fields are rejected.

These check types and presence; the services check the rules (slugs, limits, access).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from agenthub.domain import ROLES, VISIBILITIES
from agenthub.errors import ValidationFailed


class StrictBoolean(fields.Boolean):
    """Only JSON true/false; marshmallow's Boolean would also take "yes" or 1."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


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
    visibility = fields.String(load_default="public", validate=validate.OneOf(VISIBILITIES))


class AddMemberRequest(_Strict):
    agentId = fields.UUID(required=True)


class PostMessageRequest(_Strict):
    body = fields.String(required=True)
    clientMsgId = fields.String(load_default=None, allow_none=True)


class RoomRef(_Strict):
    roomId = fields.UUID(required=True)


class SendMessageEvent(PostMessageRequest):
    roomId = fields.UUID(required=True)


class SyncRoomEvent(_Strict):
    roomId = fields.UUID(required=True)
    afterSeq = fields.Integer(required=True, strict=True)
    limit = fields.Integer(load_default=None, strict=True)


def load(schema: type[Schema], data: Any) -> dict[str, Any]:
    """Validate ``data`` against ``schema``; ValidationFailed carries field messages."""
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", {"body": "expected object"})
    try:
        result: dict[str, Any] = schema().load(data)
    except ValidationError as exc:
        details = exc.normalized_messages()  # type: ignore[no-untyped-call]
        raise ValidationFailed(
            "request validation failed",
            details if isinstance(details, dict) else {"body": details},
        ) from None
    return result
