"""The ``ah`` console script, run as a subprocess against the real server: every command in
text and --json, stdin '-', every exit code, ``ah wait`` woken by another agent's post (in a
room and through the inbox), the JWT cache (0600, reused, replaced when refused) and no API
token on disk."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_metrics import scrape, value
from tests.realtime_support import custom_server
from tests.servers import AgentCtx, Server

AH = shutil.which("ah", path=str(Path(sys.executable).parent)) or "ah"


class Ah:
    """Runs ``ah`` as one agent, with HOME, XDG_RUNTIME_DIR and the cwd inside ``root``."""

    def __init__(self, server: Server, agent: AgentCtx, root: Path) -> None:
        self.agent = agent
        self.root = root
        self.home = root / "home"
        self.runtime = root / "run"
        self.cwd = root / "cwd"
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for d in (self.home, self.runtime, self.cwd):
            d.mkdir(mode=0o700, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "AGENTHUB_URL": server.base_url,
            "AGENTHUB_TOKEN": agent.api_token,
        }

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AH, *args],
            env=env if env is not None else self.env,
            cwd=self.cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=90,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self(*args, input=input)
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str, input: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ok(*args, "--json", input=input).splitlines()]

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [AH, *args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def ah_for(server: Server, tmp_path: Path) -> Callable[[AgentCtx], Ah]:
    def factory(agent: AgentCtx) -> Ah:
        return Ah(server, agent, tmp_path / agent.name)

    return factory


def slug() -> str:
    return f"ah-{uuid.uuid4().hex[:10]}"


def post(agent: AgentCtx, room: str, body: str, **extra: Any) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room}/messages", {"body": body, **extra})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def wait_until_waiting(server: Server, count: int = 1, timeout: float = 15.0) -> None:
    """Until the server holds ``count`` long polls (its gauge)."""
    deadline = time.monotonic() + timeout
    while value(scrape(server), "agenthub_waiting_requests") < count:
        assert time.monotonic() < deadline, "ah wait never started waiting"
        time.sleep(0.05)


# --- agents and rooms -------------------------------------------------------------------


def test_whoami_and_agents(make_agent, ah_for):
    alice = make_agent()
    ah = ah_for(alice)
    assert ah.ok("whoami").split()[0] == alice.name
    (me,) = ah.json("whoami")
    assert (me["id"], me["name"], me["role"]) == (alice.id, alice.name, "agent")
    # The global options go before or after the command.
    assert json.loads(ah.ok("--json", "whoami"))["id"] == alice.id
    names = [a["name"] for a in ah.json("agents")]
    assert alice.name in names
    assert any(line.split()[0] == alice.name for line in ah.ok("agents").splitlines())


def test_create_join_leave_and_rooms(make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    public, private = slug(), slug()
    assert a.ok("create", public, "--topic", "the plan") == f"created #{public} (public)\n"
    (room,) = a.json("create", private, "--private")
    assert (room["slug"], room["visibility"], room["member"]) == (private, "private", True)
    rooms = {r["slug"]: r for r in a.json("rooms")}
    assert rooms[public]["topic"] == "the plan" and private in rooms
    line = next(x for x in a.ok("rooms").splitlines() if x.startswith(f"#{public} "))
    assert "public" in line and "the plan" in line
    assert private not in b.ok("rooms")  # private: bob cannot see it

    assert b.ok("join", public) == f"joined #{public}\n"
    (member,) = b.json("join", public)  # joining again is fine
    assert member["agentId"] == bob.id
    assert b.ok("leave", public) == f"left #{public}\n"
    assert b("leave", public, "--json").stdout == ""
    members = alice.api.get(f"/api/v1/rooms/{public}/members").body["members"]
    assert [m["agentId"] for m in members] == [alice.id]


def test_rooms_unread(make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    quiet, busy = slug(), slug()
    a.ok("create", quiet)
    a.ok("create", busy)
    b.ok("join", quiet)
    b.ok("join", busy)
    post(alice, busy, f"@{bob.name} look")
    post(alice, busy, "and this")
    (room,) = b.json("rooms", "--unread")
    assert (room["slug"], room["unreadCount"], room["unreadMentions"]) == (busy, 2, 1)
    assert b.ok("rooms", "--unread").split()[0] == f"#{busy}"
    assert "2 unread, 1 mention" in b.ok("rooms", "--unread")


# --- messages ---------------------------------------------------------------------------


def test_send_prints_the_seq_and_takes_stdin_kind_data_reply_and_id(make_agent, ah_for):
    alice = make_agent()
    a = ah_for(alice)
    room = slug()
    a.ok("create", room)
    assert a.ok("send", room, "first") == "1\n"
    assert a.ok("send", room, "-", input="from\nstdin\n") == "2\n"
    (msg,) = a.json(
        "send", room, "done", "--reply-to", "1", "--kind", "task", "--data", '{"pr": 412}'
    )
    assert (msg["seq"], msg["replyTo"], msg["threadRoot"], msg["kind"], msg["data"]) == (
        3,
        1,
        1,
        "task",
        {"pr": 412},
    )
    # --id: sending again answers the stored message, never a second one.
    assert a.ok("send", room, "once", "--id", "job-7") == "4\n"
    assert a.ok("send", room, "once", "--id", "job-7") == "4\n"
    stored = alice.api.get(f"/api/v1/rooms/{room}/messages?after=0").body["messages"]
    assert [(m["seq"], m["body"]) for m in stored] == [
        (1, "first"),
        (2, "from\nstdin"),
        (3, "done"),
        (4, "once"),
    ]
    assert stored[3]["clientMsgId"] == "job-7"


def test_read_newest_after_thread_and_limit(make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a = ah_for(alice)
    room = slug()
    a.ok("create", room)
    ah_for(bob).ok("join", room)
    for i in range(1, 6):
        post(alice if i % 2 else bob, room, f"m{i}", **({"replyTo": 1} if i in (3, 5) else {}))
    # Newest first from the server, printed oldest first.
    assert a.ok("read", room, "--limit", "2").splitlines() == [
        f"#{room} 4 {bob.name}: m4",
        f"#{room} 5 {alice.name} (re 1): m5",
    ]
    assert [m["seq"] for m in a.json("read", room)] == [1, 2, 3, 4, 5]
    done = a("read", room, "--after", "1", "--limit", "2")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        f"#{room} 2 {bob.name}: m2",
        f"#{room} 3 {alice.name} (re 1): m3",
    ]
    assert done.stderr == f"ah: more messages: ah read {room} --after 3\n"
    assert [m["seq"] for m in a.json("read", room, "--thread", "1")] == [1, 3, 5]
    assert [m["seq"] for m in a.json("read", room, "--thread", "1", "--after", "3")] == [5]


def test_read_unread_and_mark_read(make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    room = slug()
    a.ok("create", room)
    b.ok("join", room)
    for i in range(1, 5):
        post(alice, room, f"m{i}")
    assert b.ok("mark-read", room, "2") == f"#{room} read up to 2\n"
    assert [m["seq"] for m in b.json("read", room, "--unread")] == [3, 4]
    assert [m["seq"] for m in b.json("read", room, "--unread", "--limit", "1", "--mark-read")] == [
        3
    ]
    assert [m["seq"] for m in b.json("read", room, "--unread")] == [4]
    (mark,) = b.json("mark-read", room)  # no SEQ: the room's newest
    assert mark["lastReadSeq"] == 4
    assert b.ok("read", room, "--unread") == ""
    assert b.json("mark-read", room, "1")[0]["lastReadSeq"] == 4  # only forward


def test_dm_inbox_and_mentions(make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    assert b("inbox").stderr == "ah: nothing unread\n"
    assert b.ok("inbox", "--json") == ""
    assert a.ok("dm", bob.name, "psst") == "1\n"
    assert a.ok("dm", bob.name, "-", input=f"@{bob.name} you there?") == "2\n"
    (entry,) = b.json("inbox")
    assert (entry["room"]["kind"], entry["unreadCount"], entry["unreadMentions"]) == ("dm", 2, 1)
    assert entry["lastMessage"]["body"] == f"@{bob.name} you there?"
    text = b.ok("inbox").splitlines()
    assert text[0].endswith("2 unread, 1 mention")
    assert text[1].endswith(f"2 {alice.name}: @{bob.name} you there?")
    (mention,) = b.json("mentions")
    assert (mention["message"]["seq"], mention["room"]["id"]) == (2, entry["room"]["id"])
    assert b.ok("mentions").endswith(f"2 {alice.name}: @{bob.name} you there?\n")
    b.ok("mark-read", entry["room"]["id"])
    assert b.json("inbox") == []


def test_search(make_agent, ah_for):
    alice = make_agent()
    a = ah_for(alice)
    room, other = slug(), slug()
    a.ok("create", room)
    a.ok("create", other)
    word = f"zebra{uuid.uuid4().hex[:6]}"
    post(alice, room, f"the {word} is here")
    post(alice, other, f"another {word}")
    results = a.json("search", word)
    assert {r["room"]["slug"] for r in results} == {room, other}
    (only,) = a.json("search", word, "--room", room)
    assert only["message"]["body"] == f"the {word} is here" and "«" in only["highlight"]
    assert a.ok("search", word, "--room", room) == f"#{room} 1 {alice.name}: the «{word}» is here\n"


# --- exit codes ---------------------------------------------------------------------------


def test_refusals_exit_1_with_the_code_and_message(make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    done = a("read", "no-such-room")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("ah: not_found: ")
    private = slug()
    a.ok("create", private, "--private")
    assert b("send", private, "hi").stderr.startswith("ah: not_found: ")
    public = slug()
    a.ok("create", public)
    done = b("send", public, "not a member")
    assert (done.returncode, done.stderr.split(":")[:2]) == (1, ["ah", " forbidden"])
    assert a("create", public).stderr.startswith("ah: conflict: ")
    assert a("send", public, "x", "--kind", "Not A Kind").returncode == 1
    # A token the server refuses.
    env = dict(a.env, AGENTHUB_TOKEN="agt_nope_" + "x" * 40)
    done = a("whoami", env=env)
    assert (done.returncode, done.stderr.split(":")[:2]) == (1, ["ah", " unauthorized"])


def test_usage_and_missing_configuration_exit_2(make_agent, ah_for, tmp_path):
    a = ah_for(make_agent())
    assert a().returncode == 2  # no command
    assert a("frobnicate").returncode == 2
    assert a("send", "general").returncode == 2  # TEXT missing
    assert a("read", "general", "--after", "1", "--unread").returncode == 2
    assert a("read", "general", "--limit", "zero").returncode == 2
    done = a("send", "general", "x", "--data", "{not json")
    assert (done.returncode, done.stderr.startswith("ah: --data: not JSON")) == (2, True)
    assert a("send", "general", "x", "--data", "[1]").returncode == 2
    done = a("wait", "--after", "3", "--timeout", "0")
    assert (done.returncode, "--after needs a ROOM" in done.stderr) == (2, True)

    no_url = {k: v for k, v in a.env.items() if k != "AGENTHUB_URL"}
    done = a("whoami", env=no_url)
    assert (done.returncode, "AGENTHUB_URL" in done.stderr) == (2, True)
    no_token = {k: v for k, v in a.env.items() if k != "AGENTHUB_TOKEN"}
    done = a("whoami", env=no_token)
    assert (done.returncode, "AGENTHUB_TOKEN" in done.stderr) == (2, True)
    done = a("whoami", "--token-file", str(tmp_path / "absent"), env=no_token)
    assert (done.returncode, done.stderr.startswith("ah: --token-file: cannot read")) == (2, True)
    # --url and --token-file instead of the environment.
    token_file = tmp_path / "token"
    token_file.write_text(a.agent.api_token + "\n")
    bare = {k: v for k, v in no_token.items() if k != "AGENTHUB_URL"}
    url = a.env["AGENTHUB_URL"]
    done = a("--url", url, "whoami", "--token-file", str(token_file), env=bare)
    assert done.returncode == 0 and done.stdout.split()[0] == a.agent.name


def test_unreachable_server_exits_3(make_agent, ah_for):
    a = ah_for(make_agent())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(a.env, AGENTHUB_URL=f"http://127.0.0.1:{port}")
    for args in (("whoami",), ("send", "general", "hi"), ("wait", "--timeout", "5")):
        done = a(*args, env=env)
        assert done.returncode == 3, (args, done.stderr)
        assert done.stderr.startswith("ah: connection_failed: cannot reach http://127.0.0.1:")
        assert a.agent.api_token not in done.stderr


def test_wait_times_out_with_exit_4(make_agent, ah_for):
    alice = make_agent()
    a = ah_for(alice)
    room = slug()
    a.ok("create", room)
    started = time.monotonic()
    done = a("wait", room, "--timeout", "1.5")
    took = time.monotonic() - started
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == "ah: nothing new within 1.5 s\n"
    assert 1.4 < took < 10
    assert a("wait", "--timeout", "0").returncode == 4  # inbox: nothing unread
    # The caller's own posts are nothing new.
    a.ok("send", room, "talking to myself")
    assert a("wait", room, "--timeout", "0.5").returncode == 4


# --- waiting ------------------------------------------------------------------------------


def test_wait_in_a_room_is_woken_by_another_agents_post(server, make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    room = slug()
    a.ok("create", room)
    b.ok("join", room)
    post(alice, room, "before")
    b.ok("mark-read", room)
    waiting = b.popen("wait", room, "--timeout", "60", "--mark-read")
    try:
        wait_until_waiting(server)
        post(alice, room, "your turn")
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert (waiting.returncode, out, err) == (0, f"#{room} 2 {alice.name}: your turn\n", "")
    assert bob.api.get(f"/api/v1/rooms/{room}").body["lastReadSeq"] == 2
    # Default --after: the read mark, so what arrived while nobody waited is answered at once.
    post(alice, room, "while away")
    assert b.json("wait", room, "--timeout", "5")[0]["seq"] == 3
    # An explicit --after.
    assert [m["seq"] for m in b.json("wait", room, "--after", "1", "--timeout", "5")] == [2, 3]


def test_wait_loops_past_the_servers_cap(database, make_agent, ah_for, tmp_path):
    """A --timeout beyond MAX_WAIT_SECONDS is served by several long polls: on a server
    capped at 1 s (ah's first 60 s ask is refused and halved down to it), a post 3 s in still
    wakes ah, and with nothing posted it gives up only at its own --timeout."""
    alice, bob = make_agent(), make_agent()
    room = slug()
    ah_for(alice).ok("create", room)
    with custom_server(database, tmp_path / "capped.log", MAX_WAIT_SECONDS="1") as srv:
        b = Ah(srv, bob, tmp_path / "capped")
        b.ok("join", room)
        waiting = b.popen("wait", room, "--timeout", "30", "--json", "--mark-read")
        try:
            time.sleep(3)
            assert waiting.poll() is None
            post(alice, room, "late")
            out, err = waiting.communicate(timeout=30)
        finally:
            waiting.kill()
        assert waiting.returncode == 0, err
        assert json.loads(out)["body"] == "late"
        started = time.monotonic()
        done = b("wait", room, "--timeout", "2.5")
        assert done.returncode == 4 and 2.4 < time.monotonic() - started < 15
        done = b("wait", "--timeout", "2.5")
        assert done.returncode == 4


def test_wait_without_a_room_is_woken_through_the_inbox(server, make_agent, ah_for):
    alice, bob = make_agent(), make_agent()
    a, b = ah_for(alice), ah_for(bob)
    room = slug()
    a.ok("create", room)
    b.ok("join", room)
    waiting = b.popen("wait", "--timeout", "60", "--json", "--mark-read")
    try:
        wait_until_waiting(server)
        post(alice, room, f"@{bob.name} ping")
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    (item,) = [json.loads(line) for line in out.splitlines()]
    assert item["room"]["slug"] == room
    assert (item["message"]["seq"], item["message"]["body"]) == (1, f"@{bob.name} ping")
    assert b.json("inbox") == []  # --mark-read
    # A DM wakes it too (the DM room exists when the wait starts: a room the caller is added
    # to while waiting wakes it only through a mention); text names the room and the sender.
    dm = alice.api.post("/api/v1/dms", {"agentId": bob.id}).body
    waiting = b.popen("wait", "--timeout", "60")
    try:
        wait_until_waiting(server)
        post(alice, dm["id"], "direct")
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert (waiting.returncode, out) == (0, f"#{dm['slug']} 1 {alice.name}: direct\n")


# --- credentials ----------------------------------------------------------------------------


def test_the_jwt_cache_is_0600_reused_and_the_api_token_is_never_written(
    server, make_agent, ah_for
):
    alice, bob = make_agent(), make_agent()
    a = ah_for(alice)
    room = slug()
    a.ok("create", room)
    a.ok("send", room, "one")
    a.ok("send", room, "-", input="two")
    a.ok("read", room, "--mark-read")
    a.ok("rooms")
    a.ok("inbox")
    a.ok("dm", bob.name, "hi")
    assert a("wait", room, "--timeout", "0").returncode == 4

    (cache,) = [p for p in a.root.rglob("*") if p.is_file()]
    assert cache.parent == a.runtime / "agenthub" and cache.suffix == ".jwt"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    # No file anywhere (HOME, the runtime dir, the working directory) holds the API token.
    secret = alice.api_token.rsplit("_", 1)[-1]
    for path in a.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert alice.api_token.encode() not in data and secret.encode() not in data, path
    # What is cached is a working session JWT, and the next runs use it (no new login).
    jwt = json.loads(cache.read_text())["token"]
    assert server.api(jwt).get("/api/v1/agents/me").body["id"] == alice.id
    before = cache.stat().st_mtime_ns, cache.read_bytes()
    a.ok("whoami")
    assert (cache.stat().st_mtime_ns, cache.read_bytes()) == before

    # A cached JWT the server refuses: ah logs in again and replaces it.
    data = json.loads(cache.read_text())
    data["token"] = jwt[:-4] + ("AAAA" if not jwt.endswith("AAAA") else "BBBB")
    cache.write_text(json.dumps(data))
    assert a.ok("whoami").split()[0] == alice.name
    assert json.loads(cache.read_text())["token"] != data["token"]
    # A cache file others could read is ignored (and replaced with a private one).
    cache.chmod(0o644)
    assert a.ok("whoami").split()[0] == alice.name
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_without_xdg_runtime_dir_nothing_is_written(make_agent, ah_for):
    alice = make_agent()
    a = ah_for(alice)
    env = {k: v for k, v in a.env.items() if k != "XDG_RUNTIME_DIR"}
    room = slug()
    assert a("create", room, env=env).returncode == 0
    assert a("send", room, "hi", env=env).returncode == 0
    assert [p for p in a.root.rglob("*") if p.is_file()] == []


# --- mcp ----------------------------------------------------------------------------------


def test_mcp_without_the_mcp_package_says_what_to_install(make_agent, ah_for, tmp_path):
    """The ``mcp`` package made unimportable (a stand-in that fails like an absent one)."""
    a = ah_for(make_agent())
    shadow = tmp_path / "shadow" / "mcp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mcp'\", name='mcp')\n"
    )
    env = dict(a.env, PYTHONPATH=str(shadow.parent))
    done = a("mcp", env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "ah: the MCP server needs: pip install 'agenthub[mcp]'\n"
    # Configuration is checked first, as for every command.
    no_token = {k: v for k, v in env.items() if k != "AGENTHUB_TOKEN"}
    assert a("mcp", env=no_token).returncode == 2
