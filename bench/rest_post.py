"""REST post throughput: N concurrent clients post messages to one room.

Prints messages/s and p50/p90/p99 latency of ``POST /api/v1/rooms/{id}/messages``.

By default it builds its own world, like the tests do: a fresh PostgreSQL database
(POSTGRES_* from the environment, e.g. ``.agenthub-dev/env``), ``agenthub migrate``, an admin
made with the CLI, and a real ``agenthub serve`` on a free port, torn down afterwards.
With ``--url`` and ``--token`` (an API token of an admin) it measures a running server instead.

Each client is a thread with one keep-alive ``http.client`` connection and its own agent, so
the figure includes JSON, auth (the session's standing, from memory while PostgreSQL
notifications keep it current) and the per-room sequence lock that serialises every insert
into the room. With its own server it also prints the server's CPU-seconds per 1,000 acked posts
(from /proc), the figure that compares across machines and load better than the rate.

    .venv/bin/python bench/rest_post.py --clients 10 --duration 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script (python bench/rest_post.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import world

AGENTHUB = shutil.which("agenthub", path=str(Path(sys.executable).parent)) or "agenthub"


class Client:
    """One keep-alive HTTP/1.1 connection speaking JSON."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 80
        self.token = token
        self._conn = http.client.HTTPConnection(self._host, self._port, timeout=30)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=data, headers=headers)
            resp = self._conn.getresponse()
        except (http.client.HTTPException, OSError):
            # The server closed an idle keep-alive connection: reconnect once.
            self._conn.close()
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
            self._conn.request(method, path, body=data, headers=headers)
            resp = self._conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None

    def close(self) -> None:
        self._conn.close()


def expect(status: int, body: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise SystemExit(f"bench: {what} failed: HTTP {status} {body}")
    return body


def login(base_url: str, api_token: str) -> str:
    client = Client(base_url, api_token)
    try:
        status, body = client.request("POST", "/api/v1/sessions")
        return str(expect(status, body, 201, "login")["token"])
    finally:
        client.close()


# --- a private server, built the way the tests build theirs ---------------------------------


@dataclass
class LocalServer:
    base_url: str
    admin_token: str
    pid: int
    database: str  # the throwaway database the server runs on
    env: dict[str, str]  # the server's environment (POSTGRES_* included)


@contextmanager
def local_server(
    pool_max: int | None, agenthub: str = AGENTHUB, extra_env: dict[str, str] | None = None
) -> Iterator[LocalServer]:
    """A throwaway database, migrated, and ``agenthub serve`` on a free port (``agenthub`` is
    the executable: another checkout's measures that checkout), all dropped afterwards."""
    with world.throwaway_database("agenthub_bench") as name:
        env = world.server_env(name, extra_env)
        if pool_max is not None:
            env["DB_POOL_MAX"] = str(pool_max)
        world.cli(agenthub, env, "migrate")
        world.cli(agenthub, env, "agent", "create", "--name", "bench-admin", "--role", "admin")
        token = world.cli(agenthub, env, "token", "issue", "--agent", "bench-admin")
        with world.serving(agenthub, env) as (base_url, pid):
            yield LocalServer(base_url, token, pid, name, env)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- the measurement --------------------------------------------------------------------------


@dataclass
class Worker:
    jwt: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)


def prepare(base_url: str, admin_token: str, clients: int) -> tuple[str, list[Worker]]:
    """A fresh public room and one agent (own token, own JWT) per client, all members."""
    admin = Client(base_url, login(base_url, admin_token))
    tag = uuid.uuid4().hex[:8]
    try:
        status, room = admin.request(
            "POST", "/api/v1/rooms", {"slug": f"bench-{tag}", "visibility": "public"}
        )
        room_id = str(expect(status, room, 201, "create room")["id"])
        workers = []
        for i in range(clients):
            status, agent = admin.request("POST", "/api/v1/agents", {"name": f"bench-{tag}-{i}"})
            agent_id = expect(status, agent, 201, "create agent")["id"]
            status, issued = admin.request("POST", f"/api/v1/agents/{agent_id}/tokens", {})
            jwt = login(base_url, expect(status, issued, 201, "issue token")["token"])
            member = Client(base_url, jwt)
            status, body = member.request(
                "POST", f"/api/v1/rooms/{room_id}/members", {"agentId": agent_id}
            )
            expect(status, body, 201, "join room")
            member.close()
            workers.append(Worker(jwt))
        return room_id, workers
    finally:
        admin.close()


