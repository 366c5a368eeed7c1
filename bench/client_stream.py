"""How fast one ``subscribe()`` consumer keeps up, and how soon it resumes after a restart.

1. Reference: P poster threads in another process post 200-character messages over REST (one
   keep-alive connection and one agent each, the bench/rest_post.py client) into one room as
   fast as they can for D seconds, with nobody subscribed: the raw REST post rate.
2. The same posting while one ``AsyncAgentHub.subscribe()`` consumer (this process) counts the
   ``message:new`` events it yields: messages/s yielded while posting, how long it needed after
   the last post to yield everything, and a check that it yielded every seq once, in order.
3. Restarts: one poster posts a message every ``--interval`` s (``AsyncAgentHub.send`` with
   retries), the server is SIGKILLed (then SIGTERMed) and started again at once on the same
   port and database; printed: the time from the new process's start to /readyz, and to the
   first message the consumer yields after the restart (a message posted after it).

Builds its own world like bench/rest_post.py (a fresh database, dropped afterwards).

    set -a; . .agenthub-dev/env; set +a
    .venv/bin/python bench/client_stream.py [--posters 4] [--duration 10] [--restarts 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2

# Run as a script (python bench/client_stream.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agenthub.client import AsyncAgentHub, RetryPolicy
from bench.rest_post import AGENTHUB, Client, login
from tests.helpers import free_port, pg_params

BODY = "x" * 200


class World:
    """A database, agents made with the CLI, and a server that can be killed and restarted on
    the same port."""

    def __init__(self) -> None:
        self.db = f"agenthub_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            POSTGRES_DB=self.db,
            JWT_SECRET=secrets.token_hex(32),
            HOST="127.0.0.1",
            PORT=str(self.port),
            LOG_LEVEL="warning",
            RATE_LIMIT_ANONYMOUS_PER_MINUTE="1000000",
            RATE_LIMIT_AGENT_PER_MINUTE="1000000",
        )
        self.env.pop("JOURNAL_STREAM", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        admin = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.db}"')
        admin.close()
        self.cli("migrate")

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [AGENTHUB, *args], env=self.env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def agent(self, name: str) -> str:
        self.cli("agent", "create", "--name", name)
        return self.cli("token", "issue", "--agent", name)

    def start(self) -> float:
        """Spawn the server; returns the time.monotonic() of the spawn once it is ready."""
        spawned = time.monotonic()
        self.proc = subprocess.Popen(
            [AGENTHUB, "serve"], env=self.env, stdout=self.log, stderr=self.log
        )
        while time.monotonic() < spawned + 30:
            if self.proc.poll() is not None:
                break
            try:
                if Client(self.base_url).request("GET", "/readyz")[0] == 200:
                    return spawned
            except OSError:
                pass
            time.sleep(0.02)
        self.log.seek(0)
        raise SystemExit(f"bench: server did not start:\n{self.log.read().decode()[-3000:]}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        self.stop()
        self.log.close()
        admin = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        admin.close()


def post_flat_out(base_url: str, tokens: list[str], room: str, duration: float, out: Any) -> None:
    """In a child process: one thread per token posting as fast as it can for ``duration``."""
    counts = [0] * len(tokens)
    deadline = time.monotonic() + duration

    def poster(i: int) -> None:
        client = Client(base_url, login(base_url, tokens[i]))
        while time.monotonic() < deadline:
            status, body = client.request("POST", f"/api/v1/rooms/{room}/messages", {"body": BODY})
            if status != 201:
                raise SystemExit(f"post failed: {status} {body}")
            counts[i] += 1
        client.close()

    threads = [threading.Thread(target=poster, args=(i,)) for i in range(len(tokens))]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(counts), time.monotonic() - started))


def run_posters(world: World, tokens: list[str], room: str, duration: float) -> tuple[int, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=post_flat_out, args=(world.base_url, tokens, room, duration, queue))
    proc.start()
    result: tuple[int, float] = queue.get(timeout=duration + 60)
    proc.join()
    return result


async def stream(
    world: World, reader_token: str, tokens: list[str], room: str, duration: float
) -> dict[str, Any]:
    async with AsyncAgentHub(world.base_url, reader_token) as hub:
        sub = hub.subscribe([room])
        await sub.wait_connected(30)
        start_seq = sub.positions[room]
        seqs: list[int] = []
        first_at: float | None = None
        posting = asyncio.ensure_future(
            asyncio.to_thread(run_posters, world, tokens, room, duration)
        )

        progress = asyncio.Event()

        async def consume() -> None:
            nonlocal first_at
            async for event in sub:
                if event.name == "message:new" and event.message is not None:
                    if first_at is None:
                        first_at = time.monotonic()
                    seqs.append(event.message.seq)
                    progress.set()

        consumer = asyncio.ensure_future(consume())
        posted, post_seconds = await posting
        posting_ended = time.monotonic()
        count_at_end = len(seqs)
        async with asyncio.timeout(120):
            while len(seqs) < posted:
                progress.clear()
                await progress.wait()
        done_at = time.monotonic()
        consumer.cancel()
        await sub.aclose()
    assert first_at is not None
    ok = seqs == list(range(start_seq + 1, start_seq + posted + 1))
    return {
        "posted": posted,
        "post_rate": posted / post_seconds,
        "yielded_during_posting": count_at_end,
        "yield_rate": len(seqs) / (done_at - first_at),
        "lag_after_last_post_s": done_at - posting_ended,
        "exactly_once_in_order": ok,
    }


async def catch_up(world: World, reader_token: str, room: str) -> dict[str, Any]:
    """A new subscription from seq 0: the room's whole backlog through room:sync."""
    async with AsyncAgentHub(world.base_url, reader_token) as hub:
        last_seq = (await hub.get_room(room)).last_seq
        started = time.monotonic()
        sub = hub.subscribe([room], after={room: 0})
        count = 0
        async for event in sub:
            if event.name == "message:new" and event.message is not None:
                count += 1
                if event.message.seq != count:
                    raise SystemExit(f"catch-up out of order at {count}")
                if count == last_seq:
                    break
        seconds = time.monotonic() - started
        await sub.aclose()
    return {"messages": count, "seconds": seconds, "rate": count / seconds}


