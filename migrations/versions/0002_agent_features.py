"""agent features: structured messages, threads, mentions, read state, DMs, room topics and
archiving, full-text search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:29:12.196759

Every new column has a default or is nullable, so existing rows stay valid and the upgrade
runs in place. Adding the generated ``search`` column rewrites ``messages`` once (PostgreSQL
computes it for every stored row); the GIN index is built after.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("rooms", sa.Column("kind", sa.Text(), server_default="room", nullable=False))
    op.add_column("rooms", sa.Column("dm_key", sa.Text(), nullable=True))
    op.add_column("rooms", sa.Column("topic", sa.Text(), server_default="", nullable=False))
    op.add_column("rooms", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_unique_constraint(op.f("uq_rooms_dm_key"), "rooms", ["dm_key"])
    op.create_check_constraint(op.f("ck_rooms_kind"), "rooms", "kind IN ('room', 'dm')")
    op.create_check_constraint(
        op.f("ck_rooms_dm_key"), "rooms", "(kind = 'dm') = (dm_key IS NOT NULL)"
    )

    op.add_column(
        "room_members",
        sa.Column("last_read_seq", sa.BigInteger(), server_default="0", nullable=False),
    )

    op.add_column("messages", sa.Column("kind", sa.Text(), server_default="text", nullable=False))
    op.add_column("messages", sa.Column("data", postgresql.JSONB(), nullable=True))
    op.add_column("messages", sa.Column("reply_to", sa.BigInteger(), nullable=True))
    op.add_column("messages", sa.Column("thread_root", sa.BigInteger(), nullable=True))
    op.add_column(
        "messages",
        sa.Column(
            "mentions",
            postgresql.ARRAY(sa.Uuid()),
            server_default=sa.text("'{}'::uuid[]"),
            nullable=False,
        ),
    )
    op.add_column(
        "messages",
        sa.Column("mentions_room", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("messages", sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "messages",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            # "<" gets a space after it, so the parser never takes text for an HTML tag.
            sa.Computed(
                "to_tsvector('simple'::regconfig, replace(body, '<'::text, '< '::text))",
                persisted=True,
            ),
            nullable=True,
        ),
    )
    op.create_foreign_key(
        "fk_messages_reply_to",
        "messages",
        "messages",
        ["room_id", "reply_to"],
        ["room_id", "seq"],
    )
    op.create_check_constraint(
        op.f("ck_messages_kind"), "messages", "kind ~ '^[a-z][a-z0-9._-]{0,31}$'"
    )
    op.create_check_constraint(
        op.f("ck_messages_data_object"), "messages", "jsonb_typeof(data) = 'object'"
    )
    op.create_check_constraint(
        op.f("ck_messages_thread"), "messages", "(reply_to IS NULL) = (thread_root IS NULL)"
    )
    op.create_index("ix_messages_room_id_kind_seq", "messages", ["room_id", "kind", "seq"])
    op.create_index(
        "ix_messages_room_id_thread_root_seq",
        "messages",
        ["room_id", "thread_root", "seq"],
        postgresql_where=sa.text("thread_root IS NOT NULL"),
    )
    op.create_index("ix_messages_search", "messages", ["search"], postgresql_using="gin")

    op.create_table(
        "mentions",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_mentions_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id", "seq"],
            ["messages.room_id", "messages.seq"],
            name="fk_mentions_message",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "room_id", "seq", name=op.f("pk_mentions")),
        sa.UniqueConstraint("position", name=op.f("uq_mentions_position")),
    )
    op.create_index("ix_mentions_agent_id_position", "mentions", ["agent_id", "position"])
    op.create_index("ix_mentions_room_id_seq", "mentions", ["room_id", "seq"])


def downgrade() -> None:
    # What 0002 added goes, with what it held (threads, mentions, read marks, DMs' pairing,
    # topics): 0001's code has no place for it. DM rooms stay, as private rooms.
    op.drop_index("ix_mentions_room_id_seq", table_name="mentions")
    op.drop_index("ix_mentions_agent_id_position", table_name="mentions")
    op.drop_table("mentions")

    op.drop_index("ix_messages_search", table_name="messages")
    op.drop_index("ix_messages_room_id_thread_root_seq", table_name="messages")
    op.drop_index("ix_messages_room_id_kind_seq", table_name="messages")
    op.drop_constraint(op.f("ck_messages_thread"), "messages", type_="check")
    op.drop_constraint(op.f("ck_messages_data_object"), "messages", type_="check")
    op.drop_constraint(op.f("ck_messages_kind"), "messages", type_="check")
    op.drop_constraint("fk_messages_reply_to", "messages", type_="foreignkey")
    for column in (
        "search",
        "redacted_at",
        "edited_at",
        "mentions_room",
        "mentions",
        "thread_root",
        "reply_to",
        "data",
        "kind",
    ):
        op.drop_column("messages", column)

    op.drop_column("room_members", "last_read_seq")

    op.drop_constraint(op.f("ck_rooms_dm_key"), "rooms", type_="check")
    op.drop_constraint(op.f("ck_rooms_kind"), "rooms", type_="check")
    op.drop_constraint(op.f("uq_rooms_dm_key"), "rooms", type_="unique")
    for column in ("archived_at", "topic", "dm_key", "kind"):
        op.drop_column("rooms", column)
