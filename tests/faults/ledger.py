"""What the database holds after a fault scenario, compared with what the senders were told."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import psycopg2

from tests.faults.load import Send


@dataclass
class StoreCheck:
    rows: int
    acked_missing: list[str] = field(default_factory=list)  # acked, yet no such row (or another)
    duplicates: list[str] = field(default_factory=list)  # a clientMsgId or body stored twice
    strangers: int = 0  # rows no sender attempted
    gaps: dict[str, list[int]] = field(default_factory=dict)  # room -> seqs missing in 1..max
    last_seq_off: dict[str, tuple[int, int]] = field(default_factory=dict)  # room -> (last, max)
    stored_unacked: list[str] = field(default_factory=list)  # stored, never acked (gave up)

    @property
    def gap_count(self) -> int:
        return sum(len(missing) for missing in self.gaps.values())


def db_params(env: dict[str, str]) -> dict[str, str]:
    params = {
        "host": env.get("POSTGRES_HOST", "127.0.0.1"),
        "port": env.get("POSTGRES_PORT", "5432"),
        "user": env.get("POSTGRES_USER", "agenthub"),
        "dbname": env.get("POSTGRES_DB", "agenthub"),
    }
    if env.get("POSTGRES_PASSWORD"):
        params["password"] = env["POSTGRES_PASSWORD"]
    return params


def check_store(env: dict[str, str], room_ids: list[str], sends: list[Send]) -> StoreCheck:
    conn = psycopg2.connect(**db_params(env))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT m.id::text, m.room_id::text, m.seq, a.name, m.client_msg_id, m.body"
                " FROM messages m JOIN agents a ON a.id = m.sender_id"
                " WHERE m.room_id::text = ANY(%s)",
                (room_ids,),
            )
            rows = cur.fetchall()
            cur.execute(
                "SELECT id::text, last_seq FROM rooms WHERE id::text = ANY(%s)", (room_ids,)
            )
            last_seqs = dict(cur.fetchall())
    finally:
        conn.close()

    check = StoreCheck(rows=len(rows))
    by_key: dict[tuple[str, str | None], list[tuple[str, str, int]]] = {}
    for message_id, room_id, seq, sender, key, _body in rows:
        by_key.setdefault((sender, key), []).append((message_id, room_id, seq))
    check.duplicates += [
        f"{s}/{k}" for (s, k), found in by_key.items() if k is not None and len(found) > 1
    ]
    bodies = Counter((sender, body) for _i, _r, _s, sender, _k, body in rows)
    check.duplicates += [f"{s}: {b!r}" for (s, b), n in bodies.items() if n > 1]

    attempted = {(send.sender, send.key) for send in sends}
    check.strangers = sum(len(v) for k, v in by_key.items() if k not in attempted)
    for send in sends:
        stored = by_key.get((send.sender, send.key), [])
        if send.acked:
            if (send.message_id, send.room_id, send.seq) not in stored:
                check.acked_missing.append(f"{send.sender}/{send.key}")
        elif stored:
            check.stored_unacked.append(f"{send.sender}/{send.key}")

    for room_id in room_ids:
        seqs = sorted(seq for _i, r, seq, _s, _k, _b in rows if r == room_id)
        top = seqs[-1] if seqs else 0
        missing = sorted(set(range(1, top + 1)) - set(seqs))
        if missing:
            check.gaps[room_id] = missing
        if int(last_seqs.get(room_id, -1)) != top:
            check.last_seq_off[room_id] = (int(last_seqs.get(room_id, -1)), top)
    return check
