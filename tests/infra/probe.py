"""Post before an upgrade, prove it is all there after, and use the newer release's features
on what the older one stored (tests/infra/run).

    python tests/infra/probe.py post     --url http://10.0.0.2:3000 --token-file T --state S
    python tests/infra/probe.py check    --url http://10.0.0.2:3000 --token-file T --state S
    python tests/infra/probe.py features --url http://10.0.0.2:3000 --token-file T --state S

`post` (on the older release: only its API) logs in with the admin API token, creates a peer
agent with its own token, a private room holding both, and posts one message from each; it
writes what it made to the state file (JSON). `check` logs in again with the same tokens (so
the tokens, the database and the code all still work) and finds both messages, unchanged, at
their seqs. `features` runs after the upgrade, on the migrated rows: a thread rooted at the
peer's pre-upgrade message (a reply and a reply to the reply, naming the admin with @), the
admin's read mark in the room, and a search that finds the pre-upgrade messages. Each feature is
checked when the server's OpenAPI document has its route or parameter, and reported as
"SKIPPED (not in this release)" otherwise, so the probe serves releases before and after it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class ProbeFailed(SystemExit):
    pass


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
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raise ProbeFailed(f"probe: {method} {path} -> {exc.code} {exc.read().decode()}") from None


def session(url: str, token: str) -> str:
    return str(call(url, "POST", "/sessions", token)["token"])


def expect(condition: bool, what: str, seen: Any) -> None:
    if not condition:
        raise ProbeFailed(f"probe: {what}; got {json.dumps(seen)[:2000]}")


def post(url: str, token_file: Path, state: Path) -> None:
    admin = session(url, token_file.read_text().strip())
    nonce = secrets.token_hex(4)
    me = call(url, "GET", "/agents/me", admin)
    peer = call(url, "POST", "/agents", admin, {"name": f"upgrade-peer-{nonce}"})
    peer_token = call(url, "POST", f"/agents/{peer['id']}/tokens", admin, {})["token"]
    room = call(url, "POST", "/rooms", admin, {"slug": f"upgrade-{nonce}", "visibility": "private"})
    call(url, "POST", f"/rooms/{room['id']}/members", admin, {"agentId": peer["id"]})
    # "upgradeprobe<nonce>": one word to search for after the upgrade.
    word = f"upgradeprobe{nonce}"
    mine = call(
        url,
        "POST",
        f"/rooms/{room['id']}/messages",
        admin,
        {"body": f"posted before the upgrade ({word})", "clientMsgId": nonce},
    )
    theirs = call(
        url,
        "POST",
        f"/rooms/{room['id']}/messages",
        session(url, peer_token),
        {"body": f"a question from the peer before the upgrade ({word})"},
    )
    saved = {
        "roomId": room["id"],
        "adminId": me["id"],
        "adminName": me["name"],
        "peerToken": peer_token,
        "word": word,
        "messages": [{k: m[k] for k in ("id", "seq", "body")} for m in (mine, theirs)],
    }
    state.write_text(json.dumps(saved))
    state.chmod(0o600)
    print(f"probe: posted messages {mine['seq']} and {theirs['seq']} in room {room['slug']}")


def _listing(url: str, jwt: str, room_id: str) -> list[dict[str, Any]]:
    page = call(url, "GET", f"/rooms/{room_id}/messages?limit=200", jwt)
    return list(page["messages"])


def check(url: str, token_file: Path, state: Path) -> None:
    saved = json.loads(state.read_text())
    for who, token in (("admin", token_file.read_text().strip()), ("peer", saved["peerToken"])):
        listed = {m["id"]: m for m in _listing(url, session(url, token), saved["roomId"])}
        for expected in saved["messages"]:
            found = listed.get(expected["id"])
            expect(
                found is not None
                and (found["seq"], found["body"]) == (expected["seq"], expected["body"]),
                f"message {expected['id']} is gone or changed (read by the {who})",
                found,
            )
    print(f"probe: messages {[m['seq'] for m in saved['messages']]} are still there, unchanged")


def _documented(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=15) as response:
        paths: dict[str, Any] = json.load(response)["paths"]
    return paths


def _has_query(paths: dict[str, Any], path: str, method: str, name: str) -> bool:
    operation = paths.get(path, {}).get(method, {})
    return any(p.get("name") == name for p in operation.get("parameters", []))


def features(url: str, token_file: Path, state: Path) -> None:
    saved = json.loads(state.read_text())
    room_id = saved["roomId"]
    admin = session(url, token_file.read_text().strip())
    peer = session(url, saved["peerToken"])
    paths = _documented(url)
    root = saved["messages"][1]  # the peer's message, posted before the upgrade

    # A thread on a pre-upgrade message: reply, then reply to the reply (same root), with a
    # mention of a member that joined before the upgrade.
    reply = call(
        url,
        "POST",
        f"/rooms/{room_id}/messages",
        admin,
        {"body": "an answer after the upgrade", "replyTo": root["seq"]},
    )
    deeper = call(
        url,
        "POST",
        f"/rooms/{room_id}/messages",
        peer,
        {"body": f"thanks @{saved['adminName']}", "replyTo": reply["seq"]},
    )
    expect(
        (reply["replyTo"], reply["threadRoot"]) == (root["seq"], root["seq"]),
        "a reply to a pre-upgrade message does not root its thread there",
        reply,
    )
    expect(
        (deeper["replyTo"], deeper["threadRoot"]) == (reply["seq"], root["seq"]),
        "a reply to the reply is not in the same thread",
        deeper,
    )
    expect(deeper["mentions"] == [saved["adminId"]], "the @mention of the admin", deeper)
    listed = {m["seq"]: m for m in _listing(url, admin, room_id)}
    expect(
        listed[root["seq"]]["threadRoot"] is None
        and listed[deeper["seq"]]["threadRoot"] == root["seq"],
        "the room's listing shows the thread",
        list(listed.values()),
    )
    if _has_query(paths, "/api/v1/rooms/{id}/messages", "get", "thread"):
        thread = call(url, "GET", f"/rooms/{room_id}/messages?thread={root['seq']}", admin)
        seqs = [m["seq"] for m in thread["messages"]]
        expect(seqs == [root["seq"], reply["seq"], deeper["seq"]], "?thread= lists it", thread)
        print(f"probe: thread {seqs} rooted at pre-upgrade message {root['seq']}")
    else:
        print("probe: thread listing (?thread=) SKIPPED (not in this release); replies checked")

    # The admin's read mark, on a membership that predates the upgrade (last_read_seq 0).
    if "/api/v1/rooms/{id}/read" in paths:
        before = call(url, "GET", f"/rooms/{room_id}", admin)
        expect(
            before["lastReadSeq"] == 0 and before["unreadCount"] == 2,
            "a pre-upgrade membership starts with nothing read (the peer's 2 messages unread)",
            before,
        )
        mark = call(url, "PUT", f"/rooms/{room_id}/read", admin, {"seq": deeper["seq"]})
        after = call(url, "GET", f"/rooms/{room_id}", admin)
        expect(
            mark == {"roomId": room_id, "lastReadSeq": deeper["seq"]}
            and after["lastReadSeq"] == deeper["seq"]
            and after["unreadCount"] == 0,
            "the read mark is stored and read back",
            [mark, after],
        )
        print(f"probe: read mark at {deeper['seq']}, nothing unread")
    else:
        print("probe: read mark (PUT /rooms/{id}/read) SKIPPED (not in this release)")

    # Search finds what was posted before the upgrade (the migration indexed the old rows).
    if "/api/v1/search" in paths:
        query = urllib.parse.urlencode({"q": saved["word"], "room": room_id})
        found = call(url, "GET", f"/search?{query}", admin)
        ids = sorted(r["message"]["id"] for r in found["results"])
        expect(ids == sorted(m["id"] for m in saved["messages"]), "search finds both", found)
        print(f"probe: search finds the {len(ids)} pre-upgrade messages")
    else:
        print("probe: search SKIPPED (not in this release)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=["post", "check", "features"])
    parser.add_argument("--url", required=True, help="e.g. http://10.231.6.2:3000")
    parser.add_argument("--token-file", type=Path, required=True, help="admin API token")
    parser.add_argument("--state", type=Path, required=True, help="JSON written by post")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    {"post": post, "check": check, "features": features}[args.action](
        url, args.token_file, args.state
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
