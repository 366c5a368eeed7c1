"""Who acts: an agent behind a verified session (``Principal``) or the host's operator
(``OPERATOR``), the person running ``agenthub`` on the server with its configuration.

Services take an ``Actor`` where both may act and a ``Principal`` where only an agent can
(posting, reading a room's messages): the type says which, instead of ``None`` standing for
the operator.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Principal:
    """The agent behind a verified JWT."""

    agent_id: uuid.UUID
    name: str
    role: str
    token_prefix: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def audit_agent_id(self) -> uuid.UUID | None:
        """The agent an audit event is attributed to."""
        return self.agent_id

    @property
    def via(self) -> Literal["api", "cli"]:
        return "api"

    def is_agent(self, agent_id: uuid.UUID) -> bool:
        return self.agent_id == agent_id


@dataclass(frozen=True)
class Operator:
    """The host's operator: has every right an admin has, and no agent identity (its audit
    events carry no agent; rooms it creates have no creator and no automatic member)."""

    name: str = "operator"

    @property
    def is_admin(self) -> bool:
        return True

    @property
    def audit_agent_id(self) -> uuid.UUID | None:
        return None

    @property
    def via(self) -> Literal["api", "cli"]:
        return "cli"

    def is_agent(self, agent_id: uuid.UUID) -> bool:
        return False


OPERATOR = Operator()

Actor = Principal | Operator
