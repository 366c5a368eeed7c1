"""A third-party MCP client against ``python -m agenthub.client.mcp``: the MCP Inspector's CLI
mode (``@modelcontextprotocol/inspector``, pinned in tests/node/package.json), listing the tools
and calling ``send_message`` and ``read_messages`` against the real server.

Needs ``node`` and ``tests/node/node_modules`` (``npm ci`` in tests/node; .ci/run does it and
sets AGENTHUB_REQUIRE_NODE=1, which turns a skip into a failure).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_mcp import TOOLS

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
INSPECTOR = NODE_DIR / "node_modules" / ".bin" / "mcp-inspector"
NODE = shutil.which("node")

_MISSING = NODE is None or not INSPECTOR.exists()
if _MISSING and os.environ.get("AGENTHUB_REQUIRE_NODE") == "1":
    raise RuntimeError(
        "node or the MCP Inspector in tests/node/node_modules missing, and CI requires them"
    )
pytestmark = pytest.mark.skipif(
    _MISSING, reason="node or tests/node/node_modules missing (run: npm ci --prefix tests/node)"
)


def inspector(server, agent, *args: str) -> Any:
    """Run the Inspector's CLI once against the MCP server (which it spawns over stdio), and
    decode the JSON it prints."""
    command = [
        str(INSPECTOR),
        "--cli",
        "-e",
        f"AGENTHUB_URL={server.base_url}",
        "-e",
        f"AGENTHUB_TOKEN={agent.api_token}",
        sys.executable,
        "-m",
        "agenthub.client.mcp",
        *args,
    ]
    proc = subprocess.run(
        command,
        cwd=NODE_DIR,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"inspector exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    assert agent.api_token not in proc.stdout
    print(f"$ mcp-inspector --cli … {' '.join(args)}\n{proc.stdout}")  # shown with pytest -s
    return json.loads(proc.stdout)


def test_inspector_lists_tools_sends_and_reads(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)

    listed = inspector(server, alice, "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} == TOOLS
    send = next(t for t in listed["tools"] if t["name"] == "send_message")
    assert set(send["inputSchema"]["required"]) == {"room", "body"}

    sent = inspector(
        server,
        alice,
        "--method",
        "tools/call",
        "--tool-name",
        "send_message",
        "--tool-arg",
        f"room={room['slug']}",
        "--tool-arg",
        "body=hello from the MCP Inspector",
    )
    assert sent.get("isError") in (None, False), sent
    assert json.loads(sent["content"][0]["text"]) == {"room": room["slug"], "seq": 1}

    read = inspector(
        server,
        alice,
        "--method",
        "tools/call",
        "--tool-name",
        "read_messages",
        "--tool-arg",
        f"room={room['slug']}",
    )
    page = json.loads(read["content"][0]["text"])
    assert [(m["seq"], m["from"], m["body"]) for m in page["messages"]] == [
        (1, alice.name, "hello from the MCP Inspector")
    ]
    # Stored: the REST API reads it back.
    stored = alice.api.get(f"/api/v1/rooms/{room['slug']}/messages")
    assert [m["body"] for m in stored.body["messages"]] == ["hello from the MCP Inspector"]

    refused = inspector(
        server,
        alice,
        "--method",
        "tools/call",
        "--tool-name",
        "read_messages",
        "--tool-arg",
        "room=no-such-room",
    )
    assert refused["isError"] is True
    assert json.loads(refused["content"][0]["text"])["error"]["code"] == "not_found"
