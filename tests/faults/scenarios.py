"""The fault scenarios, shared by ``tests/faults/`` (which assert) and ``bench/faults.py``
(which prints): load → fault → recovery → more load → drain → compare with the database.

A scenario raises only when it cannot run (a server that does not start); what went wrong
under the fault is in the returned ``FaultReport``: ``problems()`` lists every broken promise,
``figures()`` the numbers.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.faults.ledger import StoreCheck, check_store
from tests.faults.load import (
    LoadControl,
    ReadyProbe,
    RestPoster,
    Send,
    Sender,
    SocketSender,
    now,
)
from tests.faults.pgcluster import ThrowawayCluster
from tests.faults.server import ServerProcess
from tests.faults.world import build_world


@dataclass(frozen=True)
class LoadShape:
    rest: int = 5  # REST posters
    socket: int = 5  # python-socketio senders
    pause: float = 0.05  # seconds each sender waits after an ack (≈15 sends/s each here)
    before: float = 2.0  # seconds of load before the fault
    # Then strike at a moment when this many sends await their answer (waiting up to 2 s for
    # one): the fault is about the sends in flight, and a random moment finds few.
    strike_in_flight: int = 5
    down: float = 1.0  # seconds the fault lasts (server gone / PostgreSQL stopped)
    after: float = 2.0  # seconds of load once every sender is sending again
    recover_within: float = 30.0  # bound for /readyz 200 after the recovery
    resume_within: float = 10.0  # bound for every sender to be acked again after that
    drain: float = 10.0  # bound for the senders to get their last message acked


@dataclass
class Timeline:
    fault_at: float = 0.0  # the fault injected
    recovered_at: float = 0.0  # the new server spawned / PostgreSQL started again
    ready_at: float | None = None  # first /readyz 200 after recovered_at
    resumed_at: float | None = None  # every sender acked a message begun after ready_at
    in_flight_at_fault: int = 0  # sends awaiting their answer when the fault was injected
    exit_code: int | None = None  # the server's, after SIGTERM
    exit_seconds: float | None = None  # SIGTERM → exit


@dataclass
class FaultReport:
    scenario: str
    shape: LoadShape
    senders: list[Sender]
    timeline: Timeline
    probe: ReadyProbe
    store: StoreCheck
    # What the scenario promises beyond the common invariants.
    expect_db_outage: bool = False  # /readyz must say 503 while PostgreSQL is away
    expect_acks_kept: bool = False  # the server answers every send it commits
    expect_clean_exit: bool = False  # SIGTERM: exit 0 after draining

    @property
    def sends(self) -> list[Send]:
        return [s for sender in self.senders for s in sender.sends]

    @property
    def sockets(self) -> list[SocketSender]:
        return [s for s in self.senders if isinstance(s, SocketSender)]

    def problems(self) -> list[str]:
        """Every promise this run broke, one line each (empty: all kept)."""
        out: list[str] = []
        store, tl, sends = self.store, self.timeline, self.sends
        if store.acked_missing:
            out.append(f"acked but missing: {len(store.acked_missing)} {store.acked_missing[:5]}")
        if store.duplicates:
            out.append(f"duplicates: {len(store.duplicates)} {store.duplicates[:5]}")
        if store.gaps:
            out.append(f"seq gaps: {store.gap_count} {dict(list(store.gaps.items())[:2])}")
        if store.last_seq_off:
            out.append(f"rooms.last_seq differs from the highest stored seq: {store.last_seq_off}")
        if store.strangers:
            out.append(f"rows no sender sent: {store.strangers}")
        errors = [f"{s.sender}/{s.key}: {s.error}" for s in sends if s.error]
        if errors:
            out.append(f"answers that are neither ack nor retry-later: {errors[:5]}")
        unresolved = [f"{s.sender}/{s.key}" for s in sends if not s.acked and not s.error]
        if unresolved:
            out.append(
                f"sends never acked despite retries (gave up after {self.shape.drain:.0f}s of "
                f"draining): {len(unresolved)} {unresolved[:5]}"
            )
        if tl.ready_at is None:
            out.append(f"/readyz not 200 within {self.shape.recover_within:.0f}s of the recovery")
        if self.expect_db_outage and not self.probe.seen(503, tl.fault_at, tl.recovered_at):
            out.append("/readyz never answered 503 while PostgreSQL was stopped")
        if tl.ready_at is not None and tl.resumed_at is None:
            stalled = [s.name for s in self.senders if not self.resumed(s)]
            out.append(
                f"senders not acked again within {self.shape.resume_within:.0f}s of /readyz "
                f"200: {stalled}"
            )
        for sock in self.sockets:
            if sock.disconnects and not sock.reconnected:
                reasons = [reason for _, reason in sock.disconnects]
                out.append(
                    f"{sock.name} did not reconnect by itself (disconnects: {reasons}, "
                    f"connects: {len(sock.connects)})"
                )
        lost = [f"{s.sender}/{s.key}" for s in sends if s.ack_lost]
        if self.expect_acks_kept and lost:
            out.append(
                f"committed but the ack was lost (the retry found it stored): {len(lost)} "
                f"{lost[:5]}"
            )
        if self.expect_acks_kept and store.stored_unacked:
            out.append(
                f"committed but never acked (stored, the client gave up): "
                f"{len(store.stored_unacked)} {store.stored_unacked[:5]}"
            )
        if self.expect_clean_exit and tl.exit_code != 0:
            out.append(f"server exit status after SIGTERM: {tl.exit_code} (expected 0)")
        return out

    def resumed(self, sender: Sender) -> bool:
        ready = self.timeline.ready_at
        return ready is not None and any(s.acked and s.started > ready for s in sender.sends)

    def figures(self) -> dict[str, Any]:
        sends, tl, store = self.sends, self.timeline, self.store
        reconnects = [t for sock in self.sockets for t in sock.reconnect_times]
        resumes = [t for s in self.senders if s.transport == "rest" for t in s.resumes]
        connects_after_ready = [
            c - tl.ready_at
            for sock in self.sockets
            for c in sock.connects[1:2]
            if tl.ready_at is not None
        ]
        reasons: Counter[str] = Counter()
        for sock in self.sockets:
            reasons.update(reason for _, reason in sock.disconnects)
        failures: Counter[str] = Counter()
        for sender in self.senders:
            for reason, count in sender.failure_reasons.items():
                failures[f"{sender.transport} {reason}"] += count
        return {
            "scenario": self.scenario,
            "senders": {"rest": self.shape.rest, "socket": self.shape.socket},
            "sendsAttempted": len(sends),
            "attempts": sum(s.attempts for s in sends),
            "inFlightAtFault": tl.in_flight_at_fault,
            "acked": sum(1 for s in sends if s.acked),
            "ackedButMissing": len(store.acked_missing),
            "duplicates": len(store.duplicates),
            "gaps": store.gap_count,
            "rowsStored": store.rows,
            # Committed without the client being told: found by its retry, or found stored
            # after it gave up. Expected after kill -9; a defect after SIGTERM.
            "ackLost": sum(1 for s in sends if s.ack_lost) + len(store.stored_unacked),
            "storedDespiteRefusal": sum(1 for s in sends if s.stored_despite_refusal),
            "unresolved": sum(1 for s in sends if not s.acked),
            "failedAttempts": dict(sorted(failures.items())),
            "readyz503DuringOutage": self.probe.seen(503, tl.fault_at, tl.recovered_at),
            "readySecondsAfterFault": _since(tl.fault_at, tl.ready_at),
            "readySecondsAfterRecovery": _since(tl.recovered_at, tl.ready_at),
            "socketsReconnected": f"{sum(s.reconnected for s in self.sockets)}/"
            f"{sum(bool(s.disconnects) for s in self.sockets)} disconnected",
            "disconnectReasons": dict(reasons),
            "reconnectSeconds": _spread(reconnects),
            "reconnectSecondsAfterReady": _spread(connects_after_ready),
            "restResumeSeconds": _spread(resumes),
            "exitCode": tl.exit_code,
            "exitSeconds": None if tl.exit_seconds is None else round(tl.exit_seconds, 2),
        }

    def summary(self) -> str:
        lines = [f"{self.scenario}:"]
        lines += [f"  {k}: {v}" for k, v in self.figures().items() if k != "scenario"]
        return "\n".join(lines)


def _since(start: float, end: float | None) -> float | None:
    return None if end is None else round(end - start, 2)


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": round(statistics.median(values), 2), "max": round(max(values), 2)}


Fault = Callable[[Timeline, ReadyProbe], Awaitable[None]]


async def run_scenario(
    name: str,
    server: ServerProcess,
    shape: LoadShape,
    fault: Fault,
    *,
    expect_db_outage: bool = False,
    expect_acks_kept: bool = False,
    expect_clean_exit: bool = False,
) -> FaultReport:
    """Load ``server`` (already running), inject ``fault`` (which also undoes it and sets
    ``timeline.recovered_at``), keep loading until every sender is acked again, drain, and
    compare with the database."""
    world = await asyncio.to_thread(
        build_world, server.base_url, server.env, rest=shape.rest, socket=shape.socket
    )
    senders: list[Sender] = [
        RestPoster(a, server.base_url, shape.pause)
        if a.transport == "rest"
        else SocketSender(a, server.base_url, shape.pause)
        for a in world.agents
    ]
    probe = ReadyProbe(server.base_url)
    timeline = Timeline()
    load = LoadControl()
    tasks: list[asyncio.Task[None]] = []
    report = FaultReport(
        name,
        shape,
        senders,
        timeline,
        probe,
        StoreCheck(0),
        expect_db_outage=expect_db_outage,
        expect_acks_kept=expect_acks_kept,
        expect_clean_exit=expect_clean_exit,
    )
    try:
        for sender in senders:
            await sender.open()
        probe.start()
        tasks = [asyncio.create_task(sender.run(load)) for sender in senders]
        await asyncio.sleep(shape.before)
        await load.wait_until(lambda: load.in_flight >= shape.strike_in_flight, 2.0)
        timeline.in_flight_at_fault = load.in_flight
        timeline.fault_at = now()
        await fault(timeline, probe)
        timeline.ready_at = await probe.wait_for(200, timeline.recovered_at, shape.recover_within)
        if timeline.ready_at is not None and await load.wait_until(
            lambda: all(report.resumed(s) for s in senders), shape.resume_within
        ):
            timeline.resumed_at = now()
            await asyncio.sleep(shape.after)
        load.finish(shape.drain)
        await asyncio.gather(*tasks)
    finally:
        load.finish(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await probe.stop()
        for sender in senders:
            await sender.close()
    report.store = await asyncio.to_thread(check_store, server.env, world.room_ids, report.sends)
    return report


# --- the faults -------------------------------------------------------------------------------


def kill_server(server: ServerProcess, shape: LoadShape) -> Fault:
    """SIGKILL: no goodbye to anyone; a new process on the same port ``shape.down`` later."""

    async def fault(timeline: Timeline, probe: ReadyProbe) -> None:
        server.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server.wait_exit, 10)
        await asyncio.sleep(shape.down)
        server.start()
        timeline.recovered_at = now()

    return fault


def terminate_server(server: ServerProcess, shape: LoadShape) -> Fault:
    """SIGTERM, wait for the drain and exit, then a new process on the same port."""

    async def fault(timeline: Timeline, probe: ReadyProbe) -> None:
        server.send_signal(signal.SIGTERM)
        timeline.exit_code = await asyncio.to_thread(server.wait_exit, 30)
        timeline.exit_seconds = now() - timeline.fault_at
        if timeline.exit_code is None:
            server.send_signal(signal.SIGKILL)
            await asyncio.to_thread(server.wait_exit, 10)
        await asyncio.sleep(shape.down)
        server.start()
        timeline.recovered_at = now()

    return fault


def restart_postgres(cluster: ThrowawayCluster, shape: LoadShape) -> Fault:
    """A fast stop of PostgreSQL (open transactions rolled back, connections cut), held until
    ``/readyz`` has said 503 and ``shape.down`` seconds more, then a start; the server stays."""

    async def fault(timeline: Timeline, probe: ReadyProbe) -> None:
        await asyncio.to_thread(cluster.stop, "fast")
        await probe.wait_for(503, timeline.fault_at, 10.0)
        await asyncio.sleep(shape.down)
        await asyncio.to_thread(cluster.start)
        timeline.recovered_at = now()

    return fault


async def server_kill(server: ServerProcess, shape: LoadShape) -> FaultReport:
    return await run_scenario("kill -9 of the server", server, shape, kill_server(server, shape))


async def server_sigterm(server: ServerProcess, shape: LoadShape) -> FaultReport:
    return await run_scenario(
        "SIGTERM of the server",
        server,
        shape,
        terminate_server(server, shape),
        expect_acks_kept=True,
        expect_clean_exit=True,
    )


async def postgres_restart(
    server: ServerProcess, cluster: ThrowawayCluster, shape: LoadShape
) -> FaultReport:
    return await run_scenario(
        "PostgreSQL restart",
        server,
        shape,
        restart_postgres(cluster, shape),
        expect_db_outage=True,
        expect_acks_kept=True,
    )


def run(coro: Awaitable[FaultReport], bound: float = 150.0) -> FaultReport:
    """Run a scenario on a new event loop, with a hard bound so a hang fails."""

    async def bounded() -> FaultReport:
        return await asyncio.wait_for(coro, bound)

    return asyncio.run(bounded())


def explain(report: FaultReport, server: ServerProcess) -> str:
    """A failed scenario's assertion message: what broke, the figures, the server's log."""
    broken = "\n".join(f"- {p}" for p in report.problems())
    return f"\n{broken}\n\n{report.summary()}\n\nserver log (tail):\n{server.log_tail()}"
