"""The mentions listing's wire form: ``{mentions: [{message, room: {id, slug}}], nextCursor}``,
valid against the component the OpenAPI document publishes, and nothing else."""

from __future__ import annotations

import dataclasses

from agenthub import wire
from agenthub.services.mentions import Mention, MentionPage
from tests.unit.test_wire import SAMPLES, _validator

MESSAGE = SAMPLES[11][0]  # a Message, with every field at a default


def test_a_mention_page_dumps_the_message_and_its_room() -> None:
    message = dataclasses.replace(MESSAGE, room_slug="lobby")
    page = MentionPage([Mention(message)], next_cursor="c1")
    dumped = wire.MENTION_PAGE.dump(page)
    assert dumped == {
        "mentions": [
            {"message": message.to_dict(), "room": {"id": str(message.room_id), "slug": "lobby"}}
        ],
        "nextCursor": "c1",
    }
    validator = _validator("MentionPage")
    assert validator.is_valid(dumped), list(validator.iter_errors(dumped))
    assert validator.is_valid(wire.MENTION_PAGE.dump(MentionPage([], None)))
    extra_in_room = {**dumped, "mentions": [{**dumped["mentions"][0], "room": {"id": "x"}}]}
    assert not validator.is_valid(extra_in_room)  # slug missing
    assert not validator.is_valid({**dumped, "hasMore": True})
