"""AgentHub against its own database, in one run: the issue-14 figures as ratios.

First PostgreSQL's one-row-insert rate (``pgbench``, 10 clients, one 200-character row per
transaction: bench/pgref.py), then, on a private server and database built like
bench/rest_post.py's:

  1. REST acked posts/s, 10 clients (bench/rest_post.py's clients), and its ratio to pgbench;
  2. socket.io acked ``message:send``/s, 20 senders (bench/socket_bench.py), and its ratio;
  3. fan-out: 50 receivers in one room, 200 messages/s sent for 30 s: p50/p99 from send to
     ``message:new``, deliveries/s (10,000 when the server keeps up), how long the backlog took
     to drain after the last send, and server CPU-seconds per 10,000 deliveries;
  4. server CPU-seconds per 1,000 acked sends, REST and socket (utime+stime from /proc);
  5. RSS per idle socket (1,000 sockets), and with ``--soak MINUTES`` the RSS every minute
     while 500 sockets stay connected and sends go on at half the rate measured in 2.

``--agenthub PATH`` (repeatable) picks the server executable, so one invocation measures
another checkout's server beside this one's, each with its own pgbench reference taken just
before it. The load generator (this process: 10 client threads for REST, asyncio for the
sockets) shares the machine with the server and PostgreSQL; the CPU it used is printed
beside each figure ("bench cores"), so a figure limited by the bench shows as such.

    set -a; . .agenthub-dev/env; set +a
    .venv/bin/python bench/compare.py                                   # about 2.5 minutes
    .venv/bin/python bench/compare.py --quick
    .venv/bin/python bench/compare.py --agenthub /work/wt-base/.venv/bin/agenthub \\
        --agenthub .venv/bin/agenthub --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import pgref
from bench.rest_post import (
    AGENTHUB,
    Client,
    cpu_seconds,
    local_server,
    login,
    percentile,
    prepare,
    rss_mib,
    run_clients,
)
from bench.socket_bench import NAMESPACE, World, acked_sends, fan_out, idle_sockets, open_socket

# The private server must measure itself, not its limiters.
UNTHROTTLED = {
    "SOCKET_EVENTS_PER_SECOND": "100000",
    "SOCKET_BURST": "100000",
    "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "10000000",
    "RATE_LIMIT_AGENT_PER_MINUTE": "10000000",
    "RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS": "10000000",
    "RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX": "10000000",
}

# The targets (printed, never asserted).
TARGET_REST_RATIO = 0.15
TARGET_SOCKET_RATIO = 0.25
TARGET_FAN_P99_MS = 50.0
TARGET_KIB_PER_SOCKET = 40.0


def rest_phase(
    base_url: str, token: str, pid: int, clients: int, duration: float
) -> dict[str, Any]:
    room_id, workers = prepare(base_url, token, clients)
    run_clients(base_url, room_id, workers, 1.0, None)  # warm-up
    warm = sum(len(w.latencies) for w in workers)
    for w in workers:
        w.latencies.clear()
        w.errors.clear()
    cpu0, own0 = cpu_seconds(pid), time.process_time()
    wall = run_clients(base_url, room_id, workers, duration, None)
    cpu1, own1 = cpu_seconds(pid), time.process_time()
    ms = sorted(1000 * v for w in workers for v in w.latencies)
    errors = sum(n for w in workers for n in w.errors.values())
    checker = Client(base_url, workers[0].jwt)
    _, room = checker.request("GET", f"/api/v1/rooms/{room_id}")
    checker.close()
    if room.get("lastSeq") != warm + len(ms):
        raise SystemExit(f"compare: room seq {room.get('lastSeq')} != {warm + len(ms)} acked")
    assert cpu0 is not None and cpu1 is not None
    return {
        "clients": clients,
        "acked": len(ms),
        "errors": errors,
        "ackedPerSecond": round(len(ms) / wall, 1),
        "p50Ms": round(percentile(ms, 50), 2),
        "p99Ms": round(percentile(ms, 99), 2),
        "serverCpuSecondsPer1000": round(1000 * (cpu1 - cpu0) / max(1, len(ms)), 3),
        "serverCores": round((cpu1 - cpu0) / wall, 2),
        "clientCores": round((own1 - own0) / wall, 2),
    }


async def paced_sends(
    base_url: str, jwts: list[str], room_id: str, rate: float, duration: float, pid: int
) -> dict[str, Any]:
    """``rate`` sends/s into the room for ``duration`` s over the sockets of ``jwts``, the
    server's RSS printed every minute."""
    senders = [await open_socket(base_url, jwt) for jwt in jwts]
    acked = failed = 0
    samples: list[dict[str, float]] = []

    async def send(client: socketio.AsyncClient, body: str) -> None:
        nonlocal acked, failed
        ack = await client.call(
            "message:send", {"roomId": room_id, "body": body}, namespace=NAMESPACE
        )
        if isinstance(ack, dict) and ack.get("ok"):
            acked += 1
        else:
            failed += 1

    pending: set[asyncio.Task[None]] = set()
    began = time.perf_counter()
    next_sample = began
    i = 0
    while True:
        now = time.perf_counter()
        if now >= next_sample:
            rss = rss_mib(pid) or 0.0
            minute = round((now - began) / 60, 1)
            samples.append({"minute": minute, "rssMiB": round(rss, 1), "acked": acked})
            print(f"    soak minute {minute:>4}: RSS {rss:.1f} MiB, {acked} acked", flush=True)
            next_sample += 60
        if now - began >= duration:
            break
        due = began + i / rate
        if due > now:
            await asyncio.sleep(min(due - now, next_sample - now))
            continue
        task = asyncio.create_task(send(senders[i % len(senders)], f"soak-{i}"))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
    await asyncio.gather(*pending)
    end = time.perf_counter()
    rss = rss_mib(pid) or 0.0
    samples.append(
        {"minute": round((end - began) / 60, 1), "rssMiB": round(rss, 1), "acked": acked}
    )
    print(
        f"    soak end ({(end - began) / 60:.1f} min): RSS {rss:.1f} MiB, {acked} acked", flush=True
    )
    await asyncio.gather(*(c.disconnect() for c in senders), return_exceptions=True)
    series = [s["rssMiB"] for s in samples]
    return {
        "rate": round(rate, 1),
        "acked": acked,
        "failed": failed,
        "samples": samples,
        "rssGrowthMiB": round(series[-1] - series[1], 1) if len(series) > 2 else None,
    }


