"""The schema: the single source for queries and for alembic migrations."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from agenthub.domain import MESSAGE_KIND_PATTERN, ROLES, ROOM_KINDS, VISIBILITIES

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# What messages.search holds. 'simple': no stemming and no stop words, so code identifiers and
# text in any language match as written. The body is plain text, but PostgreSQL's parser takes
# "<word ...>" for an HTML tag and leaves it out (so "List<String>" would not be found by
# "string", and a highlight would drop "<b>"): a space after each "<" keeps it from seeing one.
SEARCH_TEXT = "to_tsvector('simple'::regconfig, replace(body, '<'::text, '< '::text))"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK that ``column`` holds one of ``values`` (the domain's fixed vocabulary)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _uuid_pk() -> sa.Column[object]:
    return sa.Column(
        "id", sa.Uuid(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    )


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


agents = sa.Table(
    "agents",
    metadata,
    _uuid_pk(),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="agent"),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    _created_at(),
    sa.CheckConstraint(_one_of("role", ROLES), name="role"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _uuid_pk(),
    sa.Column(
        "agent_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("prefix", sa.Text, nullable=False, unique=True),
    sa.Column("secret_hash", sa.Text, nullable=False),
    _created_at(),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
)

rooms = sa.Table(
    "rooms",
    metadata,
    _uuid_pk(),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("visibility", sa.Text, nullable=False, server_default="public"),
    # "room", or "dm": a private room of exactly two agents, found again by dm_key.
    sa.Column("kind", sa.Text, nullable=False, server_default="room"),
    sa.Column("dm_key", sa.Text, nullable=True, unique=True),
    sa.Column("topic", sa.Text, nullable=False, server_default=""),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "created_by",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("agents.id", ondelete="SET NULL"),
        nullable=True,
    ),
    # The per-room sequence: bumped under the row lock by every message insert.
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    _created_at(),
    sa.CheckConstraint(_one_of("visibility", VISIBILITIES), name="visibility"),
    sa.CheckConstraint(_one_of("kind", ROOM_KINDS), name="kind"),
    sa.CheckConstraint("(kind = 'dm') = (dm_key IS NOT NULL)", name="dm_key"),
    sa.Index("ix_rooms_visibility_slug", "visibility", "slug"),
)

room_members = sa.Table(
    "room_members",
    metadata,
    sa.Column(
        "room_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("rooms.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "agent_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column(
        "joined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # The member's read marker: messages with a higher seq are unread. Only moves forward.
    sa.Column("last_read_seq", sa.BigInteger, nullable=False, server_default="0"),
)

messages = sa.Table(
    "messages",
    metadata,
    _uuid_pk(),
    sa.Column(
        "room_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("rooms.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column(
        "sender_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("client_msg_id", sa.Text, nullable=True),
    _created_at(),
    sa.Column("kind", sa.Text, nullable=False, server_default="text"),
    sa.Column("data", JSONB(none_as_null=True), nullable=True),
    # Threads: the seq replied to, and the seq of the thread's first message (replies to
    # replies share it); both NULL for a message that is not a reply.
    sa.Column("reply_to", sa.BigInteger, nullable=True),
    sa.Column("thread_root", sa.BigInteger, nullable=True),
    # Members the body @-mentions (their ids), and whether it says @room.
    sa.Column(
        "mentions",
        ARRAY(sa.Uuid(as_uuid=True)),
        nullable=False,
        server_default=sa.text("'{}'::uuid[]"),
    ),
    sa.Column("mentions_room", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
    # Full-text search, maintained by PostgreSQL (SEARCH_TEXT).
    sa.Column("search", TSVECTOR, sa.Computed(SEARCH_TEXT, persisted=True), nullable=True),
    # Serves paging (newest first and after=seq) and guarantees density per room.
    sa.UniqueConstraint("room_id", "seq"),
    # Idempotent sends: one stored message per (sender, clientMsgId).
    sa.UniqueConstraint("sender_id", "client_msg_id"),
    sa.Index(
        "ix_messages_room_id_thread_root_seq",
        "room_id",
        "thread_root",
        "seq",
        postgresql_where=sa.text("thread_root IS NOT NULL"),
    ),
    sa.Index("ix_messages_room_id_kind_seq", "room_id", "kind", "seq"),
    sa.Index("ix_messages_search", "search", postgresql_using="gin"),
    # Unread counts (Room.unreadCount, the inbox) and the newest message that is no tombstone:
    # counted on this index alone (an index-only scan, sender_id included), never the heap.
    sa.Index(
        "ix_messages_room_id_seq_unread",
        "room_id",
        "seq",
        postgresql_include=["sender_id"],
        postgresql_where=sa.text("redacted_at IS NULL"),
    ),
    sa.ForeignKeyConstraint(
        ["room_id", "reply_to"],
        ["messages.room_id", "messages.seq"],
        name="fk_messages_reply_to",
    ),
    sa.CheckConstraint(f"kind ~ '{MESSAGE_KIND_PATTERN}'", name="kind"),
    sa.CheckConstraint("jsonb_typeof(data) = 'object'", name="data_object"),
    sa.CheckConstraint("(reply_to IS NULL) = (thread_root IS NULL)", name="thread"),
)

# One row per (agent, message that mentions it): explicit @name mentions and @room (one row per
# member then). Serves "my mentions, newest first" across rooms and unread-mention counts.
mentions = sa.Table(
    "mentions",
    metadata,
    sa.Column(
        "agent_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("room_id", sa.Uuid(as_uuid=True), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    # Monotonic position for cursors across rooms.
    sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
    sa.ForeignKeyConstraint(
        ["room_id", "seq"],
        ["messages.room_id", "messages.seq"],
        ondelete="CASCADE",
        name="fk_mentions_message",
    ),
    sa.Index("ix_mentions_agent_id_position", "agent_id", "position"),
    # A message's mention rows: dropped when it is redacted (and by the cascade from messages).
    sa.Index("ix_mentions_room_id_seq", "room_id", "seq"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    _uuid_pk(),
    # Monotonic position used for cursors; UUIDs do not sort by time.
    sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column(
        "agent_id",
        sa.Uuid(as_uuid=True),
        sa.ForeignKey("agents.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("payload", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    _created_at(),
    sa.Index("ix_audit_events_type_position", "type", "position"),
)
