"""Prometheus metrics: one registry per application, built in ``agenthub.app`` and passed on.

Names and labels are the contract ops dashboards and alerts are written against
(docs/METRICS.md); change them only with the dashboard and the alerts. Every label value comes
from a bounded set (route patterns, normalised SQL verbs, HTTP methods, the socket events the
namespace knows, else "unknown"), except ``room_id``, which is bounded by the number of rooms.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    exposition,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from agenthub.events import Event, MessagePosted, MessageRedacted, ReadMarked
from agenthub.services.audit import EVENT_TYPES

# SQL verbs kept as the ``operation`` label; anything else is "other" (bounded cardinality).
DB_OPERATIONS = frozenset(
    {"select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "set"}
)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def db_operation(sql: str) -> str:
    """The label for a statement: its first keyword, lower case, from a fixed set."""
    head = sql.lstrip(" \t\r\n(").split(None, 1)
    verb = head[0].lower() if head else ""
    return verb if verb in DB_OPERATIONS else "other"


class Metrics:
    """All of AgentHub's metrics on one registry.

    The socket layer binds the live counts with ``track_presence`` and calls ``observe_ws``;
    the HTTP access-log hook calls ``observe_http``; the database calls ``observe_db_query``
    and ``audit_event_committed``; the event bus calls ``on_event``.
    """

    def __init__(self, *, process_collectors: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        self.agents_connected = Gauge(
            "agenthub_agents_connected", "Agents with at least one connected socket.", registry=r
        )
        self.rooms_active = Gauge(
            "agenthub_rooms_active", "Rooms with at least one connected member.", registry=r
        )
        self.messages = Counter(
            "agenthub_messages",
            "Messages stored (acknowledged), by room.",
            ["room_id"],
            registry=r,
        )
        self.messages_redacted = Counter(
            "agenthub_messages_redacted",
            "Messages redacted (made tombstones).",
            registry=r,
        )
        self.read_marks = Counter(
            "agenthub_read_marks",
            "Read markers moved forward (PUT /rooms/{id}/read, room:read); marks that changed "
            "nothing are not counted. Read marks are not audited: this counts them instead.",
            registry=r,
        )
        self.ws_latency = Histogram(
            "agenthub_websocket_latency_seconds",
            "Time to handle one socket.io event, from receipt to acknowledgement.",
            ["event"],
            buckets=_WS_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "agenthub_http_requests",
            "HTTP requests answered, by method, route pattern and status code.",
            ["method", "route", "status_code"],
            registry=r,
        )
        self.http_duration = Histogram(
            "agenthub_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern.",
            ["route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.slow_consumer_disconnects = Counter(
            "agenthub_websocket_slow_consumer_disconnects",
            "Sockets disconnected because more than SOCKET_MAX_BUFFER_BYTES waited to be sent.",
            registry=r,
        )
        self.db_duration = Histogram(
            "agenthub_db_query_duration_seconds",
            "Time to execute one SQL statement, by SQL verb.",
            ["operation"],
            buckets=_DB_BUCKETS,
            registry=r,
        )
        self.audit_events = Counter(
            "agenthub_audit_events",
            "Audit events committed, by type: every write the audit trail records, counted.",
            ["type"],
            registry=r,
        )
        for event_type in EVENT_TYPES:
            # Every type present from the start, so a rate() over a fresh process is defined.
            self.audit_events.labels(event_type)
        self.waiting_requests = Gauge(
            "agenthub_waiting_requests",
            "HTTP requests waiting for a message (?wait= long polls), at most MAX_WAITERS.",
            registry=r,
        )
        self.redis_connection_lost_total = Counter(
            "agenthub_redis_connection_lost",
            "Redis pub/sub subscriptions (service events, socket.io emits) lost; each is"
            " re-established by itself (REDIS_URL set only).",
            registry=r,
        )
        self.auth_listener_up = Gauge(
            "agenthub_auth_listener_up",
            "1 while this process listens for revocations (PostgreSQL LISTEN); 0 while every"
            " request re-checks its session in the database instead.",
            registry=r,
        )

        self.rate_limit_store_unavailable = Counter(
            "agenthub_rate_limit_store_unavailable",
            "Times the shared rate-limit store (Redis, with REDIS_URL) became unreachable;"
            " meanwhile each process limits on its own.",
            registry=r,
        )

    # --- HTTP and database ------------------------------------------------------------------

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method.upper() if method.upper() in HTTP_METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(route).observe(seconds)

    def observe_db_query(self, operation: str, seconds: float) -> None:
        """``Database``'s ``observe`` callback: ``operation`` is the statement's first word."""
        self.db_duration.labels(db_operation(operation)).observe(seconds)

    def audit_event_committed(self, event_type: str) -> None:
        """``Database``'s ``audited`` callback: an audit event (of a fixed set of types) was
        committed."""
        self.audit_events.labels(event_type).inc()

    def track_waiters(self, waiting: Callable[[], float]) -> None:
        """Read the long-poll count from the waiter registry at scrape time."""
        self.waiting_requests.set_function(waiting)

    def redis_connection_lost(self) -> None:
        self.redis_connection_lost_total.inc()

    def set_auth_listener_up(self, up: bool) -> None:
        self.auth_listener_up.set(1 if up else 0)

    # --- messages ------------------------------------------------------------------------------

    def message_stored(self, room_id: str) -> None:
        self.messages.labels(room_id).inc()

    async def on_event(self, event: Event) -> None:
        """EventBus listener: services publish MessagePosted (MessageRedacted, ReadMarked) once
        the message (the redaction, the moved read marker) is committed."""
        if isinstance(event, MessagePosted):
            self.message_stored(str(event.message.room_id))
        elif isinstance(event, MessageRedacted):
            self.messages_redacted.inc()
        elif isinstance(event, ReadMarked):
            self.read_marks.inc()

    # --- sockets -------------------------------------------------------------------------------

    def track_presence(self, agents: Callable[[], float], rooms: Callable[[], float]) -> None:
        """Read both gauges from the presence tracker at scrape time (they cannot drift)."""
        self.agents_connected.set_function(agents)
        self.rooms_active.set_function(rooms)

    def observe_ws(self, event: str, seconds: float) -> None:
        self.ws_latency.labels(event).observe(seconds)

    def slow_consumer_disconnected(self) -> None:
        self.slow_consumer_disconnects.inc()

    # --- exposition ----------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The text exposition (OpenMetrics when the scraper asks for it) and its type."""
        encoder, content_type = exposition.choose_encoder(accept or "")
        return encoder(self.registry), content_type