async def socket_phases(
    base_url: str, token: str, pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    admin = Client(base_url, login(base_url, token))
    world = World(base_url, admin)
    try:
        send_room = world.room("send")
        sender_jwts = [world.agent_in([send_room]) for _ in range(20)]
        fan_room = world.room("fan")
        receiver_jwts = [world.agent_in([fan_room]) for _ in range(50)]
        fan_senders = [world.agent_in([fan_room]) for _ in range(4)]
        idle_room = world.room("idle")
        idle_jwt = world.agent_in([idle_room])
    finally:
        admin.close()
    await acked_sends(base_url, sender_jwts[:1], send_room, 1.0)  # warm-up
    sends = await acked_sends(base_url, sender_jwts, send_room, args.socket_seconds, pid)
    fan = await fan_out(
        base_url, fan_senders, receiver_jwts, fan_room, 200.0, args.fan_seconds, pid, light=True
    )
    idle = await idle_sockets(base_url, idle_jwt, args.idle, pid)
    result: dict[str, Any] = {"sends": sends, "fanOut": fan, "idle": idle}
    if args.soak:
        rate = sends["ackedPerSecond"] / 2
        print(
            f"  soak: 500 sockets, {rate:.0f} sends/s for {args.soak:g} min (RSS every minute)",
            flush=True,
        )

        async def hold() -> dict[str, Any]:
            return await paced_sends(base_url, sender_jwts, send_room, rate, args.soak * 60, pid)

        soak = await idle_sockets(base_url, idle_jwt, 500, pid, hold=hold)
        result["soak"] = soak
    return result


def measure(agenthub: str, args: argparse.Namespace) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    with local_server(None, agenthub, UNTHROTTLED) as srv:
        pg = (
            pgref.pgbench_reference(srv.database, srv.env, 10, args.pgbench_seconds)
            if pgref.available()
            else None
        )
        rest = rest_phase(srv.base_url, srv.admin_token, srv.pid, 10, args.rest_seconds)
        sockets = asyncio.run(socket_phases(srv.base_url, srv.admin_token, srv.pid, args))
    tps = pg.tps if pg is not None else None

    def ratio(value: float) -> float | None:
        return round(value / tps, 4) if tps else None

    return {
        "agenthub": agenthub,
        "loadAverageBefore": round(load0, 2),
        "loadAverageAfter": round(os.getloadavg()[0], 2),
        "pgbenchTps": tps,
        "rest": {**rest, "ratioToPgbench": ratio(rest["ackedPerSecond"])},
        "socket": {
            **sockets["sends"],
            "ratioToPgbench": ratio(sockets["sends"]["ackedPerSecond"]),
        },
        "fanOut": sockets["fanOut"],
        "idle": sockets["idle"],
        **({"soak": sockets["soak"]} if "soak" in sockets else {}),
    }


def pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * ratio:.1f} %"


