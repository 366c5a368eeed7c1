"""Search on a million messages: p50/p99 of ``GET /api/v1/search`` for four query shapes.

Builds its own world, like bench/rest_post.py: a throwaway PostgreSQL database (POSTGRES_* from
the environment, e.g. ``.agenthub-dev/env``), ``agenthub migrate``, then

- 300 rooms, 200 agents, and the searcher, a member of 40 of the rooms (13 %);
- ``--messages`` messages (default 1,000,000) spread evenly over the rooms and over 90 days,
  loaded with COPY (the GIN index is dropped for the load and built after, as a restore would).
  Bodies are 4-27 words drawn from a 50,000-word vocabulary by Zipf's law (rank k has weight
  1/k): English function words at the top, software words among them, made-up words in the
  long tail; 3 % of messages carry one of a few common two-word phrases, 5 % have kind "task";

and a real ``agenthub serve``. One client then searches as the searcher, one request at a
time, ``--queries`` times per shape (rotating over several words of the shape, after a short
warm-up):

- rare:   one word found in about 50 messages of the whole database;
- common: one word found in 5-10 % of all messages;
- phrase: a quoted two-word phrase ("merge conflict");
- room:   the common words, filtered to one of the searcher's rooms (``room=<slug>``).

For each shape it prints how many messages match in the searcher's rooms, p50/p90/p99 latency,
and what EXPLAIN ANALYZE says of the store's statement with the same parameters: the scan must
use ix_messages_search (the GIN index) for the rare, common and phrase shapes, or the run fails.
With pgbench on PATH it first measures a reference in the same run (one 200-character row
inserted per transaction, ``pgbench -n -c 10 -j 2 -T 10``), as bench/RESULTS.md compares
figures against.

    .venv/bin/python bench/search.py                        # about 3-5 minutes on 2 cores
    .venv/bin/python bench/search.py --messages 100000 --queries 50
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2

# Run as a script (python bench/search.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agenthub.store import search as search_store
from bench import world as world_
from bench.pgref import pgbench_reference
from bench.rest_post import AGENTHUB, Client, expect, login, percentile
from tests.helpers import pg_params

ROOMS = 300
AGENTS = 200
SEARCHER_ROOMS = 40
VOCABULARY = 50_000
DAYS = 90


def _words(text: str) -> list[str]:
    return text.split()


# The head of the vocabulary, most frequent first.
ENGLISH = _words(
    "the to and a of in is it that for you on this with we be are not have i at as but was "
    "so if can will do from or an all just my there by what about one they me up no out get "
    "like now when has more some then our would time been also only how should which did see "
    "think any here new need its make use them could than other still same over first back"
)
SOFTWARE = _words(
    "deploy build test error fix merge review branch release commit config server client "
    "request response timeout retry cache queue worker database query index migration schema "
    "token session auth user api endpoint handler service log metric alert incident rollback "
    "patch version docker image container cluster node pod job task pipeline ci lint type "
    "bug crash memory cpu latency throughput socket message room agent thread mention search"
)
PHRASES = (
    "merge conflict",
    "pull request",
    "build failed",
    "flaky test",
    "out of memory",
    "connection refused",
    "disk full",
    "race condition",
)
SYLLABLES = "ka ri to me sa lu no vi de pa zo fe gu xi be ty qua mon tel ras dor vek sul pim"


def vocabulary(rng: random.Random) -> list[str]:
    """English and software words interleaved at the top (so "deploy" is about as common as
    "that"), then made-up words, distinct, in the long tail."""
    head: list[str] = []
    english, software = iter(ENGLISH), iter(SOFTWARE)
    for i in range(len(ENGLISH) + len(SOFTWARE)):
        source = software if i % 3 == 2 else english
        word = next(source, None) or next(english, None) or next(software, None)
        if word is not None and word not in head:
            head.append(word)
    syllables = SYLLABLES.split()
    seen = set(head)
    tail: list[str] = []
    while len(head) + len(tail) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            tail.append(word)
    return head + tail


def zipf_cumulative(n: int) -> list[float]:
    total, out = 0.0, []
    for k in range(1, n + 1):
        total += 1.0 / k
        out.append(total)
    return out


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    base_url: str
    env: dict[str, str]
    searcher_token: str
    searcher_id: str
    searcher_rooms: list[str]  # slugs
    words: list[str]
    word_counts: dict[str, int]  # occurrences in messages (not messages), as generated


def _tsv(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


class _Lines(io.RawIOBase):
    """A readable stream over generated lines, for COPY without the whole text in memory."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while len(self._buffer) < len(target):
            try:
                self._buffer += next(self._lines).encode()
            except StopIteration:
                break
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def generate(
    conn: Any, messages: int, seed: int
) -> tuple[list[str], dict[str, int], str, list[str]]:
    """Rooms, agents, memberships and messages; returns (vocabulary, word counts, the
    searcher's id, the searcher's room slugs)."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative = zipf_cumulative(len(words))
    counts: Counter[str] = Counter()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO agents (name, display_name) SELECT 'bench-agent-' || i, 'Agent ' || i"
            " FROM generate_series(1, %s) i",
            (AGENTS,),
        )
        cur.execute("INSERT INTO agents (name, display_name) VALUES ('searcher', 'Searcher')")
        cur.execute("SELECT id FROM agents WHERE name = 'searcher'")
        searcher = str(cur.fetchone()[0])
        cur.execute("SELECT id FROM agents WHERE name LIKE 'bench-agent-%' ORDER BY name")
        agents = [str(r[0]) for r in cur.fetchall()]
        cur.execute(
            "INSERT INTO rooms (slug, name, visibility)"
            " SELECT 'room-' || lpad(i::text, 3, '0'), 'Room ' || i,"
            "   CASE WHEN i %% 4 = 0 THEN 'private' ELSE 'public' END"
            " FROM generate_series(1, %s) i",
            (ROOMS,),
        )
        cur.execute("SELECT id, slug FROM rooms ORDER BY slug")
        rooms = [(str(r[0]), r[1]) for r in cur.fetchall()]
        mine = rng.sample(range(ROOMS), SEARCHER_ROOMS)
        cur.execute(
            "INSERT INTO room_members (room_id, agent_id) SELECT unnest(%s::uuid[]), %s",
            ([rooms[i][0] for i in mine], searcher),
        )
        # Every agent in 20 rooms: membership other than the searcher's does not change the
        # search, but it makes room_members the size it would be.
        pairs = {(rooms[rng.randrange(ROOMS)][0], a) for a in agents for _ in range(20)}
        cur.execute(
            "INSERT INTO room_members (room_id, agent_id)"
            " SELECT * FROM unnest(%s::uuid[], %s::uuid[])",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        )
        cur.execute("DROP INDEX ix_messages_search")

    start = datetime.now(UTC) - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / messages

    def lines() -> Iterator[str]:
        batch: list[str] = []
        at = 0
        for i in range(messages):
            n = 4 + (i * 2654435761) % 24
            if at + n > len(batch):
                batch = rng.choices(words, cum_weights=cumulative, k=100_000)
                at = 0
            body_words = batch[at : at + n]
            at += n
            counts.update(body_words)
            if rng.random() < 0.03:
                body_words.insert(rng.randrange(len(body_words) + 1), rng.choice(PHRASES))
            room_id = rooms[i % ROOMS][0]
            seq = i // ROOMS + 1
            sender = agents[(i * 7919) % AGENTS]
            kind = "task" if i % 20 == 0 else "text"
            created = (start + step * i).isoformat()
            yield f"{room_id}\t{seq}\t{sender}\t{_tsv(' '.join(body_words))}\t{created}\t{kind}\n"

    phase = time.perf_counter()
    with conn.cursor() as cur:
        cur.copy_expert(
            "COPY messages (room_id, seq, sender_id, body, created_at, kind) FROM STDIN",
            io.BufferedReader(_Lines(lines()), buffer_size=1 << 20),
        )
        cur.execute(
            "UPDATE rooms SET last_seq = m.last FROM"
            " (SELECT room_id, max(seq) AS last FROM messages GROUP BY room_id) m"
            " WHERE rooms.id = m.room_id"
        )
        copied = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '256MB'")
        cur.execute("CREATE INDEX ix_messages_search ON messages USING gin (search)")
    conn.commit()
    indexed = time.perf_counter()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.autocommit = False
    print(
        f"  COPY {copied - phase:.0f} s, GIN index {indexed - copied:.0f} s, "
        f"VACUUM ANALYZE {time.perf_counter() - indexed:.0f} s",
        flush=True,
    )
    return words, counts, searcher, [rooms[i][1] for i in sorted(mine)]


@contextmanager
def world(messages: int, seed: int, pgbench: bool, keep: bool) -> Iterator[World]:
    with world_.throwaway_database("agenthub_bench_search", keep) as name:
        env = world_.server_env(name)
        world_.cli(AGENTHUB, env, "migrate")
        if pgbench:
            print(f"pgbench reference: {pgbench_reference(name, env)}", flush=True)
        conn = psycopg2.connect(**pg_params(name))
        started = time.perf_counter()
        try:
            words, counts, searcher_id, my_rooms = generate(conn, messages, seed)
        finally:
            conn.close()
        print(
            f"generated {messages:,} messages in {time.perf_counter() - started:.0f} s", flush=True
        )
        token = world_.cli(AGENTHUB, env, "token", "issue", "--agent", "searcher")
        with world_.serving(AGENTHUB, env) as (base_url, _pid):
            yield World(base_url, env, token, searcher_id, my_rooms, words, counts)


# --- the measurement ---------------------------------------------------------------------------


@dataclass
class Shape:
    name: str
    queries: list[dict[str, str]]  # the query parameters, used in turn
    needs_gin: bool


def shapes(w: World) -> list[Shape]:
    by_count = sorted(w.word_counts.items(), key=lambda kv: -kv[1])
    total = sum(w.word_counts.values())
    # common: software words drawn for 4-9 % of all word draws ... as messages: 5-10 %
    common = [word for word, n in by_count if word in SOFTWARE and 0.003 < n / total < 0.008]
    rare = [word for word, n in by_count if 45 <= n <= 60][:20]
    if not common or not rare:
        raise SystemExit("bench: the generated vocabulary has no common or rare word")
    common = common[:10]
    rooms = w.searcher_rooms[:10]
    return [
        Shape("rare", [{"q": word} for word in rare], True),
        Shape("common", [{"q": word} for word in common], True),
        Shape("phrase", [{"q": f'"{phrase}"'} for phrase in PHRASES], True),
        Shape(
            "room",
            [{"q": word, "room": room} for word, room in zip(common, rooms, strict=False)],
            False,
        ),
    ]


def explain(w: World, params: dict[str, str]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the store's search statement as the server runs it for ``params``."""
    conn = psycopg2.connect(**pg_params(w.env["POSTGRES_DB"]))
    try:
        with conn.cursor() as cur:
            room_id = None
            if "room" in params:
                cur.execute("SELECT id FROM rooms WHERE slug = %s", (params["room"],))
                room_id = cur.fetchone()[0]
            sql, values = search_store._SEARCH.bind(
                {
                    "q": params["q"],
                    "viewer": uuid.UUID(w.searcher_id),
                    "all_rooms": False,
                    "room_id": room_id,
                    "sender_id": None,
                    "message_kind": None,
                    "after_rank": None,
                    "after_created_at": None,
                    "after_id": None,
                    "limit": 51,
                }
            )
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, values)
            plan = cur.fetchone()[0][0]
    finally:
        conn.close()
    indexes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            indexes.append(f"{node['Node Type']} on {node['Index Name']}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"indexes": indexes, "ms": round(plan["Execution Time"], 1)}


def matches(w: World, params: dict[str, str]) -> tuple[int, int]:
    """Messages matching in the searcher's rooms (what paging through all results would give),
    and in every room."""
    conn = psycopg2.connect(**pg_params(w.env["POSTGRES_DB"]))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE m.room_id IN"
                "   (SELECT room_id FROM room_members WHERE agent_id = %(me)s)), count(*)"
                " FROM messages m JOIN rooms r ON r.id = m.room_id"
                " WHERE m.search @@ websearch_to_tsquery('simple', %(q)s)"
                " AND (%(room)s::text IS NULL OR r.slug = %(room)s)",
                {"q": params["q"], "me": w.searcher_id, "room": params.get("room")},
            )
            mine, everywhere = cur.fetchone()
            return int(mine), int(everywhere)
    finally:
        conn.close()


