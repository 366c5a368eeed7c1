"""The real-time layer: socket.io namespace ``/agents`` over the same services as REST.

``server.RealtimeServer`` is built by ``agenthub.app`` when messaging is enabled; the other
modules hold one idea each (origins, flood control, presence, per-socket state, the namespace).
"""

NAMESPACE = "/agents"
