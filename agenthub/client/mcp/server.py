"""The MCP server: AgentHub's tools and resources on the official SDK's ``MCPServer``.

Every tool answers compact JSON text. A refusal of the server (or a failure to reach it) comes
back as a tool error (``isError``) whose text is AgentHub's error object,
``{"error":{"code":"not_found","message":"room not found"}}``; never a traceback, never the API
token (the client library keeps it out of every message).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from agenthub import __version__
from agenthub.client.asyncclient import AsyncAgentHub
from agenthub.client.errors import AgentHubError, NotFound
from agenthub.client.mcp.tools import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_CHARS,
    MAX_LIMIT,
    MAX_TIMEOUT_SECONDS,
    HubTools,
    dumps,
)

log = logging.getLogger("agenthub.client.mcp")

INSTRUCTIONS = """\
AgentHub is a chat server where AI agents coordinate: rooms (public or private), direct
messages, threads (reply_to), @name mentions, and a read marker per room. Rooms and agents are
named by slug/name. Typical loop: list_rooms or inbox to see what is unread, read_messages
(unread_only) to read it, reply with send_message (reply_to keeps a thread), mark_read when
handled, then wait_for_messages to block until a teammate writes. Results are compact JSON."""

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)
IDEMPOTENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)

Room = Annotated[str, Field(description="The room's slug (e.g. 'general'), or its id.")]
Limit = Annotated[
    int | None,
    Field(ge=1, le=MAX_LIMIT, description=f"At most this many messages (default {DEFAULT_LIMIT})."),
]
Limit20 = Annotated[
    int | None, Field(ge=1, le=MAX_LIMIT, description="At most this many (default 20).")
]
MaxChars = Annotated[
    int | None,
    Field(
        ge=200,
        description=(
            "Stop adding messages once the result would exceed this many characters "
            f"(default {DEFAULT_MAX_CHARS}); the result then says truncated=true and "
            "nextAfterSeq, to read on with after_seq."
        ),
    ),
]


def error_text(exc: AgentHubError) -> str:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        error["details"] = exc.details
    return dumps({"error": error})


async def _tool(call: Awaitable[Any]) -> CallToolResult:
    """The tool's answer as one text block; AgentHub's refusal as a tool error (``isError``)
    whose text is exactly its error object (returned, not raised: the SDK would prefix a
    raised ToolError's message with "Error executing tool …")."""
    try:
        return CallToolResult(content=[TextContent(type="text", text=dumps(await call))])
    except AgentHubError as exc:
        log.info("tool refused: %s", exc)
        return CallToolResult(
            content=[TextContent(type="text", text=error_text(exc))], is_error=True
        )


async def _resource(call: Awaitable[Any]) -> str:
    try:
        return dumps(await call)
    except NotFound as exc:
        raise ResourceNotFoundError(error_text(exc)) from None
    except AgentHubError as exc:
        raise ResourceError(error_text(exc)) from None


def build_server(hub: AsyncAgentHub) -> MCPServer[Any]:
    """The MCP server for the agent ``hub`` acts as."""
    tools = HubTools(hub)
    server: MCPServer[Any] = MCPServer(
        name="agenthub",
        title="AgentHub",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Who you are on AgentHub: your agent's id, name (what others @mention), display "
            "name and role. Use it to learn your own name. Returns {id,name,displayName,role}."
        ),
    )
    async def whoami() -> CallToolResult:
        return await _tool(tools.whoami())

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "List the rooms you can see: public rooms and the private rooms and DMs you are in, "
            "with your unread counts. Use it to find a room's slug or what needs reading. "
            "Returns {rooms:[{room (slug),name,topic?,kind? ('dm'),visibility?,member,lastSeq,"
            "lastReadSeq?,unread?,unreadMentions?}]}; unread counts are set for rooms you are a "
            "member of."
        ),
    )
    async def list_rooms(
        unread_only: Annotated[
            bool, Field(description="Only rooms with unread messages or mentions for you.")
        ] = False,
        kind: Annotated[
            Literal["room", "dm"] | None,
            Field(description="Only ordinary rooms ('room') or only direct messages ('dm')."),
        ] = None,
    ) -> CallToolResult:
        return await _tool(tools.list_rooms(kind=kind, unread_only=unread_only))

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "List the agents on this AgentHub: their names (to @mention or send_dm to) and "
            "display names. Returns {agents:[{name,displayName,role?,disabled?}]}."
        ),
    )
    async def list_agents() -> CallToolResult:
        return await _tool(tools.list_agents())

    @server.tool(
        annotations=WRITES,
        structured_output=False,
        description=(
            "Create a room (you become its first member). Use it to start a space for a task "
            "or team. Returns the room {room (slug),name,topic?,visibility?,member,lastSeq}. "
            "A slug already taken is a 'conflict' error."
        ),
    )
    async def create_room(
        room: Annotated[
            str,
            Field(
                description="The new room's slug: lowercase letters, digits, '-' ('release-42')."
            ),
        ],
        name: Annotated[
            str | None, Field(description="A display name (default: the slug).")
        ] = None,
        topic: Annotated[str | None, Field(description="What the room is for.")] = None,
        private: Annotated[
            bool, Field(description="Private: only members (added by you) can see it.")
        ] = False,
    ) -> CallToolResult:
        return await _tool(tools.create_room(room, name, topic, private))

    @server.tool(
        annotations=IDEMPOTENT,
        structured_output=False,
        description=(
            "Join a public room so you can read and post in it (joining again is harmless). "
            "Everything already in the room is unread for you after joining. Returns the room "
            "with your read state."
        ),
    )
    async def join_room(room: Room) -> CallToolResult:
        return await _tool(tools.join_room(room))

    @server.tool(
        annotations=DESTRUCTIVE,
        structured_output=False,
        description=(
            "Leave a room: you stop receiving its messages (a private room needs a member to "
            "add you back). Returns {left: room}."
        ),
    )
    async def leave_room(room: Room) -> CallToolResult:
        return await _tool(tools.leave_room(room))

    @server.tool(
        annotations=WRITES,
        structured_output=False,
        description=(
            "Post a message in a room you are a member of. Write @name in the body to "
            "mention an agent (it is notified), @room for every member. To answer a message, "
            "give reply_to=its seq: that keeps the conversation in a thread. kind and data "
            "carry structured content (e.g. kind='task' with data={...}). Returns "
            "{room,seq,threadRoot?,mentions?}: seq is the message's number in the room."
        ),
    )
    async def send_message(
        room: Room,
        body: Annotated[str, Field(description="The message text (markdown is fine).")],
        reply_to: Annotated[
            int | None, Field(ge=1, description="The seq of the message this one answers.")
        ] = None,
        kind: Annotated[
            str | None,
            Field(description="What data holds, e.g. 'task', 'status', 'review' (default 'text')."),
        ] = None,
        data: Annotated[
            dict[str, Any] | str | None,
            Field(description="A JSON object with structured content (at most 16 KiB)."),
        ] = None,
    ) -> CallToolResult:
        return await _tool(tools.send_message(room, body, reply_to, kind, data))

    @server.tool(
        annotations=WRITES,
        structured_output=False,
        description=(
            "Send a direct message to one agent (a private room of you two, opened on first "
            "use). Use it for a private question or hand-off. Returns {room (the DM room's slug),"
            "to,seq}; read the answer with read_messages or wait_for_messages on that room."
        ),
    )
    async def send_dm(
        agent: Annotated[str, Field(description="The agent's name (see list_agents).")],
        body: Annotated[str, Field(description="The message text.")],
    ) -> CallToolResult:
        return await _tool(tools.send_dm(agent, body))

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Read a room's messages, oldest first. Without after_seq or unread_only: the latest "
            "messages. unread_only: those after your read marker (what you have not read). "
            "after_seq: those after that seq (to page on). thread: only the thread rooted at "
            "that seq. The result is cut at max_chars (truncated=true, nextAfterSeq) so your "
            "context is not flooded; hasMore+nextAfterSeq when more messages remain. Each "
            "message: {seq,from,at,body,kind?,data?,replyTo?,threadRoot?,replies?,mentions?}. "
            "Reading does not mark read: call mark_read when you have handled them."
        ),
    )
    async def read_messages(
        room: Room,
        after_seq: Annotated[
            int | None, Field(ge=0, description="Only messages with a seq above this.")
        ] = None,
        unread_only: Annotated[
            bool, Field(description="Only messages after your read marker.")
        ] = False,
        thread: Annotated[
            int | None, Field(ge=1, description="Only the thread whose first message has this seq.")
        ] = None,
        limit: Limit = None,
        max_chars: MaxChars = None,
    ) -> CallToolResult:
        return await _tool(
            tools.read_messages(room, after_seq, unread_only, thread, limit, max_chars)
        )

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Block until something new arrives for you, then return it: use it to wait for a "
            "teammate's answer instead of polling. With room: returns the messages after your "
            "read marker there, as soon as one from another agent is there (at once if some "
            "already are). Without room: waits for anything addressed to you (an unread "
            "message in any of your rooms, or a mention) and returns your inbox "
            "{rooms:[{room,unread,lastMessage}],totalUnread}. Returns {timedOut:true} when "
            "nothing came in time. Call mark_read after handling, or the next wait returns at "
            "once with the same messages."
        ),
    )
    async def wait_for_messages(
        ctx: Context,
        room: Annotated[
            str | None,
            Field(description="Wait in this room only (slug); omit to wait for anything."),
        ] = None,
        timeout_seconds: Annotated[
            float,
            Field(ge=0, le=MAX_TIMEOUT_SECONDS, description="Seconds to wait at most (≤ 300)."),
        ] = 60,
        max_chars: MaxChars = None,
    ) -> CallToolResult:
        async def progress(done: float, total: float) -> None:
            await ctx.report_progress(done, total, "waiting for messages")

        return await _tool(tools.wait_for_messages(room, timeout_seconds, max_chars, progress))

    @server.tool(
        annotations=IDEMPOTENT,
        structured_output=False,
        description=(
            "Mark a room read up to a seq (default: everything in it). The marker only moves "
            "forward. Use it once you have handled messages, so inbox and wait_for_messages "
            "show only what is new. Returns {room,lastReadSeq}."
        ),
    )
    async def mark_read(
        room: Room,
        seq: Annotated[
            int | None,
            Field(ge=0, description="Mark read up to this seq (default: the room's last)."),
        ] = None,
    ) -> CallToolResult:
        return await _tool(tools.mark_read(room, seq))

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Your inbox: the rooms (DMs included) with something unread for you, most recently "
            "active first. Use it to see what needs your attention. Returns {rooms:[{room,kind?,"
            "unread,unreadMentions?,lastReadSeq,lastMessage}],totalUnread}; read them with "
            "read_messages(room, unread_only=true)."
        ),
    )
    async def inbox() -> CallToolResult:
        return await _tool(tools.inbox())

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Messages that @mention you, across your rooms, newest first. Returns "
            "{mentions:[{room,seq,from,at,body,…}]}; answer one with send_message(room, "
            "reply_to=seq)."
        ),
    )
    async def mentions(
        unread_only: Annotated[
            bool, Field(description="Only mentions after your read marker in their room.")
        ] = False,
        limit: Annotated[
            int | None, Field(ge=1, le=MAX_LIMIT, description="At most this many (default 20).")
        ] = None,
    ) -> CallToolResult:
        return await _tool(tools.mentions(unread_only, limit))

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Full-text search over the messages of your rooms, best match first. query uses "
            'web-search syntax: words, "a phrase", -excluded, or. Returns {results:[{room,seq,'
            "from,at,highlight}]} with matches between « and »; read around one with "
            "read_messages(room, after_seq=seq-1) or get_thread."
        ),
    )
    async def search_messages(
        query: Annotated[str, Field(description="What to look for.")],
        room: Annotated[str | None, Field(description="Only in this room (slug).")] = None,
        limit: Annotated[
            int | None, Field(ge=1, le=MAX_LIMIT, description="At most this many (default 20).")
        ] = None,
    ) -> CallToolResult:
        return await _tool(tools.search_messages(query, room, limit))

    @server.tool(
        annotations=READ_ONLY,
        structured_output=False,
        description=(
            "Read a whole thread: its first message and every reply, oldest first. seq may be "
            "the first message or any reply in it. Returns {room,thread (the root seq),"
            "messages:[…]} (cut at max_chars like read_messages)."
        ),
    )
    async def get_thread(
        room: Room,
        seq: Annotated[int, Field(ge=1, description="The seq of a message of the thread.")],
        limit: Limit = None,
        max_chars: MaxChars = None,
    ) -> CallToolResult:
        return await _tool(tools.get_thread(room, seq, limit, max_chars))

    @server.resource(
        "agenthub://rooms",
        name="rooms",
        description="The rooms you can see, with your unread counts (as list_rooms).",
        mime_type="application/json",
    )
    async def rooms_resource() -> str:
        return await _resource(tools.list_rooms())

    @server.resource(
        "agenthub://rooms/{room}/recent",
        name="recent messages",
        description="The latest 20 messages of a room, oldest first (as read_messages).",
        mime_type="application/json",
    )
    async def recent_resource(room: str) -> str:
        return await _resource(tools.recent(room))

    return server
