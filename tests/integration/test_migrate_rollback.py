"""`agenthub migrate --down` / `--to REV`: the schema goes back one revision with data in the
tables, keeps what the older revision holds, and comes forward again (issue 11)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    AgentCtx,
    ScratchDatabase,
    Server,
    login,
    run_cli,
    start_server,
    stop_server,
)

EX_DATAERR = 65


def _agent(srv: Server, name: str, role: str = "agent") -> AgentCtx:
    created = run_cli(srv.env, "agent", "create", "--name", name, "--role", role, "--json")
    token = run_cli(srv.env, "token", "issue", "--agent", name).stdout.strip()
    jwt = login(srv, token)
    return AgentCtx(json.loads(created.stdout)["id"], name, role, token, jwt, srv.api(jwt))


def _post(agent: AgentCtx, room: dict[str, Any], body: str, **extra: Any) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": body, **extra})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def _rows(db: ScratchDatabase, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return list(cur.fetchall())


def _columns(db: ScratchDatabase, table: str) -> set[str]:
    rows = _rows(
        db, "SELECT column_name FROM information_schema.columns WHERE table_name = %s", table
    )
    return {r[0] for r in rows}


def _revision(db: ScratchDatabase) -> str:
    check = run_cli(db.env, "migrate", "--check", check=False)
    return str(re.findall(r"current=(\S+) head=", check.stdout)[0])


# What 0001 holds: these must survive a rollback to 0001 and the upgrade after it.
_KEPT = (
    "SELECT m.id::text, r.slug, m.seq, a.name, m.body, m.client_msg_id FROM messages m"
    " JOIN rooms r ON r.id = m.room_id JOIN agents a ON a.id = m.sender_id ORDER BY r.slug, m.seq"
)
_KEPT_ROOMS = "SELECT slug, name, visibility, last_seq FROM rooms ORDER BY slug"
_KEPT_MEMBERS = (
    "SELECT r.slug, a.name FROM room_members m JOIN rooms r ON r.id = m.room_id"
    " JOIN agents a ON a.id = m.agent_id ORDER BY 1, 2"
)


def test_rollback_to_0001_keeps_its_data_and_upgrading_again_restores_the_schema(
    fresh_database, tmp_path: Path
) -> None:
    db = fresh_database()
    srv = start_server(db.env, tmp_path / "head.log")
    try:
        alice, bob = _agent(srv, "alice"), _agent(srv, "bob")
        room = alice.api.post("/api/v1/rooms", {"slug": "work", "visibility": "private"}).body
        assert alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": "bob"}).status
        root = _post(alice, room, "rollout plan for the parser", clientMsgId="c-1")
        reply = _post(bob, room, "@alice looks fine", replyTo=root["seq"])
        _post(alice, room, "@room ship it", replyTo=reply["seq"], kind="decision", data={"go": 1})
        assert reply["threadRoot"] == root["seq"] and reply["mentions"] == [alice.id]
        assert alice.api.patch(f"/api/v1/rooms/{room['id']}", {"topic": "the parser"}).status == 200
        dm = alice.api.post("/api/v1/dms", {"agentId": "bob"})
        assert dm.status == 201, dm.text
        _post(bob, dict(dm.body), "a direct word")
        # a read mark (set here directly: what PUT /rooms/{id}/read stores)
        _rows(db, "UPDATE room_members SET last_read_seq = 2 RETURNING 1")
    finally:
        assert stop_server(srv) == 0
    assert _rows(db, "SELECT count(*) FROM mentions") == [(2,)]
    assert _rows(db, "SELECT count(*) FROM rooms WHERE kind = 'dm'") == [(1,)]
    kept = (_rows(db, _KEPT), _rows(db, _KEPT_ROOMS), _rows(db, _KEPT_MEMBERS))
    assert len(kept[0]) == 4

    # 0003 is an index only: one step back drops it and keeps everything.
    down = run_cli(db.env, "migrate", "--down")
    assert "database at revision 0002 (head 0003)" in down.stdout
    indexes = _rows(db, "SELECT indexname FROM pg_indexes WHERE tablename = 'messages'")
    assert ("ix_messages_room_id_seq_unread",) not in indexes
    assert (_rows(db, _KEPT), _rows(db, _KEPT_ROOMS), _rows(db, _KEPT_MEMBERS)) == kept
    down = run_cli(db.env, "migrate", "--down")
    assert "database at revision 0001 (head 0003)" in down.stdout
    assert _revision(db) == "0001"
    assert "thread_root" not in _columns(db, "messages")
    assert "last_read_seq" not in _columns(db, "room_members")
    assert "topic" not in _columns(db, "rooms")
    assert _columns(db, "mentions") == set()
    assert (_rows(db, _KEPT), _rows(db, _KEPT_ROOMS), _rows(db, _KEPT_MEMBERS)) == kept

    # not below the first revision: that would drop every table
    again = run_cli(db.env, "migrate", "--down", check=False)
    assert again.returncode == EX_DATAERR
    assert "0001 is the first revision" in again.stderr and "Traceback" not in again.stderr
    assert _revision(db) == "0001"

    up = run_cli(db.env, "migrate")
    assert "database at revision 0003 (head 0003)" in up.stdout
    assert (_rows(db, _KEPT), _rows(db, _KEPT_ROOMS), _rows(db, _KEPT_MEMBERS)) == kept
    # What 0002 added comes back with its defaults (what it held was dropped with it).
    assert _rows(db, "SELECT DISTINCT kind, reply_to, thread_root FROM messages") == [
        ("text", None, None)
    ]
    assert _rows(db, "SELECT DISTINCT last_read_seq FROM room_members") == [(0,)]
    # the DM is a private room of its two agents now (its pairing went with 0002's columns)
    assert _rows(db, "SELECT DISTINCT kind, dm_key FROM rooms") == [("room", None)]

    # The server runs on the upgraded schema: the old messages are searchable again (the
    # generated search column was recomputed), a thread continues, seqs go on densely.
    srv = start_server(db.env, tmp_path / "again.log")
    try:
        alice_again = srv.api(login(srv, alice.api_token))
        found = alice_again.get("/api/v1/search", params={"q": "parser rollout"})
        assert found.status == 200, found.text
        assert [r["message"]["id"] for r in found.body["results"]] == [root["id"]]
        resp = alice_again.post(
            f"/api/v1/rooms/{room['id']}/messages", {"body": "again", "replyTo": root["seq"]}
        )
        assert resp.status == 201, resp.text
        assert (resp.body["seq"], resp.body["threadRoot"]) == (4, root["seq"])
        retried = alice_again.post(
            f"/api/v1/rooms/{room['id']}/messages", {"body": "x", "clientMsgId": "c-1"}
        )
        assert (retried.status, retried.body["id"]) == (200, root["id"])
    finally:
        assert stop_server(srv) == 0


def test_migrate_to_moves_both_ways_and_refuses_an_unknown_revision(fresh_database) -> None:
    db = fresh_database()
    down = run_cli(db.env, "migrate", "--to", "0001", "--json")
    assert json.loads(down.stdout) == {"current": "0001", "head": "0003"}
    assert run_cli(db.env, "migrate", "--check", check=False).returncode == 1
    same = run_cli(db.env, "migrate", "--to", "0001")
    assert "database at revision 0001" in same.stdout
    up = run_cli(db.env, "migrate", "--to", "0002")
    assert "database at revision 0002 (head 0003)" in up.stdout
    for bad in ("0004", "base", "head", "-1"):
        refused = run_cli(db.env, "migrate", "--to", bad, check=False)
        assert refused.returncode == EX_DATAERR, (bad, refused.stderr)
        assert "unknown revision" in refused.stderr and "0001, 0002, 0003" in refused.stderr
    assert _revision(db) == "0002"


@pytest.mark.parametrize("args", [(), ("--down",), ("--to", "0001")])
def test_a_database_migrated_by_a_newer_release_is_explained_not_touched(
    fresh_database, args: tuple[str, ...]
) -> None:
    db = fresh_database()
    _rows(db, "UPDATE alembic_version SET version_num = '0099' RETURNING 1")
    refused = run_cli(db.env, "migrate", *args, check=False)
    assert refused.returncode == EX_DATAERR
    assert "revision 0099, which this release does not know" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _rows(db, "SELECT version_num FROM alembic_version") == [("0099",)]


def test_check_down_and_to_are_exclusive(database) -> None:
    both = run_cli(database.env, "migrate", "--down", "--to", "0001", check=False)
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
