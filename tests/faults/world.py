"""The agents and rooms a fault scenario's load runs in, made through the public API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from tests.faults.server import cli
from tests.helpers import Api, Response


@dataclass(frozen=True)
class Agent:
    name: str
    id: str
    jwt: str
    room_id: str
    transport: str  # "rest" or "socket": how this agent sends


@dataclass(frozen=True)
class World:
    room_ids: list[str]
    agents: list[Agent]


def _ok(resp: Response, what: str) -> dict[str, object]:
    if resp.status not in (200, 201):
        raise RuntimeError(f"{what}: HTTP {resp.status} {resp.text[:300]}")
    return dict(resp.body)


def build_world(
    base_url: str, env: dict[str, str], *, rest: int, socket: int, rooms: int = 2
) -> World:
    """``rooms`` public rooms and one agent per sender, each a member of one room (round
    robin, so every room has REST and socket senders). The admin is made with the host CLI, the
    way an operator bootstraps one."""
    tag = secrets.token_hex(3)
    admin_name = f"faults-admin-{tag}"
    cli(env, "agent", "create", "--name", admin_name, "--role", "admin")
    admin_token = cli(env, "token", "issue", "--agent", admin_name)
    admin = Api(base_url, _login(base_url, admin_token))
    room_ids = [
        str(
            _ok(
                admin.post(
                    "/api/v1/rooms",
                    {"slug": f"faults-{tag}-{i}", "name": f"faults {i}", "visibility": "public"},
                ),
                "create room",
            )["id"]
        )
        for i in range(rooms)
    ]
    agents = []
    kinds = ["rest"] * rest + ["socket"] * socket
    for i, kind in enumerate(kinds):
        name = f"faults-{tag}-{kind}-{i}"
        agent_id = str(_ok(admin.post("/api/v1/agents", {"name": name}), "create agent")["id"])
        issued = _ok(admin.post(f"/api/v1/agents/{agent_id}/tokens", {}), "issue token")
        jwt = _login(base_url, str(issued["token"]))
        room_id = room_ids[i % rooms]
        _ok(
            Api(base_url, jwt).post(f"/api/v1/rooms/{room_id}/members", {"agentId": agent_id}),
            "join room",
        )
        agents.append(Agent(name, agent_id, jwt, room_id, kind))
    return World(room_ids, agents)


def _login(base_url: str, api_token: str) -> str:
    return str(_ok(Api(base_url, api_token).post("/api/v1/sessions"), "login")["token"])
