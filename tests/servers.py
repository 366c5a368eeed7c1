"""A real AgentHub to test against: scratch databases, the ``agenthub`` CLI, and the server
process on a free port. Plain helpers (no fixtures), imported by the fixtures in conftest.py and
by tests that start servers of their own."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.helpers import Api, free_port, pg_params

AGENTHUB = shutil.which("agenthub", path=str(Path(sys.executable).parent)) or "agenthub"


@dataclass
class ScratchDatabase:
    name: str
    env: dict[str, str]

    def connect(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(**pg_params(self.name))
        conn.autocommit = True
        return conn


def run_cli(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENTHUB, *args], env=env, check=check, capture_output=True, text=True, timeout=60
    )


@dataclass
class Server:
    base_url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]

    def api(self, token: str | None = None) -> Api:
        return Api(self.base_url, token)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    env: dict[str, str], log_path: Path, wait_ready: bool = True, port: int | None = None
) -> Server:
    port = port or free_port()
    env = dict(env, PORT=str(port), HOST="127.0.0.1")
    log_file = log_path.open("wb")
    proc = subprocess.Popen([AGENTHUB, "serve"], env=env, stdout=log_file, stderr=log_file)
    server = Server(f"http://127.0.0.1:{port}", env, log_path, proc)
    deadline = time.monotonic() + 30
    probe = "/readyz" if wait_ready else "/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if server.api().get(probe).status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")


def stop_server(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return -9


@dataclass
class AgentCtx:
    id: str
    name: str
    role: str
    api_token: str
    jwt: str
    api: Api


def login(server: Server, api_token: str) -> str:
    resp = server.api(api_token).post("/api/v1/sessions")
    assert resp.status == 201, resp.text
    return str(resp.body["token"])