def measure(client: Client, shape: Shape, count: int, warmup: int) -> list[float]:
    latencies = []
    for i in range(warmup + count):
        params = shape.queries[i % len(shape.queries)]
        path = "/api/v1/search?" + urllib.parse.urlencode(params)
        t0 = time.perf_counter()
        status, body = client.request("GET", path)
        elapsed = time.perf_counter() - t0
        expect(status, body, 200, f"search {params}")
        if i >= warmup:
            latencies.append(elapsed * 1000)
    return sorted(latencies)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200, help="measured searches per shape")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured searches per shape")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--no-pgbench", action="store_true", help="skip the pgbench reference")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--keep", action="store_true", help="keep the database (to EXPLAIN by hand)")
    args = p.parse_args(argv)
    if args.messages < ROOMS:
        p.error(f"--messages must be at least {ROOMS}")
    pgbench = not args.no_pgbench and shutil.which("pgbench") is not None
    load = os.getloadavg()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    failed = False
    report: dict[str, Any] = {"messages": args.messages, "shapes": {}}
    with world(args.messages, args.seed, pgbench, args.keep) as w:
        client = Client(w.base_url, login(w.base_url, w.searcher_token))
        try:
            for shape in shapes(w):
                counts = [matches(w, q) for q in shape.queries]
                found = [mine for mine, _ in counts]
                everywhere = [n for _, n in counts]
                plan = explain(w, shape.queries[0])
                ms = measure(client, shape, args.queries, args.warmup)
                uses_gin = any("ix_messages_search" in i for i in plan["indexes"])
                if shape.needs_gin and not uses_gin:
                    failed = True
                result = {
                    "example": shape.queries[0],
                    "matchesInSearchersRooms": [min(found), max(found)],
                    "matchesInAllRooms": [min(everywhere), max(everywhere)],
                    "p50Ms": round(percentile(ms, 50), 1),
                    "p90Ms": round(percentile(ms, 90), 1),
                    "p99Ms": round(percentile(ms, 99), 1),
                    "maxMs": round(ms[-1], 1),
                    "explain": plan,
                }
                report["shapes"][shape.name] = result
                print(
                    f"{shape.name:7} {json.dumps(shape.queries[0], ensure_ascii=False):42} "
                    f"matches {min(found):,}-{max(found):,} "
                    f"(all rooms {min(everywhere):,}-{max(everywhere):,})   "
                    f"p50 {result['p50Ms']} ms   "
                    f"p90 {result['p90Ms']} ms   p99 {result['p99Ms']} ms   "
                    f"max {result['maxMs']} ms",
                    flush=True,
                )
                print(
                    f"        plan: {', '.join(plan['indexes']) or 'no index'}; "
                    f"{plan['ms']} ms in EXPLAIN ANALYZE"
                    + ("" if uses_gin or not shape.needs_gin else "   <-- GIN index NOT used"),
                    flush=True,
                )
        finally:
            client.close()
    if args.json:
        print(json.dumps(report))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
