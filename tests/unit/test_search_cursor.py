"""The search cursor: an exact position (rank as PostgreSQL wrote it, time to the microsecond,
id) bound to one query and its filters; anything else is a 400, never a database error."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from agenthub.errors import ValidationFailed
from agenthub.services.search import check_query, decode_cursor, encode_cursor
from agenthub.store.search import After

AT = datetime(2026, 11, 30, 12, 34, 56, 789012, tzinfo=UTC)


def forged(scope: str, position: object) -> str:
    raw = json.dumps({"k": "search", "s": scope, "p": position})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("rank", ["0.06079271", "1e-20", "0", "1", "3.4e+38"])
def test_a_cursor_gives_back_exactly_its_position(rank: str) -> None:
    after = After(rank, AT, uuid.uuid4())
    assert decode_cursor(encode_cursor("scope-a", after), "scope-a") == after


def test_a_cursor_is_refused_for_another_scope() -> None:
    cursor = encode_cursor("scope-a", After("0.5", AT, uuid.uuid4()))
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor, "scope-b")
    assert "cursor" in (refused.value.details or {})


@pytest.mark.parametrize(
    "position",
    [
        ["0.5", 0],  # too short
        [0.5, 0, str(uuid.uuid4())],  # a number, not PostgreSQL's text
        ["-1", 0, str(uuid.uuid4())],
        ["nan", 0, str(uuid.uuid4())],
        ["1e39", 0, str(uuid.uuid4())],  # beyond a real
        ["1e-45", 0, str(uuid.uuid4())],  # PostgreSQL would say "out of range"
        ["0.5; DROP TABLE messages", 0, str(uuid.uuid4())],
        ["0.5", "0", str(uuid.uuid4())],
        ["0.5", True, str(uuid.uuid4())],
        ["0.5", 10**20, str(uuid.uuid4())],  # past any datetime
        ["0.5", 0, "not-a-uuid"],
        ["0.5", 0, 5],
        {"rank": "0.5"},
        None,
    ],
)
def test_a_forged_cursor_is_a_validation_error(position: object) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(forged("s", position), "s")


@pytest.mark.parametrize("junk", ["", "x", "é", "!!!!", "eyJrIjoic2VhcmNoIn0", "W10"])
def test_junk_is_a_validation_error(junk: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(junk, "s")


@pytest.mark.parametrize("q", [None, "", " \t ", "x" * 501, "a\x00b"])
def test_a_query_is_checked_before_any_database_work(q: str | None) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_query(q)
    assert "q" in (refused.value.details or {})
