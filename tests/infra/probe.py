"""Post a message before an upgrade and prove it is still there after (tests/infra/run).

    python tests/infra/probe.py post  --url http://10.0.0.2:3000 --token-file T --state S
    python tests/infra/probe.py check --url http://10.0.0.2:3000 --token-file T --state S

`post` logs in with the admin API token, creates a room, posts one message and writes what it
made to the state file (JSON). `check` logs in again with the same token (so the token, the
database and the new code all still work), and finds that message, unchanged, in the room.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def call(url: str, method: str, path: str, bearer: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/api/v1{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"probe: {method} {path} -> {exc.code} {exc.read().decode()}") from None


def session(url: str, token_file: Path) -> str:
    token = token_file.read_text().strip()
    return str(call(url, "POST", "/sessions", token)["token"])


def post(url: str, token_file: Path, state: Path) -> None:
    jwt = session(url, token_file)
    nonce = secrets.token_hex(4)
    room = call(url, "POST", "/rooms", jwt, {"slug": f"upgrade-{nonce}", "visibility": "private"})
    body = f"posted before the upgrade ({nonce})"
    message = call(
        url, "POST", f"/rooms/{room['id']}/messages", jwt, {"body": body, "clientMsgId": nonce}
    )
    state.write_text(json.dumps({"roomId": room["id"], "id": message["id"], "body": body}))
    print(f"probe: posted message {message['id']} in room {room['slug']}")


def check(url: str, token_file: Path, state: Path) -> None:
    expected = json.loads(state.read_text())
    jwt = session(url, token_file)
    page = call(url, "GET", f"/rooms/{expected['roomId']}/messages?limit=200", jwt)
    found = [m for m in page["messages"] if m["id"] == expected["id"]]
    if not found or found[0]["body"] != expected["body"]:
        raise SystemExit(f"probe: message {expected['id']} is gone or changed: {page}")
    print(f"probe: message {expected['id']} is still there: {found[0]['body']!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=["post", "check"])
    parser.add_argument("--url", required=True, help="e.g. http://10.231.6.2:3000")
    parser.add_argument("--token-file", type=Path, required=True, help="admin API token")
    parser.add_argument("--state", type=Path, required=True, help="JSON written by post")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    (post if args.action == "post" else check)(url, args.token_file, args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
