"""``agenthub serve --workers N`` under test: a free run of ports, the supervising parent
started and waited for, its workers' pids read from its log."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import Api
from tests.servers import AGENTHUB

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
_STARTED = re.compile(r"worker (\d+) started: pid (\d+), port (\d+)")


def free_port_run(count: int) -> int:
    """A port P with P … P+count-1 all free now (bound together to check)."""
    for _ in range(200):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            if base + count - 1 > 65535:
                continue
            with ExitStack() as stack:
                try:
                    for offset in range(1, count):
                        extra = stack.enter_context(socket.socket())
                        extra.bind(("127.0.0.1", base + offset))
                except OSError:
                    continue
                return base
    raise RuntimeError("no free run of ports")


@dataclass
class Workers:
    process: subprocess.Popen[bytes]
    ports: list[int]
    log_path: Path
    scheme: str = "http"

    def url(self, index: int) -> str:
        return f"{self.scheme}://127.0.0.1:{self.ports[index]}"

    def api(self, index: int, token: str | None = None) -> Api:
        return Api(self.url(index), token)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> dict[int, int]:
        """Worker index -> the pid of its newest process, as the parent logged them."""
        found: dict[int, int] = {}
        for match in _STARTED.finditer(self.log_text()):
            found[int(match.group(1))] = int(match.group(2))
        return found

    def wait_answering(self, probe: str = "/readyz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = set(range(len(self.ports)))
        while pending and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"supervisor exited early:\n{self.log_text()}")
            for index in sorted(pending):
                try:
                    if self.api(index).get(probe).status == 200:
                        pending.discard(index)
                except OSError:
                    pass
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"workers {sorted(pending)} not answering:\n{self.log_text()}")

    def stop(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9


def start_workers(
    env: dict[str, str], count: int, log_path: Path, *, wait: bool = True, port: int | None = None
) -> Workers:
    base = port or free_port_run(count)
    env = dict(env, PORT=str(base), HOST="127.0.0.1")
    env.setdefault("REDIS_URL", LOCAL_REDIS)
    # Its own channels and keys: other tests and other runs share this Redis.
    env.setdefault("REDIS_PREFIX", f"test-{uuid.uuid4().hex[:12]}")
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [AGENTHUB, "serve", "--workers", str(count)], env=env, stdout=log_file, stderr=log_file
    )
    workers = Workers(process, [base + i for i in range(count)], log_path)
    if wait:
        try:
            workers.wait_answering()
        except Exception:
            workers.stop()
            raise
    return workers


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie has exited; only its parent's wait is missing.
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
