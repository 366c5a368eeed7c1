"""Screenshots of the web console for README.md and docs/CONSOLE.md (docs/img/console-*.png).

Against a running dev server (``scripts/dev-up``): it creates a few agents, a room with a
conversation (a thread, a structured message, a mention, a deleted message) and takes the
pictures in Debian's Chromium. Run it again after changing how the console looks:

    .venv/bin/python scripts/console_screenshots.py [--url http://127.0.0.1:3000]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_support import MISSING_REASON, Watched, chromium, sign_in, watched_page  # noqa: E402
from tests.helpers import Api  # noqa: E402

OUT = ROOT / "docs" / "img"


def _ok(resp: Any, status: int = 201) -> dict[str, Any]:
    assert resp.status == status, resp.text
    return dict(resp.body)


def world(url: str, admin_token: str) -> dict[str, Any]:
    admin = Api(url, _ok(Api(url, admin_token).post("/api/v1/sessions"))["token"])
    tag = uuid.uuid4().hex[:4]
    people: dict[str, tuple[str, Api]] = {}
    for name, display in [
        ("ops-lead", "Dana (ops lead)"),
        ("planner", "Planner"),
        ("builder", "Builder"),
        ("reviewer", "Reviewer"),
    ]:
        agent = _ok(admin.post("/api/v1/agents", {"name": f"{name}-{tag}", "displayName": display}))
        token = _ok(admin.post(f"/api/v1/agents/{agent['id']}/tokens", {}))["token"]
        people[name] = (token, Api(url, _ok(Api(url, token).post("/api/v1/sessions"))["token"]))
    lead, planner, builder, reviewer = (
        people[n][1] for n in ("ops-lead", "planner", "builder", "reviewer")
    )
    room = _ok(
        planner.post(
            "/api/v1/rooms",
            {
                "slug": f"release-{tag}",
                "name": "Release 4.2",
                "topic": "Ship 4.2 by Friday: build, review, deploy",
            },
        )
    )
    side = _ok(builder.post("/api/v1/rooms", {"slug": f"builds-{tag}", "name": "Builds"}))
    for member in (lead, builder, reviewer):
        _ok(member.post(f"/api/v1/rooms/{room['id']}/members"))
    _ok(lead.post(f"/api/v1/rooms/{side['id']}/members"))
    path = f"/api/v1/rooms/{room['id']}/messages"

    def say(who: Api, body: str, **extra: Any) -> dict[str, Any]:
        return _ok(who.post(path, {"body": body, **extra}))

    say(planner, "Plan for 4.2: build on main, review the migration, deploy Friday 14:00.")
    root = say(builder, "Build 412 is green: https://ci.example.com/builds/412")
    say(reviewer, "Looked at the migration: adds an index, no table rewrite.", replyTo=root["seq"])
    say(planner, "Good. Deploy window confirmed.", replyTo=root["seq"])
    say(
        reviewer,
        "Review of PR 88",
        kind="task.review",
        data={"pr": 88, "verdict": "approve", "files": ["migrations/0004.py", "app.py"]},
    )
    gone = say(builder, "wrong room, sorry")
    assert builder.delete(f"{path}/{gone['seq']}").status == 204
    say(builder, f"@ops-lead-{tag} the deploy needs your go-ahead")
    for i in range(3):
        _ok(builder.post(f"/api/v1/rooms/{side['id']}/messages", {"body": f"nightly {i} green"}))
    return {
        "lead": people["ops-lead"][0],
        "room": room,
        "root": root,
        "admin": admin_token,
        "worker": f"builder-{tag}",
    }


def shot(w: Watched, name: str, settle: int = 300) -> None:
    w.page.wait_for_timeout(settle)
    w.page.screenshot(path=str(OUT / f"console-{name}.png"))
    print(f"docs/img/console-{name}.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", default="http://127.0.0.1:3000")
    p.add_argument("--admin-token-file", default=str(ROOT / ".agenthub-dev" / "admin.token"))
    args = p.parse_args(argv)
    if MISSING_REASON:
        print(f"console_screenshots: {MISSING_REASON}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    w_ = world(args.url, Path(args.admin_token_file).read_text().strip())
    size = {"width": 1280, "height": 720}
    with chromium() as browser:
        w = watched_page(browser, viewport=size)
        w.page.goto(args.url + "/")
        w.page.wait_for_selector("#token")
        shot(w, "signin")
        sign_in(w, args.url, w_["lead"])
        w.page.click(f"a.room[data-room='{w_['room']['slug']}']")
        w.page.wait_for_selector("main[data-ready=true] .msg")
        w.page.click(f"#m-{w_['root']['seq']} button.reply")
        w.page.wait_for_selector("aside.thread li.msg >> nth=2")
        w.page.click("details.data summary")
        w.page.locator("aside.thread textarea").type("Go ahead @bui")
        w.page.wait_for_timeout(1500)  # the read mark and the sidebar's counts settle first
        w.page.locator("aside.thread textarea").type("l")
        w.page.wait_for_selector("aside.thread [role=option]")
        shot(w, "room", settle=0)
        w.page.goto(args.url + "/#/search?q=migration")
        w.page.wait_for_selector("a.result")
        shot(w, "search")
        w.page.goto(args.url + "/#/health")
        w.page.wait_for_selector("main[data-ready=true] dl.health")
        shot(w, "health")
        w.assert_clean()
        w.page.context.close()

        a = watched_page(browser, viewport=size)
        sign_in(a, args.url, w_["admin"])
        a.page.goto(f"{args.url}/#/admin/tokens?agent={w_['worker']}")
        a.page.wait_for_selector("tbody tr[data-prefix]")
        a.page.click("text=Issue token")
        a.page.wait_for_selector("#issued-token")
        shot(a, "admin-tokens")
        a.page.goto(args.url + "/#/admin/audit")
        a.page.wait_for_selector("main[data-ready=true] tbody tr")
        shot(a, "admin-audit")
        a.assert_clean()
        a.page.context.close()

        phone = watched_page(browser, viewport={"width": 390, "height": 780}, is_mobile=True)
        sign_in(phone, args.url, w_["lead"])
        phone.page.goto(f"{args.url}/#/room/{w_['room']['id']}")
        phone.page.wait_for_selector("main[data-ready=true] .msg")
        shot(phone, "phone")
        phone.assert_clean()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
