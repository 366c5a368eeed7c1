"""The `agenthub` command as ops use it on the host."""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest

from agenthub.domain import SLUG_RULE
from tests.servers import AGENTHUB, login, run_cli

TOKEN_RE = re.compile(r"^agt_[a-z0-9]{12}_[A-Za-z0-9_-]{43,}$")


def test_migrate_twice_is_fine_and_check_is_at_head(database):
    first = run_cli(database.env, "migrate")
    second = run_cli(database.env, "migrate")
    assert first.returncode == second.returncode == 0
    assert "head" in second.stdout
    check = run_cli(database.env, "migrate", "--check")
    assert check.returncode == 0
    current, head = re.findall(r"current=(\S+) head=(\S+)", check.stdout)[0]
    assert current == head != "None"


def test_migrate_check_fails_when_the_schema_is_not_at_head(fresh_database):
    db = fresh_database()
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM alembic_version")
    check = run_cli(db.env, "migrate", "--check", check=False)
    assert check.returncode == 1
    assert "current=None" in check.stdout


def test_seed_is_idempotent(fresh_database):
    db = fresh_database()
    first = run_cli(db.env, "seed", "--json")
    seeded = [json.loads(line) for line in first.stdout.splitlines()]
    assert [item["agent"] for item in seeded] == ["admin", "alice", "bob"]
    assert all(TOKEN_RE.match(item["token"]) for item in seeded)

    def counts() -> tuple[int, ...]:
        with db.connect() as conn, conn.cursor() as cur:
            out = []
            for table in ("agents", "api_tokens", "rooms", "room_members"):
                cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
                out.append(int(cur.fetchone()[0]))
            cur.execute("SELECT slug, visibility, created_by FROM rooms ORDER BY slug")
            rooms = cur.fetchall()
            # The operator is no agent: its rooms have no creator, its audit events no agent.
            cur.execute("SELECT agent_id FROM audit_events WHERE type = 'room-created'")
            room_auditors = {row[0] for row in cur.fetchall()}
        assert rooms == [("general", "public", None), ("ops", "private", None)]
        assert room_auditors == {None}
        return tuple(out)

    after_first = counts()
    assert after_first == (3, 3, 2, 5)
    second = run_cli(db.env, "seed", "--json")
    assert second.returncode == 0
    assert second.stdout == ""  # no new tokens to show
    assert "nothing new" in second.stderr
    assert counts() == after_first


def test_seed_tokens_log_in(fresh_database, tmp_path):
    from tests.servers import start_server, stop_server

    db = fresh_database()
    table = run_cli(db.env, "seed").stdout.splitlines()
    assert table[0].split() == ["AGENT", "TOKEN"]
    tokens = dict(line.split() for line in table[1:])
    assert list(tokens) == ["admin", "alice", "bob"]
    srv = start_server(db.env, tmp_path / "seed.log")
    try:
        jwt = login(srv, tokens["admin"])
        me = srv.api(jwt).get("/api/v1/agents/me").body
        assert me["name"] == "admin"
        assert me["role"] == "admin"
        bob = srv.api(login(srv, tokens["bob"]))
        visible = {r["slug"] for r in bob.get("/api/v1/rooms").body["rooms"]}
        assert visible == {"general"}  # ops is private and bob is not in it
    finally:
        assert stop_server(srv) == 0


def test_agent_create_and_duplicate(server):
    created = run_cli(server.env, "agent", "create", "--name", "cli-made-1", "--role", "admin")
    header, row = created.stdout.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "ROLE", "STATE"]
    assert row.split()[1:4] == ["cli-made-1", "admin", "active"]
    again = run_cli(server.env, "agent", "create", "--name", "cli-made-1", check=False)
    assert again.returncode == 65
    assert "already exists" in again.stderr
    bad = run_cli(server.env, "agent", "create", "--name", "Bad Name", check=False)
    assert bad.returncode == 65
    assert again.stdout == bad.stdout == ""


