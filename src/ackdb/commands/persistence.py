"""Persistence commands: SAVE, BGSAVE, BGREWRITEAOF.

Owns: their replies and error texts (Redis 7.2). Whether to start, schedule or refuse
is the persistence policy's decision (``persistence.policy``), asked through the
server's ``persist`` object (the engine's Persistence port, ``server.persist``), which
also does the work; a core without one (unit tests) answers as a server whose disk is
unavailable.
"""

from __future__ import annotations

from ..engine.client import Client
from ..engine.ports import Persistence
from ..resp import encoder as enc
from .base import SYNTAX, CommandError
from .table import handler


def _persist(c: Client) -> Persistence:
    p = c.server.persist
    if p is None:
        raise CommandError("ERR persistence is not available in this process")
    return p


@handler("save")
def save(c: Client, argv: list[bytes]) -> bytes:
    p = _persist(c)
    if not p.save_allowed():
        raise CommandError("ERR Background save already in progress")
    if not p.save():
        raise CommandError("ERR")
    return enc.OK


@handler("bgsave")
def bgsave(c: Client, argv: list[bytes]) -> bytes:
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise CommandError(SYNTAX)
    p = _persist(c)
    answer = p.bgsave_request(schedule)  # the persistence policy decides
    if answer == "in-progress":
        raise CommandError("ERR Background save already in progress")
    if answer == "scheduled":
        return enc.simple("Background saving scheduled")
    if answer == "busy":
        raise CommandError(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
            "SCHEDULE in order to schedule a BGSAVE whenever possible."
        )
    err = p.start_bgsave()
    if err is not None:
        raise CommandError(err)
    return enc.simple("Background saving started")


@handler("bgrewriteaof")
def bgrewriteaof(c: Client, argv: list[bytes]) -> bytes:
    p = _persist(c)
    answer = p.rewrite_request()  # the persistence policy decides
    if answer == "in-progress":
        raise CommandError("ERR Background append only file rewriting already in progress")
    if answer == "scheduled":
        return enc.simple("Background append only file rewriting scheduled")
    err = p.start_rewrite()
    if err is not None:
        raise CommandError(err)
    return enc.simple("Background append only file rewriting started")
