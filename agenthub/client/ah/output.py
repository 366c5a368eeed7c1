"""What ``ah`` prints: lines for people, or ``--json``: one JSON object per line, the API's
objects as the server sent them (camelCase)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from agenthub.client.models import Agent, Message, Room


def compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Output:
    """Stdout for data, stderr for notes (each starting ``ah:``)."""

    def __init__(self, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def line(self, text: str) -> None:
        self.out.write(text + "\n")

    def obj(self, obj: Mapping[str, Any]) -> None:
        self.out.write(compact(obj) + "\n")

    def note(self, text: str) -> None:
        self.err.write(f"ah: {text}\n")

    def flush(self) -> None:
        self.out.flush()


def room_label(room: Room) -> str:
    return f"#{room.slug}"


def message_line(msg: Message, room: str, names: Mapping[str, str]) -> str:
    """``#general 57 alice: text`` (a reply: ``#general 58 bob (re 57): …``; a structured
    message: ``… alice [task] {"pr": 412}: …``). Lines after the first are indented."""
    sender = names.get(msg.sender_id, msg.sender_id)
    head = f"{room} {msg.seq} {sender}"
    if msg.reply_to is not None:
        head += f" (re {msg.reply_to})"
    if msg.kind != "text":
        head += f" [{msg.kind}]"
    if msg.redacted:
        return f"{head}: (redacted)"
    if msg.data is not None:
        head += " " + compact(msg.data)
    body = msg.body.replace("\n", "\n    ")
    return f"{head}: {body}" if body else head


def room_cells(room: Room) -> list[str]:
    """``#general  public  last 57  3 unread, 1 mention  archived  topic`` as cells."""
    unread = "not a member"
    if room.member:
        unread = f"{room.unread_count or 0} unread"
        if room.unread_mentions:
            plural = "s" if room.unread_mentions != 1 else ""
            unread += f", {room.unread_mentions} mention{plural}"
    return [
        room_label(room),
        room.visibility if room.kind == "room" else "dm",
        f"last {room.last_seq}",
        unread,
        "archived" if room.archived else "",
        room.topic,
    ]


def agent_cells(agent: Agent) -> list[str]:
    return [agent.name, agent.display_name, agent.role, "disabled" if agent.disabled else ""]


def columns(rows: Iterable[list[str]]) -> list[str]:
    """Rows of cells aligned in columns (two spaces apart)."""
    table = list(rows)
    if not table:
        return []
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(map(len, table)))]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table
    ]
