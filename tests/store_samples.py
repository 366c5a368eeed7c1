"""The statements the store defines, and a value of the right kind for each of their
bindparams: the SQL-path tests (unit and integration) run every statement with them."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import agenthub.store
from agenthub.store.db import Statement


def store_statements() -> Iterator[tuple[str, Statement]]:
    """Every Statement the store modules define (module level, or in a module-level dict)."""
    for info in pkgutil.iter_modules(agenthub.store.__path__):
        module = importlib.import_module(f"agenthub.store.{info.name}")
        for attr, value in vars(module).items():
            found = value.items() if isinstance(value, dict) else [(None, value)]
            for key, item in found:
                if isinstance(item, Statement):
                    yield f"{info.name}.{attr}" + (f"[{key}]" if key is not None else ""), item


def sample(name: str, list_length: int = 3) -> Any:
    """A value of the right kind for a bindparam, by the naming the store uses."""
    if name.endswith("_id") or name in ("viewer", "created_by", "target_room"):
        return uuid.uuid4()
    if name in ("limit", "before_seq", "after_seq", "before_position", "after_position"):
        return 42
    if name == "prefixes":
        return [f"pfx{i:05d}" for i in range(list_length)]
    if name == "payload":
        return {"roomId": str(uuid.uuid4()), "seq": 7, "tags": ["a", "é"], "nested": {"ok": True}}
    if name == "after_rank":
        return "0.0607927"  # a rank as PostgreSQL writes a real
    if name == "all_rooms":
        return False
    if name in ("expires_at", "after_created_at"):
        return datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    if name in ("mentions_room", "archived"):
        return True
    if name in ("reply_to", "seq", "target_seq", "thread_root"):
        return 7
    if name == "data":
        return {"task": "review", "files": ["a.py"], "é": None}
    if name in ("new_name", "new_topic"):
        return None  # keeps the column's value
    if name == "message_kind":
        return "task.review"
    # The post statement's arrays, one element per post (insert_batch).
    if name == "sender_ids":
        return [uuid.uuid4() for _ in range(list_length)]
    if name == "bodies":
        return [f"body {i} '; DROP TABLE rooms --" for i in range(list_length)]
    if name == "client_msg_ids":
        return [f"c{i}" if i % 2 else None for i in range(list_length)]
    if name == "message_kinds":
        return ["task.review"] * list_length
    if name == "data_values":
        return [{"task": "review", "i": i} if i % 2 else None for i in range(list_length)]
    if name == "reply_seqs":
        return [7 if i % 2 else None for i in range(list_length)]
    if name == "room_mentions":
        return [bool(i % 2) for i in range(list_length)]
    if name == "mention_posts":
        return [i + 1 for i in range(list_length)]
    if name == "mention_names":
        return [f"name-{i}" for i in range(list_length)]
    return f"{name}-value'; DROP TABLE rooms --"


def values_for(statement: Statement, list_length: int = 3) -> dict[str, Any]:
    return {name: sample(name, list_length) for name in statement.compiled().names}
