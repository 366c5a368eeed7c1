"""Direct messages: the private room of two agents."""

from __future__ import annotations

from agenthub import schemas
from agenthub.api.base import BaseHandler


class DmsHandler(BaseHandler):
    route = "/api/v1/dms"

    async def post(self) -> None:
        data = self.json_body(schemas.CreateDmRequest)
        room, created = await self.services.rooms.open_dm(self.current(), data["agentId"])
        if created:
            self.set_header("Location", f"/api/v1/rooms/{room.id}")
        self.reply(201 if created else 200, room.to_dict())
