"""A client that answers pings but never reads must not make the server buffer without
bound: once more than SOCKET_MAX_BUFFER_BYTES wait for it, its connection is closed (counted,
logged once), while a reading socket in the same room gets every message."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from tests.integration.test_metrics import scrape, value
from tests.realtime_support import WAIT, RawSocket, Socket, blocking, custom_server, run
from tests.servers import login

SLOW = "agenthub_websocket_slow_consumer_disconnects_total"
CAP = 262_144


def test_a_socket_that_never_reads_is_cut_off_and_readers_get_everything(database, tmp_path, admin):
    with custom_server(database, tmp_path / "server.log", SOCKET_MAX_BUFFER_BYTES=str(CAP)) as srv:
        jwt = login(srv, admin.api_token)
        api = srv.api(jwt)
        room = api.post("/api/v1/rooms", {"slug": f"slow-{uuid.uuid4().hex[:8]}"})
        assert room.status == 201
        room_id = room.body["id"]
        total = 250  # ~3.7 MB in all: far more than the cap and the kernel's buffers
        body = "x" * 15_000
        assert value(scrape(srv), SLOW) == 0

        def post_all() -> None:
            for i in range(total):
                resp = api.post(f"/api/v1/rooms/{room_id}/messages", {"body": f"{i} {body}"})
                assert resp.status == 201, resp.text

        async def scenario() -> None:
            reader = Socket(srv.base_url)
            slow = await RawSocket.open(srv.base_url, receive_buffer=4096)
            pinging = True

            async def answer_pings() -> None:
                # Unasked pongs keep engine.io's heartbeat happy without reading anything.
                with contextlib.suppress(OSError):
                    while pinging:
                        await slow.send("3")
                        await asyncio.sleep(0.5)

            pongs = asyncio.create_task(answer_pings())
            try:
                await reader.connect(jwt)
                assert (await slow.join(jwt)).startswith("40/agents,")
                await blocking(post_all)
                await reader.wait_until(lambda: len(reader.events["message:new"]) >= total)
                heard = [m["seq"] for m in reader.events["message:new"]]
                assert heard == list(range(1, total + 1))
                assert not reader.disconnects
                # Reading now, the slow client finds the end of its connection.
                pinging = False

                async def read_to_the_end() -> None:
                    with contextlib.suppress(EOFError):
                        while True:
                            await slow.recv()

                await asyncio.wait_for(read_to_the_end(), WAIT)
            finally:
                pinging = False
                await pongs
                await slow.close()
                await reader.close()

        run(scenario())
        assert value(scrape(srv), SLOW) == 1
        assert srv.log_text().count("is not reading") == 1