@pytest.mark.parametrize(
    ("args", "flag", "rule"),
    [
        (["agent", "create", "--name", "Bad Name"], "--name", SLUG_RULE),
        (["agent", "create", "--name", "x-"], "--name", SLUG_RULE),
        (["agent", "create", "--name", "ok-name", "--display-name", " "], "--display-name", "1-"),
        (["audit", "--limit", "0"], "--limit", "between 1 and"),
        (["audit", "--limit", "100000"], "--limit", "between 1 and"),
        (["audit", "--type", "nonsense"], "--type", "one of"),
        (["audit", "--cursor", "not-a-cursor"], "--cursor", "not a cursor"),
        (
            ["token", "issue", "--agent", "cli-flags", "--expires", "2001-01-01T00:00:00Z"],
            "--expires",
            "",
        ),
    ],
)
def test_refused_input_names_the_flag_and_the_rule(server, table_counts, args, flag, rule):
    run_cli(server.env, "agent", "create", "--name", "cli-flags", check=False)
    before = table_counts()
    out = run_cli(server.env, *args, check=False)
    assert out.returncode == 65, out.stderr
    assert out.stdout == ""
    line = out.stderr.strip()
    assert "\n" not in line
    assert line.startswith(f"agenthub: {flag}: "), line
    assert rule in line
    # The API's field names stay out of the CLI's words.
    assert not re.search(r"(?<![-\w])(name|displayName|expiresAt|limit|type|cursor):", line)
    assert table_counts() == before


def test_every_printing_command_has_json_lines(server):
    run_cli(server.env, "agent", "create", "--name", "cli-json-user")
    issued = json.loads(
        run_cli(server.env, "token", "issue", "--agent", "cli-json-user", "--json").stdout
    )
    assert TOKEN_RE.match(issued["token"])
    assert issued["prefix"] == issued["token"].split("_")[1]
    outputs = {
        "agent list": run_cli(server.env, "agent", "list", "--json").stdout,
        "token list": run_cli(
            server.env, "token", "list", "--agent", "cli-json-user", "--json"
        ).stdout,
        "audit": run_cli(server.env, "audit", "--json").stdout,
        "check-config": run_cli(server.env, "check-config", "--json").stdout,
        "migrate": run_cli(server.env, "migrate", "--check", "--json").stdout,
        "disable": run_cli(server.env, "agent", "disable", "cli-json-user", "--json").stdout,
    }
    for command, text in outputs.items():
        lines = text.splitlines()
        assert lines, command
        assert all(isinstance(json.loads(line), dict) for line in lines), command
    assert "cli-json-user" in {
        json.loads(line)["name"] for line in outputs["agent list"].splitlines()
    }
    assert json.loads(outputs["token list"])["prefix"] == issued["prefix"]
    assert json.loads(outputs["check-config"])["JWT_SECRET"] == "********"
    migration = json.loads(outputs["migrate"])
    assert migration["current"] == migration["head"]
    assert json.loads(outputs["disable"])["disabled"] is True


def test_token_list_shows_an_agents_tokens_and_their_state(server):
    run_cli(server.env, "agent", "create", "--name", "cli-token-lister")
    first = run_cli(server.env, "token", "issue", "--agent", "cli-token-lister").stdout.strip()
    second = run_cli(
        server.env, "token", "issue", "--agent", "cli-token-lister", "--expires", "1d"
    ).stdout.strip()
    run_cli(server.env, "token", "revoke", first)
    table = run_cli(server.env, "token", "list", "--agent", "cli-token-lister").stdout
    header, *rows = table.splitlines()
    assert header.split()[:2] == ["PREFIX", "STATE"]
    states = {row.split()[0]: row.split()[1] for row in rows}
    assert states == {first.split("_")[1]: "revoked", second.split("_")[1]: "active"}
    assert first not in table and second not in table  # never a secret
    unknown = run_cli(server.env, "token", "list", "--agent", "no-such-agent", check=False)
    assert unknown.returncode == 65
    assert "no-such-agent" in unknown.stderr


def test_audit_pages_with_a_cursor(server):
    for i in range(5):
        run_cli(server.env, "agent", "create", "--name", f"cli-audit-page-{i}")
    seen: list[str] = []
    cursor: list[str] = []
    for _ in range(100):
        page = run_cli(
            server.env, "audit", "--type", "agent-created", "--limit", "2", "--json", *cursor
        )
        events = [json.loads(line) for line in page.stdout.splitlines()]
        assert len(events) <= 2
        seen += [e["id"] for e in events]
        more = re.search(r"--cursor (\S+)", page.stderr)
        if more is None:
            break
        cursor = ["--cursor", more.group(1)]
    everything = run_cli(server.env, "audit", "--type", "agent-created", "--limit", "200", "--json")
    all_ids = [json.loads(line)["id"] for line in everything.stdout.splitlines()]
    assert len(all_ids) >= 5
    assert seen == all_ids  # newest first, nothing skipped or repeated


