"""``agenthub``: the one console script (serve, migrate, seed, agents, tokens, audit, config).

Output convention: data goes to stdout, as a table for people or, with ``--json``, as one JSON
object per line; notes and errors go to stderr, each line starting ``agenthub:``. An error in
the input names the flag that carried it and says the rule.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
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
from agenthub.auth import api_tokens
from agenthub.config import (
    EX_CONFIG,
    ConfigError,
    Settings,
    deprecated_settings,
    load_settings,
    misspelt_settings,
)
from agenthub.domain import MAX_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME_YEARS, ROLES, SLUG_RULE
from agenthub.errors import AppError, NotFound, Unavailable, ValidationFailed
from agenthub.models import Agent, TokenInfo
from agenthub.services.audit import EVENT_TYPES
from agenthub.services.registry import Services

EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71
# What a shell reports for a process killed by SIGPIPE (`agenthub audit | head`).
EX_PIPE = 128 + 13

_DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_expiry(value: str, now: datetime | None = None) -> datetime:
    """``30d``/``12h``/``90m`` from now, or an ISO-8601 time with an offset."""
    match = _DURATION_RE.match(value.strip())
    if match:
        base = now or datetime.now(UTC)
        seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        if seconds > MAX_TOKEN_LIFETIME.total_seconds():
            # Refused here: a huge count overflows the date arithmetic before any service
            # could say so.
            days = MAX_TOKEN_LIFETIME.days
            raise argparse.ArgumentTypeError(
                f"expiry {value!r} is too far ahead: at most {days}d "
                f"({MAX_TOKEN_LIFETIME_YEARS} years)"
            )
        return base + timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid expiry {value!r}: use e.g. 30d, 12h or 2027-01-31T00:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("expiry needs a time zone, e.g. 2027-01-31T00:00:00Z")
    return parsed


# The services' ValidationFailed details name API fields; a command reports its own flags.
_FLAGS: dict[str, dict[str, str]] = {
    "agent create": {"name": "--name", "displayName": "--display-name", "role": "--role"},
    "agent disable": {"name": "NAME"},
    "agent enable": {"name": "NAME"},
    "token issue": {"expiresAt": "--expires", "agentId": "--agent"},
    "token list": {"agentId": "--agent"},
    "token revoke": {"prefix": "TOKEN"},
    "audit": {"type": "--type", "limit": "--limit", "cursor": "--cursor"},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agenthub",
        description="AgentHub collaboration server: run it and manage its agents and tokens.",
        epilog="Settings come from environment variables (docs/CONFIG.md). Each command has "
        "its own --help.",
    )
    p.add_argument(
        "--version", action="version", version=f"agenthub {__version__}", help="print the version"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    json_output = argparse.ArgumentParser(add_help=False)
    json_output.add_argument(
        "--json", action="store_true", help="print one JSON object per line instead of a table"
    )

    serve = sub.add_parser(
        "serve",
        help="run the HTTP and socket.io server (what systemd starts)",
        description="Run the server. With --workers N (or WORKERS=N) above 1, this process "
        "supervises N worker processes, worker i listening on PORT+i, behind a balancer "
        "(docs/DEPLOYMENT.md); that needs REDIS_URL.",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="worker processes, on ports PORT … PORT+N-1 (default: WORKERS, else 1)",
    )
    m = sub.add_parser(
        "migrate",
        parents=[json_output],
        help="apply database migrations (safe to repeat), or roll the schema back",
        description="Without an option: upgrade the schema to the newest revision this release "
        "knows (safe to repeat). Stop the service before rolling back: the running code "
        "expects the newer schema. A rollback drops what the newer revisions added, with "
        "the data it held (docs/RUNBOOK.md lists it per revision).",
    )
    moves = m.add_mutually_exclusive_group()
    moves.add_argument("--check", action="store_true", help="change nothing; exit 1 unless at head")
    moves.add_argument(
        "--down",
        action="store_true",
        help="roll the newest applied migration back (one revision; never below the first)",
    )
    moves.add_argument(
        "--to",
        metavar="REV",
        help="bring the schema to revision REV, down or up (e.g. 0001 before installing a "
        "release whose migrations end there)",
    )
    sub.add_parser(
        "seed",
        parents=[json_output],
        help="create the demo agents admin, alice, bob and rooms general, ops (idempotent); "
        "prints the tokens of agents created now",
    )
    sub.add_parser(
        "check-config",
        parents=[json_output],
        help="validate the settings and print them, secrets masked",
    )

    agent = sub.add_parser("agent", help="create, list, disable and enable agents")
    agent_sub = agent.add_subparsers(
        dest="agent_command", required=True, metavar="ACTION", title="actions"
    )
    create = agent_sub.add_parser("create", parents=[json_output], help="create an agent")
    create.add_argument("--name", required=True, help=f"its unique name: {SLUG_RULE}")
    create.add_argument("--display-name", help="the name people see (default: --name)")
    create.add_argument(
        "--role", choices=ROLES, default="agent", help="admin or agent (default: agent)"
    )
    agent_sub.add_parser("list", parents=[json_output], help="list all agents, by name")
    for verb, effect in (
        ("disable", "its sessions end and its tokens stop working, at once"),
        ("enable", "its tokens work again"),
    ):
        action = agent_sub.add_parser(
            verb, parents=[json_output], help=f"{verb} an agent: {effect}"
        )
        action.add_argument("name", metavar="NAME", help="the agent's name")

    token = sub.add_parser("token", help="issue, list and revoke API tokens")
    token_sub = token.add_subparsers(
        dest="token_command", required=True, metavar="ACTION", title="actions"
    )
    issue = token_sub.add_parser(
        "issue", parents=[json_output], help="issue a token for an agent; prints it alone, once"
    )
    issue.add_argument("--agent", required=True, metavar="NAME", help="the agent's name")
    issue.add_argument(
        "--expires",
        type=parse_expiry,
        metavar="WHEN",
        help="30d, 12h, 90m … from now, or ISO-8601 with a zone (default: never)",
    )
    listing = token_sub.add_parser(
        "list", parents=[json_output], help="list an agent's tokens (never their secrets)"
    )
    listing.add_argument("--agent", required=True, metavar="NAME", help="the agent's name")
    revoke = token_sub.add_parser(
        "revoke",
        parents=[json_output],
        help="revoke a token: it and its sessions stop working at once (repeating is harmless)",
    )
    revoke.add_argument("token", metavar="TOKEN", help="the token's prefix, or the whole token")

    audit = sub.add_parser(
        "audit", parents=[json_output], help="read the audit trail, newest first, a page a time"
    )
    audit.add_argument(
        "--type",
        dest="event_type",
        metavar="TYPE",
        help=f"only events of this type: {', '.join(EVENT_TYPES)}",
    )
    audit.add_argument(
        "--limit", type=int, metavar="N", help="events per page (default: PAGE_SIZE_DEFAULT)"
    )
    audit.add_argument(
        "--cursor", help="the next page: the cursor the previous page printed on stderr"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        # Flushed here, not at exit, so a closed pipe is caught below.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`agenthub audit | head -3`): stop quietly, as `cat` would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EX_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    for warning in deprecated_settings(os.environ) + misspelt_settings(os.environ):
        _note(f"warning: {warning}", priority=4)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            _note(problem, priority=3)
        return EX_CONFIG
    agenthub_logging.configure(settings.log_level if args.command == "serve" else "warning")
    try:
        return _dispatch(args, settings)
    except Unavailable:
        _note(
            f"database unavailable at {settings.postgres_host}:{settings.postgres_port}"
            f" (database {settings.postgres_db!r}, user {settings.postgres_user!r})"
        )
        return EX_UNAVAILABLE
    except ValidationFailed as exc:
        for line in _validation_lines(exc, _FLAGS.get(_command_key(args), {})):
            _note(line)
        return EX_DATAERR
    except AppError as exc:
        _note(exc.message)
        return EX_DATAERR
    except KeyboardInterrupt:
        return 130


def _note(text: str, *, priority: int = 3) -> None:
    """One line on stderr; under journald its syslog priority makes `journalctl -p` work."""
    prefix = f"<{priority}>" if agenthub_logging.under_journald() else ""
    print(f"{prefix}agenthub: {text}", file=sys.stderr)


def _validation_lines(exc: ValidationFailed, flags: dict[str, str]) -> list[str]:
    """``--name: <rule>`` for each field the service refused, named as the command names it."""
    if not exc.details:
        return [exc.message]
    lines = []
    for field, problem in exc.details.items():
        text = "; ".join(map(str, problem)) if isinstance(problem, list) else str(problem)
        lines.append(f"{flags.get(field, field)}: {text}")
    return lines


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "check-config":
        masked = settings.masked()
        if args.json:
            _print_json(masked)
        else:
            for key, value in masked.items():
                print(f"{key}={value}")
        return 0
    if args.command == "migrate":
        return _migrate(settings, args)
    if args.command == "serve":
        return _serve(settings, args.workers or settings.workers)
    handler = _ASYNC_COMMANDS[_command_key(args)]
    return asyncio.run(_with_services(settings, lambda services: handler(services, args)))


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 256:
        raise argparse.ArgumentTypeError(f"invalid count {value!r}: a whole number 1 … 256")
    return number


# Refusing to start more than one process without Redis is a usage error, as argparse's are.
EX_USAGE = 2


def _serve(settings: Settings, workers: int) -> int:
    from agenthub.app import CannotListen, serve
    from agenthub.tls import TlsError, server_context

    if workers > 1 and not settings.redis_url:
        _note(
            f"refusing to start {workers} workers without REDIS_URL: each process would deliver "
            "only its own sockets' events (set REDIS_URL, or run one worker)"
        )
        return EX_USAGE
    if settings.port + workers - 1 > 65535:
        _note(f"--workers {workers}: ports from PORT={settings.port} would pass 65535")
        return EX_USAGE
    try:
        ssl_context = server_context(settings)
    except TlsError as exc:
        _note(str(exc))
        return EX_CONFIG
    if workers > 1:
        from agenthub import supervisor

        return supervisor.run(settings, workers)
    try:
        return asyncio.run(serve(settings, ssl_context))
    except CannotListen as exc:
        _note(f"cannot listen on {_host_port(exc.host, exc.port)}: {_bind_problem(exc.error)}")
        return EX_OSERR


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_BIND_PROBLEMS = {
    errno.EADDRINUSE: "address in use",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "address not available on this host",
}


def _bind_problem(error: OSError) -> str:
    if error.errno in _BIND_PROBLEMS:
        return _BIND_PROBLEMS[error.errno]
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    import sqlalchemy.exc

    from agenthub.store import migrate

    check = bool(args.check)
    try:
        if args.down:
            migrate.step_down(settings)
        elif args.to is not None:
            migrate.migrate_to(settings, args.to)
        elif not check:
            migrate.upgrade(settings)
        current, head = migrate.pending(settings)
    except migrate.MigrationRefused as exc:
        _note(str(exc))
        return EX_DATAERR
    except sqlalchemy.exc.OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        _note(f"database unavailable: {first}")
        return EX_UNAVAILABLE
    if args.json:
        _print_json({"current": current, "head": head})
    elif check:
        print(f"current={current} head={head}")
    else:
        print(f"database at revision {current} (head {head})")
    return 1 if check and current != head else 0


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


def _print_json(item: dict[str, Any]) -> None:
    print(json.dumps(item))


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart; the header always printed."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for cells in [headers, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())


def _when(value: datetime | None, empty: str = "-") -> str:
    """A time for people: UTC, to the second."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_agents(agents: Sequence[Agent], as_json: bool) -> None:
    if as_json:
        for agent in agents:
            _print_json(agent.to_dict())
        return
    _print_table(
        ("ID", "NAME", "ROLE", "STATE", "DISPLAY NAME"),
        [
            (
                str(a.id),
                a.name,
                a.role,
                "disabled" if a.disabled else "active",
                a.display_name,
            )
            for a in agents
        ],
    )


