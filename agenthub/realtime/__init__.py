"""The real-time layer: socket.io namespace ``/agents`` over the same services as REST.

``server.RealtimeServer`` is built by ``agenthub.app`` when messaging is enabled and composes
the rest, one idea per module: the namespace (socket events -> service calls) and the live
sockets it works through (``sockets``: per-socket state in ``connections``, ``presence``,
flood control in ``rate_limit``), how packets are decoded (``packets``), the Tornado
transport (``transport``: junk refused, slow consumers cut off, closing on shutdown),
and the re-check of live sessions when auth notifications may have been missed
(``revalidation``). The origin policy is shared with REST (``agenthub.origins``).
"""

NAMESPACE = "/agents"