def test_token_issue_prints_only_the_token_and_it_works(server):
    run_cli(server.env, "agent", "create", "--name", "cli-token-user")
    out = run_cli(server.env, "token", "issue", "--agent", "cli-token-user")
    assert out.stdout.count("\n") == 1
    token = out.stdout.strip()
    assert TOKEN_RE.match(token), out.stdout
    resp = server.api(token).post("/api/v1/sessions")
    assert resp.status == 201
    assert resp.body["agent"]["name"] == "cli-token-user"


def test_token_issue_with_expiry(server, sql):
    run_cli(server.env, "agent", "create", "--name", "cli-expiring")
    token = run_cli(
        server.env, "token", "issue", "--agent", "cli-expiring", "--expires", "2d"
    ).stdout.strip()
    left = sql(
        "SELECT extract(epoch FROM expires_at - now()) FROM api_tokens WHERE prefix = %s",
        token.split("_")[1],
    )[0][0]
    assert 2 * 86400 - 120 < float(str(left)) <= 2 * 86400


def test_token_issue_errors(server):
    run_cli(server.env, "agent", "create", "--name", "cli-token-errors")
    unknown = run_cli(server.env, "token", "issue", "--agent", "no-such-agent", check=False)
    assert unknown.returncode == 65
    assert unknown.stdout == ""
    bad = run_cli(server.env, "token", "issue", "--agent", "x", "--expires", "soon", check=False)
    assert bad.returncode == 2
    assert "invalid expiry" in bad.stderr
    past = run_cli(
        server.env,
        "token",
        "issue",
        "--agent",
        "cli-token-errors",
        "--expires",
        "2001-01-01T00:00:00Z",
        check=False,
    )
    assert past.returncode == 65
    assert past.stdout == ""


def test_token_revoke(server):
    run_cli(server.env, "agent", "create", "--name", "cli-revoked")
    token = run_cli(server.env, "token", "issue", "--agent", "cli-revoked").stdout.strip()
    jwt = login(server, token)
    prefix = token.split("_")[1]
    out = run_cli(server.env, "token", "revoke", prefix)
    assert out.stdout.strip() == f"revoked {prefix}"
    assert server.api(jwt).get("/api/v1/agents/me").status == 401
    assert server.api(token).post("/api/v1/sessions").status == 401
    unknown = run_cli(server.env, "token", "revoke", "zzzzzzzzzzzz", check=False)
    assert unknown.returncode == 65
    assert "zzzzzzzzzzzz" in unknown.stderr


def revocations(sql, prefix: str) -> int:
    rows = sql(
        "SELECT count(*) FROM audit_events"
        " WHERE type = 'token-revoked' AND payload->>'prefix' = %s",
        prefix,
    )
    return int(str(rows[0][0]))


def test_revoking_a_revoked_token_says_so_and_writes_nothing(server, sql):
    run_cli(server.env, "agent", "create", "--name", "cli-revoked-twice")
    token = run_cli(server.env, "token", "issue", "--agent", "cli-revoked-twice").stdout.strip()
    prefix = token.split("_")[1]
    first = run_cli(server.env, "token", "revoke", prefix, "--json")
    assert json.loads(first.stdout)["alreadyRevoked"] is False
    revoked_at = json.loads(first.stdout)["revokedAt"]
    assert revocations(sql, prefix) == 1
    again = run_cli(server.env, "token", "revoke", prefix)
    assert again.returncode == 0
    assert again.stdout.startswith(f"{prefix} was already revoked at ")
    assert "nothing changed" in again.stdout
    again_json = json.loads(run_cli(server.env, "token", "revoke", prefix, "--json").stdout)
    assert again_json["alreadyRevoked"] is True
    assert again_json["revokedAt"] == revoked_at
    assert revocations(sql, prefix) == 1


def test_token_revoke_takes_a_whole_token(server, sql):
    run_cli(server.env, "agent", "create", "--name", "cli-revoked-whole")
    token = run_cli(server.env, "token", "issue", "--agent", "cli-revoked-whole").stdout.strip()
    prefix = token.split("_")[1]
    out = run_cli(server.env, "token", "revoke", token)
    assert out.stdout.strip() == f"revoked {prefix}"
    assert server.api(token).post("/api/v1/sessions").status == 401
    assert revocations(sql, prefix) == 1