async def _agent_create(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.create_agent(
        OPERATOR, name=args.name, display_name=args.display_name, role=args.role
    )
    _print_agents([agent], args.json)
    return 0


async def _agent_list(services: Services, args: argparse.Namespace) -> int:
    _print_agents(await services.agents.list_agents(OPERATOR), args.json)
    return 0


async def _agent_set_disabled(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get_agent_by_name(args.name)
    agent = await services.agents.set_disabled(OPERATOR, agent.id, args.agent_command == "disable")
    if args.json:
        _print_json(agent.to_dict())
    else:
        print(f"{args.agent_command}d {agent.name}")
    return 0


async def _token_issue(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get_agent_by_name(args.agent)
    issued = await services.tokens.issue_token(OPERATOR, agent.id, args.expires)
    if args.json:
        _print_json(issued.to_dict())
    else:
        print(issued.token)
    return 0


def _token_state(token: TokenInfo, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


async def _token_list(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get_agent_by_name(args.agent)
    tokens = await services.tokens.list_tokens(OPERATOR, agent.id)
    if args.json:
        for token in tokens:
            _print_json(token.to_dict())
        return 0
    now = datetime.now(UTC)
    _print_table(
        ("PREFIX", "STATE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"),
        [
            (
                t.prefix,
                _token_state(t, now),
                _when(t.created_at),
                _when(t.expires_at, "never"),
                _when(t.last_used_at, "never"),
                _when(t.revoked_at),
            )
            for t in tokens
        ],
    )
    return 0


def token_prefix(value: str) -> str:
    """The prefix in ``agt_<prefix>_<secret>``, or ``value`` itself when it is no token."""
    value = value.strip()
    scheme = f"{api_tokens.TOKEN_SCHEME}_"
    if value.startswith(scheme):
        # The secret (base64url) may hold "_" too; the prefix never does.
        return value[len(scheme) :].split("_", 1)[0]
    return value


async def _token_revoke(services: Services, args: argparse.Namespace) -> int:
    prefix = token_prefix(args.token)
    try:
        token, revoked_now = await services.tokens.revoke_token(OPERATOR, prefix)
    except NotFound:
        raise NotFound(f"no token with prefix {prefix!r}") from None
    if args.json:
        _print_json({**token.to_dict(), "alreadyRevoked": not revoked_now})
    elif revoked_now:
        print(f"revoked {token.prefix}")
    else:
        print(f"{token.prefix} was already revoked at {_when(token.revoked_at)}; nothing changed")
    return 0


async def _audit(services: Services, args: argparse.Namespace) -> int:
    events, next_cursor = await services.audit.list_events(
        OPERATOR, event_type=args.event_type, limit=args.limit, cursor=args.cursor
    )
    if args.json:
        for event in events:
            _print_json(event.to_dict())
    else:
        names = {a.id: a.name for a in await services.agents.list_agents(OPERATOR)}
        _print_table(
            ("TIME", "TYPE", "AGENT", "PAYLOAD"),
            [
                (
                    _when(e.created_at),
                    e.type,
                    "-" if e.agent_id is None else names.get(e.agent_id, str(e.agent_id)),
                    json.dumps(e.payload, sort_keys=True),
                )
                for e in events
            ],
        )
    if next_cursor is not None:
        _note(f"more events: repeat the command with --cursor {next_cursor}", priority=5)
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
    if not created_tokens:
        _note("seed: nothing new (agents and rooms already exist)", priority=5)
    elif args.json:
        for name, token in created_tokens:
            _print_json({"agent": name, "token": token})
    else:
        _print_table(("AGENT", "TOKEN"), created_tokens)
    return 0


_ASYNC_COMMANDS: dict[str, Callable[[Services, argparse.Namespace], Awaitable[int]]] = {
    "agent create": _agent_create,
    "agent list": _agent_list,
    "agent disable": _agent_set_disabled,
    "agent enable": _agent_set_disabled,
    "token issue": _token_issue,
    "token list": _token_list,
    "token revoke": _token_revoke,
    "audit": _audit,
    "seed": _seed,
}

if __name__ == "__main__":
    raise SystemExit(main())
