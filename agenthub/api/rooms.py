"""Rooms, members and messages."""

from __future__ import annotations

from agenthub import schemas
from agenthub.api.base import BaseHandler
from agenthub.errors import ValidationFailed


class RoomsHandler(BaseHandler):
    route = "/api/v1/rooms"

    async def get(self) -> None:
        # Not query_str: an empty kind is a bad one (400), not an absent one.
        kind = self.get_query_argument("kind", None)
        rooms = await self.services.rooms.list_rooms(self.current(), kind)
        self.reply(200, {"rooms": [r.to_dict() for r in rooms]})

    async def post(self) -> None:
        data = self.json_body(schemas.CreateRoomRequest)
        room = await self.services.rooms.create_room(
            self.current(),
            slug=data["slug"],
            name=data["name"],
            visibility=data["visibility"],
            topic=data["topic"],
        )
        self.set_header("Location", f"/api/v1/rooms/{room.id}")
        self.reply(201, room.to_dict())


class RoomHandler(BaseHandler):
    route = "/api/v1/rooms/{id}"

    async def get(self, room_id: str) -> None:
        room = await self.services.rooms.get_room(self.current(), self.path_ref(room_id))
        self.reply(200, room.to_dict())

    async def patch(self, room_id: str) -> None:
        ref = self.path_ref(room_id)
        data = self.json_body(schemas.UpdateRoomRequest)
        room = await self.services.rooms.update_room(
            self.current(), ref, name=data["name"], topic=data["topic"]
        )
        self.reply(200, room.to_dict())


class RoomArchiveHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/archive"

    async def post(self, room_id: str) -> None:
        room = await self.services.rooms.set_archived(self.current(), self.path_ref(room_id), True)
        self.reply(200, room.to_dict())


class RoomUnarchiveHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/unarchive"

    async def post(self, room_id: str) -> None:
        room = await self.services.rooms.set_archived(self.current(), self.path_ref(room_id), False)
        self.reply(200, room.to_dict())


class RoomReadHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/read"

    async def put(self, room_id: str) -> None:
        room = self.path_ref(room_id)
        data = self.json_body(schemas.MarkReadRequest)
        mark = await self.services.reads.mark_read(self.current(), room, data["seq"])
        self.reply(200, mark.to_dict())


class InboxHandler(BaseHandler):
    route = "/api/v1/inbox"

    async def get(self) -> None:
        inbox = await self.unless_client_leaves(
            self.services.reads.inbox(self.current(), wait=self.query_seconds("wait") or 0.0)
        )
        if inbox is None:
            return  # the client went away while waiting: nothing to answer
        self.reply(200, inbox.to_dict())


class MembersHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/members"

    async def get(self, room_id: str) -> None:
        members = await self.services.rooms.list_members(self.current(), self.path_ref(room_id))
        self.reply(200, {"members": [m.to_dict() for m in members]})

    async def post(self, room_id: str) -> None:
        room = self.path_ref(room_id)
        data = self.json_body(schemas.AddMemberRequest)
        member, created = await self.services.rooms.add_member(
            self.current(), room, data["agentId"]
        )
        self.reply(201 if created else 200, member.to_dict())


class MemberHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/members/{agentId}"

    async def delete(self, room_id: str, agent_id: str) -> None:
        await self.services.rooms.remove_member(
            self.current(), self.path_ref(room_id), self.path_ref(agent_id, "agentId")
        )
        self.reply(204, None)


class MessagesHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/messages"

    async def get(self, room_id: str) -> None:
        page = await self.unless_client_leaves(
            self.services.messages.list_messages(
                self.current(),
                self.path_ref(room_id),
                limit=self.query_int("limit"),
                cursor=self.query_str("cursor"),
                after_seq=self.query_int("after"),
                thread=self.query_int("thread"),
                kind=self.query_str("kind"),
                wait=self.query_seconds("wait") or 0.0,
            )
        )
        if page is None:
            return  # the client went away while waiting: nothing to answer
        self.reply(
            200,
            {
                "messages": [m.to_dict() for m in page.messages],
                "nextCursor": page.next_cursor,
                "hasMore": page.has_more,
            },
        )

    async def post(self, room_id: str) -> None:
        room = self.path_ref(room_id)
        data = self.json_body(schemas.PostMessageRequest)
        result = await self.services.messages.post_message(
            self.current(),
            room,
            data["body"],
            data["clientMsgId"],
            kind=data["kind"],
            data=data["data"],
            reply_to=data["replyTo"],
        )
        if result.created:
            message = result.message
            self.set_header("Location", f"/api/v1/rooms/{message.room_id}/messages/{message.seq}")
        self.reply(201 if result.created else 200, result.message.to_dict())


class MessageHandler(BaseHandler):
    route = "/api/v1/rooms/{id}/messages/{seq}"

    async def get(self, room_id: str, seq: str) -> None:
        message = await self.services.messages.get_message(
            self.current(), self.path_ref(room_id), self._path_seq(seq)
        )
        self.reply(200, message.to_dict())

    async def delete(self, room_id: str, seq: str) -> None:
        await self.services.messages.redact_message(
            self.current(), self.path_ref(room_id), self._path_seq(seq)
        )
        self.reply(204, None)

    @staticmethod
    def _path_seq(value: str) -> int:
        # Digits only (no sign, no spaces); the service checks the range.
        if not (value.isascii() and value.isdigit()) or len(value) > 20:
            raise ValidationFailed("invalid seq", {"seq": ["a message's seq (a positive integer)"]})
        return int(value)
