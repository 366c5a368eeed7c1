"""The statement-to-(sql, params) step of the store's SQL path, in µs per call.

Times ``Statement.bind`` (what ``store.db.Session`` does before handing psycopg2 the SQL) for
the message post, the paging select, the per-request token lookup, an audit insert (a JSONB
dict) and an ``IN`` list, the best of five runs. No database needed.

    .venv/bin/python bench/sql_bind.py
"""

from __future__ import annotations

import sys
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script (python bench/sql_bind.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agenthub.store import audit, messages, tokens
from agenthub.store.db import Statement


def case(statement: Statement, **values: Any) -> Callable[[], object]:
    return lambda: statement.bind(values)


def main() -> None:
    room, sender = uuid.uuid4(), uuid.uuid4()
    cases = {
        "message post (insert_batch of one)": case(
            messages._INSERT_BATCH,
            room_id=room,
            sender_ids=[sender],
            bodies=["hello"],
            client_msg_ids=["c1"],
            message_kinds=["text"],
            data_values=[None],
            reply_seqs=[None],
            room_mentions=[False],
            mention_posts=[],
            mention_names=[],
        ),
        "page select (newest_first, before)": case(
            messages._NEWEST_BEFORE, room_id=room, before_seq=50, limit=20
        ),
        "token lookup (with_agent_by_prefix)": case(
            tokens._WITH_AGENT_BY_PREFIX, token_prefix="abcd1234"
        ),
        "audit insert (JSONB dict payload)": case(
            audit._INSERT, type="room-created", agent_id=sender, payload={"roomId": str(room)}
        ),
        "IN of 3 (standing_by_prefixes)": case(
            tokens._STANDING_BY_PREFIXES, prefixes=["a", "b", "c"]
        ),
    }
    number = 5000
    for name, call in cases.items():
        call()  # the first call compiles
        best = min(timeit.repeat(call, number=number, repeat=5)) / number
        print(f"{name:40s} {best * 1e6:7.2f} µs")


if __name__ == "__main__":
    main()
