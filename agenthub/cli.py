"""``agenthub``: the one console script (serve, migrate, seed, agents, tokens, audit, config)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agenthub import __version__
from agenthub import logging as agenthub_logging
from agenthub.actors import OPERATOR
from agenthub.config import EX_CONFIG, ConfigError, Settings, load_settings
from agenthub.domain import ROLES
from agenthub.errors import AppError, Unavailable
from agenthub.services.registry import Services

EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70

_DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_expiry(value: str, now: datetime | None = None) -> datetime:
    """``30d``/``12h``/``90m`` from now, or an ISO-8601 time with an offset."""
    match = _DURATION_RE.match(value.strip())
    if match:
        base = now or datetime.now(UTC)
        return base + timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid expiry {value!r}: use e.g. 30d, 12h or 2027-01-31T00:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("expiry needs a time zone, e.g. 2027-01-31T00:00:00Z")
    return parsed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agenthub", description="AgentHub collaboration server")
    p.add_argument("--version", action="version", version=f"agenthub {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the HTTP server")
    m = sub.add_parser("migrate", help="apply database migrations (safe to repeat)")
    m.add_argument("--check", action="store_true", help="exit 1 unless the schema is at head")
    sub.add_parser("seed", help="create demo agents and rooms (idempotent); prints new tokens")
    sub.add_parser("check-config", help="print effective settings, secrets masked")

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="agent_command", required=True
    )
    create = agent.add_parser("create", help="create an agent")
    create.add_argument("--name", required=True)
    create.add_argument("--display-name")
    create.add_argument("--role", choices=ROLES, default="agent")
    agent.add_parser("list", help="list agents")
    for verb in ("disable", "enable"):
        action = agent.add_parser(verb, help=f"{verb} an agent")
        action.add_argument("name")

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="token_command", required=True
    )
    issue = token.add_parser("issue", help="issue a token; prints it alone on stdout")
    issue.add_argument("--agent", required=True, help="agent name")
    issue.add_argument("--expires", type=parse_expiry, help="e.g. 30d, 12h, or ISO-8601")
    revoke = token.add_parser("revoke", help="revoke a token by its prefix")
    revoke.add_argument("prefix")

    audit = sub.add_parser("audit", help="read the audit trail, newest first")
    audit.add_argument("--type", dest="event_type")
    audit.add_argument("--limit", type=int, default=None)
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        # Under journald the <3> makes this line an error, so `journalctl -p err` shows it.
        priority = "<3>" if agenthub_logging.under_journald() else ""
        print(f"{priority}agenthub: {exc}", file=sys.stderr)
        return EX_CONFIG
    agenthub_logging.configure(settings.log_level if args.command == "serve" else "warning")
    try:
        return _dispatch(args, settings)
    except Unavailable:
        print(
            f"agenthub: database unavailable at {settings.postgres_host}:{settings.postgres_port}"
            f" (database {settings.postgres_db!r}, user {settings.postgres_user!r})",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    except AppError as exc:
        print(f"agenthub: {exc.message}", file=sys.stderr)
        return EX_DATAERR
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "check-config":
        for key, value in settings.masked().items():
            print(f"{key}={value}")
        return 0
    if args.command == "migrate":
        return _migrate(settings, check=args.check)
    if args.command == "serve":
        from agenthub.app import serve

        return asyncio.run(serve(settings))
    handler = _ASYNC_COMMANDS[_command_key(args)]
    return asyncio.run(_with_services(settings, lambda services: handler(services, args)))


def _migrate(settings: Settings, *, check: bool) -> int:
    import sqlalchemy.exc

    from agenthub.store import migrate

    try:
        if check:
            current, head = migrate.pending(settings)
            print(f"current={current} head={head}")
            return 0 if current == head else 1
        migrate.upgrade(settings)
        current, head = migrate.pending(settings)
    except sqlalchemy.exc.OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"agenthub: database unavailable: {first}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(f"database at revision {current} (head {head})")
    return 0


def _command_key(args: argparse.Namespace) -> str:
    if args.command == "agent":
        return f"agent {args.agent_command}"
    if args.command == "token":
        return f"token {args.token_command}"
    return str(args.command)


async def _with_services(settings: Settings, body: Callable[[Services], Awaitable[int]]) -> int:
    from agenthub.app import build_services_started

    services = await build_services_started(settings)
    try:
        return await body(services)
    finally:
        await services.close()


async def _agent_create(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.create_agent(
        OPERATOR, name=args.name, display_name=args.display_name, role=args.role
    )
    print(json.dumps(agent.to_dict()))
    return 0


async def _agent_list(services: Services, args: argparse.Namespace) -> int:
    for agent in await services.agents.list_agents(OPERATOR):
        state = "disabled" if agent.disabled else "active"
        print(f"{agent.id}\t{agent.name}\t{agent.role}\t{state}")
    return 0


async def _agent_set_disabled(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get_agent_by_name(args.name)
    await services.agents.set_disabled(OPERATOR, agent.id, args.agent_command == "disable")
    print(f"{args.agent_command}d {agent.name}")
    return 0


async def _token_issue(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get_agent_by_name(args.agent)
    issued = await services.tokens.issue_token(OPERATOR, agent.id, args.expires)
    print(issued.token)
    return 0


async def _token_revoke(services: Services, args: argparse.Namespace) -> int:
    info = await services.tokens.revoke_token(OPERATOR, args.prefix)
    print(f"revoked {info.prefix}")
    return 0


async def _audit(services: Services, args: argparse.Namespace) -> int:
    events, _ = await services.audit.list_events(
        OPERATOR, event_type=args.event_type, limit=args.limit, cursor=None
    )
    for event in events:
        if args.json:
            print(json.dumps(event.to_dict()))
        else:
            d = event.to_dict()
            payload = json.dumps(d["payload"], sort_keys=True)
            print(f"{d['createdAt']}\t{d['type']}\t{d['agentId'] or '-'}\t{payload}")
    return 0


SEED_AGENTS = (
    ("admin", "Administrator", "admin"),
    ("alice", "Alice", "agent"),
    ("bob", "Bob", "agent"),
)
SEED_ROOMS = (
    ("general", "General", "public", ("admin", "alice", "bob")),
    ("ops", "Operations", "private", ("admin", "alice")),
)


async def _seed(services: Services, args: argparse.Namespace) -> int:
    """Create what is missing; issue a token only for agents created now, and print it."""
    from agenthub.errors import NotFound

    ids: dict[str, Any] = {}
    created_tokens: list[tuple[str, str]] = []
    for name, display, role in SEED_AGENTS:
        try:
            agent = await services.agents.get_agent_by_name(name)
        except NotFound:
            agent = await services.agents.create_agent(
                OPERATOR, name=name, display_name=display, role=role
            )
            issued = await services.tokens.issue_token(OPERATOR, agent.id, None)
            created_tokens.append((name, issued.token))
        ids[name] = agent
    for slug, title, visibility, members in SEED_ROOMS:
        try:
            room = await services.rooms.get_room_by_slug(slug)
        except NotFound:
            room = await services.rooms.create_room(
                OPERATOR, slug=slug, name=title, visibility=visibility
            )
        for member in members:
            await services.rooms.add_member(OPERATOR, room.id, ids[member].id)
    for name, token in created_tokens:
        print(f"{name}\t{token}")
    if not created_tokens:
        print("seed: nothing new (agents and rooms already exist)", file=sys.stderr)
    return 0


_ASYNC_COMMANDS: dict[str, Callable[[Services, argparse.Namespace], Awaitable[int]]] = {
    "agent create": _agent_create,
    "agent list": _agent_list,
    "agent disable": _agent_set_disabled,
    "agent enable": _agent_set_disabled,
    "token issue": _token_issue,
    "token revoke": _token_revoke,
    "audit": _audit,
    "seed": _seed,
}

if __name__ == "__main__":
    raise SystemExit(main())
