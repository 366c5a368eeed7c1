"""The web console in a real headless Chromium (Debian's ``chromium``, driven by Playwright for
Python) against the real server: sign in, a room live, threads, mentions, read marks, search,
admin tokens, and neither console errors nor CSP violations on the way.

Skipped without chromium or playwright; .ci/run installs both and sets
AGENTHUB_REQUIRE_CHROMIUM=1, which turns the skip into a failure."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser_support import MISSING_REASON, Watched, chromium, sign_in, watched_page
from tests.helpers import Api, free_port
from tests.realtime_support import custom_server
from tests.servers import AgentCtx, Server, login, start_server, stop_server

pytestmark = pytest.mark.skipif(bool(MISSING_REASON), reason=MISSING_REASON)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:
    w = watched_page(browser, viewport={"width": 1200, "height": 800})
    yield w
    w.page.context.close()


def _room_with(
    make_room: Callable[..., dict[str, Any]], owner: AgentCtx, *others: AgentCtx
) -> dict[str, Any]:
    room = make_room(owner)
    for other in others:
        joined = other.api.post(f"/api/v1/rooms/{room['id']}/members")
        assert joined.status == 201, joined.text
    return room


def _post(agent: AgentCtx, room: dict[str, Any], body: str, **extra: Any) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": body, **extra})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def _open_room(w: Watched, room: dict[str, Any]) -> None:
    w.page.click(f"a.room[data-room='{room['slug']}']")
    w.page.wait_for_selector("main[data-ready=true] .room-head")


def test_a_message_posted_over_rest_appears_live_and_a_reply_goes_into_its_thread(
    server: Server,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, Any]],
    page: Watched,
) -> None:
    alice, bob = make_agent(), make_agent()
    room = _room_with(make_room, alice, bob)
    earlier = _post(bob, room, "before alice looked")
    sign_in(page, server.base_url, alice.api_token)
    unread = page.page.locator(f"a.room[data-room='{room['slug']}'] .badge")
    assert unread.inner_text() == "1"
    _open_room(page, room)
    p = page.page
    assert p.locator(f"#m-{earlier['seq']} .body").inner_text() == "before alice looked"

    posted_at = time.monotonic()
    live = _post(bob, room, "deploy is green, see https://example.com/build/412.")
    p.locator(f"#m-{live['seq']}").wait_for(timeout=1000)
    assert time.monotonic() - posted_at < 1.0
    body = p.locator(f"#m-{live['seq']} .body")
    assert body.inner_text() == "deploy is green, see https://example.com/build/412."
    link = body.locator("a")
    assert link.get_attribute("href") == "https://example.com/build/412"
    assert link.get_attribute("rel") == "noopener noreferrer"

    # Seen on screen: the read marker moves, the unread count goes.
    deadline = time.monotonic() + 5
    while alice.api.get(f"/api/v1/rooms/{room['id']}").body["unreadCount"] != 0:
        assert time.monotonic() < deadline, "the console did not mark the room read"
        time.sleep(0.1)

    # Reply in the thread beside the message, mentioning bob through the completion list.
    p.click(f"#m-{live['seq']} button.reply")
    thread_box = p.locator("aside.thread textarea")
    thread_box.wait_for()
    assert p.locator(f"aside.thread #t-{live['seq']}").is_visible()
    thread_box.type(f"thanks @{bob.name[:8]}")
    option = p.locator("aside.thread [role=option]").first
    assert option.inner_text() == f"@{bob.name}"
    thread_box.press("Tab")
    thread_box.type("shipping it")
    thread_box.press("Enter")
    reply_el = p.locator("aside.thread li.msg").nth(1)
    reply_el.wait_for()
    listing = alice.api.get(f"/api/v1/rooms/{room['id']}/messages", params={"thread": live["seq"]})
    reply = listing.body["messages"][-1]
    assert reply["body"] == f"thanks @{bob.name} shipping it"
    assert (reply["senderId"], reply["threadRoot"], reply["mentions"]) == (
        alice.id,
        live["seq"],
        [bob.id],
    )
    p.locator(f"#m-{live['seq']} button.reply", has_text="1 reply").wait_for(timeout=2000)
    # A reply stays out of the main timeline.
    assert p.locator(f"#m-{reply['seq']}").count() == 0
    page.assert_clean()


def test_a_script_in_a_message_body_is_shown_as_text(
    server: Server,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, Any]],
    page: Watched,
) -> None:
    alice, bob = make_agent(), make_agent()
    room = _room_with(make_room, alice, bob)
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    stored = _post(bob, room, evil, kind="task.review", data={"html": evil, "n": 1})
    sign_in(page, server.base_url, alice.api_token)
    _open_room(page, room)
    msg = page.page.locator(f"#m-{stored['seq']}")
    assert msg.locator(".body").inner_text() == evil
    assert msg.locator("img, script").count() == 0
    assert msg.locator(".kind").inner_text() == "task.review"
    msg.locator("details.data summary").click()
    assert '"n": 1' in msg.locator("details.data pre").inner_text()
    live = _post(bob, room, evil)  # the live path renders the same way
    page.page.locator(f"#m-{live['seq']} .body").wait_for()
    assert page.page.locator(".messages img, .messages script").count() == 0
    page.page.wait_for_timeout(200)
    assert page.dialogs == []
    page.assert_clean()


def test_search_finds_a_message_and_jumps_to_it_in_its_room(
    server: Server,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, Any]],
    page: Watched,
) -> None:
    alice, bob = make_agent(), make_agent()
    room = _room_with(make_room, alice, bob)
    word = f"zebra{uuid.uuid4().hex[:8]}"
    target = _post(bob, room, f"the {word} migration failed")
    for i in range(120):  # the target is then two pages up from the newest
        _post(bob, room, f"filler {i}")
    sign_in(page, server.base_url, alice.api_token)
    p = page.page
    p.click("nav a[data-nav=search]")
    p.fill("#search-q", word)
    p.press("#search-q", "Enter")
    result = p.locator("a.result")
    result.wait_for()
    assert result.count() == 1
    assert p.locator("a.result mark").inner_text() == word
    result.click()
    found = p.locator(f"#m-{target['seq']}.target")
    found.wait_for(timeout=5000)
    assert found.locator(".body").inner_text() == f"the {word} migration failed"
    assert found.is_visible()
    page.assert_clean()


def test_an_admin_issues_a_token_shown_once_and_revokes_it(
    server: Server,
    admin: AgentCtx,
    make_agent: Callable[..., AgentCtx],
    page: Watched,
) -> None:
    worker = make_agent()
    sign_in(page, server.base_url, admin.api_token)
    p = page.page
    p.click("nav a[data-nav=admin]")
    p.click(".tabs a[href='#/admin/tokens']")
    p.select_option("#token-agent", label=worker.name)
    p.wait_for_selector("tbody tr[data-prefix]")
    before = p.locator("tbody tr[data-prefix]").count()
    p.click("text=Issue token")
    field = p.locator("#issued-token")
    field.wait_for()
    token = field.input_value()
    assert token.startswith("agt_")
    prefix = token.split("_")[1]
    assert server.api(token).post("/api/v1/sessions").status == 201
    row = p.locator(f"tbody tr[data-prefix='{prefix}']")
    row.wait_for()
    assert p.locator("tbody tr[data-prefix]").count() == before + 1
    assert token not in row.inner_text()  # the secret is shown once, not in the list

    row.locator("button", has_text="Revoke").click()  # confirm() is accepted by the page fixture
    row.locator("text=revoked").wait_for()
    assert page.dialogs and page.dialogs[0].startswith("confirm")
    assert server.api(token).post("/api/v1/sessions").status == 401
    tokens = admin.api.get(f"/api/v1/agents/{worker.id}/tokens").body["tokens"]
    assert [t["revokedAt"] is not None for t in tokens if t["prefix"] == prefix] == [True]
    page.assert_clean()


def test_the_audit_trail_filters_by_agent_and_health_shows_readiness(
    server: Server,
    admin: AgentCtx,
    make_agent: Callable[..., AgentCtx],
    page: Watched,
) -> None:
    worker = make_agent()
    sign_in(page, server.base_url, admin.api_token)
    p = page.page
    p.goto(server.base_url + "/#/admin/audit")
    p.wait_for_selector("main[data-ready=true]")
    p.select_option("#audit-agent", label=worker.name)
    p.select_option("#audit-type", "login")
    p.wait_for_function(
        "() => { const types = [...document.querySelectorAll('tbody tr td:nth-child(2)')];"
        " return types.length > 0 && types.every(td => td.textContent === 'login'); }"
    )
    agents = p.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert agents and set(agents) == {worker.name}
    p.click("nav a[data-nav=health]")
    p.wait_for_selector("main[data-ready=true] dl.health")
    text = p.locator("dl.health").inner_text()
    assert "ready" in text and "Agents connected" in text
    page.assert_clean()


def test_signing_out_forgets_the_session(
    server: Server, make_agent: Callable[..., AgentCtx], page: Watched
) -> None:
    alice = make_agent()
    sign_in(page, server.base_url, alice.api_token)
    p = page.page
    assert p.evaluate("Object.keys(localStorage).length") == 0
    assert p.evaluate("sessionStorage.getItem('agenthub.session')") is not None
    p.click("#sign-out")
    p.wait_for_selector("#signin:not([hidden])")
    assert p.evaluate("sessionStorage.getItem('agenthub.session')") is None
    p.reload()
    p.wait_for_selector("#signin:not([hidden])")
    assert p.locator("#top").is_hidden()
    page.assert_clean()


def test_the_session_is_refreshed_before_it_expires_and_the_room_stays_live(
    database: Any, tmp_path: Any, make_agent: Callable[..., AgentCtx], page: Watched
) -> None:
    alice, bob = make_agent(), make_agent()
    with custom_server(database, tmp_path / "short-jwt.log", JWT_TTL_SECONDS="30") as srv:
        room = Api(srv.base_url, login(srv, alice.api_token)).post(
            "/api/v1/rooms", {"slug": f"room-{uuid.uuid4().hex[:10]}"}
        )
        assert room.status == 201, room.text
        bob_api = Api(srv.base_url, login(srv, bob.api_token))
        assert bob_api.post(f"/api/v1/rooms/{room.body['id']}/members").status == 201
        sign_in(page, srv.base_url, alice.api_token)
        p = page.page
        first = p.evaluate("JSON.parse(sessionStorage.getItem('agenthub.session'))")
        _open_room(page, dict(room.body))
        # The first JWT lives 30 s; the console asks for the next one halfway. Past the first
        # one's expiry, the API and the socket (which took the new JWT by session:refresh,
        # or it would have been cut at the old expiry) still work.
        p.wait_for_timeout(33_000)
        now = p.evaluate("JSON.parse(sessionStorage.getItem('agenthub.session'))")
        assert now["token"] != first["token"]
        assert now["expiresAt"] > first["expiresAt"]
        assert p.locator("#live").get_attribute("data-state") == "online"
        assert p.locator("#signin").is_hidden()
        resp = bob_api.with_token(login(srv, bob.api_token)).post(
            f"/api/v1/rooms/{room.body['id']}/messages", {"body": "still there?"}
        )
        assert resp.status == 201, resp.text
        p.locator(f"#m-{resp.body['seq']}").wait_for(timeout=2000)
        box = p.locator(".room-foot textarea")
        box.type("yes")
        box.press("Enter")
        p.locator(".messages .msg .body", has_text="yes").wait_for(timeout=2000)
        page.assert_clean()


def test_messages_posted_while_the_console_was_cut_off_are_caught_up_on_reconnect(
    database: Any,
    server: Server,
    tmp_path: Any,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, Any]],
    page: Watched,
) -> None:
    alice, bob = make_agent(), make_agent()
    room = _room_with(make_room, alice, bob)
    port = free_port()
    own = start_server(database.env, tmp_path / "first.log", port=port)
    try:
        sign_in(page, own.base_url, alice.api_token)
        _open_room(page, room)
        via_own = AgentCtx(bob.id, bob.name, bob.role, bob.api_token, bob.jwt, own.api(bob.jwt))
        before = _post(via_own, room, "before the cut")  # live: through the console's server
        page.page.locator(f"#m-{before['seq']}").wait_for(timeout=2000)
    finally:
        assert stop_server(own) == 0
    page.page.wait_for_selector("#live:not([data-state=online])")
    # Posted through another server process while the console's server is down: no live
    # event can carry these (no Redis between the two); only room:sync on reconnect can.
    missed = [_post(bob, room, f"while you were away {i}") for i in range(3)]
    again = start_server(database.env, tmp_path / "again.log", port=port)
    try:
        page.page.wait_for_selector("#live[data-state=online]", timeout=15_000)
        for m in missed:
            page.page.locator(f"#m-{m['seq']}").wait_for(timeout=5000)
        seqs = page.page.locator(".messages .msg").evaluate_all(
            "els => els.map(e => +e.dataset.seq)"
        )
        assert seqs == sorted(set(seqs)) and seqs[-4:] == [
            before["seq"],
            *(m["seq"] for m in missed),
        ]
    finally:
        assert stop_server(again) == 0
    # The server going away is reported by the browser as failed connections; nothing else.
    page.errors[:] = [
        e for e in page.errors if "WebSocket" not in e and "ERR_CONNECTION_REFUSED" not in e
    ]
    page.assert_clean()


_UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


def test_every_visible_control_has_a_label_on_every_page(
    server: Server,
    admin: AgentCtx,
    make_room: Callable[..., dict[str, Any]],
    page: Watched,
) -> None:
    room = make_room(admin)
    _post(admin, room, "a message to reply to")
    p = page.page
    p.goto(server.base_url + "/")
    assert p.evaluate(_UNLABELLED) == []
    sign_in(page, server.base_url, admin.api_token)
    views = ["#/search", "#/admin/agents", "#/admin/tokens", "#/admin/audit", "#/health"]
    for view in [f"#/room/{room['id']}", *views]:
        p.goto(f"{server.base_url}/{view}")
        p.wait_for_selector("main[data-ready=true]")
        if view.startswith("#/room"):
            p.click(".msg button.reply")
            p.wait_for_selector("aside.thread textarea")
        assert p.evaluate(_UNLABELLED) == [], view
    page.assert_clean()


def test_jump_to_first_unread_loads_older_pages_up_to_it(
    server: Server,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, Any]],
    page: Watched,
) -> None:
    alice, bob = make_agent(), make_agent()
    room = _room_with(make_room, alice, bob)
    posted = [_post(bob, room, f"status {i}") for i in range(120)]
    read_to = posted[9]["seq"]
    assert alice.api.put(f"/api/v1/rooms/{room['id']}/read", {"seq": read_to}).status == 200
    sign_in(page, server.base_url, alice.api_token)
    _open_room(page, room)
    p = page.page
    first_unread = read_to + 1
    assert p.locator(f"#m-{first_unread}").count() == 0  # two pages up
    jump = p.locator("button.jump")
    assert jump.is_visible() and "110 unread" in jump.inner_text()
    jump.click()
    target = p.locator(f"#m-{first_unread}.target")
    target.wait_for(timeout=5000)
    assert target.is_visible()
    # the "new" line sits right above the first unread message
    above = target.evaluate("el => el.previousElementSibling.className")
    assert above == "unread-line"
    assert jump.is_hidden()
    page.assert_clean()


def test_a_person_opens_a_dm_with_an_agent_and_writes_in_it(
    server: Server, make_agent: Callable[..., AgentCtx], page: Watched
) -> None:
    alice, bob = make_agent(), make_agent()
    sign_in(page, server.base_url, alice.api_token)
    p = page.page
    p.click("summary:has-text('Message an agent')")
    p.fill("#dm-agent", bob.name)
    p.click("button:has-text('Open DM')")
    p.wait_for_selector("main[data-ready=true] .room-head")
    assert p.locator(".room-head h1").inner_text().startswith("@ ")
    box = p.locator(".room-foot textarea")
    box.type("just us")
    box.press("Enter")
    p.locator(".messages .msg .body", has_text="just us").wait_for(timeout=2000)
    dms = bob.api.get("/api/v1/rooms", params={"kind": "dm"}).body["rooms"]
    assert len(dms) == 1
    last = bob.api.get(f"/api/v1/rooms/{dms[0]['id']}/messages", params={"limit": 1})
    assert [(m["body"], m["senderId"]) for m in last.body["messages"]] == [("just us", alice.id)]
    assert p.locator(f"a.room[data-room='{dms[0]['slug']}']").inner_text().endswith(bob.name)
    page.assert_clean()


def test_an_admin_creates_an_agent_and_disables_it(
    server: Server, admin: AgentCtx, page: Watched
) -> None:
    name = f"person-{uuid.uuid4().hex[:8]}"
    sign_in(page, server.base_url, admin.api_token)
    p = page.page
    p.goto(server.base_url + "/#/admin/agents")
    p.wait_for_selector("main[data-ready=true]")
    p.fill("#agent-name", name)
    p.fill("#agent-display", "A Person")
    p.click("button:has-text('Create agent')")
    p.get_by_role("cell", name=name, exact=True).wait_for()
    created = admin.api.get(f"/api/v1/agents/{name}")
    assert created.status == 200 and created.body["displayName"] == "A Person"
    assert created.body["disabled"] is False
    p.click(f"button:has-text('Disable {name}')")
    p.locator(f"button:has-text('Enable {name}')").wait_for()
    assert admin.api.get(f"/api/v1/agents/{name}").body["disabled"] is True
    page.assert_clean()


def test_a_person_creates_a_room_from_the_sidebar(
    server: Server, make_agent: Callable[..., AgentCtx], page: Watched
) -> None:
    alice = make_agent()
    slug = f"room-{uuid.uuid4().hex[:8]}"
    sign_in(page, server.base_url, alice.api_token)
    p = page.page
    p.click("summary:has-text('New room')")
    p.fill("#new-room", slug)
    p.click("button:has-text('Create')")
    p.wait_for_selector("main[data-ready=true] .room-head")
    assert p.locator(".room-head h1").inner_text() == f"# {slug}"
    created = alice.api.get(f"/api/v1/rooms/{slug}")
    assert created.status == 200 and created.body["createdBy"] == alice.id
    assert p.locator(f"a.room[data-room='{slug}']").is_visible()
    page.assert_clean()
