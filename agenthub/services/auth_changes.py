"""What the ``agenthub_auth`` notification says: a change to the standing of an API token or
an agent, so that every server process drops what it remembers about it at once.

The payload is a small JSON object (docs/adr/0005-auth-notifications.md):

    {"kind": "token", "prefix": "k3v9q2m1x0ab", "agentId": "<uuid>"}   the token was revoked
    {"kind": "agent", "agentId": "<uuid>", "disabled": true}          disabled (or enabled)

An empty payload (``NOTIFY agenthub_auth``, what an operator types after editing the tables by
hand) means "anything may have changed". So does a payload this version cannot read, so that
a newer sender never makes an older server trust stale state.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from agenthub.store import notify
from agenthub.store.db import Session


@dataclass(frozen=True)
class TokenChanged:
    prefix: str
    agent_id: uuid.UUID


@dataclass(frozen=True)
class AgentChanged:
    agent_id: uuid.UUID
    disabled: bool


@dataclass(frozen=True)
class EverythingChanged:
    """Re-read everything. ``readable`` is False when the payload could not be understood."""

    readable: bool = True


AuthChange = TokenChanged | AgentChanged | EverythingChanged


async def announce(s: Session, change: TokenChanged | AgentChanged) -> None:
    """Tell every server process about ``change`` when ``s``'s transaction commits."""
    await notify.send(s, notify.AUTH_CHANNEL, encode(change))


def encode(change: TokenChanged | AgentChanged) -> str:
    if isinstance(change, TokenChanged):
        body: dict[str, object] = {
            "kind": "token",
            "prefix": change.prefix,
            "agentId": str(change.agent_id),
        }
    else:
        body = {"kind": "agent", "agentId": str(change.agent_id), "disabled": change.disabled}
    return json.dumps(body, separators=(",", ":"))


def decode(payload: str) -> AuthChange:
    if not payload.strip():
        return EverythingChanged()
    try:
        body = json.loads(payload)
        kind = body["kind"]
        if kind == "token" and isinstance(body["prefix"], str):
            return TokenChanged(body["prefix"], uuid.UUID(body["agentId"]))
        if kind == "agent" and isinstance(body["disabled"], bool):
            return AgentChanged(uuid.UUID(body["agentId"]), body["disabled"])
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return EverythingChanged(readable=False)
