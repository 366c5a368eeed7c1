"""Composition: settings -> pool -> services -> Tornado application. Nothing else builds globals."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import ssl
from typing import Any

import tornado.httpserver
import tornado.web

from agenthub import systemd
from agenthub.api.base import NotFoundHandler
from agenthub.api.heads import HEAD_HARD_LIMIT, Application
from agenthub.api.routes import url_specs
from agenthub.api.security import HttpGuards, SecurityHeaders
from agenthub.config import Settings
from agenthub.metrics import Metrics
from agenthub.realtime.server import RealtimeServer
from agenthub.realtime.transport import SOCKETIO_PATH
from agenthub.scaleout import EventRelay
from agenthub.services.registry import Services, build_services
from agenthub.shutdown import DRAIN_SECONDS, RequestDrain, within
from agenthub.store.db import AuditObserver, Database, QueryObserver
from agenthub.store.notify import AUTH_CHANNEL, NotificationListener

log = logging.getLogger("agenthub")
access_log = logging.getLogger("agenthub.access")


class CannotListen(Exception):
    """The listening socket could not be bound (port taken, no permission, no such address)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {error}")
        self.host = host
        self.port = port
        self.error = error


def make_database(
    settings: Settings,
    observe: QueryObserver | None = None,
    audited: AuditObserver | None = None,
) -> Database:
    return Database(
        settings.dsn(),
        maxsize=settings.db_pool_max,
        acquire_timeout=settings.db_connect_timeout,
        observe=observe,
        audited=audited,
    )


async def build_services_started(settings: Settings, metrics: Metrics | None = None) -> Services:
    if metrics is None:
        db = make_database(settings)
    else:
        db = make_database(settings, metrics.observe_db_query, metrics.audit_event_committed)
    await db.start()
    return build_services(settings, db)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    millis = 1000.0 * handler.request.request_time()
    principal = getattr(handler, "principal", None)
    agent = principal.name if principal is not None else "-"
    route = getattr(handler, "route", "unmatched")
    level = logging.ERROR if status >= 500 else logging.INFO
    access_log.log(
        level,
        "%s %s %d %.1fms agent=%s",
        handler.request.method,
        route,
        status,
        millis,
        agent,
    )


def make_app(
    services: Services,
    realtime: RealtimeServer | None = None,
    metrics: Metrics | None = None,
) -> tornado.web.Application:
    if metrics is None:
        metrics = Metrics(process_collectors=False)
    if realtime is not None and realtime.metrics is None:
        # A socket layer built without metrics reports to the registry /metrics serves.
        realtime.bind_metrics(metrics)
    # Counted once the message is committed: services publish MessagePosted after COMMIT.
    services.bus.subscribe(metrics.on_event)
    metrics.track_waiters(lambda: len(services.waiters))
    guards = HttpGuards.from_settings(services.settings, metrics)

    def log_request(handler: tornado.web.RequestHandler) -> None:
        _log_request(handler)
        metrics.observe_http(
            handler.request.method or "",
            getattr(handler, "route", "unmatched"),
            handler.get_status(),
            handler.request.request_time(),
        )

    settings: dict[str, Any] = {
        "default_handler_class": NotFoundHandler,
        "default_handler_args": {"services": services, "guards": guards},
        "log_function": log_request,
        "compress_response": False,
        "xsrf_cookies": False,
        # Frames above engine.io's limit close the socket anyway; don't buffer 10 MiB first.
        "websocket_max_message_size": services.settings.max_request_bytes + 1024,
    }
    routes: list[Any] = list(url_specs(services, guards))
    if realtime is not None:
        routes.append(realtime.url_spec())
    app = Application(routes, **settings)
    app.add_transform(
        functools.partial(SecurityHeaders, hsts=services.settings.sends_hsts)  # type: ignore[arg-type]
    )
    return app


def make_realtime(services: Services, metrics: Metrics | None = None) -> RealtimeServer | None:
    """The socket.io layer, or None when FEATURE_MESSAGING_ENABLED is off (REST stays)."""
    if not services.settings.feature_messaging_enabled:
        return None
    return RealtimeServer(services, metrics)


