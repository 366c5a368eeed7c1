"""The official JavaScript socket.io-client v4, run by Node, against the real server.

Needs ``node`` and ``tests/node/node_modules`` (``npm ci`` in tests/node; .ci/run does it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
NODE = shutil.which("node")

_MISSING = NODE is None or not (NODE_DIR / "node_modules" / "socket.io-client").is_dir()
if _MISSING and os.environ.get("AGENTHUB_REQUIRE_NODE") == "1":
    raise RuntimeError("node or tests/node/node_modules missing, and CI requires them")
pytestmark = pytest.mark.skipif(
    _MISSING, reason="node or tests/node/node_modules missing (run: npm ci --prefix tests/node)"
)


def run_node(scenario: str, **config: Any) -> dict[str, Any]:
    assert NODE is not None
    proc = subprocess.run(
        [NODE, str(NODE_DIR / "client.mjs"), scenario],
        env={"AGENTHUB_NODE_TEST": json.dumps(config), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"node exited {proc.returncode}:\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_node_client_sees_refusal_as_connect_error(server):
    result = run_node("refused", url=server.base_url, token="not-a-jwt")
    assert result["connected"] is False
    assert result["data"]["code"] == "unauthorized"
    assert result["message"] == result["data"]["message"]


@pytest.mark.parametrize(
    ("via", "transports"),
    [("auth", ["websocket"]), ("query", ["polling", "websocket"])],
)
def test_node_client_joins_sends_with_ack_and_hears_message_new(
    server, make_agent, make_room, via, transports
):
    owner, agent = make_agent(), make_agent()
    room = make_room(owner)
    result = run_node(
        "roundtrip",
        url=server.base_url,
        token=agent.jwt,
        via=via,
        transports=transports,
        roomId=room["id"],
        body=f"hello from node via {via}",
        clientMsgId="node-1",
    )
    assert result["connected"]["agentId"] == agent.id
    assert result["connected"]["rooms"] == []  # not a member yet
    assert result["join"]["ok"] is True and result["join"]["created"] is True
    assert result["join"]["room"]["id"] == room["id"]
    send = result["send"]
    assert send["ok"] is True and send["message"]["seq"] == 1
    assert send["message"]["clientMsgId"] == "node-1"
    assert result["live"] == send["message"]
    assert result["bad"]["ok"] is False
    assert result["bad"]["error"]["code"] == "validation_failed"
    assert [m["id"] for m in result["sync"]["messages"]] == [send["message"]["id"]]
    # The same message, stored: REST reads it back.
    page = owner.api.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["body"] for m in page.body["messages"]] == [f"hello from node via {via}"]
