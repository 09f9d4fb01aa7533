"""Persistence commands: SAVE, BGSAVE, BGREWRITEAOF.

Owns: their replies and error texts (Redis 7.2). The work is done by the server's
``persist`` object (``server.persist``); a core without one (unit tests) answers as a
server whose disk is unavailable.
"""

from __future__ import annotations

from typing import Any

from ..engine.client import Client
from ..resp import encoder as enc
from .base import SYNTAX, CommandError
from .table import handler


def _persist(c: Client) -> Any:
    p = c.server.persist
    if p is None:
        raise CommandError("ERR persistence is not available in this process")
    return p


@handler("save")
def save(c: Client, argv: list[bytes]) -> bytes:
    p = _persist(c)
    if p.child is not None and p.child.kind == "save":
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
    if p.child is not None and p.child.kind == "save":
        raise CommandError("ERR Background save already in progress")
    if p.child is not None:
        if schedule:
            p.bgsave_scheduled = True
            return enc.simple("Background saving scheduled")
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
    if p.child is not None and p.child.kind == "rewrite":
        raise CommandError("ERR Background append only file rewriting already in progress")
    if p.child is not None:
        p.rewrite_scheduled = True
        return enc.simple("Background append only file rewriting scheduled")
    err = p.start_rewrite()
    if err is not None:
        raise CommandError(err)
    return enc.simple("Background append only file rewriting started")
