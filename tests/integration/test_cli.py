"""The `agenthub` command as ops use it on the host."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login, run_cli

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
    first = run_cli(db.env, "seed")
    lines = first.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["admin", "alice", "bob"]
    tokens = [line.split("\t")[1] for line in lines]
    assert all(TOKEN_RE.match(t) for t in tokens)

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
    second = run_cli(db.env, "seed")
    assert second.returncode == 0
    assert second.stdout == ""  # no new tokens to show
    assert "nothing new" in second.stderr
    assert counts() == after_first


def test_seed_tokens_log_in(fresh_database, tmp_path):
    from tests.conftest import start_server, stop_server

    db = fresh_database()
    lines = run_cli(db.env, "seed").stdout.strip().splitlines()
    tokens = dict(line.split("\t") for line in lines)
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
    assert '"name": "cli-made-1"' in created.stdout
    again = run_cli(server.env, "agent", "create", "--name", "cli-made-1", check=False)
    assert again.returncode == 65
    assert "already exists" in again.stderr
    bad = run_cli(server.env, "agent", "create", "--name", "Bad Name", check=False)
    assert bad.returncode == 65
    assert again.stdout == bad.stdout == ""


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
