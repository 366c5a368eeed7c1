"""``agenthub serve --workers N``: a parent process that runs N full servers, worker i on
``PORT + i``, restarts one that dies, forwards SIGTERM/SIGINT and tells systemd READY once
every worker is ready.

Each worker is a plain ``agenthub serve`` (a fresh interpreter, not a fork: no event loop,
pool or thread is shared). Readiness travels the way systemd's does: the parent gives every
worker its own ``NOTIFY_SOCKET`` and hears the worker's ``READY=1`` there, so the worker code
does not know it is supervised. The balancer in front (HAProxy) spreads clients over the ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, field

from agenthub import systemd
from agenthub.config import EX_CONFIG, Settings
from agenthub.shutdown import DRAIN_SECONDS

log = logging.getLogger("agenthub.supervisor")

# A worker that dies is started again after a pause that doubles per quick death, so a worker
# that cannot start (port taken, database role missing) does not spin the CPU.
RESTART_DELAY_FIRST = 0.5
RESTART_DELAY_MAX = 30.0
# A worker that stayed up this long had started fine: its next death restarts it at once-ish.
STABLE_AFTER_SECONDS = 30.0
# Each worker drains within DRAIN_SECONDS; past this the parent kills what is left.
STOP_GRACE_SECONDS = DRAIN_SECONDS + 5.0
PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    index: int
    port: int
    notify_address: str
    ready: bool = False
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    sock: socket.socket | None = field(default=None, repr=False)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "agenthub", "serve"]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies, even by SIGKILL, so no
    worker outlives its supervisor holding the port (systemd's cgroup would catch it; a
    terminal or a test would not)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.signal_to_forward = signal.SIGTERM
        self.fatal_status: int | None = None
        self.announced_ready = False
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.workers = [
            Worker(i, settings.port + i, f"@agenthub-worker-{token}-{i}") for i in range(count)
        ]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        for worker in self.workers:
            self._listen_notify(worker)
        log.info(
            "supervising %d workers on %s ports %d-%d",
            len(self.workers),
            self.settings.host,
            self.workers[0].port,
            self.workers[-1].port,
        )
        tasks = [asyncio.create_task(self._keep_running(worker)) for worker in self.workers]
        await self.stopping.wait()
        systemd.notify("STOPPING=1")
        log.info("stopping %d workers", len(self.workers))
        await self._stop_all()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in self.workers:
            if worker.sock is not None:
                loop.remove_reader(worker.sock.fileno())
                worker.sock.close()
        log.info("all workers stopped")
        return self.fatal_status or 0

    def _request_stop(self, sig: int) -> None:
        self.signal_to_forward = signal.Signals(sig)
        self.stopping.set()

    def _listen_notify(self, worker: Worker) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind("\0" + worker.notify_address[1:])
        sock.setblocking(False)
        worker.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_notify, worker)

    def _on_notify(self, worker: Worker) -> None:
        assert worker.sock is not None
        while True:
            try:
                data = worker.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            lines = data.decode(errors="replace").splitlines()
            if "READY=1" in lines and not worker.ready:
                worker.ready = True
                log.info("worker %d (port %d) ready", worker.index, worker.port)
                self._maybe_announce_ready()
            if "STOPPING=1" in lines:
                worker.ready = False

    def _maybe_announce_ready(self) -> None:
        if self.announced_ready or not all(worker.ready for worker in self.workers):
            return
        self.announced_ready = True
        systemd.notify("READY=1")
        log.info("all %d workers ready", len(self.workers))

    def _worker_env(self, worker: Worker) -> dict[str, str]:
        env = dict(os.environ)
        env["PORT"] = str(worker.port)
        env["WORKERS"] = "1"
        env["NOTIFY_SOCKET"] = worker.notify_address
        return env

    async def _keep_running(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY_FIRST
        while not self.stopping.is_set():
            worker.ready = False
            try:
                worker.process = await asyncio.create_subprocess_exec(
                    *worker_command(),
                    env=self._worker_env(worker),
                    stdin=asyncio.subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:  # fork or exec refused (out of memory, process limit)
                log.error(
                    "worker %d cannot be started: %s; retrying in %.1fs", worker.index, exc, delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)
                continue
            started = loop.time()
            log.info(
                "worker %d started: pid %d, port %d",
                worker.index,
                worker.process.pid,
                worker.port,
            )
            status = await worker.process.wait()
            worker.ready = False
            if self.stopping.is_set():
                return
            how = f"was killed by {_signal_name(-status)}" if status < 0 else f"exited {status}"
            if status == EX_CONFIG:
                # Its settings are refused: every restart would be refused the same way.
                log.error("worker %d %s (configuration); stopping all", worker.index, how)
                self.fatal_status = EX_CONFIG
                self.stopping.set()
                return
            if loop.time() - started >= STABLE_AFTER_SECONDS:
                delay = RESTART_DELAY_FIRST
            worker.restarts += 1
            log.warning(
                "worker %d (pid %d, port %d) %s; restarting in %.1fs",
                worker.index,
                worker.process.pid,
                worker.port,
                how,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)

    async def _stop_all(self) -> None:
        running = [
            worker.process
            for worker in self.workers
            if worker.process is not None and worker.process.returncode is None
        ]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self.signal_to_forward)
        waits = [asyncio.create_task(process.wait()) for process in running]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=STOP_GRACE_SECONDS)
        for process in running:
            if process.returncode is None:
                log.error("worker pid %d did not stop in time; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if pending:
            await asyncio.wait(pending)
        for process in running:
            if process.returncode not in (0, None) and self.fatal_status is None:
                log.warning("worker pid %d stopped with status %s", process.pid, process.returncode)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run(settings: Settings, count: int) -> int:
    return asyncio.run(Supervisor(settings, count).run())
