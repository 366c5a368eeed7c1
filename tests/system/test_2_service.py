"""The unit under systemd: readiness, journald, clean stop, a bad setting."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.system.conftest import ENV_FILE, UNIT, Machine, wait_for

INFO, WARNING, ERR = "6", "4", "3"


@dataclass
class OutageRun:
    """One start of the unit while PostgreSQL was down, then brought back."""

    invocation: str
    state_while_db_down: dict[str, str]
    readyz_while_db_down: int
    notified_while_db_down: list[str]
    state_after_db_up: dict[str, str]
    readyz_after_db_up: int
    notified_after_db_up: list[str]


@pytest.fixture(scope="module")
def outage(machine: Machine) -> Iterator[OutageRun]:
    machine.run("systemctl", "stop", UNIT)
    machine.run("systemctl", "stop", "postgresql.service")
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(machine.pid1_debug())
        cleanup.callback(machine.run, "systemctl", "start", "postgresql.service")
        machine.run("systemctl", "start", "--no-block", UNIT)
        invocation = wait_for(
            lambda: machine.show("InvocationID")["InvocationID"], "an invocation id"
        )
        # The process has tried the database and failed, so it cannot have sent READY=1.
        wait_for(
            lambda: any(
                "database not reachable yet" in e["MESSAGE"] for e in machine.app_lines(invocation)
            ),
            "the service to report the database unreachable",
        )
        down = machine.show("ActiveState", "SubState")
        readyz_down = machine.api().get("/readyz").status
        notified_while_down = notifications(machine, invocation)
        machine.run("systemctl", "start", "postgresql.service")
        # Joins the pending start job: returns once READY=1 arrived (or the start failed).
        machine.run("systemctl", "start", UNIT)
        up = machine.show("ActiveState", "SubState", "InvocationID")
        assert up["InvocationID"] == invocation  # the same process became ready, no restart
        readyz_up = machine.api().get("/readyz").status
        notified = wait_for(lambda: notifications(machine, invocation), "READY=1 in the journal")
    yield OutageRun(invocation, down, readyz_down, notified_while_down, up, readyz_up, notified)


def notifications(machine: Machine, invocation: str) -> list[str]:
    """The sd_notify messages PID 1 accepted from the service, e.g. ``READY=1``."""
    found = []
    for entry in machine.pid1_lines(invocation):
        match = re.search(r"Got notification message from PID \d+ \((.*)\)", entry["MESSAGE"])
        if match:
            found.append(match.group(1))
    return found


def lines(entries: list[dict[str, Any]], pattern: str) -> list[dict[str, Any]]:
    return [e for e in entries if re.search(pattern, e["MESSAGE"])]


def test_unit_runs_as_notify_service_under_its_user(running: Machine) -> None:
    props = running.show("Type", "NotifyAccess", "ActiveState", "SubState", "User", "MainPID")
    assert props["Type"] == "notify"
    assert props["NotifyAccess"] == "main"
    assert (props["ActiveState"], props["SubState"]) == ("active", "running")
    owner = running.run("stat", "-c", "%U", f"/proc/{props['MainPID']}").stdout.strip()
    assert owner == "agenthub"


def test_unit_is_active_only_after_ready(outage: OutageRun) -> None:
    # Listening already (so /readyz answers 503) but not ready: systemd still waits.
    assert outage.state_while_db_down == {"ActiveState": "activating", "SubState": "start"}
    assert outage.readyz_while_db_down == 503
    assert outage.notified_while_db_down == []
    assert outage.state_after_db_up["ActiveState"] == "active"
    assert outage.readyz_after_db_up == 200
    assert outage.notified_after_db_up == ["READY=1"]


def test_readyz_answers_the_host_over_the_veth(running: Machine) -> None:
    response = running.api().get("/readyz")
    assert response.status == 200
    assert response.body == {"status": "ready", "checks": {"db": "ok"}}


def test_the_web_console_is_served_from_the_installed_package(running: Machine) -> None:
    index = running.api().get("/")
    assert index.status == 200 and index.headers["content-type"].startswith("text/html")
    scripts = re.findall(r'"/console/(app\.[0-9a-f]{12}\.js)"', index.text)
    assert scripts, index.text[:500]
    asset = running.api().get(f"/console/{scripts[0]}")
    assert asset.status == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_journal_holds_startup_requests_and_errors_at_their_priority(
    machine: Machine, outage: OutageRun
) -> None:
    entries = machine.app_lines(outage.invocation)
    assert [e["PRIORITY"] for e in lines(entries, r"^agenthub: listening on ")] == [INFO]
    assert {e["PRIORITY"] for e in lines(entries, "database not reachable yet")} == {WARNING}
    assert [e["PRIORITY"] for e in lines(entries, r"GET /readyz 503 ")] == [ERR]
    assert [e["PRIORITY"] for e in lines(entries, r"database reachable; ready")] == [INFO]
    assert {e["PRIORITY"] for e in lines(entries, r"GET /readyz 200 ")} == {INFO}
    # journald consumed the <N> prefixes instead of storing them as text.
    assert not [e for e in entries if re.match(r"<\d>", e["MESSAGE"])]


def test_journalctl_priority_err_shows_only_the_errors(machine: Machine, outage: OutageRun) -> None:
    errors = machine.journal(
        "-u", "agenthub", "-p", "err", f"_SYSTEMD_INVOCATION_ID={outage.invocation}"
    )
    messages = [e["MESSAGE"] for e in errors]
    assert any("GET /readyz 503" in m for m in messages), messages
    assert not [m for m in messages if "listening on" in m or "database reachable" in m]
    assert {e["PRIORITY"] for e in errors} <= {"0", "1", "2", ERR}


def test_stop_drains_and_exits_cleanly(running: Machine) -> None:
    invocation = running.show("InvocationID")["InvocationID"]
    with running.pid1_debug():
        running.run("systemctl", "stop", UNIT)
    props = running.show("ActiveState", "Result")
    assert props == {"ActiveState": "inactive", "Result": "success"}
    # Result=success alone would also cover death by SIGTERM; PID 1's own record says the
    # process exited by itself, with status 0, after announcing STOPPING=1.
    pid1 = [e["MESSAGE"] for e in running.pid1_lines(invocation)]
    assert f"{UNIT}: Main process exited, code=exited, status=0/SUCCESS (success)" in pid1
    assert notifications(running, invocation)[-1:] == ["STOPPING=1"]
    assert not [m for m in pid1 if "Killing" in m or "timed out" in m]
    messages = [e["MESSAGE"] for e in running.app_lines(invocation)]
    assert "agenthub: shutting down: draining connections" in messages
    assert messages[-1] == "agenthub: stopped"


def test_bad_setting_fails_once_with_status_78_and_one_line(machine: Machine) -> None:
    machine.run("systemctl", "stop", UNIT)
    original = machine.read(ENV_FILE)
    try:
        machine.write(ENV_FILE, original + "PORT=eighty\n")
        started = machine.run("systemctl", "start", UNIT, check=False)
        assert started.returncode != 0
        props = machine.show(
            "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "InvocationID"
        )
        # Failed, not "activating (auto-restart)": RestartPreventExitStatus=78 applied.
        assert (props["ActiveState"], props["SubState"]) == ("failed", "failed")
        assert props["Result"] == "exit-code"
        assert props["ExecMainStatus"] == "78"
        assert props["NRestarts"] == "0"
        entries = machine.app_lines(props["InvocationID"])
        assert [(e["PRIORITY"], e["MESSAGE"]) for e in entries] == [
            (ERR, "agenthub: invalid configuration: PORT: Not a valid integer.")
        ]
    finally:
        machine.write(ENV_FILE, original)
        machine.run("systemctl", "reset-failed", UNIT)
    machine.run("systemctl", "start", UNIT)
    assert machine.show("ActiveState")["ActiveState"] == "active"
