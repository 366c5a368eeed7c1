"""``ah`` without a server: what it imports, its configuration, the JWT cache file, the text
lines, and ``ah mcp`` handing the URL and token to agenthub.client.mcp."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agenthub.client.ah import main as ah_main
from agenthub.client.ah.config import Config, ConfigError, JwtCache, resolve
from agenthub.client.ah.output import message_line
from agenthub.client.models import Message, Session
from agenthub.client.session import SessionManager

SERVER_ONLY = ("aiopg", "psycopg2", "tornado", "sqlalchemy", "alembic", "marshmallow", "socketio")
TOKEN = "agt_abcd1234_" + "s" * 43


def test_ah_loads_no_server_module():
    code = (
        "import sys\n"
        "from agenthub.client.ah import main, commands, config, output\n"
        "main.build_parser()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_ONLY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_python_m_runs_ah():
    done = subprocess.run(
        [sys.executable, "-m", "agenthub.client.ah", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout.startswith("ah (agenthub) ")) == (0, True)


def test_resolve_prefers_options_and_never_shows_the_token(tmp_path):
    env = {"AGENTHUB_URL": "http://hub:3000/", "AGENTHUB_TOKEN": TOKEN}
    assert resolve(None, None, env) == Config("http://hub:3000", TOKEN)
    token_file = tmp_path / "t"
    token_file.write_text("agt_other_x\n")
    config = resolve("https://other", str(token_file), env)
    assert config == Config("https://other", "agt_other_x")
    assert TOKEN not in repr(resolve(None, None, env))
    with pytest.raises(ConfigError, match="AGENTHUB_URL"):
        resolve(None, None, {"AGENTHUB_TOKEN": TOKEN})
    with pytest.raises(ConfigError, match="AGENTHUB_TOKEN"):
        resolve(None, None, {"AGENTHUB_URL": "http://hub"})
    with pytest.raises(ConfigError, match="http://"):
        resolve("hub:3000", None, env)


def _jwt(iat: float, exp: float) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"iat": iat, "exp": exp}).encode()).decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{claims.rstrip('=')}.sig"


def _session(token: str) -> Session:
    return Session.from_json(
        {
            "token": token,
            "expiresAt": "2030-01-01T00:00:00+00:00",
            "agent": {
                "id": "a1",
                "name": "alice",
                "displayName": "Alice",
                "role": "agent",
                "disabled": False,
                "createdAt": "2026-01-01T00:00:00+00:00",
            },
        }
    )


def test_the_jwt_cache_round_trip_is_private(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    cache = JwtCache(Config("http://hub:3000", TOKEN), {"XDG_RUNTIME_DIR": str(runtime)})
    assert cache.path is not None and cache.path.parent == runtime / "agenthub"
    assert TOKEN not in str(cache.path) and "abcd1234" not in str(cache.path)
    assert cache.load() is None
    now = time.time()
    session = _session(_jwt(now, now + 900))
    cache.save(session)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700
    assert TOKEN.encode() not in cache.path.read_bytes()
    loaded = cache.load()
    assert loaded is not None and loaded.token == session.token
    assert loaded.agent.name == "alice"
    # Another token or server: another file.
    other = JwtCache(Config("http://hub:3000", TOKEN + "x"), {"XDG_RUNTIME_DIR": str(runtime)})
    assert other.path != cache.path and other.load() is None
    # A file others may read is not trusted.
    cache.path.chmod(0o640)
    assert cache.load() is None
    cache.forget()
    assert not cache.path.exists()
    # No XDG_RUNTIME_DIR: no cache at all.
    assert JwtCache(Config("http://hub", TOKEN), {}).path is None


def test_a_shared_cache_directory_is_not_used(tmp_path):
    runtime = tmp_path / "run"
    (runtime / "agenthub").mkdir(parents=True)
    (runtime / "agenthub").chmod(0o777)
    cache = JwtCache(Config("http://hub:3000", TOKEN), {"XDG_RUNTIME_DIR": str(runtime)})
    now = time.time()
    cache.save(_session(_jwt(now, now + 900)))
    assert list((runtime / "agenthub").iterdir()) == []


def test_adopt_uses_a_session_until_it_is_due():
    manager = SessionManager(http=None, api_token=TOKEN)  # type: ignore[arg-type]
    now = time.time()
    assert manager.adopt(_session(_jwt(now - 100, now + 800)))  # due at 80 %: in 620 s
    assert 600 < manager.refresh_due_in() <= 620
    late = SessionManager(http=None, api_token=TOKEN)  # type: ignore[arg-type]
    assert not late.adopt(_session(_jwt(now - 800, now + 100)))  # already due
    assert late.current is None
    assert not late.adopt(_session("not-a-jwt"))


def _message(**kw: object) -> Message:
    base = {
        "id": "m",
        "roomId": "r",
        "seq": 57,
        "senderId": "a1",
        "body": "hello",
        "clientMsgId": None,
        "createdAt": datetime.now(UTC).isoformat(),
    }
    return Message.from_json({**base, **kw})


def test_message_lines():
    names = {"a1": "alice"}
    assert message_line(_message(), "#general", names) == "#general 57 alice: hello"
    assert message_line(_message(senderId="zz"), "#g", names) == "#g 57 zz: hello"
    reply = _message(replyTo=42, threadRoot=42, kind="task", data={"pr": 1}, body="a\nb")
    assert message_line(reply, "#g", names) == '#g 57 alice (re 42) [task] {"pr":1}: a\n    b'
    gone = _message(redactedAt=datetime.now(UTC).isoformat(), body="")
    assert message_line(gone, "#g", names) == "#g 57 alice: (redacted)"


def test_mcp_hands_url_and_token_to_the_mcp_server(monkeypatch, capsys):
    calls: list[tuple[str, str]] = []
    fake = types.ModuleType("agenthub.client.mcp")
    fake.run = lambda url, token: calls.append((url, token))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agenthub.client.mcp", fake)
    monkeypatch.setenv("AGENTHUB_URL", "http://hub:3000")
    monkeypatch.setenv("AGENTHUB_TOKEN", TOKEN)
    assert ah_main.main(["mcp"]) == 0
    assert calls == [("http://hub:3000", TOKEN)]


def test_mcp_without_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "agenthub.client.mcp", None)  # import fails
    monkeypatch.setenv("AGENTHUB_URL", "http://hub:3000")
    monkeypatch.setenv("AGENTHUB_TOKEN", TOKEN)
    assert ah_main.main(["mcp"]) == 2
    assert capsys.readouterr().err == "ah: the MCP server needs: pip install 'agenthub[mcp]'\n"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        ah_main.main(["read"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        ah_main.main(["wait", "--timeout", "-1"])
    assert exited.value.code == 2


def test_every_command_of_the_issue_is_there():
    parser = ah_main.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {  # type: ignore[arg-type]
        "whoami", "rooms", "join", "leave", "create", "agents", "send", "read", "wait", "dm",
        "inbox", "mentions", "search", "mark-read", "mcp",
    }  # fmt: skip
    assert Path(ah_main.__file__).parent.name == "ah"
