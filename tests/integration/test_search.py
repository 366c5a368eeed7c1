"""GET /api/v1/search (issue 11, §8): full-text search over the caller's rooms."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.helpers import Response
from tests.servers import AgentCtx

SEARCH = "/api/v1/search"


def word() -> str:
    """A word no other test uses (letters only: one token for PostgreSQL's parser)."""
    return "w" + "".join(chr(ord("a") + b % 26) for b in secrets.token_bytes(10))


def post(agent: AgentCtx, room: dict[str, Any], body: str, **extra: Any) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": body, **extra})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def search(agent: AgentCtx, **params: Any) -> Response:
    return agent.api.get(SEARCH, params=params)


def found(agent: AgentCtx, **params: Any) -> list[dict[str, Any]]:
    resp = search(agent, **params)
    assert resp.status == 200, resp.text
    return list(resp.body["results"])


def seqs(results: list[dict[str, Any]]) -> list[int]:
    return [r["message"]["seq"] for r in results]


def join(agent: AgentCtx, room: dict[str, Any]) -> None:
    assert agent.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201


def test_a_match_comes_with_its_room_and_a_highlight(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    message = post(alice, room, f"the {term} build failed")
    post(alice, room, "nothing to see here")
    resp = search(alice, q=term)
    assert resp.status == 200, resp.text
    assert resp.body == {
        "results": [
            {
                "message": message,
                "room": {"id": room["id"], "slug": room["slug"]},
                "highlight": f"the «{term}» build failed",
            }
        ],
        "nextCursor": None,
    }


def test_every_word_must_match_and_phrases_or_and_minus_work(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    a, b, c = word(), word(), word()
    m1 = post(alice, room, f"{a} {b}")["seq"]
    m2 = post(alice, room, f"{b} {a}")["seq"]
    m3 = post(alice, room, f"{a} {c}")["seq"]
    assert sorted(seqs(found(alice, q=f"{a} {b}"))) == [m1, m2]
    assert seqs(found(alice, q=f'"{a} {b}"')) == [m1]
    assert sorted(seqs(found(alice, q=f"{b} or {c}"))) == [m1, m2, m3]
    assert seqs(found(alice, q=f"{a} -{b}")) == [m3]
    # 'simple': no stemming, case folded, identifiers as written
    assert seqs(found(alice, q=a.upper())) == sorted([m1, m2, m3], reverse=True)
    assert found(alice, q=f"{a}s") == []


def test_best_match_first_then_newest(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    once_old = post(alice, room, f"{term} once")["seq"]
    thrice = post(alice, room, f"{term} and {term} and {term}")["seq"]
    once_new = post(alice, room, f"{term} once more")["seq"]
    results = found(alice, q=term)
    assert seqs(results) == [thrice, once_new, once_old]


def test_only_the_callers_rooms_are_searched_and_an_admin_searches_all(
    admin, make_agent, make_room
):
    alice, bob = make_agent(), make_agent()
    mine = make_room(alice)
    public_other = make_room(bob)
    private_other = make_room(bob, visibility="private")
    term = word()
    in_mine = post(alice, mine, f"{term} mine")
    post(bob, public_other, f"{term} public")
    post(bob, private_other, f"{term} private")
    assert [r["message"]["id"] for r in found(alice, q=term)] == [in_mine["id"]]
    assert len(found(bob, q=term)) == 2
    everything = found(admin, q=term)
    assert {r["room"]["slug"] for r in everything} == {
        mine["slug"],
        public_other["slug"],
        private_other["slug"],
    }
    # ... and joining a room makes its messages searchable
    join(alice, public_other)
    assert len(found(alice, q=term)) == 2


def test_a_room_filter_follows_the_member_rules(admin, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    public, private = make_room(bob), make_room(bob, visibility="private")
    term = word()
    post(bob, public, term)
    post(bob, private, term)
    resp = search(alice, q=term, room=public["slug"])
    assert (resp.status, resp.error_code()) == (403, "forbidden"), resp.text
    for ref in (private["slug"], private["id"]):
        resp = search(alice, q=term, room=ref)
        assert (resp.status, resp.error_code()) == (404, "not_found"), resp.text
    resp = search(alice, q=term, room="no-such-room")
    assert resp.status == 404
    # an admin may search any room
    assert len(found(admin, q=term, room=private["slug"])) == 1


def test_filters_room_sender_and_kind(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room, other = make_room(alice), make_room(alice)
    join(bob, room)
    term = word()
    a_text = post(alice, room, f"{term} text")["seq"]
    a_task = post(alice, room, f"{term} task", kind="task", data={"n": 1})["seq"]
    b_text = post(bob, room, f"{term} bob")["seq"]
    elsewhere = post(alice, other, f"{term} elsewhere")
    assert len(found(alice, q=term)) == 4
    for ref in (room["id"], room["slug"]):
        assert sorted(seqs(found(alice, q=term, room=ref))) == [a_text, a_task, b_text]
    assert [r["message"]["id"] for r in found(alice, q=term, room=other["slug"])] == [
        elsewhere["id"]
    ]
    for ref in (bob.id, bob.name):
        assert seqs(found(alice, q=term, sender=ref)) == [b_text]
    assert len(found(bob, q=term, sender="me")) == 1
    assert seqs(found(alice, q=term, kind="task")) == [a_task]
    assert seqs(found(alice, q=term, room=room["slug"], sender=alice.name, kind="text")) == [a_text]
    assert found(alice, q=term, kind="nothing-of-this-kind") == []


def test_paging_by_cursor_gives_every_match_once_even_with_new_messages(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    posted = [post(alice, room, f"{term} number {i}")["seq"] for i in range(7)]
    pages: list[list[int]] = []
    cursor = None
    while True:
        params = {"q": term, "limit": 3, **({"cursor": cursor} if cursor else {})}
        resp = search(alice, **params)
        assert resp.status == 200, resp.text
        pages.append(seqs(resp.body["results"]))
        cursor = resp.body["nextCursor"]
        if len(pages) == 1:
            # Arrives between pages: ranks like the others and is the newest, so it sorts
            # before the cursor and must not push a seen message onto the next page.
            post(alice, room, f"{term} late")
        if cursor is None:
            break
    assert pages == [posted[::-1][0:3], posted[::-1][3:6], posted[::-1][6:7]]
    # the last page says there is no more; a page that is exactly full says so too
    assert [len(r) for r in pages] == [3, 3, 1]
    resp = search(alice, q=term, limit=8)
    assert len(resp.body["results"]) == 8 and resp.body["nextCursor"] is None


def test_a_cursor_is_bound_to_its_query_and_filters(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    for i in range(3):
        post(alice, room, f"{term} {i}")
    cursor = search(alice, q=term, limit=1).body["nextCursor"]
    assert cursor
    assert search(alice, q=term, limit=1, cursor=cursor).status == 200
    for params in (
        {"q": f"{term} 1"},
        {"q": term, "room": room["slug"]},
        {"q": term, "sender": "me"},
        {"q": term, "kind": "text"},
    ):
        resp = search(alice, cursor=cursor, **params)
        assert resp.status == 400, (params, resp.text)
        assert "cursor" in resp.body["error"]["details"]
    for junk in ("x", "eyJrIjoic2VhcmNoIn0", "%%%", cursor[:-2], "a" * 400):
        resp = search(alice, q=term, cursor=junk)
        assert resp.status == 400, (junk, resp.text)


def test_tombstones_are_not_found(make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    kept = post(alice, room, f"{term} kept")
    gone = post(alice, room, f"{term} redacted")
    assert len(found(alice, q=term)) == 2
    # A tombstone as DELETE /rooms/{id}/messages/{seq} leaves it: body "", data null,
    # redactedAt set.
    sql(
        "UPDATE messages SET body = '', data = NULL, redacted_at = now() WHERE id = %s",
        gone["id"],
    )
    assert [r["message"]["id"] for r in found(alice, q=term)] == [kept["id"]]
    # the redaction mark alone is enough, whatever the body still says
    sql("UPDATE messages SET redacted_at = now() WHERE id = %s", kept["id"])
    resp = search(alice, q=term)
    assert resp.status == 200 and resp.body["results"] == []


def test_html_like_text_comes_back_as_text_and_is_searchable(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    body = (
        f'<b>{term}</b> <script>alert("x")</script> List<String> a<b && c>d '
        f"<!-- note --> &amp; « quoted » x < y <= z <{term}>"
    )
    message = post(alice, room, body)
    [result] = found(alice, q=term)
    assert result["message"]["body"] == body
    highlight = result["highlight"]
    assert highlight.replace("«", "").replace("»", "") == body.replace("«", "").replace("»", "")
    assert highlight.count(f"«{term}»") == 2
    assert f"<b>«{term}»</b>" in highlight and f"<«{term}»>" in highlight
    # words inside what looks like a tag are words, in the text and in the query
    for inside in ("string", "script", "alert", "note", "<script>", "List<String>"):
        assert [r["message"]["id"] for r in found(alice, q=f"{term} {inside}")] == [message["id"]]


def test_a_long_body_is_highlighted_in_excerpts(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    filler = " ".join(f"filler{i}" for i in range(80))
    post(alice, room, f"start {filler} {term} {filler} end")
    [result] = found(alice, q=term)
    highlight = result["highlight"]
    assert f"«{term}»" in highlight
    assert len(highlight) < len(result["message"]["body"]) / 2
    assert "start" not in highlight and "end" not in highlight


@pytest.mark.parametrize(
    "q",
    [None, "", "   ", "!!!", "()", '""', "-", "-word", "a or -b", '-"x y"', "& | <->"],
)
def test_a_query_without_a_word_to_find_is_400(make_agent, q):
    alice = make_agent()
    resp = search(alice, **({} if q is None else {"q": q}))
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"
    assert "q" in resp.body["error"]["details"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 100_000}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"room": ""}, "room"),
        ({"sender": ""}, "sender"),
        ({"kind": ""}, "kind"),
        ({"kind": "Task"}, "kind"),
        ({"room": "Not A Slug"}, "room"),
        ({"sender": "bad name!"}, "sender"),
        ({"q": "x" * 501}, "q"),
        ({"q": "\x00"}, "q"),  # tornado turns control characters into spaces
    ],
)
def test_bad_parameters_are_400(make_agent, params, field):
    alice = make_agent()
    resp = search(alice, **{"q": "hello", **params})
    assert resp.status == 400, resp.text
    assert field in resp.body["error"]["details"], resp.text


def test_an_unknown_sender_name_is_404_and_an_unknown_id_finds_nothing(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    post(alice, room, term)
    resp = search(alice, q=term, sender="nobody-by-this-name")
    assert (resp.status, resp.error_code()) == (404, "not_found")
    assert found(alice, q=term, sender="00000000-0000-0000-0000-000000000000") == []


@pytest.mark.parametrize(
    "q",
    [
        "'; DROP TABLE messages; --",
        "x' OR '1'='1",
        "%(q)s %s {0} $$ $1",
        "\\' \\\\ \\x00",
        "foo:* & bar | !baz <-> qux",
        "word::tsquery",
        "ts_headline('simple', body)",
        "«» <b onmouseover=x>",
    ],
)
def test_an_injection_looking_query_is_only_text(make_agent, make_room, table_counts, q):
    alice = make_agent()
    room = make_room(alice)
    term = word()
    post(alice, room, f"{term} {q}")
    before = table_counts()
    resp = search(alice, q=f"{term} {q}")
    assert resp.status == 200, resp.text
    assert [r["message"]["body"] for r in resp.body["results"]] == [f"{term} {q}"]
    assert table_counts() == before


def test_search_needs_a_session(server):
    resp = server.api().get(SEARCH, params={"q": "hello"})
    assert resp.status == 401
