"""Upgrade (reinstalling the same .deb takes the upgrade path) and purge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.system.conftest import ENV_FILE, UNIT, Machine

BODY = f"posted before the upgrade {uuid.uuid4()}"


@dataclass
class Posted:
    jwt: str
    room_id: str
    body: str


@pytest.fixture(scope="module")
def posted(machine: Machine) -> Posted:
    machine.run("systemctl", "start", UNIT)
    machine.run("agenthub", "agent", "create", "--name", "upgrader", "--role", "admin")
    token = machine.run("agenthub", "token", "issue", "--agent", "upgrader").stdout.strip()
    session = machine.api(token).post("/api/v1/sessions")
    assert session.status == 201, session.text
    api = machine.api(session.body["token"])
    room = api.post("/api/v1/rooms", {"slug": "upgrade-check", "name": "Upgrade check"})
    assert room.status == 201, room.text
    message = api.post(f"/api/v1/rooms/{room.body['id']}/messages", {"body": BODY})
    assert message.status == 201, message.text
    return Posted(session.body["token"], room.body["id"], BODY)


def bodies(machine: Machine, posted: Posted) -> list[str]:
    page = machine.api(posted.jwt).get(f"/api/v1/rooms/{posted.room_id}/messages")
    assert page.status == 200, page.text
    return [m["body"] for m in page.body["messages"]]


def test_upgrade_of_a_running_service_migrates_restarts_and_keeps_config_and_data(
    running: Machine, posted: Posted
) -> None:
    env_before = running.run("sha256sum", ENV_FILE).stdout
    invocation_before = running.show("InvocationID")["InvocationID"]

    upgrade = running.run("dpkg", "-i", running.deb)

    assert "database at revision" in upgrade.stdout  # postinst ran `agenthub migrate`
    assert running.run("sha256sum", ENV_FILE).stdout == env_before
    assert running.run("stat", "-c", "%a %U %G", ENV_FILE).stdout.split() == [
        "640",
        "root",
        "agenthub",
    ]
    after = running.show("ActiveState", "InvocationID")
    assert after["ActiveState"] == "active"
    assert after["InvocationID"] != invocation_before  # stopped for the upgrade, started again
    # The session JWT from before still works (same JWT_SECRET) and the message is there.
    assert bodies(running, posted) == [posted.body]


def test_upgrade_of_a_stopped_service_leaves_it_stopped(machine: Machine, posted: Posted) -> None:
    machine.run("systemctl", "stop", UNIT)
    machine.run("dpkg", "-i", machine.deb)
    assert machine.show("ActiveState")["ActiveState"] == "inactive"
    machine.run("systemctl", "start", UNIT)
    assert bodies(machine, posted) == [posted.body]


def test_purge_removes_what_the_package_made_but_not_the_database(
    machine: Machine, posted: Posted
) -> None:
    machine.run("dpkg", "--purge", "agenthub")

    for path in (
        "/opt/agenthub",
        "/etc/agenthub",
        "/usr/bin/agenthub",
        f"/lib/systemd/system/{UNIT}",
    ):
        assert machine.run("test", "-e", path, check=False).returncode == 1, path
    assert machine.run("getent", "passwd", "agenthub", check=False).returncode == 2
    assert machine.run("getent", "group", "agenthub", check=False).returncode == 2
    assert machine.show("LoadState")["LoadState"] == "not-found"
    stored = machine.psql("SELECT count(*) FROM messages WHERE body = :'body'", body=posted.body)
    assert stored == "1"
