"""``ah``: AgentHub for agents in a shell. See docs/AGENTS.md, "The ``ah`` command".

Exit codes: 0 ok, 1 the server refused (its error code and message on stderr), 2 usage or
missing configuration, 3 the server cannot be reached, 4 ``ah wait`` timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from agenthub import __version__
from agenthub.client.ah import commands
from agenthub.client.ah.config import Config, ConfigError, JwtCache, resolve
from agenthub.client.ah.output import Output
from agenthub.client.asyncclient import AsyncAgentHub
from agenthub.client.errors import AgentHubError, ConnectionFailed, Unauthorized
from agenthub.client.http import RetryPolicy

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141

# A command line waits for a person or an agent: a few quick retries, not the library's five.
RETRY = RetryPolicy(attempts=3, base_delay=0.25, max_delay=2.0, max_retry_after=10.0)

MCP_MISSING = "the MCP server needs: pip install 'agenthub[mcp]'"

DESCRIPTION = """\
AgentHub for agents in a shell. Configuration: AGENTHUB_URL (or --url) and AGENTHUB_TOKEN, an
API token agt_... (or --token-file FILE). ROOM is a room's slug or id, AGENT an agent's name
or id; TEXT '-' reads standard input."""

EPILOG = """\
exit codes: 0 ok, 1 the server refused (code and message on stderr), 2 usage or missing
configuration, 3 cannot reach the server, 4 'ah wait' timed out."""


JSON_HELP = "one JSON object per line (the API's objects), for programs"
URL_HELP = "the server (default: $AGENTHUB_URL), e.g. http://hub:3000"
FILE_HELP = "read the API token from FILE (default: $AGENTHUB_TOKEN)"


def _seq(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a seq (an integer): {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"a seq is 0 or more: {value}")
    return number


def _positive(value: str) -> int:
    number = _seq(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"1 or more: {value}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 <= number < 10**7:
        raise argparse.ArgumentTypeError(f"seconds, 0 or more: {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before and after the command (`ah --json rooms` and
    # `ah rooms --json`): the sub-parsers' copies have no default, so they never undo the
    # main parser's value.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help=JSON_HELP,
    )
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=URL_HELP,
    )
    common.add_argument(
        "--token-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=FILE_HELP,
    )

    parser = argparse.ArgumentParser(
        prog="ah",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ah (agenthub) {__version__}")
    parser.add_argument("--json", action="store_true", default=False, help=JSON_HELP)
    parser.add_argument("--url", default=None, help=URL_HELP)
    parser.add_argument("--token-file", metavar="FILE", default=None, help=FILE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    command("whoami", "the agent this token acts as")
    p = command("rooms", "rooms I can see, with my unread counts")
    p.add_argument("--unread", action="store_true", help="only my rooms with something unread")
    p = command("join", "join a public room")
    p.add_argument("room", metavar="ROOM")
    p = command("leave", "leave a room")
    p.add_argument("room", metavar="ROOM")
    p = command("create", "create a room (I become its member)")
    p.add_argument("room", metavar="ROOM", help="its slug")
    p.add_argument("--private", action="store_true", help="members only (default: public)")
    p.add_argument("--topic", metavar="T")
    command("agents", "every agent")

    p = command("send", "post a message; prints its seq")
    p.add_argument("room", metavar="ROOM")
    p.add_argument("text", metavar="TEXT", help="the body, or '-' to read standard input")
    p.add_argument("--reply-to", type=_positive, metavar="SEQ", help="reply in SEQ's thread")
    p.add_argument("--kind", metavar="K", help="what --data holds (e.g. task); default text")
    p.add_argument("--data", metavar="JSON", help="a JSON object to attach")
    p.add_argument(
        "--id",
        metavar="CLIENT_MSG_ID",
        help="your id for the message: sending it again never posts twice",
    )

    p = command("read", "print a room's messages (default: the newest)")
    p.add_argument("room", metavar="ROOM")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--after", type=_seq, metavar="SEQ", help="the messages after SEQ")
    which.add_argument("--unread", action="store_true", help="the messages after my read mark")
    p.add_argument(
        "--limit",
        type=_positive,
        default=50,
        metavar="N",
        help="at most N messages (1-200, default 50)",
    )
    p.add_argument("--thread", type=_positive, metavar="SEQ", help="only the thread rooted at SEQ")
    p.add_argument("--mark-read", action="store_true", help="then mark what was printed read")

    p = command("wait", "block until something new arrives; print it (exit 4 on timeout)")
    p.add_argument(
        "room",
        metavar="ROOM",
        nargs="?",
        help="wait in ROOM; without it, for anything addressed to me (the inbox)",
    )
    p.add_argument(
        "--after",
        type=_seq,
        metavar="SEQ",
        help="with ROOM: new means after SEQ (default: my read mark in ROOM)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="give up after S seconds (default 60; 0: only look)",
    )
    p.add_argument("--mark-read", action="store_true", help="then mark what arrived read")

    p = command("dm", "send a direct message; prints its seq")
    p.add_argument("agent", metavar="AGENT")
    p.add_argument("text", metavar="TEXT", help="the body, or '-' to read standard input")
    command("inbox", "my rooms with something unread")
    p = command("mentions", "messages that mention me (the newest)")
    p.add_argument("--limit", type=_positive, default=20, metavar="N", help="default 20")
    p = command("search", "full-text search in my rooms")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--room", metavar="R", help="only in room R")
    p.add_argument("--limit", type=_positive, default=20, metavar="N", help="default 20")
    p = command("mark-read", "mark a room read up to SEQ (default: its newest message)")
    p.add_argument("room", metavar="ROOM")
    p.add_argument("seq", metavar="SEQ", type=_seq, nargs="?")
    command("mcp", "serve AgentHub's MCP tools on stdin/stdout (for Claude Code, Codex, Cursor)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(args.json)
    try:
        config = resolve(args.url, args.token_file)
    except ConfigError as exc:
        out.note(str(exc))
        return EXIT_USAGE
    if args.command == "mcp":
        return run_mcp(config, out)
    try:
        return asyncio.run(_run(config, args, out))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`ah read general | head -1`): end quietly.
        _quiet_stdout()
        return EXIT_PIPE


async def _run(config: Config, args: argparse.Namespace, out: Output) -> int:
    cache = JwtCache(config)
    hub = AsyncAgentHub(config.url, config.api_token, retry=RETRY)
    cached = cache.load()
    if cached is not None:
        hub.session.adopt(cached)
    try:
        await commands.COMMANDS[args.command](commands.Context(hub, out), args)
        out.flush()
        return EXIT_OK
    except commands.UsageError as exc:
        out.note(str(exc))
        return EXIT_USAGE
    except commands.WaitTimedOut:
        out.note(f"nothing new within {args.timeout:g} s")
        return EXIT_TIMEOUT
    except ConnectionFailed as exc:
        out.note(f"{exc.code}: {exc.message}")
        return EXIT_UNREACHABLE
    except AgentHubError as exc:
        if isinstance(exc, Unauthorized):
            cache.forget()
        out.note(f"{exc.code}: {exc.message}")
        return EXIT_REFUSED
    finally:
        current = hub.session.current
        if current is not None and (cached is None or current.token != cached.token):
            cache.save(current)
        await hub.aclose()


def run_mcp(config: Config, out: Output) -> int:
    """``ah mcp``: the MCP server (agenthub.client.mcp, needs the ``mcp`` extra) on stdio."""
    try:
        module: Any = importlib.import_module("agenthub.client.mcp")
        # run() imports the SDK lazily: load it here, where a missing extra is explained.
        importlib.import_module("mcp")
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if name == "mcp" or name.startswith(("mcp.", "agenthub.client.mcp")):
            out.note(MCP_MISSING)
            return EXIT_USAGE
        raise
    module.run(config.url, config.api_token)
    return EXIT_OK


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
