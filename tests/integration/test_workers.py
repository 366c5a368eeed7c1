"""``agenthub serve --workers N``: a parent supervising N full servers, worker i on PORT+i.
Real processes: both workers answer on their own ports, a worker killed with SIGKILL is
started again, SIGTERM to the parent stops every worker cleanly, systemd hears READY only once
all workers are ready, and more than one worker without REDIS_URL is refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.servers import AGENTHUB, ScratchDatabase
from tests.workers_support import free_port_run, pid_alive, start_workers


def _wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_answer_on_their_own_ports(database: ScratchDatabase, tmp_path: Path) -> None:
    workers = start_workers(database.env, 2, tmp_path / "workers.log")
    try:
        pids = workers.pids()
        assert sorted(pids) == [0, 1]
        assert pids[0] != pids[1] and workers.process.pid not in pids.values()
        for index in (0, 1):
            assert workers.api(index).get("/healthz").status == 200
            metrics = workers.api(index).get("/metrics")
            assert metrics.status == 200
            # Each worker has its own registry: its own pid in the process collector.
            assert "process_start_time_seconds" in metrics.text
    finally:
        assert workers.stop() == 0, workers.log_text()[-3000:]


def test_a_killed_worker_is_restarted(database: ScratchDatabase, tmp_path: Path) -> None:
    workers = start_workers(database.env, 2, tmp_path / "workers.log")
    try:
        before = workers.pids()
        os.kill(before[1], signal.SIGKILL)
        _wait_for(lambda: workers.pids().get(1) not in (None, before[1]), what="a new worker 1")
        killed = f"worker 1 (pid {before[1]}, port {workers.ports[1]}) was killed by SIGKILL"
        assert killed in workers.log_text()
        workers.wait_answering("/healthz")
        # The other worker was left alone.
        assert workers.pids()[0] == before[0] and pid_alive(before[0])
        assert workers.process.poll() is None
    finally:
        assert workers.stop() == 0, workers.log_text()[-3000:]


def test_sigterm_to_the_parent_stops_every_worker(
    database: ScratchDatabase, tmp_path: Path
) -> None:
    workers = start_workers(database.env, 2, tmp_path / "workers.log")
    pids = workers.pids()
    assert workers.stop() == 0, workers.log_text()[-3000:]
    for pid in pids.values():
        assert not pid_alive(pid)
    log = workers.log_text()
    # Each worker drained and stopped as a single server does, then the parent.
    assert log.count("shutting down: draining connections") == 2
    assert log.count("agenthub: stopped\n") == 2
    assert "all workers stopped" in log
    for port in workers.ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_systemd_hears_ready_once_all_workers_are(
    database: ScratchDatabase, tmp_path: Path
) -> None:
    address = f"\0agenthub-test-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        notify.settimeout(60)
        env = dict(database.env, NOTIFY_SOCKET="@" + address[1:])
        workers = start_workers(env, 2, tmp_path / "workers.log", wait=False)
        try:
            assert notify.recv(4096) == b"READY=1"
            # Told only once both are up: each answers /readyz at that moment.
            for index in (0, 1):
                assert workers.api(index).get("/readyz").status == 200
            assert workers.process.poll() is None
        finally:
            assert workers.stop() == 0, workers.log_text()[-3000:]
        assert notify.recv(4096) == b"STOPPING=1"


def test_more_than_one_worker_without_redis_is_refused(database: ScratchDatabase) -> None:
    env = {k: v for k, v in database.env.items() if k != "REDIS_URL"}
    env.update(WORKERS="2", PORT=str(free_port_run(2)))
    done = subprocess.run([AGENTHUB, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to start 2 workers without REDIS_URL" in done.stderr
    flag = subprocess.run(
        [AGENTHUB, "serve", "--workers", "3"], env=env, capture_output=True, text=True, timeout=60
    )
    assert flag.returncode == 2
    assert "without REDIS_URL" in flag.stderr
