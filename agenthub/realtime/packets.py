"""socket.io packets as this server decodes them: a packet the client got wrong (invalid or
too deeply nested JSON, arguments that are not an array, an unknown packet type) becomes a
packet the namespace answers, instead of an exception python-socketio logs with a traceback.

python-socketio takes the packet class as its ``serializer``; this one only changes decoding.
"""

from __future__ import annotations

from typing import Any

from socketio import packet

_EVENTS = frozenset({packet.EVENT, packet.BINARY_EVENT})
_FROM_CLIENTS = _EVENTS | {packet.CONNECT, packet.DISCONNECT, packet.ACK, packet.BINARY_ACK}


class Malformed:
    """Stands in for what a malformed packet carried: the event name of an EVENT (so the
    namespace answers its ack with ``validation_failed``), or the auth of a CONNECT. Not a
    string, so no client can send one."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __repr__(self) -> str:
        return f"Malformed({self.problem!r})"


class AgentsPacket(packet.Packet):  # type: ignore[misc]
    packet_type: Any
    data: Any
    id: int | None

    def decode(self, encoded_packet: Any) -> int:
        try:
            attachments: int = super().decode(encoded_packet) or 0
        except RecursionError:
            problem = "JSON nested too deeply"
        except (ValueError, TypeError):
            typed = isinstance(encoded_packet, str) and encoded_packet[:1].isdigit()
            problem = "invalid JSON" if typed else "not a socket.io packet"
        else:
            if self.packet_type not in _FROM_CLIENTS:
                problem = f"unexpected packet type {self.packet_type}"
            elif self.packet_type in _EVENTS and not (isinstance(self.data, list) and self.data):
                problem = "an event is a JSON array: [name, argument…]"
            else:
                return attachments
        return self._malformed(problem)

    def _malformed(self, problem: str) -> int:
        if self.packet_type == packet.CONNECT:
            self.data = Malformed(problem)  # the handshake refuses it
            return 0
        if self.packet_type not in _EVENTS:
            self.id = None  # only an event asked for an ack
        self.packet_type = packet.EVENT
        self.data = [Malformed(problem)]
        return 0
