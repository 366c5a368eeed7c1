"""The machine under test: a booted Debian 12 or Ubuntu 24.04 container prepared by
tests/system/run.

tests/system/run installs the .deb there, configures it and starts agenthub.service, then
runs these tests; they talk to the container through tests/system/container.sh (commands
run inside it) and over its veth address (HTTP from the host side).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import Api

UNIT = "agenthub.service"
ENV_FILE = "/etc/agenthub/agenthub.env"
# Upper bound for things that normally take well under a second (a unit starting, a line
# reaching the journal). Tests wait for a condition, never assert on how long it took.
DEADLINE_SECONDS = 90.0


# The distribution's own /usr/bin/python3, which the package's venv must use.
DISTRO_PYTHON = {"debian12": ("3", "11"), "ubuntu2404": ("3", "12")}


@dataclass
class Machine:
    script: str
    ip: str
    deb: str
    distro: str

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.script, "exec", *args], input=stdin, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def show(self, *props: str, unit: str = UNIT) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, *matches: str) -> list[dict[str, Any]]:
        """Journal entries (parsed JSON) for journalctl ``matches``, oldest first."""
        out = self.run("journalctl", "--no-pager", "-o", "json", *matches).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def app_lines(self, invocation: str) -> list[dict[str, Any]]:
        """What the service process itself wrote during one invocation of the unit."""
        return self.journal(f"_SYSTEMD_INVOCATION_ID={invocation}", "SYSLOG_IDENTIFIER=agenthub")

    def pid1_lines(self, invocation: str) -> list[dict[str, Any]]:
        """What systemd (PID 1) logged about one invocation of the unit."""
        return self.journal("_PID=1", f"UNIT={UNIT}", f"INVOCATION_ID={invocation}")

    @contextlib.contextmanager
    def pid1_debug(self) -> Iterator[None]:
        """PID 1 logs at debug level: it then records each sd_notify message it accepts and
        how the main process ended, which `systemctl show` does not keep reliably."""
        self.run("systemd-analyze", "log-level", "debug")
        try:
            yield
        finally:
            self.run("systemd-analyze", "log-level", "info")

    def psql(self, sql: str, **variables: str) -> str:
        """Run ``sql`` as the postgres superuser; ``:'name'`` in it quotes a variable."""
        args = [f"--set={name}={value}" for name, value in variables.items()]
        return self.run(
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-qAtX",
            "-d",
            "agenthub",
            *args,
            stdin=sql,
        ).stdout.strip()

    def read(self, path: str) -> str:
        return self.run("cat", path).stdout

    def write(self, path: str, text: str) -> None:
        self.run("sh", "-c", f'cat > "{path}"', stdin=text)

    def api(self, token: str | None = None) -> Api:
        return Api(f"http://{self.ip}:3000", token, timeout=30)


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def machine() -> Machine:
    try:
        script = os.environ["AGENTHUB_SYSTEM_CONTAINER"]
        ip = os.environ["AGENTHUB_SYSTEM_IP"]
        deb = os.environ["AGENTHUB_SYSTEM_DEB"]
    except KeyError as missing:
        pytest.fail(f"{missing} is not set: run these tests through tests/system/run")
    distro = os.environ.get("AGENTHUB_CI_DISTRO", "debian12")
    if distro not in DISTRO_PYTHON:
        pytest.fail(f"unknown AGENTHUB_CI_DISTRO {distro!r}")
    return Machine(script, ip, deb, distro)


@pytest.fixture
def running(machine: Machine) -> Machine:
    """The service started (a no-op when it runs) and answering /readyz from the host."""
    machine.run("systemctl", "start", UNIT)
    assert machine.show("ActiveState")["ActiveState"] == "active"
    assert machine.api().get("/readyz").status == 200
    return machine
