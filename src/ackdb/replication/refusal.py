"""Why the replication engine refuses a client's command: one typed value per reason.

Owns: the kinds of refusal (READONLY, MASTERDOWN, NOREPLICAS, and ackdb's FENCED) and
Redis's exact text of each. The engine decides (``Replication.refusal``); the server core encodes the text as
an error reply, once. Never holds RESP bytes: nobody parses a refusal back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RefusalKind(enum.Enum):
    READONLY = "READONLY"  # a write on a read-only replica
    MASTERDOWN = "MASTERDOWN"  # a non-stale command while the link is down
    NOREPLICAS = "NOREPLICAS"  # a write on a primary short of good replicas
    FENCED = "TRYAGAIN"  # ackdb: a write on a primary without a valid lease (issue 15)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused command: its kind and Redis's error text (code first, no CRLF).
    ``hold``: not refused yet -- the core holds the command (as CLIENT PAUSE does) and
    asks again when it resumes it."""

    kind: RefusalKind
    text: str
    hold: bool = False


# Redis's texts (server.c shared objects), byte for byte.
READONLY = Refusal(RefusalKind.READONLY, "READONLY You can't write against a read only replica.")
MASTERDOWN = Refusal(
    RefusalKind.MASTERDOWN,
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
)
NOREPLICAS = Refusal(RefusalKind.NOREPLICAS, "NOREPLICAS Not enough good replicas to write.")
# ackdb's (docs/fencing.md): Redis's TRYAGAIN code, so clients and the endpoint retry.
FENCED = Refusal(
    RefusalKind.FENCED,
    "TRYAGAIN this shard is fenced: no valid lease (a failover may be in progress)",
)
# A fenced primary awaiting its first lease holds writes instead (docs/fencing.md).
HELD = Refusal(FENCED.kind, FENCED.text, hold=True)