def test_check_config_masks_secrets(database):
    env = dict(database.env, POSTGRES_PASSWORD="pg-password-visible?")
    out = run_cli(env, "check-config")
    settings = dict(line.split("=", 1) for line in out.stdout.strip().splitlines())
    assert settings["JWT_SECRET"] == "********"
    assert settings["POSTGRES_PASSWORD"] == "********"
    assert env["JWT_SECRET"] not in out.stdout
    assert "pg-password-visible?" not in out.stdout
    assert settings["POSTGRES_DB"] == database.name
    assert settings["PORT"] == env.get("PORT", "3000")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("JWT_SECRET", "too-short"),
        ("LOG_LEVEL", "chatty"),
        ("POSTGRES_PORT", "99999"),
        ("ALLOWED_ORIGINS", "ftp://nope"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "serve", "migrate"])
def test_bad_config_exits_78_with_one_line(database, variable, value, command):
    env = dict(database.env, **{variable: value})
    out = run_cli(env, command, check=False)
    assert out.returncode == 78
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert variable in lines[0]
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_missing_jwt_secret_exits_78(database):
    env = {k: v for k, v in database.env.items() if k != "JWT_SECRET"}
    out = run_cli(env, "check-config", check=False)
    assert out.returncode == 78
    assert out.stderr.strip().count("\n") == 0
    assert "JWT_SECRET" in out.stderr


def test_database_unreachable_exits_69(database):
    from tests.helpers import free_port

    env = dict(database.env, POSTGRES_PORT=str(free_port()), DB_CONNECT_TIMEOUT="1")
    out = run_cli(env, "agent", "list", check=False)
    assert out.returncode == 69
    assert "database unavailable" in out.stderr
    assert "Traceback" not in out.stderr
    migrate = run_cli(env, "migrate", check=False)
    assert migrate.returncode == 69
    assert "Traceback" not in migrate.stderr


def test_bad_config_names_every_bad_variable(database):
    env = dict(database.env, PORT="abc", JWT_TTL_SECONDS="5", FEATURE_MESSAGING_ENABLED="maybe")
    for command in ("check-config", "serve"):
        out = run_cli(env, command, check=False)
        assert out.returncode == 78
        lines = out.stderr.strip().splitlines()
        assert [line.split(": ")[2] for line in lines] == [
            "PORT",
            "JWT_TTL_SECONDS",
            "FEATURE_MESSAGING_ENABLED",
        ], out.stderr
        assert all(line.startswith("agenthub: invalid configuration: ") for line in lines)


def test_a_misspelt_setting_is_a_warning(database):
    out = run_cli(dict(database.env, JWT_TTL="60", AGENTHUB_PORT="4000"), "check-config")
    assert out.returncode == 0
    assert out.stderr.splitlines() == [
        "agenthub: warning: AGENTHUB_PORT is not a setting; did you mean PORT?",
        "agenthub: warning: JWT_TTL is not a setting; did you mean JWT_TTL_SECONDS?",
    ]
    assert "JWT_TTL_SECONDS=900" in out.stdout.splitlines()


def test_a_deprecated_setting_is_one_warning_line(database):
    out = run_cli(dict(database.env, SOCKET_REVALIDATE_SECONDS="5"), "check-config")
    assert out.returncode == 0
    [line] = out.stderr.splitlines()
    assert line.startswith(
        "agenthub: warning: SOCKET_REVALIDATE_SECONDS is deprecated and ignored: "
    )


@pytest.mark.parametrize(
    "args", [["check-config"], ["agent", "list"], ["audit"], ["check-config", "--json"]]
)
def test_a_closed_pipe_ends_quietly(server, args):
    """`agenthub check-config | head -3`: the reader leaves early; no traceback."""
    proc = subprocess.Popen(
        [AGENTHUB, *args],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes: its first write finds no reader
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert "Traceback" not in stderr
    assert all(line.startswith("agenthub: ") for line in stderr.splitlines()), stderr


def test_serve_on_a_busy_port_says_so_in_one_line(database):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(database.env, HOST="127.0.0.1", PORT=str(port))
        out = subprocess.run(
            [AGENTHUB, "serve"], env=env, capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 71
    assert out.stderr.splitlines() == [
        f"agenthub: cannot listen on 127.0.0.1:{port}: address in use"
    ]
    assert "listening on" not in out.stderr


def test_serve_on_an_address_not_here_says_so_in_one_line(database):
    env = dict(database.env, HOST="192.0.2.1", PORT="3000")  # TEST-NET-1: never local
    out = subprocess.run([AGENTHUB, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 71
    assert out.stderr.splitlines() == [
        "agenthub: cannot listen on 192.0.2.1:3000: address not available on this host"
    ]
