"""``agenthub token issue --expires``: durations from now, or ISO-8601 with an offset."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agenthub.cli import parse_expiry

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        (" 1d ", timedelta(days=1)),
    ],
)
def test_durations_count_from_now(text, delta):
    assert parse_expiry(text, now=NOW) == NOW + delta


def test_duration_without_now_counts_from_the_clock():
    before = datetime.now(UTC)
    got = parse_expiry("1h")
    after = datetime.now(UTC)
    assert before + timedelta(hours=1) <= got <= after + timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2031-01-31T00:00:00Z", datetime(2031, 1, 31, tzinfo=UTC)),
        ("2031-01-31T00:00:00+00:00", datetime(2031, 1, 31, tzinfo=UTC)),
        (
            "2031-01-31T02:00:00+02:00",
            datetime(2031, 1, 31, 2, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_iso_with_offset(text, expected):
    got = parse_expiry(text, now=NOW)
    assert got == expected
    assert got.tzinfo is not None


@pytest.mark.parametrize(
    "text", ["", "soon", "30", "30x", "-1d", "1.5h", "d30", "2031-01-31T00:00:00", "2031-13-01Z"]
)
def test_bad_values_are_argparse_errors(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_expiry(text, now=NOW)


@pytest.mark.parametrize("text", ["100000000d", "99999999999999999999w", "3654d"])
def test_a_duration_beyond_the_token_lifetime_is_refused_not_a_traceback(text):
    # 100000000d overflowed the date arithmetic (OverflowError, a traceback) before.
    with pytest.raises(argparse.ArgumentTypeError, match="too far ahead: at most 3653d"):
        parse_expiry(text, now=NOW)


def test_the_longest_duration_is_accepted():
    assert parse_expiry("3653d", now=NOW) == NOW + timedelta(days=3653)
