"""``agenthub serve`` on a fixed port that a scenario can kill, terminate and start again.

The clients keep one URL across restarts, as they do behind a systemd unit; so the port is
chosen once, unlike ``tests.conftest.start_server`` which takes a new free port per server.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_port

AGENTHUB = shutil.which("agenthub", path=str(Path(sys.executable).parent)) or "agenthub"

# The load comes from 127.0.0.1 as a handful of agents: measure the faults, not the limiters.
# The per-socket flood limit stays at its default; the senders pace themselves below it.
LOAD_SETTINGS = {
    "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "1000000",
    "RATE_LIMIT_AGENT_PER_MINUTE": "1000000",
    "RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS": "1000000",
    "RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX": "1000000",
    "LOG_LEVEL": "info",
}


def cli(env: dict[str, str], *args: str) -> str:
    """Run the host CLI (``agenthub …``) against ``env``'s database; returns its stdout."""
    done = subprocess.run(
        [AGENTHUB, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"agenthub {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class ServerProcess:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.env = dict(env, HOST="127.0.0.1", PORT=str(self.port))
        self.env.pop("JOURNAL_STREAM", None)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.logs: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn a new server process (one log file per process); does not wait for it."""
        log_path = self.log_dir / f"agenthub-{len(self.logs) + 1}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [AGENTHUB, "serve"], env=self.env, stdout=log, stderr=log
            )

    def ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready within {within:.0f}s:\n{self.log_tail()}")

    def send_signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait_exit(self, within: float) -> int | None:
        """The exit status, or None if the process still runs after ``within`` seconds."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 20 s; the exit status (None if it was not running)."""
        if self.process is None or self.process.poll() is not None:
            return None
        self.process.send_signal(signal.SIGTERM)
        code = self.wait_exit(20)
        if code is None:
            self.process.kill()
            code = self.process.wait()
        return code

    def log_tail(self, chars: int = 3000) -> str:
        """The end of each process's log, without the access lines (one per request, they
        would push everything else out)."""
        parts = []
        for path in self.logs:
            if path.exists():
                lines = path.read_text(errors="replace").splitlines(keepends=True)
                kept = "".join(line for line in lines if " agenthub.access: " not in line)
                parts.append(f"--- {path.name}\n{kept[-chars:]}")
        return "".join(parts)
