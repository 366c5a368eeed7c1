"""One shape for ``details`` (docs/adr/0003-error-format.md): messages are lists of strings,
the documented numbers stay numbers, whatever the raiser passed."""

from __future__ import annotations

import pytest

from agenthub.errors import (
    PayloadTooLarge,
    RateLimited,
    ValidationFailed,
    normalize_details,
)


def test_a_single_message_becomes_a_list_of_one() -> None:
    error = ValidationFailed("invalid id", {"id": "not a valid UUID"})
    assert error.to_dict()["details"] == {"id": ["not a valid UUID"]}


def test_marshmallow_lists_stay_lists() -> None:
    raw = {"slug": ["Missing data for required field."], "x": ["Unknown field.", "again"]}
    assert normalize_details(raw) == raw


def test_nested_messages_flatten_to_dotted_keys() -> None:
    raw = {"tags": {0: ["Not a valid string."], 3: ["Too long."]}, "_schema": ["bad"]}
    assert normalize_details(raw) == {
        "tags.0": ["Not a valid string."],
        "tags.3": ["Too long."],
        "_schema": ["bad"],
    }


def test_the_documented_numbers_stay_numbers() -> None:
    assert PayloadTooLarge("too big", {"limit": 1024}).to_dict()["details"] == {"limit": 1024}
    assert RateLimited("slow down", 2.4).to_dict()["details"] == {"retryAfter": 2}


@pytest.mark.parametrize("value", [True, None, 1.5])
def test_anything_else_becomes_a_message(value: object) -> None:
    assert normalize_details({"field": value}) == {"field": [str(value)]}


def test_no_details_means_no_key() -> None:
    assert "details" not in ValidationFailed("bad").to_dict()