def make_auth_listener(services: Services, metrics: Metrics) -> NotificationListener:
    """The dedicated connection that hears revocations made by any process (ADR 0005)."""

    async def on_state(up: bool) -> None:
        metrics.set_auth_listener_up(up)
        await services.sessions.on_listener(up)

    return NotificationListener(
        services.settings.dsn(),
        AUTH_CHANNEL,
        services.sessions.on_notification,
        on_state,
        connect_timeout=services.settings.db_connect_timeout,
    )


def start_scaleout(
    services: Services, realtime: RealtimeServer | None, metrics: Metrics
) -> EventRelay | None:
    """With REDIS_URL: the events every process must hear go through Redis (agenthub.scaleout),
    and /readyz reports the subscriptions. Without it: nothing (one process)."""
    settings = services.settings
    if not settings.redis_url:
        return None
    relay = EventRelay(settings.redis_url, settings.redis_prefix, services.db, services.bus.deliver)

    def lost(up: bool) -> None:
        if not up:
            metrics.redis_connection_lost()

    relay.on_state(lost)
    services.bus.set_relay(relay)
    relay.start()
    if realtime is not None:
        realtime.start()

    def redis_ok() -> bool:
        return relay.up and (realtime is None or bool(realtime.redis_listening))

    services.redis_ok = redis_ok
    log.info("sharing events and sockets through redis (prefix %s)", settings.redis_prefix)
    return relay


async def wait_for_database(services: Services, stop: asyncio.Event) -> bool:
    """Poll until the database answers (True) or shutdown is requested (False)."""
    delay = 0.5
    while not stop.is_set():
        if await services.db.ping():
            return True
        log.warning("database not reachable yet; retrying in %.1fs", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, 10.0)
    return False


async def shut_down(
    server: tornado.httpserver.HTTPServer,
    requests: RequestDrain,
    realtime: RealtimeServer | None,
    services: Services,
    relay: EventRelay | None = None,
) -> None:
    """Stop taking work, let what is in progress finish and its answers go out (within
    DRAIN_SECONDS), then close: sockets at the transport level, so clients reconnect to the
    next process by themselves, then the HTTP connections."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    server.stop()  # no new connections
    requests.draining = True  # a new request on a kept-alive connection: 503
    services.waiters.close()  # long polls answer now (empty), not at their deadline
    if realtime is not None:
        await realtime.drain(deadline)  # a new socket event: `unavailable`
    await within(requests.idle(), deadline, "HTTP requests in progress")
    await within(services.bus.settle(), deadline, "broadcasts of stored messages")
    if relay is not None:
        await within(relay.settle(), deadline, "broadcasts of stored messages")
    if realtime is not None:
        await realtime.close(deadline)
    await within(server.close_all_connections(), max(deadline, loop.time() + 1), "connections")


async def serve(settings: Settings, ssl_context: ssl.SSLContext | None = None) -> int:
    metrics = Metrics()
    services = await build_services_started(settings, metrics)
    realtime = make_realtime(services, metrics)
    app = make_app(services, realtime, metrics)
    requests = RequestDrain(app, exempt=(SOCKETIO_PATH,) if realtime is not None else ())
    server = tornado.httpserver.HTTPServer(
        requests,
        max_body_size=settings.max_request_bytes * 4,
        max_header_size=HEAD_HARD_LIMIT,
        idle_connection_timeout=120,
        ssl_options=ssl_context,
    )
    try:
        server.listen(settings.port, address=settings.host)
    except OSError as exc:
        await services.close()
        raise CannotListen(settings.host, settings.port, exc) from exc
    scheme = "https" if ssl_context is not None else "http"
    log.info("listening on %s://%s:%d", scheme, settings.host, settings.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    auth_listener = make_auth_listener(services, metrics)
    auth_listener.start()
    relay = start_scaleout(services, realtime, metrics)
    if realtime is not None:
        log.info("socket.io namespace /agents mounted at /socket.io/")
    if await wait_for_database(services, stop):
        systemd.notify("READY=1")
        log.info("database reachable; ready")
    await stop.wait()

    systemd.notify("STOPPING=1")
    log.info("shutting down: draining connections")
    await shut_down(server, requests, realtime, services, relay)
    await auth_listener.stop()
    if relay is not None:
        await relay.stop()
    if realtime is not None:
        await realtime.stop()
    await services.close()
    log.info("stopped")
    return 0
