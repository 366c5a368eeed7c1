"""The one rule every payload string obeys, whatever its schema: valid Unicode (no lone
UTF-16 surrogate), checked without recursion."""

from __future__ import annotations

import pytest

from agenthub import schemas
from agenthub.errors import ValidationFailed

LONE = "a\ud800b"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": LONE}, "body"),
        ({"body": "x", "clientMsgId": "\udfff"}, "clientMsgId"),
        ({"body": ["ok", {"k": LONE}]}, "body"),  # nested: named by its top-level field
        ({"body": {LONE: 1}}, "body"),  # in a nested key
        ({"b\ud800": "x"}, "b\\ud800"),  # in a field name: echoed escaped
    ],
)
def test_a_lone_surrogate_anywhere_names_its_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        schemas.load(schemas.PostMessageRequest, payload)
    assert list(info.value.details) == [field]
    assert info.value.details[field] == [schemas.LONE_SURROGATE]


def test_every_offending_field_is_reported() -> None:
    with pytest.raises(ValidationFailed) as info:
        schemas.load(schemas.PostMessageRequest, {"body": LONE, "clientMsgId": LONE})
    assert set(info.value.details) == {"body", "clientMsgId"}


def test_paired_surrogates_are_ordinary_characters() -> None:
    # JSON writes U+1F600 as the pair \ud83d\ude00; json.loads joins it into one character.
    data = schemas.load(schemas.PostMessageRequest, {"body": "smile \U0001f600"})
    assert data["body"] == "smile \U0001f600"


def test_deep_nesting_does_not_recurse() -> None:
    nested: object = LONE
    for _ in range(100_000):
        nested = [nested]
    assert schemas.fields_with_surrogates({"body": nested}) == ["body"]
