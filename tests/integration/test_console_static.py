"""The console's files as the server serves them: ``/`` never cached, assets under hashed
names cached for a year, unknown names a JSON 404, the security headers everywhere; and the
same-origin rule that lets the console (whatever host name it was opened by) call the API."""

from __future__ import annotations

import gzip
import http.client
import re
import urllib.parse

import pytest
import socketio

from tests.realtime_support import Socket, run
from tests.servers import AgentCtx, Server

ASSET = re.compile(r'"/console/([\w.-]+)"')
SECURITY = {
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin",
}


def _raw(
    server: Server, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    url = urllib.parse.urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _index_assets(server: Server) -> list[str]:
    status, _, body = _raw(server, "/")
    assert status == 200
    return ASSET.findall(body.decode())


def test_the_index_is_html_never_cached_with_the_security_headers(server: Server) -> None:
    status, headers, body = _raw(server, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    for name, value in SECURITY.items():
        assert headers[name] == value
    html = body.decode()
    assert "<script" in html and "<script>" not in html  # no inline script: CSP forbids it
    assert "<style" not in html and " style=" not in html
    names = ASSET.findall(html)
    assert any(re.fullmatch(r"app\.[0-9a-f]{12}\.js", n) for n in names), names
    assert any(re.fullmatch(r"app\.[0-9a-f]{12}\.css", n) for n in names), names


def test_hashed_assets_are_immutable_and_gzipped_on_request(server: Server) -> None:
    script = next(n for n in _index_assets(server) if n.endswith(".js"))
    status, headers, plain = _raw(server, f"/console/{script}")
    assert status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-security-policy"] == "default-src 'self'"
    assert "content-encoding" not in headers
    # Imports point at hashed names too, so a changed module changes every URL leading to it.
    imports = re.findall(r'from"?\s*"\./([\w.-]+)"', plain.decode())
    assert imports and all(re.search(r"\.[0-9a-f]{12}\.js$", i) for i in imports), imports
    for name in imports:
        assert _raw(server, f"/console/{name}")[0] == 200
    status, headers, packed = _raw(server, f"/console/{script}", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(packed) == plain


@pytest.mark.parametrize("path", ["/console/app.js", "/console/app.000000000000.js", "/console/x"])
def test_an_unknown_asset_is_a_json_404(server: Server, path: str) -> None:
    resp = server.api().get(path)
    assert resp.status == 404
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["cache-control"] == "no-store"
    assert resp.body["error"]["code"] == "not_found"
    assert resp.headers["content-security-policy"] == "default-src 'self'"


def test_console_files_are_not_charged_to_the_anonymous_rate_limit(server: Server) -> None:
    # RATE_LIMIT_ANONYMOUS_PER_MINUTE is 100 by default: more loads than that still answer.
    script = next(n for n in _index_assets(server) if n.endswith(".js"))
    for _ in range(60):
        assert _raw(server, "/")[0] == 200
        assert _raw(server, f"/console/{script}")[0] == 200


def test_the_servers_own_origin_is_always_allowed(server: Server, make_agent) -> None:
    alice: AgentCtx = make_agent()
    own = server.base_url  # http://127.0.0.1:<port>: not in ALLOWED_ORIGINS (only :3000 is)
    resp = server.api(alice.api_token).post("/api/v1/sessions", headers={"Origin": own})
    assert resp.status == 201, resp.text
    other_port = own.rsplit(":", 1)[0] + ":1"
    refused = server.api(alice.api_token).post("/api/v1/sessions", headers={"Origin": other_port})
    assert refused.status == 403
    by_name = own.replace("127.0.0.1", "localhost")  # another name than the Host the request used
    assert server.api(alice.jwt).get("/api/v1/rooms", headers={"Origin": by_name}).status == 403

    async def scenario() -> None:
        for transports in (["websocket"], ["polling"]):
            sock = Socket(server.base_url)
            try:
                await sock.connect(alice.jwt, headers={"Origin": own}, transports=transports)
            finally:
                await sock.close()
            stranger = Socket(server.base_url)
            try:
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await stranger.connect(
                        alice.jwt, headers={"Origin": other_port}, transports=transports
                    )
            finally:
                await stranger.close()

    run(scenario())
