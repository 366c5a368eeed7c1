"""The ``agenthub_auth`` notification payload (agenthub/services/auth_changes.py)."""

from __future__ import annotations

import uuid

import pytest

from agenthub.services import auth_changes


def test_notification_payloads_round_trip() -> None:
    agent = uuid.uuid4()
    token = auth_changes.TokenChanged("k3v9q2m1x0ab", agent)
    disabled = auth_changes.AgentChanged(agent, True)
    enabled = auth_changes.AgentChanged(agent, False)
    for change in (token, disabled, enabled):
        payload = auth_changes.encode(change)
        assert len(payload.encode()) < 8000  # PostgreSQL's limit
        assert auth_changes.decode(payload) == change


def test_an_empty_payload_means_everything_changed() -> None:
    assert auth_changes.decode("") == auth_changes.EverythingChanged(readable=True)


@pytest.mark.parametrize(
    "payload",
    [
        "junk",
        "[]",
        "1",
        '"x"',
        '{"kind": "token"}',
        '{"kind": "token", "prefix": 1, "agentId": "x"}',
        '{"kind": "token", "prefix": "p", "agentId": "not-a-uuid"}',
        '{"kind": "agent", "agentId": "00000000-0000-0000-0000-000000000000"}',
        '{"kind": "room"}',
    ],
)
def test_an_unreadable_payload_is_treated_as_everything_changed(payload: str) -> None:
    assert auth_changes.decode(payload) == auth_changes.EverythingChanged(readable=False)
