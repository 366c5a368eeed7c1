"""The inbox of an agent in 200 rooms: p50/p99 of ``GET /api/v1/inbox``, with references.

Builds its own world, like bench/search.py: a throwaway PostgreSQL database (POSTGRES_* from
the environment, e.g. ``.agenthub-dev/env``), ``agenthub migrate``, then

- 100 agents and 400 rooms (20 of them DMs); the reader is a member of 200 rooms (the 20 DMs
  among them), every other agent of 30;
- ``--messages`` messages per room (default 500, so 200,000 in all), loaded with COPY, 5 % of
  those in the reader's rooms sent by the reader, 2 % of the others mentioning it;
- the reader's read markers: half of its rooms read to the end, the others with 1-100 unread,
  and 10 of them never read at all (``--messages`` unread each);

and a real ``agenthub serve``. One client then asks for the inbox as the reader, one request at
a time, ``--requests`` times after a warm-up, and prints p50/p90/p99/max. In the same run, the
same client measures two references: ``GET /healthz`` (no credential, no database) and
``GET /api/v1/agents/me`` (the same session check as the inbox, and one primary-key lookup).
It also prints what EXPLAIN ANALYZE says of the inbox statement (its time, estimated cost and
the indexes it uses) with JIT off (as the server runs it), on (PostgreSQL's default: JIT above
a cost of 100,000) and forced, and fails when a sequential scan on messages shows up.

    .venv/bin/python bench/inbox.py                      # about a minute on 2 cores
    .venv/bin/python bench/inbox.py --messages 2000 --requests 300
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2

# Run as a script (python bench/inbox.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agenthub.store import reads as read_store
from bench import world as world_
from bench.rest_post import AGENTHUB, Client, expect, login, percentile
from bench.search import _Lines
from tests.helpers import pg_params

AGENTS = 100
ROOMS = 400
DMS = 20
READER_ROOMS = 200
NEVER_READ = 10
OTHER_MEMBERSHIPS = 30


@dataclass
class World:
    base_url: str
    env: dict[str, str]
    reader_token: str
    reader_id: str
    unread_rooms: int
    total_unread: int


def generate(conn: Any, per_room: int, seed: int) -> tuple[str, int, int]:
    """Agents, rooms, memberships, messages, mentions, read markers; (reader id, rooms with
    something unread, total unread messages) as generated."""
    rng = random.Random(seed)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO agents (name, display_name) SELECT 'bench-agent-' || i, 'Agent ' || i"
            " FROM generate_series(1, %s) i",
            (AGENTS,),
        )
        cur.execute("INSERT INTO agents (name, display_name) VALUES ('reader', 'Reader')")
        cur.execute("SELECT id FROM agents WHERE name = 'reader'")
        reader = str(cur.fetchone()[0])
        cur.execute("SELECT id FROM agents WHERE name LIKE 'bench-agent-%' ORDER BY name")
        agents = [str(r[0]) for r in cur.fetchall()]
        cur.execute(
            "INSERT INTO rooms (slug, name, visibility)"
            " SELECT 'room-' || lpad(i::text, 3, '0'), 'Room ' || i, 'public'"
            " FROM generate_series(1, %s) i",
            (ROOMS - DMS,),
        )
        # The reader's DMs: with the first DMS agents.
        for i in range(DMS):
            key = ":".join(sorted((reader, agents[i])))
            cur.execute(
                "INSERT INTO rooms (slug, name, visibility, kind, dm_key)"
                " VALUES (%s, %s, 'private', 'dm', %s)",
                (f"dm-{i:016x}", f"reader, bench-agent-{i + 1}", key),
            )
        cur.execute("SELECT id, kind FROM rooms ORDER BY kind, slug")
        rows = cur.fetchall()
        dms = [str(r[0]) for r in rows if r[1] == "dm"]
        ordinary = [str(r[0]) for r in rows if r[1] == "room"]
        mine = dms + rng.sample(ordinary, READER_ROOMS - DMS)
        members: dict[str, list[str]] = {room: [] for room in dms + ordinary}
        for i, room in enumerate(dms):
            members[room].append(agents[i])
        for agent in agents:
            for room in rng.sample(ordinary, OTHER_MEMBERSHIPS):
                members[room].append(agent)
        for room in ordinary:
            if not members[room]:
                members[room].append(agents[0])
        for room in mine:
            members[room].append(reader)
        pairs = [(room, agent) for room, agents_in in members.items() for agent in agents_in]
        cur.execute(
            "INSERT INTO room_members (room_id, agent_id)"
            " SELECT * FROM unnest(%s::uuid[], %s::uuid[])",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        )

    mine_set = set(mine)
    start = datetime.now(UTC) - timedelta(days=30)
    rooms_in_order = dms + ordinary
    total = len(rooms_in_order) * per_room
    step = timedelta(days=30) / total
    mentioned: list[tuple[str, int]] = []

    def lines() -> Iterator[str]:
        # Interleaved over the rooms, so each room's newest message has its own time.
        order = list(range(len(rooms_in_order)))
        for seq in range(1, per_room + 1):
            rng.shuffle(order)
            for k, r in enumerate(order):
                room = rooms_in_order[r]
                senders = [a for a in members[room] if a != reader] or agents
                sender = senders[rng.randrange(len(senders))]
                body = f"message {seq} in room {r}"
                if room in mine_set:
                    if rng.random() < 0.05:
                        sender = reader
                    elif rng.random() < 0.02:
                        body = f"@reader {body}"
                        mentioned.append((room, seq))
                created = (start + step * ((seq - 1) * len(order) + k)).isoformat()
                yield f"{room}\t{seq}\t{sender}\t{body}\t{created}\n"

    with conn.cursor() as cur:
        cur.copy_expert(
            "COPY messages (room_id, seq, sender_id, body, created_at) FROM STDIN",
            io.BufferedReader(_Lines(lines()), buffer_size=1 << 20),
        )
        cur.execute("UPDATE rooms SET last_seq = %s", (per_room,))
        cur.execute(
            "INSERT INTO mentions (agent_id, room_id, seq)"
            " SELECT %s, * FROM unnest(%s::uuid[], %s::bigint[])",
            (reader, [m[0] for m in mentioned], [m[1] for m in mentioned]),
        )
        cur.execute(
            "UPDATE messages SET mentions = ARRAY[%s::uuid]"
            " FROM unnest(%s::uuid[], %s::bigint[]) AS m(room_id, seq)"
            " WHERE messages.room_id = m.room_id AND messages.seq = m.seq",
            (reader, [m[0] for m in mentioned], [m[1] for m in mentioned]),
        )
        # Read markers: half read to the end, the others 1-100 behind, NEVER_READ never read.
        shuffled = rng.sample(mine, len(mine))
        marks: dict[str, int] = {}
        for i, room in enumerate(shuffled):
            if i < NEVER_READ:
                marks[room] = 0
            elif i < len(mine) // 2:
                marks[room] = max(0, per_room - rng.randint(1, 100))
            else:
                marks[room] = per_room
        cur.execute(
            "UPDATE room_members SET last_read_seq = m.mark"
            " FROM unnest(%s::uuid[], %s::bigint[]) AS m(room_id, mark)"
            " WHERE room_members.room_id = m.room_id AND room_members.agent_id = %s",
            (list(marks), list(marks.values()), reader),
        )
        cur.execute(
            "SELECT count(DISTINCT m.room_id), count(*) FROM messages m"
            " JOIN room_members rm ON rm.room_id = m.room_id AND rm.agent_id = %s"
            " WHERE m.seq > rm.last_read_seq AND m.sender_id <> %s",
            (reader, reader),
        )
        unread_rooms, total_unread = cur.fetchone()
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.autocommit = False
    return reader, int(unread_rooms), int(total_unread)


@contextmanager
def world(per_room: int, seed: int, keep: bool) -> Iterator[World]:
    with world_.throwaway_database("agenthub_bench_inbox", keep) as name:
        env = world_.server_env(name)
        world_.cli(AGENTHUB, env, "migrate")
        conn = psycopg2.connect(**pg_params(name))
        started = time.perf_counter()
        try:
            reader, unread_rooms, total_unread = generate(conn, per_room, seed)
        finally:
            conn.close()
        print(
            f"generated {ROOMS * per_room:,} messages in {ROOMS} rooms in "
            f"{time.perf_counter() - started:.0f} s; the reader is in {READER_ROOMS} rooms, "
            f"{unread_rooms} with unread messages ({total_unread:,} unread)",
            flush=True,
        )
        token = world_.cli(AGENTHUB, env, "token", "issue", "--agent", "reader")
        with world_.serving(AGENTHUB, env) as (base_url, _pid):
            yield World(base_url, env, token, reader, unread_rooms, total_unread)


# How the EXPLAIN runs set PostgreSQL's JIT: as the server's connections do (off), as a
# default PostgreSQL would (on, above jit_above_cost), and forced on (what a statement costed
# above jit_above_cost, but under the optimize/inline thresholds, pays on every run).
JIT_SETTINGS = {
    "jit off (the server)": ["SET jit = off"],
    "jit on (PostgreSQL's default)": ["SET jit = on"],
    "jit forced": ["SET jit = on", "SET jit_above_cost = 0"],
}


def explain(w: World, settings: list[str]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the inbox statement (the median of 5 runs) under ``settings``."""
    conn = psycopg2.connect(**pg_params(w.env["POSTGRES_DB"]))
    try:
        with conn.cursor() as cur:
            for setting in settings:
                cur.execute(setting)
            sql, values = read_store._INBOX.bind({"viewer": uuid.UUID(w.reader_id)})
            runs = []
            for _ in range(5):
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, values)
                runs.append(cur.fetchone()[0][0])
    finally:
        conn.close()
    plan = runs[-1]
    indexes: list[str] = []
    seq_scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            indexes.append(f"{node['Node Type']} on {node['Index Name']}")
        elif node["Node Type"] == "Seq Scan":
            seq_scans.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    times = sorted(r["Execution Time"] for r in runs)
    return {
        "indexes": sorted(set(indexes)),
        "seqScans": sorted(set(seq_scans)),
        "cost": round(plan["Plan"]["Total Cost"]),
        "ms": round(times[len(times) // 2], 2),
        "jitMs": round(plan["JIT"]["Timing"]["Total"], 1) if "JIT" in plan else None,
    }


def measure(client: Client, path: str, count: int, warmup: int) -> list[float]:
    latencies = []
    for i in range(warmup + count):
        t0 = time.perf_counter()
        status, body = client.request("GET", path)
        elapsed = time.perf_counter() - t0
        expect(status, body, 200, f"GET {path}")
        if i >= warmup:
            latencies.append(elapsed * 1000)
    return sorted(latencies)


def figures(ms: list[float]) -> dict[str, float]:
    return {
        "p50Ms": round(percentile(ms, 50), 2),
        "p90Ms": round(percentile(ms, 90), 2),
        "p99Ms": round(percentile(ms, 99), 2),
        "maxMs": round(ms[-1], 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=500, help="messages per room")
    p.add_argument("--requests", type=int, default=500, help="measured requests per route")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured requests per route")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--keep", action="store_true", help="keep the database (to EXPLAIN by hand)")
    args = p.parse_args(argv)
    if args.messages < 100:
        p.error("--messages must be at least 100 (markers go up to 100 behind)")
    load = os.getloadavg()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    report: dict[str, Any] = {"messagesPerRoom": args.messages, "routes": {}}
    failed = False
    with world(args.messages, args.seed, args.keep) as w:
        client = Client(w.base_url, login(w.base_url, w.reader_token))
        anonymous = Client(w.base_url)
        try:
            status, inbox = client.request("GET", "/api/v1/inbox")
            expect(status, inbox, 200, "GET /api/v1/inbox")
            listed, total = len(inbox["rooms"]), inbox["totalUnread"]
            ok = listed == w.unread_rooms and total == w.total_unread
            failed |= not ok
            print(
                f"inbox: {listed} rooms, totalUnread {total:,}"
                + ("" if ok else f"   <-- expected {w.unread_rooms} rooms, {w.total_unread:,}"),
                flush=True,
            )
            for label, settings in JIT_SETTINGS.items():
                plan = explain(w, settings)
                report[f"explain ({label})"] = plan
                failed |= "messages" in plan["seqScans"]
                print(
                    f"EXPLAIN ANALYZE, {label}: {plan['ms']} ms, cost {plan['cost']:,}"
                    + (f" (JIT {plan['jitMs']} ms of it)" if plan["jitMs"] is not None else "")
                    + f"; {', '.join(plan['indexes'])}"
                    + (f"; seq scans: {', '.join(plan['seqScans'])}" if plan["seqScans"] else ""),
                    flush=True,
                )
            for name, who, path in (
                ("GET /healthz", anonymous, "/healthz"),
                ("GET /api/v1/agents/me", client, "/api/v1/agents/me"),
                ("GET /api/v1/inbox", client, "/api/v1/inbox"),
            ):
                result = figures(measure(who, path, args.requests, args.warmup))
                report["routes"][name] = result
                print(
                    f"{name:24} p50 {result['p50Ms']} ms   p90 {result['p90Ms']} ms   "
                    f"p99 {result['p99Ms']} ms   max {result['maxMs']} ms   "
                    f"({args.requests} requests)",
                    flush=True,
                )
        finally:
            client.close()
            anonymous.close()
    if args.json:
        print(json.dumps(report))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