async def restarts(
    world: World, reader_token: str, poster_token: str, room: str, n: int, interval: float
) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {"SIGKILL": [], "SIGTERM": []}
    async with (
        AsyncAgentHub(world.base_url, reader_token) as reader,
        AsyncAgentHub(
            world.base_url,
            poster_token,
            retry=RetryPolicy(attempts=1000, base_delay=0.02, max_delay=0.2),
        ) as poster,
    ):
        sub = reader.subscribe(
            [room], reconnect=RetryPolicy(attempts=10**6, base_delay=0.05, max_delay=1.0)
        )
        await sub.wait_connected(30)
        stop = asyncio.Event()
        sent: list[int] = []

        async def post() -> None:
            while not stop.is_set():
                sent.append((await poster.send(room, "tick")).seq)
                await asyncio.sleep(interval)

        arrivals: list[tuple[float, int]] = []
        yielded = asyncio.Event()

        async def consume() -> None:
            async for event in sub:
                if event.name == "message:new" and event.message is not None:
                    arrivals.append((time.monotonic(), event.message.seq))
                    yielded.set()

        tasks = [asyncio.ensure_future(post()), asyncio.ensure_future(consume())]
        await asyncio.sleep(1.0)
        for sig in (signal.SIGKILL, signal.SIGTERM):
            for _ in range(n):
                await asyncio.to_thread(world.stop, sig)
                down_at = time.monotonic()
                spawned = await asyncio.to_thread(world.start)
                ready_at = time.monotonic()
                # the first message yielded after the restart: one the new process stored
                first_after: float | None = None
                while first_after is None:
                    await asyncio.sleep(0.01)
                    first_after = next((t for t, _ in arrivals if t > ready_at), None)
                results[sig.name].append(
                    {
                        "down_s": spawned - down_at,
                        "spawn_to_ready_s": ready_at - spawned,
                        "spawn_to_first_yield_s": first_after - spawned,
                        "ready_to_first_yield_s": first_after - ready_at,
                    }
                )
                await asyncio.sleep(1.0)
        stop.set()
        await asyncio.sleep(interval * 3 + 0.5)
        last_sent = sent[-1]
        async with asyncio.timeout(60):
            while not arrivals or arrivals[-1][1] < last_sent:
                yielded.clear()
                await yielded.wait()
        for task in tasks:
            task.cancel()
        await sub.aclose()
    seqs = [s for _, s in arrivals]
    return {
        "runs": results,
        "messages": len(seqs),
        "exactly_once_in_order": seqs == list(range(seqs[0], seqs[0] + len(seqs))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    world = World()
    try:
        world.start()
        owner = world.agent("bench-owner")
        reader = world.agent("bench-reader")
        tokens = [world.agent(f"bench-poster-{i}") for i in range(args.posters)]
        admin = Client(world.base_url, login(world.base_url, owner))
        status, room = admin.request("POST", "/api/v1/rooms", {"slug": "stream"})
        assert status == 201, room
        for name in ["bench-reader", *[f"bench-poster-{i}" for i in range(args.posters)]]:
            admin.request("POST", f"/api/v1/rooms/{room['id']}/members", {"agentId": name})
        admin.close()

        reference_count, reference_seconds = run_posters(world, tokens, room["id"], args.duration)
        report: dict[str, Any] = {
            "cores": os.cpu_count(),
            "reference_rest_posts_per_s": reference_count / reference_seconds,
            "stream": asyncio.run(stream(world, reader, tokens, room["id"], args.duration)),
            "catch_up": asyncio.run(catch_up(world, reader, room["id"])),
            "restarts": asyncio.run(
                restarts(world, reader, tokens[0], room["id"], args.restarts, args.interval)
            ),
        }
    finally:
        world.close()

    if args.json:
        print(json.dumps(report))
        return
    s = report["stream"]
    print(f"cores: {report['cores']}")
    print(
        f"reference: {report['reference_rest_posts_per_s']:.1f} REST posts/s "
        f"({args.posters} posters, nobody subscribed)"
    )
    print(
        f"with one subscribe() consumer: {s['post_rate']:.1f} posts/s, consumer yielded "
        f"{s['yield_rate']:.1f} messages/s; {s['yielded_during_posting']} of {s['posted']} "
        f"yielded while posting, all {s['lag_after_last_post_s'] * 1000:.0f} ms after the "
        "last post; "
        f"exactly once in order: {s['exactly_once_in_order']}"
    )
    c = report["catch_up"]
    print(
        f"catch-up of a backlog (room:sync from seq 0): {c['messages']} messages in "
        f"{c['seconds']:.2f} s = {c['rate']:.0f} messages/s"
    )
    r = report["restarts"]
    for sig, runs in r["runs"].items():
        ready = [x["spawn_to_ready_s"] for x in runs]
        first = [x["spawn_to_first_yield_s"] for x in runs]
        after = [x["ready_to_first_yield_s"] for x in runs]
        print(
            f"{sig} + restart ({len(runs)} runs): spawn->ready median "
            f"{statistics.median(ready) * 1000:.0f} ms, "
            f"spawn->first message yielded median {statistics.median(first) * 1000:.0f} ms "
            f"(ready->first yield {min(after) * 1000:.0f}-{max(after) * 1000:.0f} ms)"
        )
    print(
        f"restart phase: {r['messages']} messages, "
        f"exactly once in order: {r['exactly_once_in_order']}"
    )


if __name__ == "__main__":
    main()
