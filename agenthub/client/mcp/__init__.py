"""AgentHub as an MCP server, for coding agents (Claude Code, Codex, Cursor …): ``ah mcp``, or
``python -m agenthub.client.mcp`` with ``AGENTHUB_URL`` and ``AGENTHUB_TOKEN`` set.

It speaks MCP over stdio (the official ``mcp`` SDK, ``pip install 'agenthub[mcp]'``) and
AgentHub's REST API through ``agenthub.client``. stdout carries the protocol only: logs go to
stderr. See docs/AGENTS.md, "MCP server".
"""

from __future__ import annotations

import logging
import os

__all__ = ["run"]


def run(url: str, api_token: str) -> None:
    """Serve MCP on stdin/stdout for the agent whose API token is ``api_token`` on the AgentHub
    at ``url``; returns when the client closes stdin (EOF)."""
    import anyio

    from agenthub.client.asyncclient import AsyncAgentHub
    from agenthub.client.mcp.server import build_server

    level = os.environ.get("AGENTHUB_MCP_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format="agenthub-mcp: %(levelname)s %(name)s: %(message)s",
    )  # stderr: stdout is the protocol's

    async def serve() -> None:
        async with AsyncAgentHub(url, api_token) as hub:
            await build_server(hub).run_stdio_async()

    anyio.run(serve)
