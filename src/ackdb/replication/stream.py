"""Encoding a primary's effects into the replication stream.

Owns: the exact bytes a primary appends to its stream -- each effect as a RESP array,
preceded by ``SELECT <db>`` when its database differs from the last one sent, the
keep-alive ``ping`` and ``REPLCONF GETACK *`` (which never change the selected db). Never
touches sockets, the keyspace or the offset itself (``ReplicationState.append`` counts
the bytes); MULTI/EXEC wrapping is the caller's (the server core feeds ``MULTI``, the
effects, ``EXEC`` as separate effects).

State: ``selected_db`` (-1: nothing selected yet, so the next effect sends SELECT). A new
full sync resets it (Redis sets slaveseldb = -1 then), because a replica that loads a
snapshot starts with db 0 selected while the stream may have moved elsewhere.
"""

from __future__ import annotations

from .util import encode_command

# notes: keep-alive "*1\r\n$4\r\nping\r\n" every repl-ping-replica-period.
PING = b"*1\r\n$4\r\nping\r\n"
# notes: REPLCONF GETACK * is 37 bytes of the stream.
GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"
assert len(GETACK) == 37 and len(PING) == 14

_SELECT = [encode_command([b"SELECT", b"%d" % i]) for i in range(16)]


def select_command(db: int) -> bytes:
    return _SELECT[db] if 0 <= db < len(_SELECT) else encode_command([b"SELECT", b"%d" % db])


class StreamEncoder:
    """Turns (db, argv) effects into stream bytes, tracking the selected database."""

    __slots__ = ("selected_db",)

    def __init__(self) -> None:
        self.selected_db = -1

    def force_select(self) -> None:
        """The next effect starts with SELECT (new replica, new backlog)."""
        self.selected_db = -1

    def encode(self, db: int, argv: list[bytes]) -> bytes:
        body = encode_command(argv)
        if db == self.selected_db:
            return body
        self.selected_db = db
        return select_command(db) + body
