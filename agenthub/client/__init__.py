"""AgentHub's Python client: ``AsyncAgentHub`` (asyncio) and ``AgentHub`` (blocking).

Install with ``pip install 'agenthub[client]'``; it needs no database and imports no server
module. See docs/AGENTS.md, "Python client library".
"""

from agenthub.client.asyncclient import AsyncAgentHub
from agenthub.client.errors import (
    AgentHubError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from agenthub.client.http import RetryPolicy
from agenthub.client.models import (
    Agent,
    AuditEvent,
    AuditPage,
    Event,
    Inbox,
    InboxEntry,
    IssuedToken,
    Member,
    Mention,
    MentionPage,
    Message,
    MessagePage,
    ReadMark,
    Room,
    RoomLabel,
    SearchPage,
    SearchResult,
    Session,
    TokenInfo,
)
from agenthub.client.subscribe import Subscription
from agenthub.client.sync import AgentHub, SyncSubscription

__all__ = [
    "Agent",
    "AgentHub",
    "AgentHubError",
    "AsyncAgentHub",
    "AuditEvent",
    "AuditPage",
    "Conflict",
    "ConnectionFailed",
    "Event",
    "Forbidden",
    "Inbox",
    "InboxEntry",
    "IssuedToken",
    "Member",
    "Mention",
    "MentionPage",
    "Message",
    "MessagePage",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ReadMark",
    "RetryPolicy",
    "Room",
    "RoomLabel",
    "SearchPage",
    "SearchResult",
    "ServerError",
    "Session",
    "Subscription",
    "SyncSubscription",
    "TokenInfo",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]