def report(r: dict[str, Any]) -> None:
    rest, sock, fan, idle = r["rest"], r["socket"], r["fanOut"], r["idle"]
    print(
        f"server {r['agenthub']}  (load average {r['loadAverageBefore']} -> "
        f"{r['loadAverageAfter']})"
    )
    print(f"  pgbench 1-row inserts, 10 clients: {r['pgbenchTps']} tx/s")
    print(
        f"  1. REST acked posts/s, {rest['clients']} clients: {rest['ackedPerSecond']} = "
        f"{pct(rest['ratioToPgbench'])} of pgbench (target >= {TARGET_REST_RATIO:.0%}); "
        f"p50 {rest['p50Ms']} ms, p99 {rest['p99Ms']} ms, errors {rest['errors']}"
    )
    print(
        f"  2. socket acked sends/s, {sock['senders']} senders: {sock['ackedPerSecond']} = "
        f"{pct(sock['ratioToPgbench'])} of pgbench (target >= {TARGET_SOCKET_RATIO:.0%}); "
        f"p50 {sock['ackP50Ms']} ms, p99 {sock['ackP99Ms']} ms, errors {sock['errors'] or 0}"
    )
    print(
        f"  3. fan-out {fan['receivers']} receivers at {fan['sentPerSecond']} msg/s: "
        f"p50 {fan['p50Ms']} ms, p99 {fan['p99Ms']} ms (target < {TARGET_FAN_P99_MS:g}), "
        f"max {fan['maxMs']} ms; {fan['deliveriesPerSecond']} deliveries/s "
        f"({fan['deliveries']}/{fan['expectedDeliveries']}, drained "
        f"{fan['drainSeconds']} s after the last send, {fan['outOfOrder']} out of order); "
        f"server {fan['serverCpuSecondsPer10000Deliveries']} CPU-s per 10,000 deliveries"
    )
    print(
        f"  4. server CPU-s per 1,000 acked sends: REST {rest['serverCpuSecondsPer1000']}, "
        f"socket {sock['serverCpuSecondsPer1000']}"
    )
    print(
        f"  5. RSS per idle socket: {idle['kibPerSocket']} KiB "
        f"(target <= {TARGET_KIB_PER_SOCKET:g}; {idle['connected']} sockets, "
        f"{idle['rssBeforeMiB']} -> {idle['rssWithSocketsMiB']} MiB)"
    )
    if "soak" in r:
        soak = r["soak"]["held"]
        print(
            f"     soak: {soak['rate']} sends/s, {soak['acked']} acked, {soak['failed']} "
            f"failed; RSS "
            + ", ".join(f"{s['rssMiB']}" for s in soak["samples"])
            + f" MiB (growth after minute 1: {soak['rssGrowthMiB']} MiB)"
        )
    print(
        f"  cores busy (server / bench): REST {rest['serverCores']} / {rest['clientCores']}, "
        f"socket {sock['serverCores']} / {sock['clientCores']}, "
        f"fan-out {fan['serverCores']} / {fan['clientCores']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--agenthub",
        action="append",
        help="server executable (repeatable; default: the agenthub beside this Python)",
    )
    p.add_argument("--quick", action="store_true", help="shorter phases (about 1 minute)")
    p.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="also hold 500 sockets for MINUTES at half the socket send rate",
    )
    p.add_argument("--idle", type=int, default=1000, help="idle sockets for the RSS figure")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    quick = args.quick
    args.pgbench_seconds = 5 if quick else 10
    args.rest_seconds = 5.0 if quick else 10.0
    args.socket_seconds = 5.0 if quick else 10.0
    args.fan_seconds = 10.0 if quick else 30.0
    servers = args.agenthub or [AGENTHUB]
    results = []
    for agenthub in servers:
        path = str(Path(agenthub).expanduser())
        results.append(measure(path, args))
        if not args.json:
            report(results[-1])
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "quick": quick,
        "runs": results,
    }
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
