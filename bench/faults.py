"""Faults under load: kill -9 of the server, a PostgreSQL restart, SIGTERM of the server.

Each scenario runs REST posters and python-socketio senders (every send with a clientMsgId,
retried with the same one until acked), injects the fault, brings the service back, keeps the
load going, then compares what the senders were told with what PostgreSQL holds. It prints,
per scenario: sends attempted, acked, acked-but-missing, duplicates, seq gaps, acks lost,
time to /readyz 200 after the fault, socket reconnect and REST resume times.

The same scenarios are the tests in tests/faults/ (which assert instead of printing). This
script builds a throwaway PostgreSQL cluster of its own (initdb into a temporary directory, a
free port, trust auth; removed afterwards) with one database per scenario, and a real
``agenthub serve`` on a fixed free port; the machine's PostgreSQL is not touched.

    .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --scenario kill --rest 10 --socket 10 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

# Run as a script (python bench/faults.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.pgcluster import ThrowawayCluster
from tests.faults.scenarios import (
    FaultReport,
    LoadShape,
    postgres_restart,
    run,
    server_kill,
    server_sigterm,
)
from tests.faults.server import LOAD_SETTINGS, ServerProcess, cli

SCENARIOS = ("kill", "postgres", "sigterm")

ROWS = [
    ("sendsAttempted", "sends attempted"),
    ("attempts", "attempts (with retries)"),
    ("inFlightAtFault", "in flight at the fault"),
    ("acked", "acked"),
    ("ackedButMissing", "acked but missing"),
    ("duplicates", "duplicates"),
    ("gaps", "seq gaps"),
    ("ackLost", "committed, ack lost"),
    ("storedDespiteRefusal", "stored though refused"),
    ("unresolved", "never acked"),
    ("readyz503DuringOutage", "/readyz 503 samples in outage"),
    ("readySecondsAfterFault", "/readyz 200, s after fault"),
    ("readySecondsAfterRecovery", "/readyz 200, s after restart"),
    ("socketsReconnected", "sockets reconnected"),
    ("reconnectSeconds", "reconnect s (from disconnect)"),
    ("reconnectSecondsAfterReady", "reconnect s (after ready)"),
    ("restResumeSeconds", "REST resume s (1st failure)"),
    ("disconnectReasons", "socket disconnect reasons"),
    ("failedAttempts", "failed attempts"),
    ("exitSeconds", "SIGTERM → exit, s"),
]


def run_one(
    cluster: ThrowawayCluster, scenario: str, shape: LoadShape, workdir: Path, log_level: str
) -> FaultReport:
    dbname = f"faults_{scenario}"
    cluster.create_database(dbname)
    base = dict(os.environ, JWT_SECRET=secrets.token_hex(32), **LOAD_SETTINGS)
    base["LOG_LEVEL"] = log_level
    env = cluster.env(base, dbname)
    cli(env, "migrate")
    logs = workdir / scenario
    logs.mkdir()
    server = ServerProcess(env, logs)
    server.start()
    try:
        server.wait_ready()
        if scenario == "kill":
            report = run(server_kill(server, shape))
        elif scenario == "sigterm":
            report = run(server_sigterm(server, shape))
        else:
            report = run(postgres_restart(server, cluster, shape))
    finally:
        server.stop()
    return report


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="default: all three")
    p.add_argument("--rest", type=int, default=LoadShape.rest, help="REST posters")
    p.add_argument("--socket", type=int, default=LoadShape.socket, help="socket senders")
    p.add_argument("--pause", type=float, default=LoadShape.pause, help="s between sends")
    p.add_argument("--before", type=float, default=LoadShape.before, help="s of load first")
    p.add_argument("--down", type=float, default=LoadShape.down, help="s the fault lasts")
    p.add_argument("--after", type=float, default=LoadShape.after, help="s of load after")
    p.add_argument("--log-level", default="warning", help="the servers' LOG_LEVEL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.rest < 0 or args.socket < 0 or args.rest + args.socket < 1:
        p.error("--rest and --socket: at least one sender")
    shape = LoadShape(
        rest=args.rest,
        socket=args.socket,
        pause=args.pause,
        before=args.before,
        down=args.down,
        after=args.after,
    )
    scenarios = args.scenario or list(SCENARIOS)
    # python-engineio's client logs "packet queue is empty, aborting" at ERROR when a socket
    # that will not reconnect is torn down; the figures say what happened.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)

    cluster = ThrowawayCluster()
    reports: list[FaultReport] = []
    try:
        cluster.init()
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="agenthub-faults-") as workdir:
            for scenario in scenarios:
                reports.append(run_one(cluster, scenario, shape, Path(workdir), args.log_level))
    finally:
        cluster.remove()

    problems = {r.scenario: r.problems() for r in reports}
    if args.json:
        print(
            json.dumps(
                [dict(r.figures(), problems=problems[r.scenario]) for r in reports], indent=2
            )
        )
    else:
        figures = [r.figures() for r in reports]
        width = max(len(label) for _, label in ROWS)
        print(f"{'':{width}}  " + "  ".join(f"{r.scenario:<26}" for r in reports))
        senders = f"{shape.rest} REST + {shape.socket} socket"
        print(f"{'senders':{width}}  " + "  ".join(f"{senders:<26}" for _ in reports))
        for key, label in ROWS:
            print(f"{label:{width}}  " + "  ".join(f"{cell(f[key]):<26}" for f in figures))
        for scenario, found in problems.items():
            for problem in found:
                print(f"PROBLEM {scenario}: {problem}", file=sys.stderr)
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