def run_clients(
    base_url: str, room_id: str, workers: list[Worker], duration: float, per_client: int | None
) -> float:
    """Every client posts until the deadline (or its quota); returns the wall time."""
    start_line = threading.Barrier(len(workers) + 1)
    path = f"/api/v1/rooms/{room_id}/messages"
    body = {"body": "x" * 200}

    def loop(worker: Worker) -> None:
        client = Client(base_url, worker.jwt)
        try:
            client.request("GET", "/api/v1/agents/me")  # open the connection first
            start_line.wait()
            deadline = time.perf_counter() + duration
            sent = 0
            while time.perf_counter() < deadline and (per_client is None or sent < per_client):
                t0 = time.perf_counter()
                status, _ = client.request("POST", path, body)
                elapsed = time.perf_counter() - t0
                sent += 1
                if status == 201:
                    worker.latencies.append(elapsed)
                else:
                    worker.errors[status] = worker.errors.get(status, 0) + 1
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    start_line.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of posting")
    p.add_argument("--count", type=int, help="stop each client after this many posts")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured posting")
    p.add_argument("--url", help="a running server (needs --token)")
    p.add_argument("--token", help="an admin's API token for --url")
    p.add_argument("--pool-max", type=int, help="DB_POOL_MAX for the private server")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if bool(args.url) != bool(args.token):
        p.error("--url and --token go together")
    if args.clients < 1:
        p.error("--clients must be at least 1")

    @contextmanager
    def target() -> Iterator[tuple[str, str, int | None]]:
        if args.url:
            yield args.url.rstrip("/"), args.token, None
        else:
            with local_server(args.pool_max) as srv:
                yield srv.base_url, srv.admin_token, srv.pid

    with target() as (base_url, admin_token, pid):
        room_id, workers = prepare(base_url, admin_token, args.clients)
        warm_acked = 0
        if args.warmup > 0:
            run_clients(base_url, room_id, workers, args.warmup, None)
            warm_acked = sum(len(w.latencies) for w in workers)
            for w in workers:
                w.latencies.clear()
                w.errors.clear()
        cpu_before = cpu_seconds(pid) if pid is not None else None
        wall = run_clients(base_url, room_id, workers, args.duration, args.count)
        cpu_after = cpu_seconds(pid) if pid is not None else None
        rss = rss_mib(pid) if pid is not None else None
        checker = Client(base_url, workers[0].jwt)
        _, room = checker.request("GET", f"/api/v1/rooms/{room_id}")
        checker.close()

    latencies = sorted(lat for w in workers for lat in w.latencies)
    errors: dict[int, int] = {}
    for w in workers:
        for status, n in w.errors.items():
            errors[status] = errors.get(status, 0) + n
    ms = [1000 * v for v in latencies]
    result = {
        "clients": args.clients,
        "messages": len(latencies),
        "seconds": round(wall, 3),
        "messagesPerSecond": round(len(latencies) / wall, 1) if wall > 0 else 0.0,
        "p50Ms": round(percentile(ms, 50), 2),
        "p90Ms": round(percentile(ms, 90), 2),
        "p99Ms": round(percentile(ms, 99), 2),
        "maxMs": round(ms[-1], 2) if ms else None,
        "meanMs": round(statistics.fmean(ms), 2) if ms else None,
        "errors": {str(k): v for k, v in sorted(errors.items())},
        # Every acknowledged post (warm-up included) must be in the room, densely numbered.
        "roomLastSeq": room.get("lastSeq") if isinstance(room, dict) else None,
        "acknowledged": warm_acked + len(latencies),
        "serverRssMiB": None if rss is None else round(rss, 1),
        "serverCpuSecondsPer1000": (
            round(1000 * (cpu_after - cpu_before) / len(latencies), 3)
            if cpu_before is not None and cpu_after is not None and latencies
            else None
        ),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"REST POST /rooms/{{id}}/messages: {result['clients']} clients, "
            f"{result['messages']} messages in {result['seconds']}s"
        )
        print(f"  throughput  {result['messagesPerSecond']} messages/s")
        print(
            f"  latency     p50 {result['p50Ms']} ms   p90 {result['p90Ms']} ms   "
            f"p99 {result['p99Ms']} ms   max {result['maxMs']} ms"
        )
        print(f"  errors      {result['errors'] or 'none'}")
        print(
            f"  room seq    {result['roomLastSeq']} for {result['acknowledged']} acknowledged posts"
            " (warm-up included)"
        )
        if rss is not None:
            print(f"  server RSS  {result['serverRssMiB']} MiB")
        if result["serverCpuSecondsPer1000"] is not None:
            print(f"  server CPU  {result['serverCpuSecondsPer1000']} s per 1,000 acked posts")
    if result["roomLastSeq"] != result["acknowledged"]:
        print("bench: room seq does not match the acknowledged posts", file=sys.stderr)
        return 1
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
