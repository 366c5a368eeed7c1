"""Cross-host delivery and failover through the balancer (tests/infra/run-multi).

    SSL_CERT_FILE=ca.crt python tests/infra/multi_probe.py --url https://10.231.10.3:3443 \\
        --token-file admin.token --pin app1-0 --post-via app2-0 \\
        --stop-cmd "ssh root@app1 systemctl stop agenthub" \\
        --start-cmd "ssh root@app1 systemctl start agenthub"

A subscriber socket (agenthub.client's ``subscribe``) goes through HAProxy pinned to the backend
``--pin`` by the sticky cookie AH_SRV; a second agent posts through the backend ``--post-via``
(another app host). The subscriber must receive that message live (the server relays it
through Redis). Then ``--stop-cmd`` stops the pinned host's service; while it is down more
messages are posted; the subscriber must reconnect (HAProxy moves it to a live backend) and
receive every message exactly once, in seq order (the client catches up with room:sync).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shlex
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from yarl import URL

from agenthub.client import AsyncAgentHub
from agenthub.client.http import USER_AGENT
from agenthub.client.models import Event


class ProbeFailed(SystemExit):
    pass


def pinned(hub: AsyncAgentHub, backend: str) -> AsyncAgentHub:
    """Every request and socket of ``hub`` carries AH_SRV=<backend> (HAProxy's sticky cookie)."""
    # An IP-address URL: aiohttp's default jar would ignore cookies for it.
    jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False)
    jar.update_cookies({"AH_SRV": backend}, URL(hub.url))
    hub.http._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, cookie_jar=jar)
    return hub


async def next_seq(events: AsyncIterator[Event], within: float) -> int:
    """The seq of the next message:new."""

    async def one() -> int:
        async for event in events:
            if event.name == "message:new" and event.message is not None:
                return event.message.seq
        raise ProbeFailed("probe: the subscription ended")

    try:
        return await asyncio.wait_for(one(), within)
    except TimeoutError:
        raise ProbeFailed(f"probe: no message:new within {within:.0f} s") from None


async def polling_client(
    args: argparse.Namespace, token: str, poster: AsyncAgentHub, room_id: str
) -> int:
    """socket.io's default client (long-polling first, then the websocket upgrade) through
    the balancer: every polling request must reach the same backend (HAProxy's AH_SRV cookie,
    kept by this client's cookie jar), or the session is unknown there and the connection
    fails. Returns the seq it received."""
    import socketio

    async with AsyncAgentHub(args.url, token) as hub:
        jwt = await hub.session.token()
        jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            sio = socketio.AsyncClient(reconnection=False, http_session=http)
            seqs: asyncio.Queue[int] = asyncio.Queue()

            async def on_message(data: dict[str, object]) -> None:
                if data.get("roomId") == room_id:
                    seqs.put_nowait(int(str(data["seq"])))

            sio.on("message:new", on_message, namespace="/agents")
            await sio.connect(
                args.url, namespaces=["/agents"], auth={"token": jwt}, wait_timeout=15
            )
            try:
                transport = sio.transport()
                cookie = {c.key: c.value for c in jar}.get("AH_SRV")
                msg = await poster.send(room_id, "to a long-polling client")
                try:
                    got = await asyncio.wait_for(seqs.get(), 15)
                except TimeoutError:
                    raise ProbeFailed(
                        f"probe: the polling-first client (on {cookie}) got no message:new"
                    ) from None
                if got != msg.seq:
                    raise ProbeFailed(f"probe: polling client expected {msg.seq}, got {got}")
                print(
                    f"probe: a polling-first socket.io client (sticky on {cookie}, now "
                    f"{transport}) received seq {got} posted through {args.post_via}"
                )
                return got
            finally:
                await sio.disconnect()


async def run(args: argparse.Namespace) -> None:
    token = args.token_file.read_text().strip()
    nonce = secrets.token_hex(4)
    async with AsyncAgentHub(args.url, token) as admin_setup:
        peer = await admin_setup.create_agent(f"multi-peer-{nonce}")
        peer_token = (await admin_setup.issue_token(peer.id)).token
        room = await admin_setup.create_room(f"multi-{nonce}", visibility="private")
        await admin_setup.add_member(room.id, peer.id)
    subscriber = pinned(AsyncAgentHub(args.url, token), args.pin)
    poster = pinned(AsyncAgentHub(args.url, peer_token), args.post_via)
    try:
        sub = subscriber.subscribe([room.id])
        await sub.wait_connected(timeout=30)
        events = sub.__aiter__()

        first = await poster.send(room.id, f"posted through {args.post_via}")
        try:
            got = await next_seq(events, 15)
        except ProbeFailed as exc:
            raise ProbeFailed(
                f"{exc}: the message posted through {args.post_via} (seq {first.seq}) did not "
                f"reach the socket on {args.pin}. Cross-host fan-out through Redis (REDIS_URL: "
                "python-socketio's Redis manager, issue 13's fan-out part) is missing or broken"
            ) from None
        if got != first.seq:
            raise ProbeFailed(f"probe: expected seq {first.seq}, got {got}")
        print(
            f"probe: a socket pinned to {args.pin} received seq {first.seq} posted through "
            f"{args.post_via} (cross-host fan-out)"
        )

        polled = await polling_client(args, token, poster, room.id)
        # The pinned socket is in that room too: it gets that message as well.
        if (got := await next_seq(events, 15)) != polled:
            raise ProbeFailed(f"probe: expected seq {polled} on {args.pin}, got {got}")

        connections = sub.connections
        stop = await asyncio.create_subprocess_exec(
            *shlex.split(args.stop_cmd), stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await stop.communicate()
        if stop.returncode != 0:
            raise ProbeFailed(f"probe: {args.stop_cmd!r} failed: {stderr.decode()}")
        stopped_at = time.monotonic()
        posted: list[int] = []
        for i in range(args.count):
            msg = await poster.send(room.id, f"while {args.pin} is down ({i})")
            posted.append(msg.seq)
        received: list[int] = []
        while len(received) < len(posted):
            received.append(await next_seq(events, 60))
        if received != posted:
            raise ProbeFailed(f"probe: posted {posted}, received {received}")
        if sub.connections <= connections:
            raise ProbeFailed(
                f"probe: the socket never reconnected after stopping {args.pin}'s host: it was "
                "not on that host (is the AH_SRV cookie honoured?)"
            )
        print(
            f"probe: {args.pin}'s service stopped; the socket reconnected through the balancer "
            f"in {sub.connected_at - stopped_at:.1f} s and received seqs {received[0]}.."
            f"{received[-1]} ({len(received)} messages, in order, none lost)"
            if sub.connected_at
            else "probe: reconnected"
        )
    finally:
        await subscriber.aclose()
        await poster.aclose()
        if args.start_cmd:
            start = await asyncio.create_subprocess_exec(*shlex.split(args.start_cmd))
            await start.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the balancer, e.g. https://10.231.10.3:3443")
    parser.add_argument("--token-file", type=Path, required=True, help="admin API token")
    parser.add_argument("--pin", required=True, help="backend (AH_SRV) of the subscriber")
    parser.add_argument("--post-via", required=True, help="backend (AH_SRV) of the poster")
    parser.add_argument("--stop-cmd", required=True, help="stops the pinned backend's service")
    parser.add_argument("--start-cmd", default="", help="starts it again at the end")
    parser.add_argument("--count", type=int, default=5, help="messages posted while it is down")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
