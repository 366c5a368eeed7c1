"""The web console's weight and speed, in Debian's Chromium driven by Playwright.

Against a running server (``scripts/dev-up``, or any URL with an admin token), it creates two
agents and a room holding ``--messages`` messages (default 1,000), then prints:

- the bytes a first visit transfers (fresh browser profile, nothing cached): the sign-in page
  with every asset, then signing in and opening the room (API answers and the socket.io
  handshake included), with and without gzip;
- how long the room takes to show its newest 50 messages: from the navigation to the room
  being drawn, for a cold page (a new tab with an empty cache: every asset, the API calls, the
  socket) and for a switch from another room inside the running console, ``--runs`` times
  each (median and max).

    .venv/bin/python bench/console.py                               # the dev server
    .venv/bin/python bench/console.py --url http://hub:3000 --admin-token-file admin.token
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_support import MISSING_REASON, chromium, sign_in, watched_page  # noqa: E402
from tests.helpers import Api  # noqa: E402


def _ok(resp: Any, status: int = 201) -> dict[str, Any]:
    assert resp.status == status, resp.text
    return dict(resp.body)


def make_world(url: str, admin_token: str, messages: int) -> tuple[str, dict[str, Any], str]:
    admin = Api(url, _ok(Api(url, admin_token).post("/api/v1/sessions"))["token"])
    tag = uuid.uuid4().hex[:6]
    # Five writers: RATE_LIMIT_AGENT_PER_MINUTE (600) would hold one writer back.
    names = ["reader", *(f"writer{i}" for i in range(5))]
    sessions = []
    for who in names:
        agent = _ok(admin.post("/api/v1/agents", {"name": f"bench-{who}-{tag}"}))
        token = _ok(admin.post(f"/api/v1/agents/{agent['id']}/tokens", {}))["token"]
        sessions.append((token, Api(url, _ok(Api(url, token).post("/api/v1/sessions"))["token"])))
    (reader_token, reader), writers = sessions[0], [api for _, api in sessions[1:]]
    room = _ok(writers[0].post("/api/v1/rooms", {"slug": f"bench-console-{tag}"}))
    other = _ok(writers[0].post("/api/v1/rooms", {"slug": f"bench-other-{tag}"}))
    for r in (room, other):
        for member in (reader, *writers[1:]):
            _ok(member.post(f"/api/v1/rooms/{r['id']}/members"))
    _ok(writers[0].post(f"/api/v1/rooms/{other['id']}/messages", {"body": "elsewhere"}))
    for i in range(messages):
        body = f"message {i}: build of branch feature-{i % 37} is green, see https://ci.example/{i}"
        _ok(writers[i % 5].post(f"/api/v1/rooms/{room['id']}/messages", {"body": body}))
    return reader_token, room, other["id"]


def first_visit(browser: Any, url: str, token: str, room: dict[str, Any]) -> dict[str, int]:
    w = watched_page(browser, viewport={"width": 1280, "height": 800})
    sizes: dict[str, int] = {"page": 0, "signed_in": 0, "requests": 0}
    page_urls: list[str] = []
    phase = ["page"]

    def on_finished(request: Any) -> None:
        s = request.sizes()
        sizes[phase[0]] += s["responseBodySize"] + s["responseHeadersSize"]
        sizes["requests"] += 1
        if phase[0] == "page":
            page_urls.append(request.url)

    w.page.on("requestfinished", on_finished)
    w.page.goto(url + "/")
    w.page.wait_for_load_state("networkidle")
    phase[0] = "signed_in"
    sign_in(w, url, token)
    w.page.click(f"a.room[data-room='{room['slug']}']")
    w.page.wait_for_selector("main[data-ready=true] .msg")
    w.page.wait_for_load_state("networkidle")
    # The websocket's frames are not requests: they are left out (a few kB).
    w.assert_clean()
    w.page.context.close()
    # The same files without gzip (urllib asks for no encoding): what compression saves.
    page_raw = sum(len(urllib.request.urlopen(u, timeout=10).read()) for u in page_urls)
    return {**sizes, "page_raw": page_raw}


def newest_50(
    browser: Any, url: str, token: str, room: dict[str, Any], other: str, runs: int
) -> dict[str, list[float]]:
    cold, switch = [], []
    w = watched_page(browser, viewport={"width": 1280, "height": 800})
    sign_in(w, url, token)
    session = w.page.evaluate("sessionStorage.getItem('agenthub.session')")
    wait_50 = "() => document.querySelectorAll('main[data-ready=true] .messages .msg').length >= 50"
    for _ in range(runs):
        # Cold: a new profile holding only the session (sessionStorage), nothing cached.
        c = watched_page(browser, viewport={"width": 1280, "height": 800})
        c.page.goto(url + "/console-bench-blank")  # same origin, to seed sessionStorage
        c.page.evaluate("(s) => sessionStorage.setItem('agenthub.session', s)", session)
        start = time.perf_counter()
        c.page.goto(f"{url}/#/room/{room['id']}")
        c.page.wait_for_function(wait_50, polling="raf")
        cold.append((time.perf_counter() - start) * 1000)
        c.page.context.close()
        # Switch: inside the running console, from another room.
        w.page.evaluate("(id) => { location.hash = '#/room/' + id; }", other)
        w.page.wait_for_selector("main[data-ready=true]")
        took = w.page.evaluate(
            """async (id) => {
                 const t = performance.now();
                 location.hash = '#/room/' + id;
                 const shown = 'main[data-ready=true] .messages .msg';
                 while (document.querySelectorAll(shown).length < 50)
                   await new Promise(requestAnimationFrame);
                 return performance.now() - t;
               }""",
            room["id"],
        )
        switch.append(float(took))
    w.assert_clean()
    w.page.context.close()
    return {"cold": cold, "switch": switch}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", default="http://127.0.0.1:3000")
    p.add_argument("--admin-token-file", default=str(ROOT / ".agenthub-dev" / "admin.token"))
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args(argv)
    if MISSING_REASON:
        print(f"bench/console.py: {MISSING_REASON}", file=sys.stderr)
        return 2
    token, room, other = make_world(
        args.url, Path(args.admin_token_file).read_text().strip(), args.messages
    )
    with chromium() as browser:
        weight = first_visit(browser, args.url, token, room)
        times = newest_50(browser, args.url, token, room, other, args.runs)
    print(
        f"first visit, sign-in page (index + assets): {weight['page']:,} bytes transferred "
        f"({weight['page_raw']:,} bytes of content, uncompressed)"
    )
    print(
        f"sign in + open a room of {args.messages:,} messages: {weight['signed_in']:,} bytes more"
    )
    print(f"requests in all: {weight['requests']}")
    for name, values in times.items():
        print(
            f"newest 50 shown, {name}: median {statistics.median(values):.0f} ms, "
            f"max {max(values):.0f} ms ({len(values)} runs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
