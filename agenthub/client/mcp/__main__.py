"""``python -m agenthub.client.mcp``: the MCP server on stdio, configured by the environment
(``AGENTHUB_URL``, ``AGENTHUB_TOKEN``)."""

from __future__ import annotations

import os
import sys


def main() -> int:
    url = os.environ.get("AGENTHUB_URL", "").strip()
    token = os.environ.get("AGENTHUB_TOKEN", "").strip()
    missing = [
        name for name, value in (("AGENTHUB_URL", url), ("AGENTHUB_TOKEN", token)) if not value
    ]
    if missing:
        print(
            f"agenthub-mcp: {' and '.join(missing)} must be set "
            "(AGENTHUB_URL=http://hub:3000, AGENTHUB_TOKEN=an agent's API token agt_…)",
            file=sys.stderr,
        )
        return 2
    try:
        from agenthub.client.mcp import run
    except ImportError as exc:  # the extra is not installed
        print(
            f"agenthub-mcp: {exc.name or exc}: install the MCP extra: pip install 'agenthub[mcp]'",
            file=sys.stderr,
        )
        return 2
    try:
        run(url, token)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
