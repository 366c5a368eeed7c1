"""The schema: the single source for queries and for alembic migrations."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from agenthub.domain import ROLES, VISIBILITIES

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


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
    # Serves paging (newest first and after=seq) and guarantees density per room.
    sa.UniqueConstraint("room_id", "seq"),
    # Idempotent sends: one stored message per (sender, clientMsgId).
    sa.UniqueConstraint("sender_id", "client_msg_id"),
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
